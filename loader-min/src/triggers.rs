//! MIG's triggers after a change (docs/design.md §4.14): `<agent> -q shutdown` (failure ignored),
//! then `<agent> -u` (must exit 0).

use crate::child::{self, describe};
use crate::error::{Error, Result};
use crate::log;
use std::path::Path;
use std::time::Duration;

/// MIG's triggers: stop the running agent (failure ignored), then `-u` installs and starts the
/// agent found at `agent` (which must succeed).
pub fn run_triggers(agent: &Path, timeout: Duration) -> Result<()> {
    match child::run(agent, &["-q", "shutdown"], timeout) {
        Ok(s) if s.success() => log::step("terminateAgent() -> done"),
        Ok(s) => log::step(format!("terminateAgent() -> {s} (ignored)")),
        Err(e) => log::step(format!("terminateAgent() -> {e} (ignored)")),
    }
    let status = child::run(agent, &["-u"], timeout)?;
    if !status.success() {
        return Err(Error::Trigger {
            command: describe(agent, &["-u"]),
            reason: status.to_string(),
        });
    }
    log::step("agentServices() -> done");
    Ok(())
}
