//! Fault injection for the kill-at-every-step tests: `MIG_LOADER_CRASH_AT=<step>` makes a debug
//! build abort at that step. Release builds (and the `loader` profile) contain none of this code.

/// The install steps a test can stop the loader at, in the order a run reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    AfterStage,
    AfterJournal,
    MidSwap,
    AfterSwap,
    AfterTriggers,
    BeforeCommit,
}

impl CrashPoint {
    /// Every point, in order: the test kills the loader at each.
    pub const ALL: [CrashPoint; 6] = [
        CrashPoint::AfterStage,
        CrashPoint::AfterJournal,
        CrashPoint::MidSwap,
        CrashPoint::AfterSwap,
        CrashPoint::AfterTriggers,
        CrashPoint::BeforeCommit,
    ];

    /// The value of `MIG_LOADER_CRASH_AT` that stops a run here.
    pub const fn as_str(self) -> &'static str {
        match self {
            CrashPoint::AfterStage => "after_stage",
            CrashPoint::AfterJournal => "after_journal",
            CrashPoint::MidSwap => "mid_swap",
            CrashPoint::AfterSwap => "after_swap",
            CrashPoint::AfterTriggers => "after_triggers",
            CrashPoint::BeforeCommit => "before_commit",
        }
    }
}

/// Aborts the process when the environment asks for a crash at `at` (debug builds only).
#[inline]
pub fn point(at: CrashPoint) {
    #[cfg(debug_assertions)]
    if std::env::var("MIG_LOADER_CRASH_AT").as_deref() == Ok(at.as_str()) {
        crate::log::step(format!(
            "MIG_LOADER_CRASH_AT={}: aborting (test fault injection)",
            at.as_str()
        ));
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = at;
}
