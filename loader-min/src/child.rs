//! Child processes with deadlines: the agent's triggers and probes, and discovery commands. A
//! child gets no input, a PATH that includes the system directories (as MIG's did), and is killed
//! when its time is up.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often a running child is polled.
const POLL: Duration = Duration::from_millis(20);
/// MIG appended these to PATH for its children (docs/design.md §4.14); we set it before discovery too.
const PATH_DIRS: &str = "/bin:/sbin:/usr/bin:/usr/sbin";

fn command(program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args).stdin(Stdio::null());
    let path = match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{PATH_DIRS}"),
        _ => PATH_DIRS.to_string(),
    };
    c.env("PATH", path);
    c
}

pub fn describe(program: &Path, args: &[&str]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Waits for `child` until `timeout`; kills it when the time is up.
fn wait_with_timeout(child: &mut Child, what: &str, timeout: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Trigger {
                    command: what.to_string(),
                    reason: format!("no exit after {} s, killed", timeout.as_secs_f32()),
                });
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                let _ = child.kill();
                return Err(Error::Trigger {
                    command: what.to_string(),
                    reason: format!("wait failed: {e}"),
                });
            }
        }
    }
}

/// Runs `program args` with no input or output, killed after `timeout`.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<ExitStatus> {
    let what = describe(program, args);
    let mut child = command(program, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Trigger {
            command: what.clone(),
            reason: format!("cannot start: {e}"),
        })?;
    wait_with_timeout(&mut child, &what, timeout)
}

/// Runs a discovery command and returns its stdout (at most `cap` bytes) when it exits 0
/// within `timeout`.
pub fn output(program: &str, args: &[&str], timeout: Duration, cap: u64) -> Option<String> {
    let what = describe(Path::new(program), args);
    let mut child = command(Path::new(program), args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Discovery commands print a line or two, well below a pipe's buffer, so waiting first
    // cannot deadlock.
    let status = wait_with_timeout(&mut child, &what, timeout).ok()?;
    let mut out = String::new();
    child
        .stdout
        .take()?
        .take(cap)
        .read_to_string(&mut out)
        .ok()?;
    status.success().then_some(out)
}

// These name Unix programs; on Windows the integration suite runs its stand-in agent.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_hanging_child_is_killed_at_its_timeout() {
        let e = run(Path::new("/bin/sleep"), &["30"], Duration::from_millis(100)).unwrap_err();
        assert!(matches!(e, Error::Trigger { .. }), "{e}");
        assert!(e.to_string().contains("killed"), "{e}");
    }

    #[test]
    fn exit_status_and_output_are_returned() {
        assert!(run(Path::new("/bin/true"), &[], Duration::from_secs(10))
            .unwrap()
            .success());
        assert!(!run(Path::new("/bin/false"), &[], Duration::from_secs(10))
            .unwrap()
            .success());
        assert_eq!(
            output("echo", &["hello"], Duration::from_secs(10), 1024).as_deref(),
            Some("hello\n")
        );
        let e = run(
            Path::new("/nonexistent/mig-agent"),
            &["-u"],
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent/mig-agent -u"), "{e}");
    }
}
