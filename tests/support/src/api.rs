//! The real `mig-api` for tests: a temporary directory with its `api.cfg` and SQLite file,
//! `listen = 127.0.0.1:0`, and the URL it announces on stdout (`mig-api listening on URL`) once
//! it has bound, so no port is chosen and raced for. Stopped (SIGKILL) on drop.
//!
//! With `MIG_TEST_DATABASE=postgres` in the environment, every server whose options name
//! neither a database nor a data directory of its own gets a fresh database on one PostgreSQL
//! cluster shared by the test process (crate::postgres): the same tests then run on PostgreSQL.

use crate::postgres::PgDatabase;
use crate::process::{run, Output};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a started `mig-api` may take to announce its address.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a `mig-api` sent SIGTERM may take to exit: its drain of the requests in flight
/// (20 s at most) and the rest of its stop.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The base route the harness configures (also mig-api's default).
pub const BASEROUTE: &str = "/api/v2";

/// What the test's `mig-api` is configured with.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// `[manifest] requiredsignatures`.
    pub required_signatures: u32,
    /// `[manifest] validdays`, the API's default when `None`.
    pub valid_days: Option<u32>,
    /// `[authentication] enabled`.
    pub auth: bool,
    /// `[authentication] tokenduration`.
    pub token_duration: &'static str,
    /// More `[authentication]` keys and values (the token bounds).
    pub authentication: Vec<(&'static str, String)>,
    /// `[authentication] audience`: the URL tokens must name; where the server answers when
    /// `None` (its port is then known only once it runs, and changes with a restart).
    pub audience: Option<String>,
    /// `[limits]` keys and values.
    pub limits: Vec<(&'static str, u64)>,
    /// More `[server]` lines (TLS files, deadlines).
    pub extra_server: String,
    /// More configuration text appended as is (whole sections).
    pub extra: String,
    /// Where `mig-api.db` and its blob store live, when not in the server's directory (a small
    /// filesystem of the test's).
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database (`[database] url`) instead of the SQLite file.
    pub postgres: Option<PgDatabase>,
    /// A file holding an offset in libfaketime's format (`+0`, `+2d`): mig-api then runs with
    /// libfaketime, which reads the wall clock's offset from this file on every call, so a test
    /// moves a running server's clock (an expiry) without sleeping. Monotonic time is real.
    pub clock_file: Option<PathBuf>,
    /// `[freshness] key`: a mode-0600 copy of the development freshness key
    /// (`conf/dev-keys/freshness.sec.asc`, whose public half the development mig-loader is
    /// built with) in the server's directory; `false`: no freshness key, answers carry none.
    pub freshness: bool,
    /// `[freshness] lifetime`, the API's default when `None`.
    pub freshness_lifetime: Option<&'static str>,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            required_signatures: 2,
            valid_days: None,
            auth: true,
            token_duration: "10m",
            authentication: Vec::new(),
            audience: None,
            limits: Vec::new(),
            extra_server: String::new(),
            extra: String::new(),
            data_dir: None,
            postgres: None,
            clock_file: None,
            freshness: true,
            freshness_lifetime: None,
        }
    }
}

impl ApiOptions {
    /// The SQLite file of a server whose own files live in `dir`.
    pub fn db_path(&self, dir: &Path) -> PathBuf {
        self.data_dir.as_deref().unwrap_or(dir).join("mig-api.db")
    }

    /// The `api.cfg` text for a server whose files live in `dir`.
    pub fn config_text(&self, dir: &Path) -> String {
        let db = self.db_path(dir);
        let url = match &self.postgres {
            Some(pg) => {
                let ca = match &pg.cluster.ca {
                    Some(ca) => format!("cafile = {}\n", ca.display()),
                    None => String::new(),
                };
                format!("url = {}\n{ca}", pg.url())
            }
            None => String::new(),
        };
        let mut cfg = format!(
            "[server]\nlisten = 127.0.0.1:0\nbaseroute = {BASEROUTE}\n{}\n\n[database]\npath = {}\n{url}\n\
             [manifest]\nrequiredsignatures = {}\n",
            self.extra_server,
            db.display(),
            self.required_signatures
        );
        if let Some(d) = self.valid_days {
            cfg.push_str(&format!("validdays = {d}\n"));
        }
        cfg.push_str(&format!(
            "\n[authentication]\nenabled = {}\ntokenduration = {}\n",
            if self.auth { "on" } else { "off" },
            self.token_duration
        ));
        for (k, v) in &self.authentication {
            cfg.push_str(&format!("{k} = {v}\n"));
        }
        if let Some(a) = &self.audience {
            cfg.push_str(&format!("audience = {a}\n"));
        }
        cfg.push('\n');
        if !self.limits.is_empty() {
            cfg.push_str("[limits]\n");
            for (k, v) in &self.limits {
                cfg.push_str(&format!("{k} = {v}\n"));
            }
            cfg.push('\n');
        }
        if self.freshness {
            cfg.push_str(&format!(
                "[freshness]\nkey = {}\n",
                install_freshness_key(dir).display()
            ));
            if let Some(l) = self.freshness_lifetime {
                cfg.push_str(&format!("lifetime = {l}\n"));
            }
            cfg.push('\n');
        }
        cfg.push_str(&self.extra);
        cfg
    }
}

/// Copies the development freshness key into `dir` with mode 0600 (mig-api refuses a key file
/// others can read, and git keeps no mode) and returns the copy's path.
fn install_freshness_key(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let copy = dir.join("freshness.key");
    let key =
        std::fs::read(crate::dev_key("freshness.sec.asc")).expect("the development freshness key");
    std::fs::write(&copy, key).expect("copy the freshness key");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600))
        .expect("chmod 600 the freshness key");
    copy
}

/// libfaketime's thread-safe library (Debian `faketime`, which `.ci/setup` installs); a test
/// moves a process's wall clock with it (`LD_PRELOAD`, `FAKETIME`).
pub fn faketime_library() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib").ok().and_then(|dirs| {
        dirs.flatten()
            .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("libfaketimeMT.so.1 not found under /usr/lib/*/faketime: apt-get install faketime")
    })
}

/// A running `mig-api` with its own temporary directory.
pub struct ApiServer {
    /// The server's directory: `api.cfg`, `mig-api.db`, `api.log`.
    pub dir: tempfile::TempDir,
    /// The `api.cfg` it runs with (also for `mig-api --config F investigator add`).
    pub config: PathBuf,
    /// Where it listens (learnt from its announcement).
    pub addr: SocketAddr,
    /// `http(s)://127.0.0.1:PORT/api/v2/`, as it announced it.
    pub base_url: String,
    db: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
    /// What it was started with, for [`ApiServer::replica`].
    opts: ApiOptions,
}

impl ApiServer {
    /// Starts the workspace's `mig-api` with `opts`.
    #[track_caller]
    pub fn start(opts: ApiOptions) -> ApiServer {
        Self::start_binary(&crate::binary("mig-api"), &opts)
    }

    /// Starts `binary` with `opts` and waits for its announcement.
    #[track_caller]
    pub fn start_binary(binary: &Path, opts: &ApiOptions) -> ApiServer {
        let mut opts = opts.clone();
        if opts.postgres.is_none() && opts.data_dir.is_none() && postgres_wanted() {
            opts.postgres = Some(PgDatabase::fresh());
        }
        let dir = tempfile::tempdir().expect("a temporary directory for mig-api");
        let config = dir.path().join("api.cfg");
        std::fs::write(&config, opts.config_text(dir.path())).expect("write api.cfg");
        let db = opts.db_path(dir.path());
        let mut server = Self::unstarted(binary, dir, config);
        server.db = db;
        server.opts = opts;
        server.launch();
        server
    }

    /// Another mig-api process on this server's database: its own directory, log and port,
    /// the same options. On SQLite it opens the same file (two processes on one machine). Its
    /// tokens name this server's audience, as replicas behind one load balancer name its URL.
    #[track_caller]
    pub fn replica(&self) -> ApiServer {
        let mut opts = self.opts.clone();
        opts.audience = Some(self.audience());
        if opts.postgres.is_none() {
            opts.data_dir = self.db.parent().map(Path::to_path_buf);
        }
        Self::start_binary(&self.binary, &opts)
    }

    /// The PostgreSQL database, when the server runs on one.
    pub fn postgres(&self) -> Option<&PgDatabase> {
        self.opts.postgres.as_ref()
    }

    /// Runs `sql` on the server's database, whichever it is, and returns the rows, each
    /// column as text (NULL as an empty string).
    #[track_caller]
    pub fn sql(&self, sql: &str) -> Vec<Vec<String>> {
        match &self.opts.postgres {
            Some(pg) => pg.rows(sql),
            None => crate::postgres::sqlite_rows(&self.db, sql),
        }
    }

    /// Starts `binary` with a configuration file the test wrote itself, inside `dir`.
    #[track_caller]
    pub fn start_with_config(binary: &Path, dir: tempfile::TempDir, config: PathBuf) -> ApiServer {
        let mut server = Self::unstarted(binary, dir, config);
        server.launch();
        server
    }

    fn unstarted(binary: &Path, dir: tempfile::TempDir, config: PathBuf) -> ApiServer {
        let db = dir.path().join("mig-api.db");
        ApiServer {
            dir,
            config,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_url: String::new(),
            db,
            binary: binary.to_path_buf(),
            child: None,
            opts: ApiOptions::default(),
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file (unused when the server runs on PostgreSQL).
    pub fn db_path(&self) -> PathBuf {
        self.db.clone()
    }

    /// Everything the server printed (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("api.log")
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// What tokens for this server must name: its `[authentication] audience`, else its URL
    /// (`mig_protocol::admin::audience`, as mig-console writes it).
    pub fn audience(&self) -> String {
        let url = self.opts.audience.as_deref().unwrap_or(&self.base_url);
        mig_protocol::admin::audience(url).unwrap_or_else(|e| panic!("audience {url}: {e}"))
    }

    /// `base_url` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Starts the process and waits until it announces where it listens.
    #[track_caller]
    pub fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open api.log");
        let mut command = Command::new(&self.binary);
        if let Some(clock) = &self.opts.clock_file {
            command
                .env("LD_PRELOAD", faketime_library())
                .env("FAKETIME_TIMESTAMP_FILE", clock)
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let mut child = command
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.try_clone().expect("api.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut log = log;
            // Keeps draining into the log so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if let Some(url) = line.strip_prefix("mig-api listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.to_string());
                    }
                }
            }
        });
        let url = match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mig-api did not announce its address; log:\n{}", self.log());
            }
        };
        self.addr = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|hp| hp.parse().ok())
            .unwrap_or_else(|| panic!("mig-api announced {url:?}, not scheme://ADDRESS:PORT/"));
        self.base_url = url;
        self.child = Some(child);
    }

    /// SIGKILL, as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, as a service manager stops it; waits for the process to exit (at most
    /// [`STOP_TIMEOUT`], then SIGKILL and a panic) and returns its exit status.
    #[track_caller]
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("mig-api is not running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.as_ref().is_ok_and(|s| s.success()),
            "kill -TERM {pid}: {sent:?}"
        );
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for mig-api") {
                self.child = None;
                return status;
            }
            if std::time::Instant::now() > deadline {
                self.kill();
                panic!(
                    "mig-api did not exit within {STOP_TIMEOUT:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill, then start again on the same directory (a new port).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// `mig-api --config F investigator add --name N --pubkey FILE --perms P` (the bootstrap).
    #[track_caller]
    pub fn add_investigator(&self, name: &str, pubkey: &Path, perms: &str) -> Output {
        let mut c = Command::new(&self.binary);
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
        self.kill();
        // A failing test shows what the server logged of its failures (the directory goes).
        if std::thread::panicking() {
            let log = self.log();
            let failures: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("level=error") || l.contains("status=5"))
                .collect();
            eprintln!(
                "--- mig-api {} logged {} failure(s); the last ones:\n{}",
                self.dir.path().display(),
                failures.len(),
                failures[failures.len().saturating_sub(10)..].join("\n")
            );
        }
    }
}

/// Whether this test process runs its servers on PostgreSQL (`MIG_TEST_DATABASE=postgres`).
pub fn postgres_wanted() -> bool {
    match std::env::var("MIG_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("MIG_TEST_DATABASE={other:?}: expected postgres or sqlite"),
    }
}
