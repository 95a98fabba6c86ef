//! The walk-through's world, shared by the end-to-end suites: a [`Deployment`] with an enabled
//! loader (the walk-through's expectenv), its [`Host`], the development `mig-loader`, the
//! walk-through's bundle, and the check that a refused run changed nothing.

use crate::deployment::Deployment;
use crate::host::{sha256_hex, Host};
use crate::{binary, ApiOptions, Output};
use std::path::{Path, PathBuf};

pub const LINUX_TARGET: &str = "env#>>'{os}'='linux'";
pub const EXPECTENV: &str = "tags#>>'{operator}'='myorg'";

/// The manifest directory of the walk-through; `agent` is the stand-in agent's version.
pub fn bundle(host: &Host, agent: &str, configuration: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("mig-agent", host.agent_script(agent, true)),
        (
            "mig-loader",
            b"#!/bin/sh\necho 'a newer mig-loader'\n".to_vec(),
        ),
        ("configuration", configuration.as_bytes().to_vec()),
        (
            "cacert",
            b"-----BEGIN CERTIFICATE-----\nRELAY CA\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        (
            "agentcert",
            b"-----BEGIN CERTIFICATE-----\nAGENT\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        (
            "agentkey",
            b"-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n".to_vec(),
        ),
    ]
}

/// Where each entry lands under the root, and its mode (MIG's bundle dictionary).
pub const INSTALLED: &[(&str, &str, u32)] = &[
    ("mig-agent", "sbin/mig-agent", 0o700),
    ("mig-loader", "sbin/mig-loader", 0o700),
    ("configuration", "etc/mig/mig-agent.cfg", 0o600),
    ("cacert", "etc/mig/ca.crt", 0o644),
    ("agentcert", "etc/mig/agent.crt", 0o644),
    ("agentkey", "etc/mig/agent.key", 0o600),
];

pub struct World {
    pub d: Deployment,
    pub host: Host,
    pub loader_id: u64,
    pub loader: PathBuf,
}

impl World {
    /// A deployment, an enabled loader with the walk-through's expectenv, and its host.
    pub fn new(opts: ApiOptions) -> World {
        Self::build(opts, None)
    }

    /// The same world with the loader's root on a tmpfs of `bytes` (root only).
    pub fn on_small_disk(opts: ApiOptions, bytes: u64) -> World {
        Self::build(opts, Some(bytes))
    }

    fn build(opts: ApiOptions, disk: Option<u64>) -> World {
        let d = Deployment::start(opts);
        let (loader_id, key) = d.enrol_loader("corbomite.internal", Some(EXPECTENV));
        let host = Host::with_disk(&d.api.base_url, &key, disk);
        World {
            d,
            host,
            loader_id,
            loader: binary("mig-loader"),
        }
    }

    /// Creates a manifest from `files`, signed by `signers` of (admin1, admin2); returns its id.
    pub fn publish(
        &self,
        name: &str,
        files: &[(&'static str, Vec<u8>)],
        platform: (&str, &str),
        signers: usize,
    ) -> u64 {
        let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let archive = self.d.archive(&name.replace(' ', "-"), &borrowed);
        let id = self
            .d
            .create_manifest(name, LINUX_TARGET, &archive, platform);
        let admins = [&self.d.admin1, &self.d.admin2];
        self.d.sign(id, &archive, &admins[..signers]);
        id
    }

    pub fn run_loader(&self) -> Output {
        self.host.run(&self.loader, &[])
    }

    pub fn last_report(&self) -> serde_json::Value {
        self.d.loader(self.loader_id)["last_report"].clone()
    }

    /// Installs the walk-through's first manifest and returns its files.
    pub fn installed_v1(&self) -> (u64, Vec<(&'static str, Vec<u8>)>) {
        let files = bundle(
            &self.host,
            "v1",
            "[agent]\nrelay = \"amqp://relay:5671/\"\n",
        );
        let id = self.publish("a new manifest", &files, ("linux", "amd64"), 2);
        self.run_loader().ok();
        assert_eq!(self.host.running_agent().as_deref(), Some("v1"));
        (id, files)
    }

    /// Every file under the root but the loader's note of what it last reported, which each
    /// report rewrites, the record of the files' hashes, which the report of any run writes once
    /// the installed files settled (docs/design.md §4.9), and the roots of trust it keeps, which
    /// a run that refuses a statement may have walked to first (§4.21).
    pub fn installed_state(&self) -> std::collections::BTreeMap<PathBuf, (String, u32)> {
        let mut s = self.host.snapshot();
        s.remove(Path::new("var/lib/mig/mig-loader.reported"));
        s.remove(Path::new("var/lib/mig/mig-loader.known"));
        s.retain(|p, _| !p.starts_with("var/lib/mig/mig-loader.roots"));
        s
    }

    /// Runs the loader expecting a refusal that names `reason`, and checks the agent and every
    /// file were left as they were.
    #[track_caller]
    pub fn refused(&self, reason: &str) -> Output {
        let before = self.installed_state();
        let calls_before = self.host.agent_calls().len();
        let out = self.run_loader();
        out.failed();
        assert!(
            out.stdout.contains(reason) || out.stderr.contains(reason),
            "reason {reason:?} not shown:\n{out}"
        );
        assert_eq!(
            self.installed_state(),
            before,
            "a refused run changed files"
        );
        assert_eq!(
            self.host.running_agent().as_deref(),
            Some("v1"),
            "the running agent changed"
        );
        let new_calls = &self.host.agent_calls()[calls_before..];
        assert!(
            new_calls.iter().all(|c| c.ends_with("-q pid")),
            "a refused run may only check the agent, it called {new_calls:?}"
        );
        out
    }
}

pub fn check_installed(root: &Path, files: &[(&'static str, Vec<u8>)]) {
    for (name, rel, mode) in INSTALLED {
        let body = &files.iter().find(|(n, _)| n == name).unwrap().1;
        let path = root.join(rel);
        let data = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{} not installed: {e}", path.display()));
        assert_eq!(sha256_hex(&data), sha256_hex(body), "{name} content");
        let m = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        ) & 0o777;
        assert_eq!(m, *mode, "{name} mode {m:o}");
    }
}
