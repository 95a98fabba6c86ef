//! Fault injection for the kill-at-every-step tests: `MIG_LOADER_CRASH_AT=<step>` makes a debug
//! build abort at that step. Release builds (and the `loader` profile) contain none of this code.

/// The install steps a test can stop the loader at, in order.
pub const STEPS: [&str; 6] = [
    "after_stage",
    "after_journal",
    "mid_swap",
    "after_swap",
    "after_triggers",
    "before_commit",
];

/// Aborts the process when the environment asks for a crash at `step` (debug builds only).
#[inline]
pub fn point(step: &'static str) {
    #[cfg(debug_assertions)]
    if std::env::var("MIG_LOADER_CRASH_AT").as_deref() == Ok(step) {
        crate::log::step(format!(
            "MIG_LOADER_CRASH_AT={step}: aborting (test fault injection)"
        ));
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}
