//! size-budget: mig-loader's budgets, the release build they are measured on, and the
//! measurements. `cargo run -p size-budget` checks the stripped size; the end-to-end test
//! `tests/tests/budget.rs` checks the peak RSS of a 64 MiB install through a real mig-api, with
//! the same build and the same GNU time wrapper; the system benchmark uses both too.
#![forbid(unsafe_code)]

pub mod binary;
pub mod elf;
pub mod measure;
pub mod musl;

/// docs/design.md §9.1: at most 2.5 MiB stripped on every target (MIG's Go loader: 5.95 MB).
pub const SIZE_BUDGET: u64 = 5 * 1024 * 1024 / 2;
/// docs/design.md §9.1: at most 8 MiB peak RSS for a run that installs a 64 MiB file.
pub const RSS_BUDGET_KIB: u64 = 8 * 1024;
/// MIG's Go loader, stripped, for the comparison line.
pub const MIG_GO_LOADER: u64 = 5_950_000;
