//! Test helpers for mig-loader: a temporary root, a stand-in API ([`server`]), a stand-in agent
//! script that records its calls, signed statements made with the committed development keys,
//! and a runner for the real binary (built with the development configuration, which trusts
//! conf/dev-keys/admin1 and admin2; admin3 is the unknown key).
#![allow(dead_code)]

pub mod server;

use mig_protocol::freshness::{Document, Freshness};
use mig_protocol::loader::ManifestResponse;
use mig_protocol::signature::{parse_secret_key, sign_detached};
use mig_protocol::statement::{Entry, Platform, Serial, Statement, FORMAT};
use mig_protocol::time::Timestamp;
pub use mig_test_support::targets::LoaderUnderTest;
use server::{ManifestMode, Server};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Removes the proxy variables a developer's or CI's environment may set, and names the loopback
/// stand-in API in NO_PROXY: every loader run of the suites talks to 127.0.0.1 directly.
pub fn without_proxies(c: &mut Command) {
    for v in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    c.env("NO_PROXY", "127.0.0.1");
}

pub const LOADER_KEY: &str = "AbCdEfGh0123456789abcdefghijklmnopqrstuv";

/// The mig-loader under test: this host's build, or with `MIG_TEST_LOADER_TARGET` another
/// target's, run under qemu-user (mig-test-support's `targets`).
pub fn loader() -> &'static LoaderUnderTest {
    static UNDER_TEST: OnceLock<LoaderUnderTest> = OnceLock::new();
    UNDER_TEST.get_or_init(|| LoaderUnderTest::choose(Path::new(env!("CARGO_BIN_EXE_mig-loader"))))
}

/// The platform the loader under test reports, in Go's spelling.
pub fn loader_platform() -> Platform {
    Platform {
        os: loader().go_os.clone(),
        arch: loader().go_arch.clone(),
    }
}

pub use mig_test_support::sha256_hex;

pub fn admin_key(n: usize) -> &'static pgp::composed::SignedSecretKey {
    static KEYS: OnceLock<Vec<pgp::composed::SignedSecretKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (1..=3)
            .map(|i| {
                let p = format!(
                    "{}/../conf/dev-keys/admin{i}.sec.asc",
                    env!("CARGO_MANIFEST_DIR")
                );
                parse_secret_key(&p, &std::fs::read_to_string(&p).unwrap()).unwrap()
            })
            .collect()
    })[n - 1]
}

/// The development freshness key (conf/dev-keys/freshness), whose public half the loader under
/// test is built with: the stand-in API signs every answer with it, as mig-api does.
fn freshness_key() -> &'static pgp::composed::SignedSecretKey {
    static KEY: OnceLock<pgp::composed::SignedSecretKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let p = format!(
            "{}/../conf/dev-keys/freshness.sec.asc",
            env!("CARGO_MANIFEST_DIR")
        );
        parse_secret_key(&p, &std::fs::read_to_string(&p).unwrap()).unwrap()
    })
}

/// A freshness signature by the development freshness key over `statement` (serial `serial`),
/// issued at `issued` and good until `expires`.
pub fn freshness(statement: &[u8], serial: u64, issued: u64, expires: u64) -> Freshness {
    let doc = Document {
        statement: mig_protocol::Sha256::of(statement),
        serial: Serial::new(serial),
        issued: Timestamp(issued),
        expires: Timestamp(expires),
    }
    .to_text()
    .unwrap();
    Freshness {
        signature: sign_detached(freshness_key(), "", doc.as_bytes()).unwrap(),
        document: doc,
    }
}

/// A freshness signature over `st` as mig-api makes one now: issued a minute ago, for a day.
pub fn fresh_now(st: &Statement) -> Freshness {
    let now = Timestamp::now().0;
    freshness(
        &st.to_bytes().unwrap(),
        st.serial.get(),
        now - 60,
        now + 86_400,
    )
}

pub use mig_test_support::agent::agent_script;

/// One generation of managed files: dictionary name → content.
#[derive(Clone, Debug)]
pub struct Generation {
    pub serial: u64,
    pub files: BTreeMap<&'static str, Vec<u8>>,
}

impl Generation {
    pub fn entries(&self) -> Vec<Entry> {
        self.files
            .iter()
            .map(|(name, body)| Entry {
                name: name.to_string(),
                sha256: mig_protocol::Sha256::of(body),
                size: body.len() as u64,
            })
            .collect()
    }

    /// A statement for this host, valid from a minute ago for a day.
    pub fn statement(&self) -> Statement {
        let now = Timestamp::now().0;
        Statement {
            format: FORMAT,
            serial: Serial::new(self.serial),
            name: format!("generation {}", self.serial),
            platform: loader_platform(),
            issued: Timestamp(now - 60),
            expires: Timestamp(now + 86_400),
            entries: self.entries(),
        }
    }
}

/// A manifest response body signed by the given admins (1, 2: built in; 3: unknown), with a
/// freshness signature made now.
pub fn signed_response(statement: &Statement, signers: &[usize]) -> String {
    response_with(statement, &admin_signatures(statement, signers))
}

/// The armored signatures of the given admins over `statement`.
pub fn admin_signatures(statement: &Statement, signers: &[usize]) -> Vec<String> {
    let bytes = statement.to_bytes().unwrap();
    signers
        .iter()
        .map(|&n| sign_detached(admin_key(n), "", &bytes).unwrap())
        .collect()
}

/// A manifest response body carrying the given armored signatures over `statement`, with a
/// freshness signature made now.
pub fn response_with(statement: &Statement, signatures: &[String]) -> String {
    response_freshness(statement, signatures, Some(fresh_now(statement)))
}

/// A manifest response body with the given signatures and `freshness` (none: the field is
/// absent, as from an API without a freshness key).
pub fn response_freshness(
    statement: &Statement,
    signatures: &[String],
    freshness: Option<Freshness>,
) -> String {
    serde_json::to_string(&ManifestResponse {
        statement: String::from_utf8(statement.to_bytes().unwrap()).unwrap(),
        signatures: signatures.to_vec(),
        freshness,
        root: None,
    })
    .unwrap()
}

/// An armored detached signature by `keyid` over `data`, made by the real `gpg` with `extra`
/// options (`--digest-algo SHA1`, …) in `home`.
pub fn gpg_signature(
    home: &mig_test_support::GnupgHome,
    keyid: &str,
    extra: &[&str],
    data: &[u8],
) -> String {
    let mut c = home.batch();
    c.args(extra)
        .args(["--armor", "--detach-sign", "--local-user", keyid]);
    let out = mig_test_support::run(c, Some(data), std::time::Duration::from_secs(60));
    out.ok();
    out.stdout
}

/// A temporary root, its agent's call log, and the stand-in API.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub agent_dir: PathBuf,
    pub server: Server,
}

/// Dictionary paths of the loader under test's OS, relative to the root (MIG's
/// `bundleEntryLinux` and `bundleEntryWindows`, under `--root`).
pub fn rel_path(name: &str) -> &'static str {
    let windows = loader().go_os == "windows";
    match (windows, name) {
        (false, "mig-agent") => "sbin/mig-agent",
        (false, "mig-loader") => "sbin/mig-loader",
        (false, "configuration") => "etc/mig/mig-agent.cfg",
        (false, "agentcert") => "etc/mig/agent.crt",
        (false, "agentkey") => "etc/mig/agent.key",
        (false, "cacert") => "etc/mig/ca.crt",
        (false, "loaderconfig") => "etc/mig/mig-loader.cfg",
        (true, "mig-agent") => "mig/mig-agent.exe",
        (true, "mig-loader") => "mig/mig-loader.exe",
        (true, "configuration") => "mig/mig-agent.cfg",
        (true, "agentcert") => "mig/agent.crt",
        (true, "agentkey") => "mig/agent.key",
        (true, "cacert") => "mig/ca.crt",
        (true, "loaderconfig") => "mig/mig-loader.cfg",
        (_, other) => panic!("not a dictionary name: {other}"),
    }
}

/// The loader key file, relative to the root (`C:\mig\mig-loader.key` on Windows).
pub fn rel_key_path() -> &'static str {
    if loader().go_os == "windows" {
        "mig/mig-loader.key"
    } else {
        "etc/mig/mig-loader.key"
    }
}

/// A file of the state directory, relative to the root (`C:\mig` on Windows).
pub fn rel_state_path(file: &str) -> String {
    if loader().go_os == "windows" {
        format!("mig/{file}")
    } else {
        format!("var/lib/mig/{file}")
    }
}

impl Fixture {
    /// A root with /sbin, /etc/mig, the loader key and a run-time configuration that points the
    /// loader at the stand-in API.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let agent_dir = dir.path().join("agent");
        for d in [
            root.join(rel_path("mig-agent")),
            root.join(rel_path("loaderconfig")),
            agent_dir.join("calls"),
        ] {
            std::fs::create_dir_all(d.parent().unwrap()).unwrap();
        }
        let server = Server::start();
        std::fs::write(root.join(rel_key_path()), format!("{LOADER_KEY}\n")).unwrap();
        let f = Fixture {
            dir,
            root,
            agent_dir,
            server,
        };
        std::fs::write(f.path("loaderconfig"), f.runtime_config()).unwrap();
        f
    }

    /// The content of `/etc/mig/mig-loader.cfg` that points at this fixture's server.
    pub fn runtime_config(&self) -> Vec<u8> {
        format!(
            "[loader]\napi = \"{}\"\ntags = suite:loader-tests\n",
            self.server.base_url()
        )
        .into_bytes()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(rel_path(name))
    }

    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(name)).ok()
    }

    pub fn agent(&self, version: &str) -> Vec<u8> {
        agent_script(&self.agent_dir, version, true)
    }

    pub fn unhealthy_agent(&self, version: &str) -> Vec<u8> {
        agent_script(&self.agent_dir, version, false)
    }

    /// The calls the agent recorded, one `<version> <args>` per line.
    pub fn agent_calls(&self) -> Vec<String> {
        mig_test_support::agent::agent_calls(&self.agent_dir)
    }

    pub fn clear_agent_calls(&self) {
        let _ = std::fs::remove_file(self.agent_dir.join("calls"));
    }

    /// Which agent version runs, if any.
    pub fn running_agent(&self) -> Option<String> {
        mig_test_support::agent::running_agent(&self.agent_dir)
    }

    /// A generation with a healthy agent `v<serial>` and a few other files; the run-time
    /// configuration is not managed by it (it must keep pointing at the server).
    pub fn generation(&self, serial: u64) -> Generation {
        let mut files = BTreeMap::new();
        files.insert("mig-agent", self.agent(&format!("v{serial}")));
        files.insert(
            "configuration",
            format!("[agent]\ngeneration = {serial}\n").into_bytes(),
        );
        files.insert("agentkey", format!("secret key {serial}\n").into_bytes());
        files.insert("agentcert", format!("cert {serial}\n").into_bytes());
        Generation { serial, files }
    }

    /// Offers `g` signed by admins 1 and 2, and serves its files.
    pub fn publish(&self, g: &Generation) {
        self.publish_signed(g, &g.statement(), &[1, 2]);
    }

    pub fn publish_signed(&self, g: &Generation, st: &Statement, signers: &[usize]) {
        self.publish_response(g, signed_response(st, signers));
    }

    /// Serves `g`'s files and this manifest response body.
    pub fn publish_response(&self, g: &Generation, body: String) {
        for body in g.files.values() {
            self.server.add_file(&sha256_hex(body), body.clone());
        }
        self.server.set_manifest(ManifestMode::Serve(body));
    }

    fn command(&self, args: &[&str]) -> Command {
        let l = loader();
        let mut c = l.command(&l.path);
        c.args(args).arg("--root").arg(&self.root);
        without_proxies(&mut c);
        c.env_remove("MIG_LOADER_CRASH_AT");
        c
    }

    /// Runs the loader to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        c.envs(env.iter().copied());
        Run(mig_test_support::run(c, None, RUN_TIMEOUT))
    }

    /// Starts the loader without waiting.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Asserts that every file of `g` is installed with its content, and nothing is left beside.
    pub fn assert_generation(&self, g: &Generation) {
        for (name, body) in &g.files {
            assert_eq!(
                self.read(name).as_ref(),
                Some(body),
                "{name} is not from generation {}",
                g.serial
            );
        }
        self.assert_no_leftovers();
    }

    /// No staged or previous files, and no journal.
    pub fn assert_no_leftovers(&self) {
        for name in [
            "mig-agent",
            "mig-loader",
            "configuration",
            "agentcert",
            "agentkey",
            "cacert",
            "loaderconfig",
        ] {
            for suffix in [".mig-new", ".mig-prev", ".old", ".loader"] {
                let p = PathBuf::from(format!("{}{suffix}", self.path(name).display()));
                assert!(!p.exists(), "{} was left behind", p.display());
            }
        }
        assert!(
            !self
                .root
                .join(rel_state_path("mig-loader.journal"))
                .exists(),
            "journal left behind"
        );
    }

    pub fn installed_serial(&self) -> Option<u64> {
        std::fs::read_to_string(self.root.join(rel_state_path("mig-loader.serial")))
            .ok()
            .map(|s| s.trim().parse().unwrap())
    }

    /// Every file under the root with its size, mode, mtime and content hash.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    walk(&p, out);
                }
                let content = if m.is_file() {
                    sha256_hex(&std::fs::read(&p).unwrap())
                } else {
                    String::new()
                };
                out.insert(
                    p,
                    format!(
                        "{} {:o} {:?} {content}",
                        m.len(),
                        m.permissions().mode(),
                        m.modified().unwrap()
                    ),
                );
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root, &mut out);
        out
    }

    /// The reports the server received, as JSON.
    pub fn reports(&self) -> Vec<serde_json::Value> {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/loader/report"))
            .map(|r| r.json())
            .collect()
    }

    pub fn file_requests(&self) -> Vec<server::Request> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/loader/files/"))
            .collect()
    }
}

/// How long one loader run may take before the test fails with what it printed.
pub const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// The outcome of one loader run.
pub struct Run(pub mig_test_support::Output);

impl Run {
    pub fn stdout(&self) -> String {
        self.0.stdout.clone()
    }

    pub fn stderr(&self) -> String {
        self.0.stderr.clone()
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }

    pub fn code(&self) -> Option<i32> {
        self.0.status.code()
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.0.status.success(),
            "loader failed ({:?}):\n{}",
            self.0.status,
            self.all()
        );
        self
    }

    #[track_caller]
    pub fn assert_failed_with(&self, needle: &str) -> &Self {
        assert_eq!(self.code(), Some(1), "expected exit 1:\n{}", self.all());
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.all()
        );
        self
    }
}
