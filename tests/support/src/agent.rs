//! The stand-in `mig-agent`: a shell script that appends `<version> <args>` to `<dir>/calls`.
//! `-u` starts it (writes `<dir>/running`, unless it is unhealthy), `-q shutdown` stops it,
//! `-q pid` succeeds only while it runs: MIG's triggers and liveness probe, observable by a test.
//! For a Windows loader under test (`targets::chosen`) it is the same behaviour as a program,
//! `tests/stand-in-agent` built for that target.

use crate::targets;
use std::path::Path;

/// The stand-in agent's bytes, recording into `dir`: for the loader under test's OS.
pub fn agent_script(dir: &Path, version: &str, healthy: bool) -> Vec<u8> {
    match targets::chosen() {
        Some(t) if t.go_os == "windows" => agent_program(&t, dir, version, healthy),
        _ => shell_script(dir, version, healthy),
    }
}

/// `tests/stand-in-agent` built for `t`, configured by what follows its marker (see its
/// main.rs). `dir` is given as wine sees it: the host's `/` is drive `Z:`.
fn agent_program(t: &targets::Target, dir: &Path, version: &str, healthy: bool) -> Vec<u8> {
    let exe = targets::debug_build(t, "stand-in-agent", "stand-in-agent");
    let mut bytes = std::fs::read(&exe).unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    bytes.extend_from_slice(
        format!(
            "\n#mig-stand-in-agent\n{version}\nZ:{}\n{}\n",
            dir.display(),
            u8::from(healthy)
        )
        .as_bytes(),
    );
    bytes
}

/// The shell script, recording into `dir`.
fn shell_script(dir: &Path, version: &str, healthy: bool) -> Vec<u8> {
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
