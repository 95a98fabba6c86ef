//! Guest side of the mig-api targeting plugin ABI, version 1.
//!
//! A targeting plugin is a WebAssembly module (`wasm32-unknown-unknown`) that mig-api loads
//! into a sandbox: every evaluation runs in a fresh instance with a fuel budget, a memory cap
//! and a deadline, and the module may import nothing but `mig.call`. Plugins add functions to
//! the targeting language, for example `rollout('wave-1', 10)`; the default plugin, `expr`,
//! is the language itself (the *evaluator*).
//!
//! # Writing a function plugin
//!
//! One file, `src/lib.rs`, in a crate with `crate-type = ["cdylib"]`:
//!
//! ```
//! use mig_plugin_sdk::{CallResult, Loader, Value};
//!
//! /// `is_linux()`: true when the loader reported `env.os = "linux"`.
//! fn is_linux(loader: &Loader, _args: &[Value]) -> CallResult {
//!     Ok(Some(loader.env.get("os").and_then(Value::as_str) == Some("linux")))
//! }
//!
//! mig_plugin_sdk::functions! {
//!     name: "oscheck",
//!     functions: { "is_linux" => is_linux },
//! }
//! ```
//!
//! Build it with `cargo build --target wasm32-unknown-unknown --release` and upload
//! `target/wasm32-unknown-unknown/release/<crate>.wasm` through `POST plugins` (or the
//! console). A function returns `Ok(Some(true))` (match), `Ok(Some(false))` (no match),
//! `Ok(None)` (unknown, SQL NULL: no match, and `NOT` of it is still unknown) or
//! `Err(message)` (the expression that called it fails with that message).
//!
//! # The ABI (version 1)
//!
//! Everything crosses the boundary as UTF-8 JSON in the guest's linear memory, addressed by
//! a pointer and a length. Where a function returns both, they are packed into one `i64` as
//! `(ptr << 32) | len` (both unsigned 32-bit).
//!
//! The module exports:
//!
//! | export | type | meaning |
//! |---|---|---|
//! | `memory` | memory | the linear memory the host reads and writes |
//! | `mig_abi_version` | `() -> i32` | returns `1` |
//! | `mig_alloc` | `(len: i32) -> i32` | returns a pointer to `len` writable bytes |
//! | `mig_describe` | `() -> i64` | packed pointer/length of `{"abi":1,"name":"…","functions":["…"],"evaluator":false}` |
//! | `mig_invoke` | `(ptr: i32, len: i32) -> i64` | reads the input JSON at `ptr..ptr+len`, returns packed pointer/length of the output JSON |
//!
//! and may import only `mig.call: (ptr: i32, len: i32) -> i64` (see below). A module with any
//! other import, or without one of the exports above, is refused when it is uploaded.
//!
//! Input of `mig_invoke`, one of:
//!
//! ```json
//! {"abi":1,"op":"call","loader":LOADER,"function":"rollout","args":["wave-1",10]}
//! {"abi":1,"op":"eval","loader":LOADER,"exprs":["env#>>'{os}'='linux'", "…"],"first_match":false,"gates":0}
//! {"abi":1,"op":"check","expr":"env#>>'{os}'='linux'"}
//! ```
//!
//! where `LOADER` is `{"name": agent hostname, "loadername": loader entry name, "env": {…},
//! "tags": {…}, "attributes": {…}}` (`env` and `tags` as the loader reported them,
//! `attributes` set by administrators). Function plugins only receive `call`; `eval` and
//! `check` go to the evaluator.
//!
//! Output: `{"ok": VALUE}` or `{"error": "message"}` (the evaluator may add `"position": N`,
//! the 1-based character where parsing failed). `VALUE` is, per operation:
//! `call` → `true`, `false` or `null`; `eval` → an array with one entry per expression, each
//! `true`, `false`, `null` or `{"error":"message"}` (the first `gates` expressions, 0 when
//! absent, must all be true: the array stops after the first of them that is not; after them,
//! with `first_match`, it stops after the first `true`: so a loader's expectenv and the
//! selection among targets share one instance); `check` → `{"functions":["name", …], "compiled": "…"}`, the functions
//! the expression calls and, optionally, the evaluator's own compiled form of it. The form
//! begins with U+0001, which no expression's source can; the host keeps it and sends it in
//! `exprs` in place of the source, so an expression is parsed once, not on every request
//! (the built-in evaluator's form: `plugins/expr/src/compact.rs`).
//!
//! `mig.call` (evaluator only): the guest writes `{"function":"name","args":[…]}` into its
//! memory and calls `mig.call(ptr, len)`; the host runs that function in a fresh instance of
//! the plugin that declares it, with the same loader and the same limits, writes the
//! function's output (`{"ok": true|false|null}` or `{"error": "…"}`) into memory obtained
//! from the caller's `mig_alloc`, and returns its packed pointer/length. Called from a
//! function plugin, it answers `{"error": …}` (calls nest one level only).
//!
//! Limits enforced by the host (see `api/src/targeting/limits.rs`): fuel, a memory cap, a
//! wall-clock deadline, an output size cap, and strict validation of every output. A plugin
//! that exceeds them, traps or answers garbage fails only the evaluation that ran it.
#![deny(unsafe_code)]

pub mod abi;
mod input;

pub use input::{Input, Loader, Op};
pub use serde_json::{self, Value};

/// The ABI version this SDK implements (`mig_abi_version`).
pub const ABI_VERSION: i32 = 1;

/// What a plugin function answers: match (`Some(true)`), no match (`Some(false)`), unknown
/// (`None`, SQL NULL) or an error message.
pub type CallResult = Result<Option<bool>, String>;

/// A plugin function: the loader being targeted and the call's arguments (JSON: strings,
/// numbers, booleans, `null` for SQL NULL, or the JSON value of a `->`/`#>` operand).
pub type Function = fn(&Loader, &[Value]) -> CallResult;

/// What `mig_describe` answers.
#[derive(Debug, Clone, Copy)]
pub struct Describe {
    /// The plugin's name (informative: the host keys plugins by their upload name).
    pub name: &'static str,
    /// The functions the plugin adds to the language.
    pub functions: &'static [&'static str],
    /// True only for the built-in expression evaluator.
    pub evaluator: bool,
}

impl Describe {
    /// The JSON text of this description.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "abi": ABI_VERSION,
            "name": self.name,
            "functions": self.functions,
            "evaluator": self.evaluator,
        })
        .to_string()
    }
}

/// The output of one `mig_invoke`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `{"ok": value}`
    Ok(Value),
    /// `{"error": message, "position": position}`
    Error {
        message: String,
        position: Option<usize>,
    },
}

impl Reply {
    /// An error without a position.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply::Error {
            message: message.into(),
            position: None,
        }
    }

    /// The JSON text of this reply.
    pub fn to_json(&self) -> String {
        match self {
            Reply::Ok(v) => serde_json::json!({ "ok": v }).to_string(),
            Reply::Error {
                message,
                position: None,
            } => serde_json::json!({ "error": message }).to_string(),
            Reply::Error {
                message,
                position: Some(p),
            } => serde_json::json!({ "error": message, "position": p }).to_string(),
        }
    }
}

impl From<CallResult> for Reply {
    fn from(r: CallResult) -> Reply {
        match r {
            Ok(Some(b)) => Reply::Ok(Value::Bool(b)),
            Ok(None) => Reply::Ok(Value::Null),
            Err(e) => Reply::error(e),
        }
    }
}

/// Answers a `call` input from a table of functions (what [`functions!`] generates).
pub fn dispatch_call(input: Input, table: &[(&str, Function)]) -> Reply {
    match input.op {
        Op::Call { function, args } => match table.iter().find(|(n, _)| *n == function) {
            Some((_, f)) => f(&input.loader, &args).into(),
            None => Reply::error(format!("this plugin has no function {function}")),
        },
        Op::Eval { .. } | Op::Check { .. } => {
            Reply::error("a function plugin only answers \"call\"")
        }
    }
}

/// Calls a function of another plugin through the host (`mig.call`). Only the evaluator may
/// do this; elsewhere the host answers with an error. Off wasm32 (unit tests on the host)
/// there is no host and this returns an error.
pub fn call_function(function: &str, args: &[Value]) -> CallResult {
    let request = serde_json::json!({ "function": function, "args": args }).to_string();
    let answer = abi::host_call(request.as_bytes())?;
    parse_call_answer(&answer)
}

/// Reads the host's answer to `mig.call`: `{"ok": true|false|null}` or `{"error": "…"}`.
fn parse_call_answer(bytes: &[u8]) -> CallResult {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("bad answer from host: {e}"))?;
    match (v.get("ok"), v.get("error")) {
        (Some(Value::Bool(b)), None) => Ok(Some(*b)),
        (Some(Value::Null), None) => Ok(None),
        (None, Some(Value::String(e))) => Err(e.clone()),
        _ => Err(format!("bad answer from host: {v}")),
    }
}

/// Exports a function plugin: `mig_plugin_sdk::functions! { name: "x", functions: { "f" => f } }`.
#[macro_export]
macro_rules! functions {
    (name: $name:literal, functions: { $($fname:literal => $f:path),* $(,)? } $(,)?) => {
        $crate::__exports!(
            $crate::Describe { name: $name, functions: &[$($fname),*], evaluator: false },
            |input: $crate::Input| -> $crate::Reply {
                $crate::dispatch_call(input, &[$(($fname, $f as $crate::Function)),*])
            }
        );
    };
}

/// Exports the evaluator (the built-in `expr` plugin): `handler` answers `eval` and `check`.
#[macro_export]
macro_rules! evaluator {
    (name: $name:literal, handler: $handler:path $(,)?) => {
        $crate::__exports!(
            $crate::Describe {
                name: $name,
                functions: &[],
                evaluator: true
            },
            $handler
        );
    };
}

/// The four ABI exports; used by [`functions!`] and [`evaluator!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __exports {
    ($describe:expr, $handler:expr) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn mig_abi_version() -> i32 {
            $crate::ABI_VERSION
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn mig_alloc(len: i32) -> i32 {
            $crate::abi::alloc(len)
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn mig_describe() -> i64 {
            $crate::abi::leak(($describe).to_json().into_bytes())
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn mig_invoke(ptr: i32, len: i32) -> i64 {
            $crate::abi::invoke(ptr, len, $handler)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn always(_: &Loader, args: &[Value]) -> CallResult {
        Ok(args.first().and_then(Value::as_bool))
    }

    #[test]
    fn dispatch_finds_the_named_function_and_refuses_others() {
        let input = Input::parse(br#"{"abi":1,"op":"call","loader":{"name":"h","loadername":"l","env":{},"tags":null,"attributes":{}},"function":"always","args":[true]}"#).unwrap();
        assert_eq!(
            dispatch_call(input, &[("always", always)]),
            Reply::Ok(Value::Bool(true))
        );
        let input = Input::parse(br#"{"abi":1,"op":"call","function":"other","args":[]}"#).unwrap();
        let reply = dispatch_call(input, &[("always", always)]);
        assert!(
            matches!(reply, Reply::Error { ref message, .. } if message.contains("no function other"))
        );
    }

    #[test]
    fn replies_serialise_as_the_abi_says() {
        assert_eq!(Reply::Ok(Value::Null).to_json(), r#"{"ok":null}"#);
        let e = Reply::Error {
            message: "bad".into(),
            position: Some(3),
        };
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v, serde_json::json!({"error":"bad","position":3}));
    }

    #[test]
    fn host_answers_are_checked() {
        assert_eq!(parse_call_answer(br#"{"ok":false}"#), Ok(Some(false)));
        assert_eq!(parse_call_answer(br#"{"ok":null}"#), Ok(None));
        assert_eq!(
            parse_call_answer(br#"{"error":"nope"}"#),
            Err("nope".into())
        );
        assert!(parse_call_answer(br#"{"ok":3}"#).is_err());
        assert!(parse_call_answer(b"garbage").is_err());
    }

    #[test]
    fn off_wasm_there_is_no_host() {
        assert!(call_function("rollout", &[])
            .unwrap_err()
            .contains("only available"));
    }
}
