//! Helpers for the console's tests: administrators (the shared `e2e::admin`) running this
//! package's `mig-console`, the walk-through's manifest archive, and a pseudo-terminal driver.
#![allow(dead_code)] // each test file uses a different part

#[allow(unused_imports)] // each test file uses a different part
pub use e2e::admin::{created_id, json, loader_key, Admin, TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// This package's own `mig-console` (cargo builds it for these tests).
fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mig-console"))
}

/// An administrator signing through gpg (`admin1`, …), running this package's console.
pub fn gpg_admin(base_url: &str, admin: &str) -> Admin {
    Admin::with_gpg(base_url, admin).with_program(program())
}

/// An administrator signing with the key file of `admin`, running this package's console.
pub fn key_file_admin(base_url: &str, admin: &str) -> Admin {
    Admin::with_key_file(base_url, admin).with_program(program())
}

/// The manifest directory of the walk-through, packed with GNU tar; `agent` is mig-agent's body.
pub fn manifest_archive(parent: &Path, bundle: &str, agent: &[u8]) -> PathBuf {
    e2e::tar_gz(
        parent,
        bundle,
        &[
            ("mig-agent", agent),
            ("mig-loader", b"#!/bin/sh\necho loader\n"),
            (
                "configuration",
                b"[agent]\nrelay = \"amqp://relay.example.net:5671/\"\n",
            ),
            (
                "cacert",
                b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
            ),
            (
                "agentcert",
                b"-----BEGIN CERTIFICATE-----\nAGENT\n-----END CERTIFICATE-----\n",
            ),
            (
                "agentkey",
                b"-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
            ),
        ],
    )
}

/// `mig-console` on a pseudo-terminal (util-linux `script`), driven like a user: wait for
/// text, then type. Killed on drop if still running.
pub struct Pty {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    chunks: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
    /// Where the next `expect` starts looking.
    from: usize,
}

/// How long the terminal may take to show what a test waits for.
pub const PTY_TIMEOUT: Duration = Duration::from_secs(60);

impl Pty {
    /// Runs `cmd` (its program and arguments, environment kept) on a new terminal.
    pub fn spawn(cmd: &Command) -> Pty {
        use std::process::Stdio;
        let quote =
            |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
        let mut line = quote(cmd.get_program());
        for a in cmd.get_args() {
            line.push(' ');
            line.push_str(&quote(a));
        }
        let mut c = Command::new("script");
        c.args(["-q", "-f", "-e", "-E", "never", "-c", &line, "/dev/null"]);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .expect("util-linux script (for a pseudo-terminal)");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            stdin: child.stdin.take(),
            child,
            chunks: rx,
            seen: Vec::new(),
            from: 0,
        }
    }

    /// Everything shown so far, escape sequences and carriage returns removed.
    pub fn screen(&self) -> String {
        plain(&self.seen)
    }

    /// Waits until `text` appears after the previous match.
    #[track_caller]
    pub fn expect(&mut self, text: &str) {
        let deadline = std::time::Instant::now() + PTY_TIMEOUT;
        loop {
            let screen = self.screen();
            if let Some(at) = screen[self.from.min(screen.len())..].find(text) {
                self.from += at + text.len();
                return;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(c) => self.seen.extend_from_slice(&c),
                Err(_) => panic!("{text:?} did not appear; the terminal shows:\n{screen}"),
            }
        }
    }

    /// Types `keys`.
    pub fn send(&mut self, keys: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(keys.as_bytes())
            .expect("type into the terminal");
        stdin.flush().expect("flush the terminal");
    }

    /// Waits for the program to exit; returns its status and everything it showed.
    #[track_caller]
    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + PTY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for script") {
                while let Ok(c) = self.chunks.recv_timeout(Duration::from_millis(200)) {
                    self.seen.extend_from_slice(&c);
                }
                return (status, self.screen());
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "the terminal session did not end; it shows:\n{}",
                    self.screen()
                );
            }
            if let Ok(c) = self.chunks.recv_timeout(Duration::from_millis(50)) {
                self.seen.extend_from_slice(&c);
            }
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.stdin.take();
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Terminal output without escape sequences (CSI and OSC) and carriage returns.
pub fn plain(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\x07' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A loader's HTTP client for the test API (plain HTTP on loopback).
pub fn loader_client(base_url: &str) -> mig_http::Client {
    let cfg = mig_http::HttpConfig {
        allow_plain_http: true,
        ..Default::default()
    };
    mig_http::Client::new(&cfg, base_url).unwrap()
}

/// One `POST loader/manifest` with `key`, reporting this host's platform; returns the status.
pub fn loader_asks(base_url: &str, key: &str) -> u16 {
    use mig_protocol::loader::{
        Agent, Environment, ManifestRequest, LOADER_KEY_HEADER, MANIFEST_PATH,
    };
    let client = loader_client(base_url);
    let host = mig_protocol::statement::Platform::host();
    let req = ManifestRequest {
        agent: Agent {
            name: "agent.corbomite".into(),
            environment: Environment {
                os: host.os,
                arch: host.arch,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    };
    client
        .post_json(MANIFEST_PATH, &[(LOADER_KEY_HEADER, key)], &req)
        .unwrap()
        .status
}

/// One `POST loader/report` with `key`.
pub fn loader_reports(base_url: &str, key: &str, serial: u64, result: &str, message: &str) -> u16 {
    use mig_protocol::loader::{Report, ReportResult, LOADER_KEY_HEADER, REPORT_PATH};
    let client = loader_client(base_url);
    let report = Report {
        serial: mig_protocol::Serial::new(serial),
        result: ReportResult::parse(result).unwrap(),
        message: message.into(),
        files: Default::default(),
    };
    client
        .post_json(REPORT_PATH, &[(LOADER_KEY_HEADER, key)], &report)
        .unwrap()
        .status
}
