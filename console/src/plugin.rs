//! Targeting plugins: `plugin upload NAME FILE`, `plugin list`, `plugin delete NAME`.

use crate::api::{encode, typed};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::table::{self, clean};
use base64::Engine;
use mig_protocol::admin::{NewPlugin, PluginRecord};
use std::io::Read;
use std::path::Path;

/// The largest plugin module uploaded (mig-api's targeting engine refuses larger ones).
pub const MAX_PLUGIN: u64 = 8 * 1024 * 1024;
/// Every WebAssembly module starts with these bytes.
const WASM_MAGIC: &[u8] = b"\0asm";

/// A plugin name, by mig-api's one rule, so a bad name fails before the upload.
fn check_name(name: &str) -> Result<()> {
    mig_protocol::PluginName::parse(name)
        .map(drop)
        .map_err(|e| Error::Usage(e.to_string()))
}

/// `plugin upload NAME FILE`.
pub fn upload(s: &mut Session, name: &str, file: &Path) -> Result<()> {
    check_name(name)?;
    let mut wasm = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_PLUGIN + 1).read_to_end(&mut wasm))
        .map_err(|e| Error::io("read plugin", file, e))?;
    if wasm.len() as u64 > MAX_PLUGIN {
        return Err(Error::TooLarge {
            what: file.display().to_string(),
            limit: MAX_PLUGIN,
        });
    }
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(Error::Usage(format!(
            "{} is not a WebAssembly module (build it with --target wasm32-unknown-unknown)",
            file.display()
        )));
    }
    let new = NewPlugin {
        name: name.to_string(),
        wasm: base64::engine::general_purpose::STANDARD.encode(&wasm),
    };
    let progress = s.ui.shows_progress("uploading the plugin");
    let v = s.api()?.upload("plugins", &new, progress)?;
    let rec: PluginRecord = typed(&v, "POST plugins")?;
    if s.ui.opts.json {
        s.ui.json(&v);
    } else {
        s.ui.say(format!(
            "Plugin '{}' uploaded: sha256 {}, {} bytes, functions: {}",
            clean(&rec.name),
            clean(&rec.sha256),
            rec.size,
            clean(&rec.functions.join(", "))
        ));
    }
    Ok(())
}

/// `plugin list`.
pub fn list(s: &mut Session) -> Result<()> {
    let v = s.api()?.get("plugins")?;
    let rows: Vec<PluginRecord> = typed(&v, "GET plugins")?;
    if s.ui.opts.json {
        s.ui.json(&v);
    } else {
        s.ui.say_raw(&table::plugins(&rows));
    }
    Ok(())
}

/// `plugin delete NAME`.
pub fn delete(s: &mut Session, name: &str) -> Result<()> {
    check_name(name)?;
    s.ui.confirm(&format!(
        "delete plugin '{name}'? Targets that call it stop matching."
    ))?;
    let v = s.api()?.delete(&format!("plugins/{}", encode(name)))?;
    if s.ui.opts.json {
        s.ui.json(&v);
    } else {
        s.ui.say(format!("Plugin '{name}' deleted"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_url_and_language_safe() {
        assert!(check_name("rollout").is_ok());
        assert!(check_name("my_plugin-2").is_ok());
        for bad in ["", "../x", "a b", "a/b", "Rollout", "-x", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
