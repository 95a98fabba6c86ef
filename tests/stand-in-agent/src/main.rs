//! The stand-in `mig-agent` of mig-test-support's `agent` module, as a program: the shell script's
//! behaviour for a target that has no `/bin/sh` (Windows, run under wine).
//!
//! Its configuration is appended to its own executable (a PE file runs with trailing data):
//! [`MARKER`], then `<version>\n<dir>\n<healthy: 1 or 0>\n`. So each version is a different file
//! with a different hash, as the script versions are. It appends `<version> <args>` to
//! `<dir>/calls`; `-u` starts it (writes `<dir>/running`, unless it is unhealthy), `-q shutdown`
//! stops it, `-q pid` succeeds only while it runs.

use std::io::Write;
use std::process::ExitCode;

/// Where the configuration starts, counted from the end of the file.
const MARKER: &[u8] = b"\n#mig-stand-in-agent\n";

struct Config {
    version: String,
    dir: std::path::PathBuf,
    healthy: bool,
}

fn config() -> Result<Config, String> {
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let bytes = std::fs::read(&me).map_err(|e| format!("read {}: {e}", me.display()))?;
    let at = bytes
        .windows(MARKER.len())
        .rposition(|w| w == MARKER)
        .ok_or_else(|| format!("{} carries no configuration", me.display()))?;
    let text = String::from_utf8_lossy(&bytes[at + MARKER.len()..]).into_owned();
    let mut lines = text.lines();
    let (Some(version), Some(dir), Some(healthy)) = (lines.next(), lines.next(), lines.next())
    else {
        return Err(format!("{}: configuration is incomplete", me.display()));
    };
    Ok(Config {
        version: version.to_string(),
        dir: dir.into(),
        healthy: healthy == "1",
    })
}

fn main() -> ExitCode {
    let c = match config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stand-in agent: {e}");
            return ExitCode::from(3);
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let joined = args.join(" ");
    let logged = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(c.dir.join("calls"))
        .and_then(|mut f| writeln!(f, "{} {joined}", c.version));
    if let Err(e) = logged {
        eprintln!("stand-in agent: {}: {e}", c.dir.display());
        return ExitCode::from(3);
    }
    let running = c.dir.join("running");
    match joined.as_str() {
        "-u" => {
            if c.healthy && std::fs::write(&running, format!("{}\n", c.version)).is_err() {
                return ExitCode::from(3);
            }
            ExitCode::SUCCESS
        }
        "-q shutdown" => {
            let _ = std::fs::remove_file(&running);
            ExitCode::SUCCESS
        }
        "-q pid" if running.exists() => ExitCode::SUCCESS,
        "-q pid" => ExitCode::FAILURE,
        _ => ExitCode::from(2),
    }
}
