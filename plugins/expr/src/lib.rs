//! `expr`, the default targeting plugin: the expression language of manifest targets and
//! loader expectenv, compiled to WebAssembly and run by mig-api in its sandbox.
//!
//! The language is the part of PostgreSQL that MIG's raw-SQL targets used, over the
//! columns `env`, `tags`, `attributes` (json) and `name`, `loadername` (text):
//! `env#>>'{os}'='linux' AND tags#>>'{operator}'='myorg'`. See `README.md` for the grammar
//! and the exact semantics. Start reading at [`parser`], then [`types`] and [`eval`].
#![deny(unsafe_code)]

pub mod ast;
pub mod compact;
pub mod error;
pub mod eval;
pub mod lexer;
pub mod like;
pub mod parser;
pub mod pgtext;
pub mod types;

use mig_plugin_sdk::{Input, Loader, Op, Reply, Value};

pub use error::ParseError;
pub use eval::Functions;

/// Parses and type-checks `src`; returns the functions it calls.
pub fn check(src: &str) -> Result<Vec<String>, ParseError> {
    compile(src).map(|(functions, _)| functions)
}

/// Parses and type-checks `src`; returns the functions it calls and its compiled form
/// ([`compact`]; `None` for a tree too deep to be worth it).
pub fn compile(src: &str) -> Result<(Vec<String>, Option<String>), ParseError> {
    let mut node = parser::parse(src)?;
    let functions = types::check_expression(&mut node)?;
    Ok((functions, compact::encode(&node)))
}

/// Evaluates `src` for `loader`: `Some(true)` match, `Some(false)` no match, `None` unknown
/// (also no match). `src` is an expression's source (parsed and type-checked here) or its
/// compiled form from [`compile`].
pub fn evaluate(
    src: &str,
    loader: &Loader,
    functions: &mut dyn Functions,
) -> Result<Option<bool>, String> {
    if src.starts_with(compact::MARKER) {
        let node = compact::decode(src)?;
        return eval::eval(&node, loader, functions);
    }
    let mut node = parser::parse(src).map_err(|e| e.to_string())?;
    types::check_expression(&mut node).map_err(|e| e.to_string())?;
    eval::eval(&node, loader, functions)
}

/// Answers the host: `eval` and `check` (see the SDK's ABI documentation).
pub fn handle(input: Input, functions: &mut dyn Functions) -> Reply {
    match input.op {
        Op::Check { expr } => match compile(&expr) {
            Ok((fns, Some(compiled))) => {
                Reply::Ok(serde_json::json!({ "functions": fns, "compiled": compiled }))
            }
            Ok((fns, None)) => Reply::Ok(serde_json::json!({ "functions": fns })),
            Err(e) => Reply::Error {
                message: e.message,
                position: Some(e.position),
            },
        },
        Op::Eval {
            exprs,
            first_match,
            gates,
        } => {
            let mut out = Vec::with_capacity(exprs.len());
            for (i, src) in exprs.iter().enumerate() {
                let r = evaluate(src, &input.loader, functions);
                let hit = r == Ok(Some(true));
                out.push(match r {
                    Ok(b) => b.map_or(Value::Null, Value::Bool),
                    Err(e) => serde_json::json!({ "error": e }),
                });
                let stop = if i < gates { !hit } else { hit && first_match };
                if stop {
                    break;
                }
            }
            Reply::Ok(Value::Array(out))
        }
        Op::Call { .. } => {
            Reply::error("expr is the evaluator: it answers eval and check, not call")
        }
    }
}

fn handle_with_host(input: Input) -> Reply {
    handle(input, &mut mig_plugin_sdk::call_function)
}

mig_plugin_sdk::evaluator! { name: "expr", handler: handle_with_host }

#[cfg(test)]
mod tests;
