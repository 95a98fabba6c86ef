//! The end-to-end harness: the real workspace binaries, started against each other on loopback.
//!
//! - [`binary`] finds `mig-api`, `mig-console`, `mig-loader` in `target/<profile>/`, next to the
//!   running test executable (build them first: `cargo build --workspace --bins`).
//! - [`ApiServer`] starts `mig-api` with a temporary directory (SQLite file, `api.cfg`) on a free
//!   loopback port, waits for `GET health`, and stops it on drop.
//! - [`GnupgHome`] is a temporary `GNUPGHOME` with keys imported (the dev keys in `conf/dev-keys`);
//!   its gpg-agent is stopped on drop.
//! - [`run`] runs a command with optional stdin and a timeout and captures its output.
//! - [`tar_gz`] packs a manifest directory with GNU `tar -czf`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod deployment;
pub mod host;
pub mod measure;
pub mod musl;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a started `mig-api` may take to answer `GET health`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The most output kept from a child's stdout or stderr.
const MAX_CAPTURE: u64 = 16 * 1024 * 1024;

/// The workspace root (the parent of `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A file of `conf/dev-keys` (`admin1.pub.asc`, `admin2.sec.asc`, …).
pub fn dev_key(file: &str) -> PathBuf {
    workspace_root().join("conf/dev-keys").join(file)
}

/// The primary-key fingerprint (upper-case hex) of an armored public key file.
pub fn fingerprint(public_key_file: &Path) -> String {
    let armored = std::fs::read_to_string(public_key_file)
        .unwrap_or_else(|e| panic!("read {}: {e}", public_key_file.display()));
    let key = mig_protocol::signature::parse_public_key("key", &armored).expect("a public key");
    mig_protocol::signature::fingerprint_hex(&key).to_ascii_uppercase()
}

/// `target/<profile>/`: the directory of the running test executable's parent (`deps/..`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut dir = exe
        .parent()
        .expect("the executable's directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// A workspace binary built in the same profile as this test.
pub fn binary(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
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

/// What the test's `mig-api` is configured with.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// `[manifest] requiredsignatures`.
    pub required_signatures: u32,
    /// `[manifest] validdays`, the API's default when `None`.
    pub valid_days: Option<u32>,
    /// More configuration text appended as is (whole sections).
    pub extra: String,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            required_signatures: 2,
            valid_days: None,
            extra: String::new(),
        }
    }
}

/// A running `mig-api` on loopback with its own temporary directory; stopped on drop.
pub struct ApiServer {
    dir: tempfile::TempDir,
    child: Child,
    /// The `api.cfg` it runs with (also for `mig-api --config F investigator add`).
    pub config: PathBuf,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/api/v2/`.
    pub base_url: String,
}

/// The base route the harness configures.
pub const BASEROUTE: &str = "/api/v2";

impl ApiServer {
    /// Starts `mig-api` and waits until `GET health` answers 200. A port taken between choosing
    /// and binding is retried on another port.
    #[track_caller]
    pub fn start(opts: ApiOptions) -> ApiServer {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&opts) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("mig-api did not start: {last}");
    }

    fn try_start(opts: &ApiOptions) -> Result<ApiServer, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cfg = format!(
            "[server]\nlisten = {addr}\nbaseroute = {BASEROUTE}\n\n[database]\npath = {}\n\n[manifest]\nrequiredsignatures = {}\n",
            dir.path().join("mig-api.db").display(),
            opts.required_signatures
        );
        if let Some(d) = opts.valid_days {
            cfg.push_str(&format!("validdays = {d}\n"));
        }
        cfg.push_str("\n[authentication]\nenabled = on\ntokenduration = 10m\n\n");
        cfg.push_str(&opts.extra);
        let config = dir.path().join("api.cfg");
        std::fs::write(&config, cfg).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.path().join("api.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(binary("mig-api"))
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start mig-api: {e}"))?;
        let mut server = ApiServer {
            dir,
            child,
            config,
            addr,
            base_url: format!("http://{addr}{BASEROUTE}/"),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("mig-api exited with {status}:\n{}", server.log()));
            }
            match http_get(addr, &format!("{BASEROUTE}/health"), Duration::from_secs(2)) {
                Ok((200, _)) => return Ok(server),
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50))
                }
                other => {
                    return Err(format!(
                        "GET health did not answer 200 within {} s ({other:?}):\n{}",
                        START_TIMEOUT.as_secs(),
                        server.log()
                    ))
                }
            }
        }
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("api.log")).unwrap_or_default()
    }

    /// `mig-api --config F investigator add --name N --pubkey FILE --perms P` (the bootstrap).
    #[track_caller]
    pub fn add_investigator(&self, name: &str, pubkey: &Path, perms: &str) -> Output {
        let mut c = Command::new(binary("mig-api"));
        c.arg("--config")
            .arg(&self.config)
            .args(["investigator", "add", "--name", name, "--pubkey"])
            .arg(pubkey)
            .args(["--perms", perms])
            .current_dir(self.dir.path());
        run(c, None, Duration::from_secs(60))
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary GnuPG home; its gpg-agent is stopped on drop.
pub struct GnupgHome {
    dir: tempfile::TempDir,
}

impl GnupgHome {
    /// An empty home (mode 0700, as gpg wants).
    pub fn new() -> GnupgHome {
        use std::os::unix::fs::PermissionsExt;
        // Short path: gpg-agent's socket path must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("gh")
            .tempdir_in("/tmp")
            .expect("a temporary GNUPGHOME");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod 700 GNUPGHOME");
        GnupgHome { dir }
    }

    /// A home with these key files imported (`gpg --batch --import`).
    #[track_caller]
    pub fn with_keys(files: &[PathBuf]) -> GnupgHome {
        let h = GnupgHome::new();
        for f in files {
            h.import(f);
        }
        h
    }

    /// The directory, for `GNUPGHOME`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `gpg` command using this home.
    pub fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.path());
        c
    }

    /// Imports a key file.
    #[track_caller]
    pub fn import(&self, file: &Path) {
        let mut c = self.gpg();
        c.args(["--batch", "--import"]).arg(file);
        run(c, None, Duration::from_secs(60)).ok();
    }
}

impl Default for GnupgHome {
    fn default() -> Self {
        GnupgHome::new()
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.dir.path())
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes `files` into `parent/bundle/` and packs that directory with GNU `tar -czf` into
/// `parent/<bundle>.tar.gz`, as the operator's walk-through does.
#[track_caller]
pub fn tar_gz(parent: &Path, bundle: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = parent.join(bundle);
    std::fs::create_dir_all(&dir).expect("create the manifest directory");
    for (name, data) in files {
        std::fs::write(dir.join(name), data).expect("write a manifest file");
    }
    let out = parent.join(format!("{bundle}.tar.gz"));
    let mut c = Command::new("tar");
    c.arg("-czf").arg(&out).arg("-C").arg(parent).arg(bundle);
    run(c, None, Duration::from_secs(60)).ok();
    out
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

    #[test]
    fn gnu_tar_packs_the_directory_and_dev_keys_are_found() {
        let d = tempfile::tempdir().unwrap();
        let a = tar_gz(
            d.path(),
            "bundle",
            &[("mig-agent", b"x"), ("configuration", b"y")],
        );
        let mut c = Command::new("tar");
        c.arg("-tzf").arg(&a);
        let o = run(c, None, Duration::from_secs(20));
        assert!(o.ok().stdout.contains("bundle/mig-agent"), "{o}");
        assert_eq!(
            fingerprint(&dev_key("admin1.pub.asc")),
            "37050AE08CB33351018A809EFD575A3E1CEB348D"
        );
    }

    #[test]
    fn a_gnupg_home_holds_the_imported_secret_key() {
        let h = GnupgHome::with_keys(&[dev_key("admin1.sec.asc")]);
        let mut c = h.gpg();
        c.args(["--batch", "--list-secret-keys", "--with-colons"]);
        let o = run(c, None, Duration::from_secs(30));
        assert!(
            o.ok()
                .stdout
                .contains("37050AE08CB33351018A809EFD575A3E1CEB348D"),
            "{o}"
        );
    }
}
