//! The input of `mig_invoke`, decoded.

use serde::Deserialize;
use serde_json::Value;

/// The loader being targeted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Loader {
    /// The agent hostname the loader reported (`name` in expressions).
    pub name: String,
    /// The loader entry's name, chosen by administrators (`loadername`).
    pub loadername: String,
    /// The environment the loader reported (`env`).
    pub env: Value,
    /// The tags the loader reported (`tags`).
    pub tags: Value,
    /// Attributes set by administrators; a loader cannot forge them (`attributes`).
    pub attributes: Value,
}

/// One operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// Evaluate each expression for the loader (evaluator only).
    Eval {
        exprs: Vec<String>,
        /// Stop after the first expression that is true (among those after the gates).
        first_match: bool,
        /// The first `gates` expressions must all be true: stop after the first that is not.
        gates: usize,
    },
    /// Parse one expression and list the functions it calls (evaluator only).
    Check { expr: String },
    /// Run one function of this plugin.
    Call { function: String, args: Vec<Value> },
}

/// A decoded `mig_invoke` input.
#[derive(Debug, Clone)]
pub struct Input {
    /// The loader (empty for `check`, which does not depend on one).
    pub loader: Loader,
    pub op: Op,
}

/// The wire form: one flat object, so decoding needs no buffering.
#[derive(Deserialize)]
struct Wire {
    abi: i32,
    op: String,
    #[serde(default)]
    loader: Loader,
    exprs: Option<Vec<String>>,
    #[serde(default)]
    first_match: bool,
    #[serde(default)]
    gates: usize,
    expr: Option<String>,
    function: Option<String>,
    args: Option<Vec<Value>>,
}

impl Input {
    /// Decodes the JSON the host wrote; the error says what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Input, String> {
        let w: Wire = serde_json::from_slice(bytes).map_err(|e| format!("bad input: {e}"))?;
        if w.abi != crate::ABI_VERSION {
            return Err(format!(
                "input is for ABI {}, this plugin speaks {}",
                w.abi,
                crate::ABI_VERSION
            ));
        }
        let op = match (w.op.as_str(), w.exprs, w.expr, w.function, w.args) {
            ("eval", Some(exprs), None, None, None) => Op::Eval {
                exprs,
                first_match: w.first_match,
                gates: w.gates,
            },
            ("check", None, Some(expr), None, None) => Op::Check { expr },
            ("call", None, None, Some(function), Some(args)) => Op::Call { function, args },
            (op, ..) => {
                return Err(format!(
                    "bad input: unknown operation {op:?} or wrong fields for it"
                ))
            }
        };
        Ok(Input {
            loader: w.loader,
            op,
        })
    }
}
