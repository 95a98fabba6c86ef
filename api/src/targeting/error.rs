//! The targeting engine's errors. Each message names what failed.

use std::fmt;

/// Why a targeting operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetingError {
    /// The expression does not parse or does not type-check; `position` is the 1-based
    /// character where the parser stopped.
    Parse { position: usize, message: String },
    /// The expression calls a function no loaded plugin provides.
    UnknownFunction(String),
    /// A plugin failed while running (trap, fuel, deadline, memory, bad output); only the
    /// evaluation that ran it fails.
    Plugin { plugin: String, reason: String },
    /// An evaluation failed inside a correct evaluator: a called function reported an
    /// error, for example.
    Evaluation(String),
    /// A plugin refused at upload (not WebAssembly, wrong ABI, foreign imports, missing
    /// exports, too large, bad name, clashing functions) or a bad argument.
    Invalid(String),
    /// No plugin has that name.
    UnknownPlugin(String),
    /// Built-in plugins cannot be replaced or removed.
    Builtin(String),
    /// The WebAssembly runtime could not be set up.
    Runtime(String),
}

impl fmt::Display for TargetingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetingError::Parse { position, message } => {
                write!(f, "expression refused at character {position}: {message}")
            }
            TargetingError::UnknownFunction(name) => {
                write!(
                    f,
                    "expression calls {name}(), which no loaded plugin provides"
                )
            }
            TargetingError::Plugin { plugin, reason } => {
                write!(f, "plugin {plugin} failed: {reason}")
            }
            TargetingError::Evaluation(m) => write!(f, "evaluation failed: {m}"),
            TargetingError::Invalid(m) => write!(f, "{m}"),
            TargetingError::UnknownPlugin(name) => write!(f, "no plugin is named {name:?}"),
            TargetingError::Builtin(name) => {
                write!(
                    f,
                    "{name:?} is a built-in plugin: it cannot be replaced or removed"
                )
            }
            TargetingError::Runtime(m) => write!(f, "WebAssembly runtime: {m}"),
        }
    }
}

impl std::error::Error for TargetingError {}
