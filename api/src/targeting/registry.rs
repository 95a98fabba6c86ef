//! The loaded plugins: an immutable snapshot (`Arc<Registry>`) that every evaluation takes
//! once, so a plugin uploaded or removed meanwhile never changes an evaluation halfway.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use wasmtime::InstancePre;

use super::limits::MAX_NAME_LEN;
use super::sandbox::HostState;
use super::PluginInfo;

/// A compiled, validated plugin.
pub(crate) struct Plugin {
    pub info: PluginInfo,
    /// The module with its imports resolved: instantiating it is all an evaluation does.
    pub pre: InstancePre<HostState>,
}

#[derive(Clone, Default)]
pub(crate) struct Registry {
    pub plugins: BTreeMap<String, Arc<Plugin>>,
    functions: HashMap<String, Arc<Plugin>>,
    pub evaluator: Option<Arc<Plugin>>,
}

impl Registry {
    pub fn function(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.functions.get(name)
    }

    /// This registry with `plugin` added (or replacing the one of the same name), or why
    /// not: a function it declares is already another plugin's.
    pub fn with(&self, plugin: Arc<Plugin>) -> Result<Registry, String> {
        let name = &plugin.info.name;
        for f in &plugin.info.functions {
            if let Some(owner) = self.functions.get(f) {
                if owner.info.name != *name {
                    return Err(format!(
                        "function {f}() is already provided by plugin {}",
                        owner.info.name
                    ));
                }
            }
        }
        let mut next = self.clone();
        next.plugins.insert(name.clone(), plugin);
        next.reindex();
        Ok(next)
    }

    pub fn without(&self, name: &str) -> Registry {
        let mut next = self.clone();
        next.plugins.remove(name);
        next.reindex();
        next
    }

    fn reindex(&mut self) {
        self.functions = self
            .plugins
            .values()
            .flat_map(|p| {
                p.info
                    .functions
                    .iter()
                    .map(move |f| (f.clone(), Arc::clone(p)))
            })
            .collect();
    }
}

/// Plugin names: what an administrator types and the URL carries (mig-protocol's one rule).
pub(crate) fn check_plugin_name(name: &str) -> Result<(), String> {
    mig_protocol::PluginName::parse(name)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Words of the language a function cannot take (keywords and columns).
const NOT_FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "null",
    "true",
    "false",
    "like",
    "ilike",
    "unknown",
    "env",
    "tags",
    "name",
    "loadername",
    "attributes",
    "loaders",
    "between",
    "similar",
    "escape",
    "case",
    "when",
    "select",
    "exists",
    "any",
    "all",
    "some",
    "cast",
    "collate",
    "isnull",
    "notnull",
    "array",
    "overlaps",
];

/// Function names: lower-case identifiers the parser reads without quotes.
pub(crate) fn check_function_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !NOT_FUNCTIONS.contains(&name);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "function name {name:?} must be 1 to {MAX_NAME_LEN} of a-z, 0-9 and '_', start with a letter, and not be a keyword or column"
        ))
    }
}
