//! Is the agent running? MIG's check is `<agent> -q pid`: exit 0 means running (docs/design.md §4.14).
//! After an install it is polled until the agent answers or the health timeout passes.

use crate::child;
use crate::error::{Error, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Pause between two probes after an install.
const RETRY: Duration = Duration::from_millis(500);

/// One probe; a probe that cannot run or times out counts as "not running".
pub fn agent_running(agent: &Path, probe_timeout: Duration) -> bool {
    child::run(agent, &["-q", "pid"], probe_timeout).is_ok_and(|s| s.success())
}

/// Probes until the agent answers or `within` has passed.
pub fn wait_healthy(agent: &Path, within: Duration, probe_timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if agent_running(agent, probe_timeout.min(left.max(RETRY))) {
            return Ok(());
        }
        if Instant::now() + RETRY > deadline {
            return Err(Error::Unhealthy(format!(
                "`{} -q pid` did not report a running agent within {} s",
                agent.display(),
                within.as_secs()
            )));
        }
        std::thread::sleep(RETRY);
    }
}
