//! Running a child process (gpg) with its input on stdin, a deadline, and capped output.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The most output kept from each of stdout and stderr.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// What a finished child left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `cmd`, writes `input` to its stdin, and waits at most `timeout`; a child that is still
/// running then is killed. The error says what happened, for the caller to prefix.
pub fn run(mut cmd: Command, input: &[u8], timeout: Duration) -> Result<Finished, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    // Pipes are drained on their own threads so a child that writes a lot before reading
    // its input cannot deadlock against us.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_OUTPUT).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let feeder = child.stdin.take().map(|mut stdin| {
        let data = input.to_vec();
        // A child that exits without reading gives EPIPE here, which its status explains.
        thread::spawn(move || {
            let _ = stdin.write_all(&data);
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s, killed", timeout.as_secs()));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for it failed: {e}")),
        }
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Ok(Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_reaches_the_child_and_output_comes_back() {
        let mut c = Command::new("sh");
        c.args(["-c", "tr a-z A-Z; echo oops >&2"]);
        let f = run(c, b"hello", Duration::from_secs(20)).unwrap();
        assert!(f.status.success());
        assert_eq!(f.stdout, b"HELLO");
        assert_eq!(f.stderr, b"oops\n");
    }

    #[test]
    fn a_child_past_its_deadline_is_killed() {
        let mut c = Command::new("sleep");
        c.arg("30");
        let e = run(c, b"", Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("killed"), "{e}");
    }

    #[test]
    fn a_missing_program_is_reported() {
        let e = run(
            Command::new("/nonexistent/gpg"),
            b"",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e.contains("cannot start"), "{e}");
    }
}
