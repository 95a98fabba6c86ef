//! [`Engine`]: the plugins, validation of expressions and their evaluation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use sha2::{Digest, Sha256};
use wasmtime::Module;

use super::abi::{self, ExprResult, LoaderJson, Stop};
use super::builtin::{is_builtin, BUILTIN};
use super::limits::{
    self, CALLS_PER_EXPRESSION, FUEL_PER_EVALUATION, MAX_EXPRESSION_LEN, MAX_PLUGIN_SIZE,
};
use super::registry::{check_function_name, check_plugin_name, Plugin, Registry};
use super::sandbox::{self, Nested, Runtime};
use super::{EngineStats, LoaderFacts, PluginInfo, TargetingError};

/// The targeting engine. `Send + Sync`: the API shares one in an `Arc` across threads.
pub struct Engine {
    runtime: Runtime,
    /// Copy-on-write: readers clone the `Arc` and never hold the lock while running wasm.
    registry: RwLock<Arc<Registry>>,
    /// Compiled modules by SHA-256, so the same bytes are compiled once.
    modules: Mutex<HashMap<String, Module>>,
    /// Each expression's compiled form by its source (`None`: sent as source).
    compiled: Mutex<HashMap<Arc<str>, Option<Arc<str>>>>,
    /// Whether compiled forms are sent at all (off only to measure what they save).
    compile: bool,
    evaluations: AtomicU64,
    failures: AtomicU64,
}

const EVALUATOR: &str = "expr";

/// What [`Engine::select_expecting`] decided.
#[derive(Debug)]
pub enum Selection {
    /// The expectation is not true (`Some`: why it could not be evaluated); no target was.
    Refused(Option<TargetingError>),
    /// The manifest selected, if any target matched.
    Selected(Option<u64>),
}

/// Distinct expressions whose compiled forms are kept (each at most a few times its source,
/// itself at most `MAX_EXPRESSION_LEN`).
const MAX_COMPILED: usize = 16_384;

impl Engine {
    /// Sets up the sandbox and compiles the built-in plugins (`expr`, `rollout`, `semver`).
    pub fn new() -> Result<Engine, TargetingError> {
        Self::build(true)
    }

    /// An engine that sends every expression as source, parsed on every evaluation: the
    /// baseline `api/benches/targeting.rs` compares compiled forms against.
    pub fn sending_sources() -> Result<Engine, TargetingError> {
        Self::build(false)
    }

    fn build(compile: bool) -> Result<Engine, TargetingError> {
        let engine = Engine {
            runtime: Runtime::new()?,
            registry: RwLock::new(Arc::new(Registry::default())),
            modules: Mutex::new(HashMap::new()),
            compiled: Mutex::new(HashMap::new()),
            compile,
            evaluations: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        };
        for (name, wasm) in BUILTIN {
            engine
                .install(name, wasm, true)
                .map_err(|e| TargetingError::Runtime(format!("built-in plugin {name}: {e}")))?;
        }
        Ok(engine)
    }

    /// Validates `wasm` (size, WebAssembly, ABI version, exports, no import but `mig.call`,
    /// a sane description, no clash with other plugins' functions), compiles it once and
    /// makes its functions available. A plugin of the same name is replaced; built-in names
    /// are refused.
    pub fn load_plugin(&self, name: &str, wasm: &[u8]) -> Result<PluginInfo, TargetingError> {
        if is_builtin(name) {
            return Err(TargetingError::Builtin(name.to_string()));
        }
        check_plugin_name(name).map_err(TargetingError::Invalid)?;
        self.install(name, wasm, false)
    }

    fn install(
        &self,
        name: &str,
        wasm: &[u8],
        builtin: bool,
    ) -> Result<PluginInfo, TargetingError> {
        let invalid = |m: String| TargetingError::Invalid(format!("plugin {name:?} refused: {m}"));
        if wasm.len() > MAX_PLUGIN_SIZE {
            return Err(invalid(format!(
                "{} bytes is over the {} MiB limit",
                wasm.len(),
                MAX_PLUGIN_SIZE >> 20
            )));
        }
        if !wasm.starts_with(b"\0asm") {
            return Err(invalid(
                "not a WebAssembly module (no \\0asm header)".into(),
            ));
        }
        let sha256 = mig_protocol::sha256::hex(&Sha256::digest(wasm));
        let module = self.compile(&sha256, wasm).map_err(invalid)?;
        abi::check_module(&module).map_err(invalid)?;
        let pre = self
            .runtime
            .linker
            .instantiate_pre(&module)
            .map_err(|e| invalid(format!("imports cannot be resolved: {e}")))?;
        let (version, described) = sandbox::describe(&self.runtime.wasm, &pre)
            .map_err(|r| invalid(format!("describing itself {r}")))?;
        if version != abi::ABI_VERSION {
            return Err(invalid(format!(
                "speaks ABI version {version}, this API speaks {}",
                abi::ABI_VERSION
            )));
        }
        let description = abi::parse_describe(&described).map_err(invalid)?;
        let is_evaluator = builtin && name == EVALUATOR;
        if description.evaluator != is_evaluator {
            return Err(invalid(if is_evaluator {
                "the built-in evaluator does not declare itself the evaluator".into()
            } else {
                "only the built-in expr plugin may be the evaluator".into()
            }));
        }
        let mut functions = description.functions;
        for f in &functions {
            check_function_name(f).map_err(invalid)?;
        }
        let declared = functions.len();
        functions.sort();
        functions.dedup();
        if functions.len() != declared {
            return Err(invalid("declares a function twice".into()));
        }
        if !is_evaluator && functions.is_empty() {
            return Err(invalid("declares no functions".into()));
        }
        let info = PluginInfo {
            name: name.to_string(),
            sha256,
            size: wasm.len() as u64,
            functions,
            builtin,
        };
        let plugin = Arc::new(Plugin {
            info: info.clone(),
            pre,
        });
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next = registry.with(Arc::clone(&plugin)).map_err(invalid)?;
        if is_evaluator {
            next.evaluator = Some(plugin);
        }
        *registry = Arc::new(next);
        self.forget_unused_modules(&registry);
        Ok(info)
    }

    fn compile(&self, sha256: &str, wasm: &[u8]) -> Result<Module, String> {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = modules.get(sha256) {
            return Ok(m.clone());
        }
        let module = Module::new(&self.runtime.wasm, wasm)
            .map_err(|e| format!("not a valid WebAssembly module: {e}"))?;
        modules.insert(sha256.to_string(), module.clone());
        Ok(module)
    }

    fn forget_unused_modules(&self, registry: &Registry) {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        modules.retain(|sha, _| registry.plugins.values().any(|p| p.info.sha256 == *sha));
    }

    /// Removes an uploaded plugin; expressions that call its functions then fail to
    /// evaluate (and no longer validate).
    pub fn remove_plugin(&self, name: &str) -> Result<(), TargetingError> {
        if is_builtin(name) {
            return Err(TargetingError::Builtin(name.to_string()));
        }
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !registry.plugins.contains_key(name) {
            return Err(TargetingError::UnknownPlugin(name.to_string()));
        }
        *registry = Arc::new(registry.without(name));
        self.forget_unused_modules(&registry);
        Ok(())
    }

    /// Every loaded plugin, built-in ones included, by name.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.snapshot()
            .plugins
            .values()
            .map(|p| p.info.clone())
            .collect()
    }

    fn snapshot(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn evaluator(registry: &Registry) -> Result<&Arc<Plugin>, TargetingError> {
        registry
            .evaluator
            .as_ref()
            .ok_or_else(|| TargetingError::Runtime("the expression evaluator is not loaded".into()))
    }

    /// Refuses an expression that does not parse or type-check (with the parser's position
    /// and message) or that calls a function no plugin provides.
    pub fn validate(&self, expr: &str) -> Result<(), TargetingError> {
        check_sendable(expr)?;
        let registry = self.snapshot();
        let checked = self.check(&registry, expr)?;
        self.remember(expr, checked.compiled.as_deref());
        match checked
            .functions
            .into_iter()
            .find(|f| registry.function(f).is_none())
        {
            Some(unknown) => Err(TargetingError::UnknownFunction(unknown)),
            None => Ok(()),
        }
    }

    /// The evaluator's `check` of one expression, in a fresh instance.
    fn check(&self, registry: &Registry, expr: &str) -> Result<abi::Checked, TargetingError> {
        let evaluator = Self::evaluator(registry)?;
        let plugin_failed = |reason: String| {
            eprintln!("targeting: plugin {EVALUATOR} failed checking an expression: {reason}");
            TargetingError::Plugin {
                plugin: EVALUATOR.into(),
                reason,
            }
        };
        let out = sandbox::invoke(
            &self.runtime.wasm,
            &evaluator.pre,
            abi::check_input(expr).as_bytes(),
            FUEL_PER_EVALUATION,
            None,
        )
        .map_err(plugin_failed)?;
        abi::parse_check_output(&out)
            .map_err(plugin_failed)?
            .map_err(|(position, message)| TargetingError::Parse { position, message })
    }

    /// Keeps an expression's compiled form (`None`: it has none, send the source), while there
    /// is room: past [`MAX_COMPILED`] expressions are sent as source, as before compiled
    /// forms, rather than evicting and compiling again.
    fn remember(&self, expr: &str, compiled: Option<&str>) {
        let mut forms = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if forms.len() < MAX_COMPILED {
            forms.insert(expr.into(), compiled.map(Arc::from));
        }
    }

    /// What is sent to the evaluator for each expression: its compiled form, made by `check`
    /// the first time the expression is seen (the evaluator is built in and never replaced,
    /// so a form never goes stale), or the source when it has none.
    fn forms(&self, registry: &Registry, exprs: &[&str]) -> Vec<Arc<str>> {
        if !self.compile {
            return exprs.iter().map(|e| Arc::from(*e)).collect();
        }
        let known: Vec<Option<Option<Arc<str>>>> = {
            let forms = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
            exprs.iter().map(|e| forms.get(*e).cloned()).collect()
        };
        exprs
            .iter()
            .zip(known)
            .map(|(e, known)| {
                let compiled = match known {
                    Some(c) => c,
                    None => {
                        let c = match self.check(registry, e) {
                            Ok(checked) => checked.compiled.map(Arc::from),
                            // A parse error is the evaluator's to report, from the source.
                            Err(TargetingError::Parse { .. }) => None,
                            // The check itself failed: try again next time.
                            Err(_) => return Arc::from(*e),
                        };
                        self.remember(e, c.as_deref());
                        c
                    }
                };
                compiled.unwrap_or_else(|| Arc::from(*e))
            })
            .collect()
    }

    /// Evaluates every expression for `loader`, all in one fresh evaluator instance. A NULL
    /// (unknown) result is `Ok(false)`.
    pub fn evaluate(
        &self,
        loader: &LoaderFacts,
        exprs: &[&str],
    ) -> Vec<Result<bool, TargetingError>> {
        self.run(loader, exprs, Stop::NEVER)
    }

    /// One expression: `Ok(true)` only when it is true for `loader`.
    pub fn matches(&self, loader: &LoaderFacts, expr: &str) -> Result<bool, TargetingError> {
        self.run(loader, &[expr], Stop::NEVER)
            .pop()
            .unwrap_or_else(|| Err(TargetingError::Runtime("no result".into())))
    }

    /// The first candidate (newest first) whose target is true for `loader`. A candidate
    /// whose evaluation fails is logged with its manifest id and does not match; the
    /// others are still considered.
    pub fn select(&self, loader: &LoaderFacts, candidates: &[(u64, &str)]) -> Option<u64> {
        match self.select_expecting(loader, None, candidates) {
            Selection::Selected(id) => id,
            Selection::Refused(_) => None,
        }
    }

    /// [`Engine::select`] after checking `expect` (a loader's expectenv), both in one evaluator
    /// instance: when `expect` is not true, no target is evaluated.
    pub fn select_expecting(
        &self,
        loader: &LoaderFacts,
        expect: Option<&str>,
        candidates: &[(u64, &str)],
    ) -> Selection {
        let mut exprs: Vec<&str> = Vec::with_capacity(candidates.len() + 1);
        if let Some(e) = expect {
            // The gate must reach the evaluator to be one; one that cannot fails here.
            if let Err(err) = check_sendable(e) {
                return Selection::Refused(Some(err));
            }
            exprs.push(e);
        }
        let gates = exprs.len();
        exprs.extend(candidates.iter().map(|(_, e)| *e));
        let mut results = self
            .run(
                loader,
                &exprs,
                Stop {
                    first_match: true,
                    gates,
                },
            )
            .into_iter();
        if gates == 1 {
            match results.next() {
                Some(Ok(true)) => {}
                Some(Ok(false)) => return Selection::Refused(None),
                Some(Err(e)) => return Selection::Refused(Some(e)),
                None => {
                    return Selection::Refused(Some(TargetingError::Runtime("no result".into())))
                }
            }
        }
        for ((id, _), result) in candidates.iter().zip(results) {
            match result {
                Ok(true) => return Selection::Selected(Some(*id)),
                Ok(false) => {}
                Err(e) => eprintln!(
                    "targeting: manifest {id} does not match loader {:?}: {e}",
                    loader.loadername
                ),
            }
        }
        Selection::Selected(None)
    }

    /// Instantiates `plugin` in a fresh store with every limit and drops it: the fixed cost
    /// each evaluation pays (the benchmark measures it).
    pub fn instantiate_once(&self, plugin: &str) -> Result<(), TargetingError> {
        let registry = self.snapshot();
        let p = registry
            .plugins
            .get(plugin)
            .ok_or_else(|| TargetingError::UnknownPlugin(plugin.to_string()))?;
        sandbox::instantiate_only(&self.runtime.wasm, &p.pre).map_err(|reason| {
            TargetingError::Plugin {
                plugin: plugin.to_string(),
                reason,
            }
        })
    }

    /// Counters since the engine started.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            evaluations: self.evaluations.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            compiled: self
                .compiled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
        }
    }

    /// Evaluates in one instance; if that instance fails as a whole (the evaluator trapped,
    /// ran out of fuel, answered garbage), evaluates each expression in its own instance so
    /// only the one that causes it fails. Results end where `stop` says.
    fn run(
        &self,
        loader: &LoaderFacts,
        exprs: &[&str],
        stop: Stop,
    ) -> Vec<Result<bool, TargetingError>> {
        let registry = self.snapshot();
        let results = match Self::evaluator(&registry) {
            Err(e) => exprs.iter().map(|_| Err(e.clone())).collect(),
            Ok(evaluator) => {
                let loader_json: Arc<str> = serde_json::to_string(&LoaderJson {
                    name: &loader.name,
                    loadername: &loader.loadername,
                    env: &loader.env,
                    tags: &loader.tags,
                    attributes: &loader.attributes,
                })
                .unwrap_or_else(|_| "{}".into())
                .into();
                self.batch(&registry, evaluator, &loader_json, exprs, stop)
            }
        };
        let failures = results.iter().filter(|r| r.is_err()).count();
        self.evaluations
            .fetch_add(results.len() as u64, Ordering::Relaxed);
        self.failures.fetch_add(failures as u64, Ordering::Relaxed);
        results
    }

    fn batch(
        &self,
        registry: &Arc<Registry>,
        evaluator: &Plugin,
        loader_json: &Arc<str>,
        exprs: &[&str],
        stop: Stop,
    ) -> Vec<Result<bool, TargetingError>> {
        // Over-long expressions fail alone; the rest go to the evaluator, compiled.
        let sendable: Vec<&str> = exprs
            .iter()
            .copied()
            .filter(|e| check_sendable(e).is_ok())
            .collect();
        let forms = self.forms(registry, &sendable);
        let sendable: Vec<&str> = forms.iter().map(|f| &**f).collect();
        let answered = self.invoke_eval(registry, evaluator, loader_json, &sendable, stop);
        let answered = match answered {
            Ok(r) => r
                .into_iter()
                .map(|r| r.map_err(TargetingError::Evaluation))
                .collect(),
            Err(reason) if sendable.len() > 1 => {
                eprintln!(
                    "targeting: plugin {EVALUATOR} failed on a batch of {} expressions ({reason}); evaluating them one by one",
                    sendable.len()
                );
                let mut one_by_one = Vec::new();
                for (i, e) in sendable.iter().enumerate() {
                    let r = self.invoke_eval(registry, evaluator, loader_json, &[e], Stop::NEVER);
                    let r = match r {
                        Ok(mut v) => v
                            .pop()
                            .unwrap_or(Ok(None))
                            .map_err(TargetingError::Evaluation),
                        Err(reason) => {
                            eprintln!("targeting: plugin {EVALUATOR} failed on {e:?}: {reason}");
                            Err(TargetingError::Plugin {
                                plugin: EVALUATOR.into(),
                                reason,
                            })
                        }
                    };
                    let hit = matches!(r, Ok(Some(true)));
                    one_by_one.push(r);
                    if stop.after(i, hit) {
                        break;
                    }
                }
                one_by_one
            }
            Err(reason) => {
                eprintln!("targeting: plugin {EVALUATOR} failed: {reason}");
                vec![Err(TargetingError::Plugin {
                    plugin: EVALUATOR.into(),
                    reason,
                })]
            }
        };
        // Put the length failures back in place, stopping where the evaluator stopped.
        let mut answered = answered.into_iter();
        let mut out = Vec::with_capacity(exprs.len());
        for e in exprs {
            match check_sendable(e) {
                Err(err) => out.push(Err(err)),
                Ok(()) => match answered.next() {
                    Some(r) => out.push(r.map(|b| b == Some(true))),
                    None => break,
                },
            }
        }
        out
    }

    fn invoke_eval(
        &self,
        registry: &Arc<Registry>,
        evaluator: &Plugin,
        loader_json: &Arc<str>,
        exprs: &[&str],
        stop: Stop,
    ) -> Result<Vec<ExprResult>, String> {
        if exprs.is_empty() {
            return Ok(Vec::new());
        }
        let nested = Nested {
            registry: Arc::clone(registry),
            loader_json: Arc::clone(loader_json),
            calls_left: CALLS_PER_EXPRESSION
                .saturating_mul(u32::try_from(exprs.len()).unwrap_or(u32::MAX)),
            answers: HashMap::new(),
        };
        let input = abi::eval_input(loader_json, exprs, stop);
        let out = sandbox::invoke(
            &self.runtime.wasm,
            &evaluator.pre,
            input.as_bytes(),
            limits::batch_fuel(exprs.len()),
            Some(nested),
        )?;
        abi::parse_eval_output(&out, exprs.len(), stop)
    }
}

/// Refuses an expression too long to send, or one that begins as a compiled form would (no
/// valid source does; only the engine sends compiled forms).
fn check_sendable(expr: &str) -> Result<(), TargetingError> {
    if expr.starts_with(abi::COMPILED_MARKER) {
        return Err(TargetingError::Invalid(
            "an expression cannot begin with a control character (U+0001)".into(),
        ));
    }
    if expr.len() > MAX_EXPRESSION_LEN {
        return Err(TargetingError::Invalid(format!(
            "expression of {} bytes is over the {} KiB limit",
            expr.len(),
            MAX_EXPRESSION_LEN >> 10
        )));
    }
    Ok(())
}
