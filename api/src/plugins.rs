//! Targeting plugins uploaded by administrators: stored in the database, loaded into the
//! engine at start, on upload, and when another replica changed them (`sync`) (docs/design.md §5.4: compiled once, pinned by sha256).

use crate::app::App;
use crate::db::OptionalExtension;
use crate::error::{Error, Result};
use crate::logging;
use crate::params;
use crate::targeting::PluginInfo;
use mig_protocol::admin::PluginRecord;
use mig_protocol::time::Timestamp;
use std::collections::HashMap;

/// A plugin name from a request, by mig-protocol's one rule.
fn check_name(name: &str) -> Result<()> {
    mig_protocol::PluginName::parse(name)
        .map(drop)
        .map_err(|e| Error::invalid("bad_plugin", e.to_string()))
}

/// Makes the engine run exactly the stored plugins: loads what another replica uploaded (or
/// what is stored at start), drops what another replica deleted. A plugin that no longer loads
/// is logged loudly, once per stored version, and left out: targets that call it stop
/// matching, the API keeps serving. Serialised with uploads and deletes on this replica, so
/// it never sees one half done.
pub fn sync(app: &App) -> Result<()> {
    let _one = app
        .plugin_sync
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    sync_locked(app)
}

fn sync_locked(app: &App) -> Result<()> {
    let stored: HashMap<String, String> = app.db.with(|c| {
        c.query_map("SELECT name, sha256 FROM plugins", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map(|rows| rows.into_iter().collect())
        .map_err(Error::db("listing plugins"))
    })?;
    let running: HashMap<String, String> = app
        .engine
        .plugins()
        .into_iter()
        .filter(|p| !p.builtin)
        .map(|p| (p.name, p.sha256))
        .collect();
    for (name, sha) in &running {
        if stored.get(name) != Some(sha) {
            app.engine
                .remove_plugin(name)
                .map_err(|e| Error::Internal(format!("unloading plugin {name:?}: {e}")))?;
            logging::event("info", "plugin_unloaded", &[("name", name)]);
        }
    }
    let mut failed = app
        .plugin_failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (name, sha) in &stored {
        let version = format!("{name}@{sha}");
        if running.get(name) == Some(sha) || failed.contains(&version) {
            continue;
        }
        let wasm: Vec<u8> = app.db.with(|c| {
            c.query_row(
                "SELECT wasm FROM plugins WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .map_err(Error::db("reading a plugin"))
        })?;
        match app.engine.load_plugin(name, &wasm) {
            Ok(info) => logging::event(
                "info",
                "plugin_loaded",
                &[("name", name), ("sha256", &info.sha256)],
            ),
            Err(e) => {
                logging::event(
                    "error",
                    "plugin_load_failed",
                    &[("name", name), ("error", &e)],
                );
                failed.insert(version);
            }
        }
    }
    Ok(())
}

fn created_times(app: &App) -> Result<HashMap<String, Timestamp>> {
    app.db.with(|c| {
        let mut st = c
            .prepare("SELECT name, created FROM plugins")
            .map_err(Error::db("listing plugins"))?;
        st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Timestamp(r.get::<_, i64>(1)? as u64),
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(Error::db("listing plugins"))
    })
}

fn record(info: PluginInfo, created: Timestamp) -> PluginRecord {
    PluginRecord {
        name: info.name,
        sha256: info.sha256,
        size: info.size,
        functions: info.functions,
        builtin: info.builtin,
        created,
    }
}

/// Every plugin the engine runs; built-in ones carry the server's start time.
pub fn list(app: &App) -> Result<Vec<PluginRecord>> {
    let created = created_times(app)?;
    Ok(app
        .engine
        .plugins()
        .into_iter()
        .map(|p| {
            let t = created.get(&p.name).copied().unwrap_or(app.started);
            record(p, t)
        })
        .collect())
}

/// Compiles and validates a plugin, then stores it.
pub fn upload(app: &App, name: &str, wasm: &[u8]) -> Result<PluginRecord> {
    check_name(name)?;
    let _one = app
        .plugin_sync
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let exists = app.db.with(|c| {
        c.query_row(
            "SELECT 1 FROM plugins WHERE name = ?1",
            params![name],
            |_| Ok(()),
        )
        .optional()
        .map_err(Error::db("reading plugins"))
    })?;
    if exists.is_some() || app.engine.plugins().iter().any(|p| p.name == name) {
        return Err(Error::Conflict(format!(
            "a plugin named {name:?} exists: delete it first"
        )));
    }
    let info = app
        .engine
        .load_plugin(name, wasm)
        .map_err(|e| Error::invalid("bad_plugin", format!("plugin {name:?}: {e}")))?;
    let now = Timestamp::now();
    let stored = app.db.with(|c| {
        c.execute(
            "INSERT INTO plugins (name, sha256, wasm, created) VALUES (?1, ?2, ?3, ?4)",
            params![name, info.sha256, wasm, now.0 as i64],
        )
        .map_err(Error::db("storing a plugin"))
    });
    if let Err(e) = stored {
        // The database is the truth at the next start: do not run what is not stored.
        let _ = app.engine.remove_plugin(name);
        return Err(e);
    }
    Ok(record(info, now))
}

/// Removes an uploaded plugin (built-in ones cannot be removed).
pub fn remove(app: &App, name: &str) -> Result<()> {
    check_name(name)?;
    let _one = app
        .plugin_sync
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let n = app.db.with(|c| {
        c.execute("DELETE FROM plugins WHERE name = ?1", params![name])
            .map_err(Error::db("removing a plugin"))
    })?;
    if n == 0 {
        return if app
            .engine
            .plugins()
            .iter()
            .any(|p| p.name == name && p.builtin)
        {
            Err(Error::Conflict(format!(
                "plugin {name:?} is built in and cannot be removed"
            )))
        } else {
            Err(Error::NotFound(format!("plugin {name:?} does not exist")))
        };
    }
    // A stored plugin that failed to load at start is in the database only.
    if !app.engine.plugins().iter().any(|p| p.name == name) {
        return Ok(());
    }
    app.engine.remove_plugin(name).map_err(|e| {
        Error::Internal(format!(
            "plugin {name:?} removed from the database but not the engine: {e}"
        ))
    })
}
