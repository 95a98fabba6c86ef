//! The default plugins, built from `plugins/` by `api/build.rs` and embedded in the binary.

/// (name, module). `expr` is the evaluator and must come first.
pub(crate) const BUILTIN: &[(&str, &[u8])] = &[
    (
        "expr",
        include_bytes!(concat!(env!("OUT_DIR"), "/expr.wasm")),
    ),
    (
        "rollout",
        include_bytes!(concat!(env!("OUT_DIR"), "/rollout.wasm")),
    ),
    (
        "semver",
        include_bytes!(concat!(env!("OUT_DIR"), "/semver.wasm")),
    ),
];

/// True for the names of built-in plugins (never replaced or removed).
pub(crate) fn is_builtin(name: &str) -> bool {
    BUILTIN.iter().any(|(n, _)| *n == name)
}
