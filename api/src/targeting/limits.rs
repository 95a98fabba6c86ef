//! Every limit of the sandbox, in one place (docs/design.md §5.3). A plugin is hostile until proven
//! otherwise: these bound what one evaluation can cost the API.

use std::time::Duration;

/// Largest plugin module accepted at upload.
pub const MAX_PLUGIN_SIZE: usize = 8 << 20;
/// Longest target or expectenv expression (MIG's columns were varchar(2048)).
pub const MAX_EXPRESSION_LEN: usize = 8 << 10;
/// Linear memory one instance may have (StoreLimits, trap on failed growth).
pub const MEMORY_CAP: usize = 16 << 20;
/// Largest output (`mig_invoke`, `mig_describe`, a `mig.call` request) read from a guest.
pub const OUTPUT_CAP: usize = 1 << 20;
/// Fuel for one instance running a single expression or function call: ~10 million wasm
/// instructions, about a millisecond of compute. Parsing and evaluating a typical target
/// costs tens of thousands.
pub const FUEL_PER_EVALUATION: u64 = 10_000_000;
/// An evaluator instance running a batch gets this much extra fuel per expression…
pub const FUEL_PER_EXPRESSION: u64 = 1_000_000;
/// …up to this total.
pub const MAX_BATCH_FUEL: u64 = 2_000_000_000;
/// How often the background thread advances the engine's epoch.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Wall-clock deadline of one instance, in epoch ticks (~100 ms): the backstop for time
/// fuel does not count (a guest blocked in host calls).
pub const DEADLINE_TICKS: u64 = 20;
/// Deadline of a function called through `mig.call` (~50 ms): shorter than its caller's,
/// so a called function that stalls fails alone and the caller can still answer.
pub const CALL_DEADLINE_TICKS: u64 = DEADLINE_TICKS / 2;
/// `mig.call`s one evaluator instance may make per expression it evaluates.
pub const CALLS_PER_EXPRESSION: u32 = 16;
/// Function names: 1 to 64 of `[a-z0-9_]`, starting with a letter.
pub const MAX_NAME_LEN: usize = 64;
/// Concurrent instances (the pooling allocator's slots; an evaluation with a plugin call
/// holds two). More concurrent evaluations fail instead of queueing.
pub const POOL_INSTANCES: u32 = 256;

/// Bytes of an instance's memory (and of its tables) that stay mapped when its slot is reused,
/// zeroed by the host instead of handed back to the kernel: an evaluation then takes no page
/// faults on them. Beyond this much, memory is decommitted as usual.
pub const KEEP_RESIDENT: usize = 2 << 20;

/// Fuel for an evaluator instance that evaluates `n` expressions.
pub fn batch_fuel(n: usize) -> u64 {
    FUEL_PER_EVALUATION
        .saturating_add(FUEL_PER_EXPRESSION.saturating_mul(n as u64))
        .min(MAX_BATCH_FUEL)
}
