//! The stand-in `mig-agent`: a shell script that appends `<version> <args>` to `<dir>/calls`.
//! `-u` starts it (writes `<dir>/running`, unless it is unhealthy), `-q shutdown` stops it,
//! `-q pid` succeeds only while it runs: MIG's triggers and liveness probe, observable by a test.

use std::path::Path;

/// The script's bytes, recording into `dir`.
pub fn agent_script(dir: &Path, version: &str, healthy: bool) -> Vec<u8> {
    let start = if healthy {
        format!("echo {version} > \"$d/running\"")
    } else {
        "true".to_string()
    };
    format!(
        "#!/bin/sh\n# stand-in mig-agent {version}\nd='{}'\necho \"{version} $*\" >> \"$d/calls\"\ncase \"$*\" in\n  '-u') {start}; exit 0 ;;\n  '-q shutdown') rm -f \"$d/running\"; exit 0 ;;\n  '-q pid') [ -f \"$d/running\" ] && exit 0; exit 1 ;;\nesac\nexit 2\n",
        dir.display()
    )
    .into_bytes()
}

/// The calls the stand-in agents recorded in `dir`, in order.
pub fn agent_calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The version of the agent running now, if any.
pub fn running_agent(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("running"))
        .ok()
        .map(|s| s.trim().to_string())
}
