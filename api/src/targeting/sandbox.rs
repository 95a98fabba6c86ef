//! The wasmtime side: one engine configured once with every limit (fuel, epoch deadline,
//! pooling allocator, memory cap), and the code that runs one `mig_invoke` in a fresh
//! store. Also `mig.call`, the only function a plugin can import.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;

use wasmtime::{
    Caller, Config, Engine as Wasm, InstanceAllocationStrategy, InstancePre, Linker, Memory,
    PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder, Trap,
};

use super::abi::{self, pack, unpack};
use super::limits::{
    self, CALL_DEADLINE_TICKS, DEADLINE_TICKS, EPOCH_TICK, KEEP_RESIDENT, MEMORY_CAP, OUTPUT_CAP,
    POOL_INSTANCES,
};
use super::registry::Registry;
use super::TargetingError;

/// What a store carries: its limits and, for the evaluator, what `mig.call` needs.
pub(crate) struct HostState {
    limits: StoreLimits,
    nested: Option<Nested>,
}

/// The context of an evaluator instance, for the functions it calls.
pub(crate) struct Nested {
    pub registry: Arc<Registry>,
    pub loader_json: Arc<str>,
    pub calls_left: u32,
    /// Answers already computed in this evaluation, by request: a plugin is a pure function
    /// of the loader and its arguments (it has no state, clock or randomness), so
    /// `rollout('wave-1', 10)` in ten manifests runs once.
    pub answers: HashMap<Vec<u8>, String>,
}

/// The wasmtime engine, the linker that offers `mig.call`, and the epoch ticker.
pub(crate) struct Runtime {
    pub wasm: Wasm,
    pub linker: Linker<HostState>,
    _ticker: Ticker,
}

impl Runtime {
    pub fn new() -> Result<Runtime, TargetingError> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(POOL_INSTANCES)
            .total_memories(POOL_INSTANCES)
            .total_tables(POOL_INSTANCES)
            .max_memory_size(MEMORY_CAP)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let wasm = Wasm::new(&config)
            .map_err(|e| TargetingError::Runtime(format!("creating the engine: {e}")))?;
        let mut linker = Linker::new(&wasm);
        linker
            .func_wrap(abi::IMPORT_MODULE, abi::IMPORT_CALL, host_call)
            .map_err(|e| TargetingError::Runtime(format!("defining mig.call: {e}")))?;
        let ticker = Ticker::start(wasm.clone())?;
        Ok(Runtime {
            wasm,
            linker,
            _ticker: ticker,
        })
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] so store deadlines fire; stops when
/// dropped (the channel closes).
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(wasm: Wasm) -> Result<Ticker, TargetingError> {
        let (stop, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("targeting-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(EPOCH_TICK) {
                    wasm.increment_epoch();
                }
            })
            .map_err(|e| TargetingError::Runtime(format!("starting the epoch thread: {e}")))?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why one instance failed, in words for the log and the error.
pub(crate) fn reason(e: &wasmtime::Error, fuel: u64) -> String {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => format!("ran out of fuel ({fuel} units)"),
        Some(Trap::Interrupt) => "exceeded its wall-clock deadline".into(),
        Some(Trap::StackOverflow) => "exhausted its stack".into(),
        Some(Trap::UnreachableCodeReached) => {
            "trapped: executed `unreachable` (a Rust guest panicked or failed to allocate)".into()
        }
        Some(t) => format!("trapped: {t}"),
        None => {
            let root = e.root_cause().to_string();
            if root.contains("forcing trap when growing memory") {
                format!(
                    "exceeded its memory cap of {} MiB ({root})",
                    MEMORY_CAP >> 20
                )
            } else {
                format!("{e}: {root}")
            }
        }
    }
}

/// A fresh store with every limit set.
fn store(
    wasm: &Wasm,
    fuel: u64,
    deadline_ticks: u64,
    nested: Option<Nested>,
) -> Result<Store<HostState>, wasmtime::Error> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(MEMORY_CAP)
        .instances(1)
        .memories(1)
        .tables(4)
        .table_elements(100_000)
        .trap_on_grow_failure(true)
        .build();
    let mut store = Store::new(wasm, HostState { limits, nested });
    store.limiter(|s| &mut s.limits);
    store.set_fuel(fuel)?;
    store.set_epoch_deadline(deadline_ticks);
    store.epoch_deadline_trap();
    Ok(store)
}

/// The guest's output at a packed pointer/length, bounds- and size-checked.
fn read_packed(
    memory: &Memory,
    store: impl wasmtime::AsContext,
    packed: i64,
) -> Result<Vec<u8>, String> {
    let (ptr, len) = unpack(packed);
    let (ptr, len) = (ptr as usize, len as usize);
    if len > OUTPUT_CAP {
        return Err(format!(
            "returned {len} bytes, over the {} KiB output cap",
            OUTPUT_CAP >> 10
        ));
    }
    memory
        .data(&store)
        .get(ptr..ptr.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            format!(
                "returned bytes {ptr}..{} outside its {}-byte memory",
                ptr.saturating_add(len),
                memory.data_size(&store)
            )
        })
}

/// Runs `mig_invoke(input)` in a fresh instance of `pre`; returns the output bytes or why
/// the instance failed.
pub(crate) fn invoke(
    wasm: &Wasm,
    pre: &InstancePre<HostState>,
    input: &[u8],
    fuel: u64,
    nested: Option<Nested>,
) -> Result<Vec<u8>, String> {
    invoke_metered(wasm, pre, input, fuel, DEADLINE_TICKS, nested).0
}

/// [`invoke`] with a given deadline, also returning the fuel the instance consumed.
fn invoke_metered(
    wasm: &Wasm,
    pre: &InstancePre<HostState>,
    input: &[u8],
    fuel: u64,
    deadline_ticks: u64,
    nested: Option<Nested>,
) -> (Result<Vec<u8>, String>, u64) {
    let mut store = match store(wasm, fuel, deadline_ticks, nested) {
        Ok(s) => s,
        Err(e) => return (Err(reason(&e, fuel)), 0),
    };
    let result = run_invoke(&mut store, pre, input, fuel);
    let used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    (result, used)
}

fn run_invoke(
    store: &mut Store<HostState>,
    pre: &InstancePre<HostState>,
    input: &[u8],
    fuel: u64,
) -> Result<Vec<u8>, String> {
    let fail = |e: wasmtime::Error| reason(&e, fuel);
    let instance = pre
        .instantiate(&mut *store)
        .map_err(|e| format!("cannot be instantiated: {}", reason(&e, fuel)))?;
    let memory = instance
        .get_memory(&mut *store, abi::EXPORT_MEMORY)
        .ok_or("exports no memory")?;
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut *store, abi::EXPORT_ALLOC)
        .map_err(fail)?;
    let run = instance
        .get_typed_func::<(i32, i32), i64>(&mut *store, abi::EXPORT_INVOKE)
        .map_err(fail)?;
    let len = i32::try_from(input.len()).map_err(|_| "input too large".to_string())?;
    let ptr = alloc.call(&mut *store, len).map_err(fail)?;
    memory
        .write(&mut *store, ptr as u32 as usize, input)
        .map_err(|_| format!("mig_alloc({len}) returned {ptr}, outside its memory"))?;
    let packed = run.call(&mut *store, (ptr, len)).map_err(fail)?;
    read_packed(&memory, &*store, packed)
}

/// Calls `mig_abi_version` and `mig_describe` in a fresh instance.
pub(crate) fn describe(
    wasm: &Wasm,
    pre: &InstancePre<HostState>,
) -> Result<(i32, Vec<u8>), String> {
    let fuel = limits::FUEL_PER_EVALUATION;
    let fail = |e: wasmtime::Error| reason(&e, fuel);
    let mut store = store(wasm, fuel, DEADLINE_TICKS, None).map_err(fail)?;
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| format!("cannot be instantiated: {}", reason(&e, fuel)))?;
    let memory = instance
        .get_memory(&mut store, abi::EXPORT_MEMORY)
        .ok_or("exports no memory")?;
    let version = instance
        .get_typed_func::<(), i32>(&mut store, abi::EXPORT_VERSION)
        .and_then(|f| f.call(&mut store, ()))
        .map_err(fail)?;
    if version != abi::ABI_VERSION {
        return Ok((version, Vec::new()));
    }
    let packed = instance
        .get_typed_func::<(), i64>(&mut store, abi::EXPORT_DESCRIBE)
        .and_then(|f| f.call(&mut store, ()))
        .map_err(fail)?;
    Ok((version, read_packed(&memory, &store, packed)?))
}

/// `mig.call(ptr, len) -> i64`: runs a function of another plugin for the evaluator.
/// Failures of the called plugin become an `{"error": …}` answer, never a trap of the
/// caller; only a caller that breaks the ABI itself (no memory, no `mig_alloc`) traps.
fn host_call(mut caller: Caller<'_, HostState>, ptr: i32, len: i32) -> wasmtime::Result<i64> {
    let memory = caller
        .get_export(abi::EXPORT_MEMORY)
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::format_err!("mig.call from a module without memory"))?;
    let answer = answer_call(&mut caller, &memory, ptr, len);
    let alloc = caller
        .get_export(abi::EXPORT_ALLOC)
        .and_then(|e| e.into_func())
        .ok_or_else(|| wasmtime::format_err!("mig.call from a module without mig_alloc"))?
        .typed::<i32, i32>(&caller)?;
    let bytes = answer.as_bytes();
    let n = i32::try_from(bytes.len())?;
    let at = alloc.call(&mut caller, n)?;
    memory.write(&mut caller, at as u32 as usize, bytes)?;
    Ok(pack(at as u32, bytes.len() as u32))
}

fn answer_call(caller: &mut Caller<'_, HostState>, memory: &Memory, ptr: i32, len: i32) -> String {
    let request = match read_packed(memory, &*caller, pack(ptr as u32, len as u32)) {
        Ok(r) => r,
        Err(e) => return abi::error_json(&format!("mig.call request {e}")),
    };
    let wasm = caller.engine().clone();
    let Some(nested) = caller.data_mut().nested.as_mut() else {
        return abi::error_json(
            "mig.call is only available to the evaluator (plugin calls nest one level)",
        );
    };
    if let Some(answer) = nested.answers.get(&request) {
        return answer.clone();
    }
    if nested.calls_left == 0 {
        return abi::error_json("too many plugin calls in one evaluation");
    }
    nested.calls_left -= 1;
    let (function, args) = match abi::parse_call_request(&request) {
        Ok(r) => r,
        Err(e) => return abi::error_json(&e),
    };
    let Some(plugin) = nested.registry.function(&function).cloned() else {
        return abi::error_json(&format!("no loaded plugin provides {function}()"));
    };
    let input = abi::call_input(&nested.loader_json, &function, &args);
    // A called function spends the caller's fuel: the whole evaluation, nested calls
    // included, stays within the caller's budget.
    let remaining = caller.get_fuel().unwrap_or(0);
    let fuel = remaining.min(limits::FUEL_PER_EVALUATION);
    // Its deadline is shorter than the caller's: a called function that stalls fails
    // alone, and the caller still has time to answer for its other expressions.
    let (result, used) = invoke_metered(
        &wasm,
        &plugin.pre,
        input.as_bytes(),
        fuel,
        CALL_DEADLINE_TICKS,
        None,
    );
    // Never fails: fuel is enabled on every store of this engine.
    let _ = caller.set_fuel(remaining.saturating_sub(used));
    let answer = match result.and_then(|out| abi::parse_call_output(&out)) {
        Ok(answer) => answer,
        Err(reason) => {
            eprintln!(
                "targeting: plugin {} failed in {function}(): {reason}",
                plugin.info.name
            );
            abi::error_json(&format!("plugin {} failed: {reason}", plugin.info.name))
        }
    };
    if let Some(nested) = caller.data_mut().nested.as_mut() {
        nested.answers.insert(request, answer.clone());
    }
    answer
}

/// A fresh store and instance of `pre`, dropped at once: the fixed cost of an evaluation.
pub(crate) fn instantiate_only(wasm: &Wasm, pre: &InstancePre<HostState>) -> Result<(), String> {
    let fuel = limits::FUEL_PER_EVALUATION;
    let mut store = store(wasm, fuel, DEADLINE_TICKS, None).map_err(|e| reason(&e, fuel))?;
    pre.instantiate(&mut store)
        .map(drop)
        .map_err(|e| reason(&e, fuel))
}
