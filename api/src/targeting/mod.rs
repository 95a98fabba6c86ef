//! Targeting: manifest `target` and loader `expectenv` expressions evaluated by sandboxed
//! WebAssembly plugins (docs/design.md §5).
//!
//! The expression language is itself a plugin (`plugins/expr`, built in); other plugins add
//! functions such as `rollout('wave-1', 10)` (built in: `rollout`, `semver`; operators
//! upload more). Each module is validated and compiled once ([`Engine::load_plugin`]) and
//! every evaluation runs in a fresh instance with fuel, a memory cap and a deadline
//! ([`limits`]). The ABI's host side is `abi.rs`; plugin authors read `plugins/sdk`.
//!
//! Read [`Engine`] first (`engine.rs`), then `sandbox.rs` (wasmtime, `mig.call`), `abi.rs`
//! (the wire) and `registry.rs`. Semantics of the language: `plugins/README.md`.
//!
//! Choices: a NULL (unknown) result never matches; comparing json to text (`env->'os' =
//! 'linux'`) is refused when the expression is written, as PostgreSQL refuses it
//! ("operator does not exist: json = unknown"); an empty expression does not parse (callers
//! treat an empty expectenv as "no check" before asking). Functions of a removed plugin
//! make the expressions that call them fail to evaluate (logged, no match).

mod abi;
mod builtin;
mod engine;
mod error;
pub mod limits;
mod registry;
mod sandbox;
#[cfg(test)]
mod tests;

pub use engine::{Engine, Selection};
pub use error::TargetingError;

/// What targeting knows about a loader.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoaderFacts {
    /// The agent hostname the loader reported (`name` in expressions).
    pub name: String,
    /// The loader entry's name (`loadername`).
    pub loadername: String,
    /// The environment the loader reported (`env`).
    pub env: serde_json::Value,
    /// The tags the loader reported (`tags`).
    pub tags: serde_json::Value,
    /// Attributes set by administrators (`attributes`).
    pub attributes: serde_json::Value,
}

/// A loaded plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    /// Hex SHA-256 of the module bytes.
    pub sha256: String,
    pub size: u64,
    /// The functions it adds to the language (none for the evaluator).
    pub functions: Vec<String>,
    pub builtin: bool,
}

/// Counters since the engine started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Expressions evaluated.
    pub evaluations: u64,
    /// Expressions whose evaluation failed (plugin failure or evaluation error).
    pub failures: u64,
    /// Distinct expressions whose compiled form (or lack of one) the engine holds.
    pub compiled: usize,
}
