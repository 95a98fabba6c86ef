//! Child processes for tests: stdin fed, output captured (capped), a deadline after which the
//! child is killed and the test fails with what it printed; and a minimal HTTP GET for readiness
//! checks without a client crate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The most output kept from a child's stdout or stderr.
const MAX_CAPTURE: u64 = 16 * 1024 * 1024;

/// A loopback port free at the time of asking, for servers that cannot announce the port they
/// bound (nginx); mig-api itself is started on port 0 ([`crate::ApiServer`]).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A finished command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// True on exit status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics, showing both streams, unless the command succeeded.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "command failed: {self}");
        self
    }

    /// Panics, showing both streams, unless the command failed.
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert!(!self.success(), "command should have failed: {self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with `stdin` (or an empty stdin), waiting at most `timeout`; a command still
/// running then is killed and the test fails with what it printed.
#[track_caller]
pub fn run(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let drain = |r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.take(MAX_CAPTURE).read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.unwrap_or_default().to_vec();
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = (
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default(),
            );
            panic!(
                "{shown} did not finish within {} s\n--- stdout ---\n{o}\n--- stderr ---\n{e}",
                timeout.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = feeder.join();
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The TCP ports process `pid` listens on (IPv4), read from /proc: the socket inodes among its
/// open files, looked up in /proc/net/tcp.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is f[1] (HEX_IP:HEX_PORT), st is f[3] (0A = LISTEN), inode f[9].
            if f.len() < 10 || f[3] != "0A" || !inodes.iter().any(|i| i == f[9]) {
                return None;
            }
            u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()
        })
        .collect()
}

/// The processes whose command line or open files name a path under `dir` (id and command
/// line), read from /proc: how a test finds what a server started in `dir` left running, workers
/// included (an nginx worker's command line is only `nginx: worker process`, but it holds its
/// error log open).
pub fn processes_under(dir: &Path) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let needle = dir.to_string_lossy().into_owned();
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let holds = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.filter_map(|f| std::fs::read_link(f.ok()?.path()).ok())
                        .any(|l| l.starts_with(dir))
                })
                .unwrap_or(false);
            (cmdline.contains(&needle) || holds).then(|| (pid, cmdline.trim_end().to_string()))
        })
        .collect()
}

/// A minimal HTTP/1.0 GET on loopback (for readiness checks, without a client crate).
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = Vec::new();
    s.take(MAX_CAPTURE).read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "no HTTP status in {:?}",
                &text[..text.len().min(80)]
            ))
        })?;
    let body = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or_else(Vec::new, |p| resp[p + 4..].to_vec());
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_captures_output_and_feeds_stdin() {
        let mut c = Command::new("sh");
        c.args(["-c", "cat; echo err >&2; exit 3"]);
        let o = run(c, Some(b"in"), Duration::from_secs(20));
        assert_eq!(o.stdout, "in");
        assert_eq!(o.stderr, "err\n");
        assert_eq!(o.status.code(), Some(3));
        o.failed();
    }

    #[test]
    #[should_panic(expected = "did not finish")]
    fn run_kills_a_command_past_its_timeout() {
        let mut c = Command::new("sleep");
        c.arg("30");
        run(c, None, Duration::from_millis(200));
    }
}
