//! The host side of plugin ABI v1 (documented for plugin authors in `plugins/sdk`):
//! export and import names and types, the JSON the host writes, and strict checks of the
//! JSON a guest answers. Anything a guest returns that is not exactly the documented shape
//! is "garbage" and fails that evaluation.

use serde_json::{Map, Value};
use wasmtime::{ExternType, Module, ValType};

pub const ABI_VERSION: i32 = 1;
pub const EXPORT_MEMORY: &str = "memory";
pub const EXPORT_VERSION: &str = "mig_abi_version";
pub const EXPORT_ALLOC: &str = "mig_alloc";
pub const EXPORT_DESCRIBE: &str = "mig_describe";
pub const EXPORT_INVOKE: &str = "mig_invoke";
pub const IMPORT_MODULE: &str = "mig";
pub const IMPORT_CALL: &str = "call";

/// `(ptr << 32) | len`, both unsigned 32-bit.
pub fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

pub fn unpack(packed: i64) -> (u32, u32) {
    let v = packed as u64;
    ((v >> 32) as u32, v as u32)
}

fn func_is(ty: &ExternType, params: &[ValType], results: &[ValType]) -> bool {
    let ExternType::Func(f) = ty else {
        return false;
    };
    let same = |a: &mut dyn ExactSizeIterator<Item = ValType>, b: &[ValType]| {
        a.len() == b.len() && a.zip(b).all(|(x, y)| ValType::eq(&x, y))
    };
    same(&mut f.params(), params) && same(&mut f.results(), results)
}

/// Refuses a module that imports anything but `mig.call`, or lacks an export of the ABI.
pub fn check_module(module: &Module) -> Result<(), String> {
    use ValType::{I32, I64};
    for import in module.imports() {
        let ty = import.ty();
        if import.module() != IMPORT_MODULE || import.name() != IMPORT_CALL {
            return Err(format!(
                "the module imports {}.{}; a plugin may import only mig.call (no WASI, files, network or clock)",
                import.module(),
                import.name()
            ));
        }
        if !func_is(&ty, &[I32, I32], &[I64]) {
            return Err(
                "the module imports mig.call with the wrong type (expected (i32, i32) -> i64)"
                    .into(),
            );
        }
    }
    let wanted: [(&str, &[ValType], &[ValType]); 4] = [
        (EXPORT_VERSION, &[], &[I32]),
        (EXPORT_ALLOC, &[I32], &[I32]),
        (EXPORT_DESCRIBE, &[], &[I64]),
        (EXPORT_INVOKE, &[I32, I32], &[I64]),
    ];
    for (name, params, results) in wanted {
        match module.get_export(name) {
            None => {
                return Err(format!(
                    "the module does not export {name} (ABI v{ABI_VERSION})"
                ))
            }
            Some(ty) if !func_is(&ty, params, results) => {
                return Err(format!(
                    "the module exports {name} with the wrong type (ABI v{ABI_VERSION})"
                ))
            }
            Some(_) => {}
        }
    }
    match module.get_export(EXPORT_MEMORY) {
        Some(ExternType::Memory(m)) if !m.is_64() && !m.is_shared() => Ok(()),
        Some(_) => Err("the module's \"memory\" export is not a 32-bit, unshared memory".into()),
        None => Err("the module does not export its memory as \"memory\"".into()),
    }
}

/// `{"error": message}`.
pub fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "answered {} instead of a JSON object",
            kind(&other)
        )),
        Err(e) => Err(format!("answered invalid JSON ({e})")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An `{"ok": X}` or `{"error": "…"[, "position": N]}` answer.
pub enum Answer {
    Ok(Value),
    Error {
        message: String,
        position: Option<usize>,
    },
}

fn answer(bytes: &[u8]) -> Result<Answer, String> {
    let mut m = object(bytes)?;
    if m.len() == 1 {
        if let Some(v) = m.remove("ok") {
            return Ok(Answer::Ok(v));
        }
    }
    let position = match m.remove("position") {
        None => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or("answered a bad position")?,
        ),
        Some(other) => return Err(format!("answered {} as a position", kind(&other))),
    };
    match (m.remove("error"), m.is_empty()) {
        (Some(Value::String(message)), true) => Ok(Answer::Error { message, position }),
        _ => Err("answered neither {\"ok\": …} nor {\"error\": \"…\"}".into()),
    }
}

/// What `mig_describe` says about a plugin.
pub struct Description {
    pub functions: Vec<String>,
    pub evaluator: bool,
}

pub fn parse_describe(bytes: &[u8]) -> Result<Description, String> {
    let mut m = object(bytes).map_err(|e| format!("mig_describe {e}"))?;
    match m.remove("abi") {
        None => {}
        Some(v) if v == ABI_VERSION => {}
        Some(v) => return Err(format!("mig_describe says ABI {v}, expected {ABI_VERSION}")),
    }
    let Some(Value::String(_name)) = m.remove("name") else {
        return Err("mig_describe has no \"name\" string".into());
    };
    let functions = match m.remove("functions") {
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(format!("mig_describe lists {} as a function", kind(&other))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err("mig_describe has no \"functions\" array".into()),
    };
    let evaluator = match m.remove("evaluator") {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err("mig_describe's \"evaluator\" is not a boolean".into()),
    };
    if let Some(k) = m.keys().next() {
        return Err(format!("mig_describe has an unknown field {k:?}"));
    }
    Ok(Description {
        functions,
        evaluator,
    })
}

/// The loader as the guest sees it.
#[derive(serde::Serialize)]
pub struct LoaderJson<'a> {
    pub name: &'a str,
    pub loadername: &'a str,
    pub env: &'a Value,
    pub tags: &'a Value,
    pub attributes: &'a Value,
}

/// Where an `eval` may stop early: after the first of its `gates` leading expressions that is
/// not true, and (`first_match`) after the first true one after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub first_match: bool,
    pub gates: usize,
}

impl Stop {
    /// Every expression is evaluated.
    pub const NEVER: Stop = Stop {
        first_match: false,
        gates: 0,
    };

    /// Whether evaluation ends after expression `i`, whose result was true or not (`hit`).
    pub fn after(&self, i: usize, hit: bool) -> bool {
        if i < self.gates {
            !hit
        } else {
            hit && self.first_match
        }
    }
}

pub fn eval_input(loader_json: &str, exprs: &[&str], stop: Stop) -> String {
    let exprs = serde_json::to_string(exprs).unwrap_or_else(|_| "[]".into());
    let Stop { first_match, gates } = stop;
    format!(
        r#"{{"abi":{ABI_VERSION},"op":"eval","first_match":{first_match},"gates":{gates},"loader":{loader_json},"exprs":{exprs}}}"#
    )
}

pub fn check_input(expr: &str) -> String {
    serde_json::json!({ "abi": ABI_VERSION, "op": "check", "expr": expr }).to_string()
}

pub fn call_input(loader_json: &str, function: &str, args: &Value) -> String {
    let function = Value::from(function);
    format!(
        r#"{{"abi":{ABI_VERSION},"op":"call","loader":{loader_json},"function":{function},"args":{args}}}"#
    )
}

/// The evaluator's `mig.call` request: `{"function": "name", "args": [...]}`.
pub fn parse_call_request(bytes: &[u8]) -> Result<(String, Value), String> {
    let mut m = object(bytes).map_err(|e| format!("mig.call request {e}"))?;
    match (m.remove("function"), m.remove("args"), m.is_empty()) {
        (Some(Value::String(f)), Some(args @ Value::Array(_)), true) => Ok((f, args)),
        _ => Err("mig.call request is not {\"function\": \"…\", \"args\": […]}".into()),
    }
}

/// A function's answer, checked and re-serialised for the evaluator.
pub fn parse_call_output(bytes: &[u8]) -> Result<String, String> {
    match answer(bytes)? {
        Answer::Ok(v @ (Value::Bool(_) | Value::Null)) => {
            Ok(serde_json::json!({ "ok": v }).to_string())
        }
        Answer::Ok(other) => Err(format!(
            "answered {} where true, false or null was expected",
            kind(&other)
        )),
        Answer::Error { message, .. } => Ok(error_json(&message)),
    }
}

/// One expression's result from the evaluator: `Some(b)`, `None` (unknown) or an error.
pub type ExprResult = Result<Option<bool>, String>;

/// The evaluator's `eval` answer for `n` expressions, which may stop early where `stop` says.
/// `Err` means the answer as a whole is unusable; an `{"error"}` answer fails every
/// expression with that message.
pub fn parse_eval_output(bytes: &[u8], n: usize, stop: Stop) -> Result<Vec<ExprResult>, String> {
    let items = match answer(bytes)? {
        Answer::Ok(Value::Array(items)) => items,
        Answer::Ok(other) => {
            return Err(format!(
                "answered {} where an array was expected",
                kind(&other)
            ))
        }
        Answer::Error { message, .. } => return Ok(vec![Err(message); n]),
    };
    // Every answer but the last must be one evaluation goes on after; a short answer must end
    // where evaluation stops.
    let hit = |v: &Value| v == &Value::Bool(true);
    let goes_on = items
        .iter()
        .enumerate()
        .rev()
        .skip(1)
        .all(|(i, v)| !stop.after(i, hit(v)));
    let ends_right = match items.len() {
        len if len == n => true,
        0 => false,
        len if len < n => stop.after(len - 1, hit(&items[len - 1])),
        _ => false,
    };
    if !goes_on || !ends_right {
        return Err(format!(
            "answered {} results for {n} expressions, not where evaluation stops",
            items.len()
        ));
    }
    items
        .into_iter()
        .map(|v| match v {
            Value::Bool(b) => Ok(Ok(Some(b))),
            Value::Null => Ok(Ok(None)),
            Value::Object(mut m) => match (m.remove("error"), m.is_empty()) {
                (Some(Value::String(e)), true) => Ok(Err(e)),
                _ => Err("answered a malformed result object".to_string()),
            },
            other => Err(format!("answered {} as a result", kind(&other))),
        })
        .collect()
}

/// Starts the evaluator's compiled form of an expression (plugins/expr/src/compact.rs), sent
/// in place of the source; no source can start with it.
pub const COMPILED_MARKER: char = '\u{1}';

/// What the evaluator's `check` says of a valid expression.
pub struct Checked {
    pub functions: Vec<String>,
    /// Its compiled form, marker first, when the evaluator made one.
    pub compiled: Option<String>,
}

/// The evaluator's `check` answer: the functions called and the compiled form, or a parse
/// error.
pub fn parse_check_output(bytes: &[u8]) -> Result<Result<Checked, (usize, String)>, String> {
    match answer(bytes)? {
        Answer::Error { message, position } => Ok(Err((position.unwrap_or(0), message))),
        Answer::Ok(Value::Object(mut m)) => {
            let compiled = match m.remove("compiled") {
                None => None,
                Some(Value::String(s)) if s.starts_with(COMPILED_MARKER) => Some(s),
                Some(_) => return Err("check answer has a malformed compiled form".into()),
            };
            match (m.remove("functions"), m.is_empty()) {
                (Some(Value::Array(a)), true) => a
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        other => Err(format!("answered {} as a function name", kind(&other))),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|functions| {
                        Ok(Checked {
                            functions,
                            compiled,
                        })
                    }),
                _ => Err("check answer is not {\"functions\": […], \"compiled\": \"…\"}".into()),
            }
        }
        Answer::Ok(other) => Err(format!(
            "answered {} where an object was expected",
            kind(&other)
        )),
    }
}
