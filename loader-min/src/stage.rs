//! Stage: fetch every changed file next to its target, all or nothing (docs/design.md §4.10,
//! §4.17). A staged run-time configuration is parsed before anything is swapped, so a signed but
//! unusable one cannot stop every later run.

use crate::compare::Change;
use crate::config::{RuntimeConfig, Settings};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::{fetch, log};
use mig_http::Client;
use mig_protocol::dictionary::DictName;
use mig_protocol::loader::LoaderKey;

/// Fetches and verifies every change; on any failure nothing staged is left behind.
pub fn stage(
    api: &Client,
    key: &LoaderKey,
    layout: &Layout,
    changes: &[Change],
    settings: &Settings,
) -> Result<()> {
    let limits = &settings.limits;
    let staged = (|| {
        for c in changes {
            let staged = layout.staged(c.name)?;
            fetch::stage(api, key, &c.entry, &staged, c.name.mode(), limits)?;
        }
        if changes.iter().any(|c| c.name == DictName::LoaderConfig) {
            let staged = layout.staged(DictName::LoaderConfig)?;
            RuntimeConfig::load(&staged, limits.runtime_config)
                .and_then(|rt| rt.check_usable(&settings.build))
                .map_err(|e| {
                    Error::Config(format!(
                        "the manifest's loaderconfig is not usable, not installing it: {e}"
                    ))
                })?;
        }
        log::step(format!("{} file(s) staged and verified", changes.len()));
        Ok(())
    })();
    if staged.is_err() {
        discard(layout, changes);
    }
    staged
}

/// Removes whatever was staged for `changes`.
pub fn discard(layout: &Layout, changes: &[Change]) {
    for c in changes {
        if let Ok(p) = layout.staged(c.name) {
            let _ = std::fs::remove_file(p);
        }
    }
}
