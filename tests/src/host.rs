//! An endpoint for `mig-loader`: a temporary root with the loader key, a run-time configuration
//! pointing at a test API, and a stand-in `mig-agent` script that records its calls.

use crate::Output;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long one loader run may take in a test.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// sha256 as lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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

    /// The body of a stand-in `mig-agent`: it appends `<version> <args>` to a calls file; `-u`
    /// starts it (unless `healthy` is false), `-q shutdown` stops it, `-q pid` succeeds only
    /// while it runs.
    pub fn agent_script(&self, version: &str, healthy: bool) -> Vec<u8> {
        let start = if healthy {
            format!("echo {version} > \"$d/running\"")
        } else {
            "true".to_string()
        };
        format!(
            "#!/bin/sh\n# stand-in mig-agent {version}\nd='{}'\necho \"{version} $*\" >> \"$d/calls\"\ncase \"$*\" in\n  '-u') {start}; exit 0 ;;\n  '-q shutdown') rm -f \"$d/running\"; exit 0 ;;\n  '-q pid') [ -f \"$d/running\" ] && exit 0; exit 1 ;;\nesac\nexit 2\n",
            self.agent_dir.display()
        )
        .into_bytes()
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
        std::fs::read_to_string(self.agent_dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Which stand-in agent version is running, if any.
    pub fn running_agent(&self) -> Option<String> {
        std::fs::read_to_string(self.agent_dir.join("running"))
            .ok()
            .map(|s| s.trim().to_string())
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
