//! An endpoint for `mig-loader`: a temporary root with the loader key, a run-time configuration
//! pointing at a test API, and a stand-in `mig-agent` script that records its calls.

use crate::Output;
use mig_test_support::agent;
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
    dir: tempfile::TempDir,
    /// The `--root` the loader installs into.
    pub root: PathBuf,
    agent_dir: PathBuf,
}

impl Host {
    /// A root with /sbin, /etc/mig, the key file and `/etc/mig/mig-loader.cfg` naming `api_url`.
    pub fn new(api_url: &str, loader_key: &str) -> Host {
        let dir = tempfile::tempdir().expect("a temporary root");
        let root = dir.path().join("root");
        let agent_dir = dir.path().join("agent");
        for d in [root.join("sbin"), root.join("etc/mig"), agent_dir.clone()] {
            std::fs::create_dir_all(d).expect("create the root's directories");
        }
        std::fs::write(
            root.join("etc/mig/mig-loader.key"),
            format!("{loader_key}\n"),
        )
        .expect("key file");
        std::fs::write(
            root.join("etc/mig/mig-loader.cfg"),
            format!("[loader]\napi = \"{api_url}\"\n"),
        )
        .expect("run-time configuration");
        Host {
            dir,
            root,
            agent_dir,
        }
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
