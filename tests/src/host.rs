//! An endpoint for `mig-loader`: a temporary root with the loader key, a run-time configuration
//! pointing at a test API, and a stand-in `mig-agent` script that records its calls.

use crate::Output;
use mig_test_support::agent;
use mig_test_support::tmpfs::Tmpfs;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long one loader run may take in a test.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

pub use mig_test_support::sha256_hex;

/// A loader's machine, all under one temporary directory.
pub struct Host {
    /// The root's own small filesystem, when it has one; unmounted before `dir` is removed.
    disk: Option<Tmpfs>,
    dir: tempfile::TempDir,
    /// The `--root` the loader installs into.
    pub root: PathBuf,
    agent_dir: PathBuf,
}

impl Host {
    /// A root with /sbin, /etc/mig, the key file and `/etc/mig/mig-loader.cfg` naming `api_url`.
    pub fn new(api_url: &str, loader_key: &str) -> Host {
        Self::with_disk(api_url, loader_key, None)
    }

    /// [`Host::new`], with the root on a tmpfs of `disk` bytes when given (root only).
    pub fn with_disk(api_url: &str, loader_key: &str, disk: Option<u64>) -> Host {
        let dir = tempfile::tempdir().expect("a temporary root");
        let root = dir.path().join("root");
        let agent_dir = dir.path().join("agent");
        let disk = disk.map(|bytes| Tmpfs::mount(&root, bytes));
        for d in [root.join("sbin"), root.join("etc/mig"), agent_dir.clone()] {
            std::fs::create_dir_all(d).expect("create the root's directories");
        }
        std::fs::write(
            root.join("etc/mig/mig-loader.key"),
            format!("{loader_key}\n"),
        )
        .expect("key file");
        let host = Host {
            disk,
            dir,
            root,
            agent_dir,
        };
        host.point_at(api_url);
        host
    }

    /// Gives the root a copy of this machine's `/etc/os-release`, as every current distribution
    /// has: discovery reads it (`discover.rs` `ident`), and without one falls back to running
    /// `lsb_release` (on Debian 12 a shell script with six children), which a measured run on a
    /// real host does not pay.
    pub fn with_os_release(&self) -> Result<(), String> {
        match std::fs::read("/etc/os-release") {
            Ok(text) => std::fs::write(self.root.join("etc/os-release"), text)
                .map_err(|e| format!("copying /etc/os-release into the host: {e}")),
            Err(e) => Err(format!("/etc/os-release: {e}")),
        }
    }

    /// Points the loader's run-time configuration at another API URL (a fault proxy's).
    pub fn point_at(&self, api_url: &str) {
        std::fs::write(
            self.root.join("etc/mig/mig-loader.cfg"),
            format!("[loader]\napi = \"{api_url}\"\n"),
        )
        .expect("run-time configuration");
    }

    /// The root's own filesystem, for a host made [`Host::with_disk`].
    pub fn disk(&self) -> Option<&Tmpfs> {
        self.disk.as_ref()
    }

    /// The body of a stand-in `mig-agent` recording into this host ([`agent_script`]).
    pub fn agent_script(&self, version: &str, healthy: bool) -> Vec<u8> {
        agent::agent_script(&self.agent_dir, version, healthy)
    }

    /// `loader --root ROOT <args>`.
    pub fn command(&self, loader: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(loader);
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Runs the loader to its end.
    pub fn run(&self, loader: &Path, args: &[&str]) -> Output {
        crate::run(self.command(loader, args), None, RUN_TIMEOUT)
    }

    /// The calls the stand-in agent recorded, one `<version> <args>` per line.
    pub fn agent_calls(&self) -> Vec<String> {
        agent::agent_calls(&self.agent_dir)
    }

    /// Which stand-in agent version is running, if any.
    pub fn running_agent(&self) -> Option<String> {
        agent::running_agent(&self.agent_dir)
    }

    /// Every file under the root: relative path → (sha256, mode).
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (String, u32)> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (String, u32)>) {
            for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
                let p = e.path();
                let meta = std::fs::symlink_metadata(&p).expect("metadata");
                if meta.is_dir() {
                    walk(root, &p, out);
                } else {
                    let data = std::fs::read(&p).unwrap_or_default();
                    let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                    out.insert(rel, (sha256_hex(&data), meta.permissions().mode() & 0o7777));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root, &self.root, &mut out);
        out
    }

    /// The temporary directory holding the root.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
