//! Helpers for the console's tests: configurations for a gpg or key-file identity, and running
//! `mig-console` (script mode or a piped session) with a clean HOME. Servers, GnuPG homes and
//! archives come from the shared harness (`e2e`).
#![allow(dead_code)] // each test file uses a different part

use e2e::{dev_key, fingerprint, GnupgHome, Output};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long one console command may take (gpg and pgp included).
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// One administrator's console: a configuration file, a HOME, and a GnuPG home when it signs
/// through gpg.
pub struct Admin {
    pub home: tempfile::TempDir,
    pub config: PathBuf,
    pub gnupg: Option<GnupgHome>,
}

impl Admin {
    /// Signs through the local gpg with `admin` (`admin1`, …) imported into a fresh GNUPGHOME.
    pub fn with_gpg(base_url: &str, admin: &str) -> Admin {
        let gnupg = GnupgHome::with_keys(&[dev_key(&format!("{admin}.sec.asc"))]);
        let keyid = fingerprint(&dev_key(&format!("{admin}.pub.asc")));
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("migrc");
        std::fs::write(
            &config,
            format!("[api]\n    url = \"{base_url}\"\n[gpg]\n    keyid = {keyid}\n"),
        )
        .unwrap();
        Admin {
            home,
            config,
            gnupg: Some(gnupg),
        }
    }

    /// Signs in-process with the armored secret key file of `admin`.
    pub fn with_key_file(base_url: &str, admin: &str) -> Admin {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("migrc");
        std::fs::write(
            &config,
            format!(
                "[api]\nurl = {base_url}\n[signing]\nkeyfile = {}   ; armored\n",
                dev_key(&format!("{admin}.sec.asc")).display()
            ),
        )
        .unwrap();
        Admin {
            home,
            config,
            gnupg: None,
        }
    }

    /// `mig-console --config C <args>` with `stdin` (never a terminal here).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mig-console"));
        c.arg("--config").arg(&self.config).args(args);
        c.env("HOME", self.home.path())
            .env_remove("MIG_PASSPHRASE")
            .env_remove("MIG_APIKEY");
        match &self.gnupg {
            Some(g) => c.env("GNUPGHOME", g.path()),
            None => c.env("GNUPGHOME", self.home.path().join("no-gnupg")),
        };
        c
    }

    /// Script mode.
    pub fn run(&self, args: &[&str]) -> Output {
        e2e::run(self.command(args), None, TIMEOUT)
    }

    /// An interactive session fed from `stdin`.
    pub fn session(&self, stdin: &str) -> Output {
        e2e::run(self.command(&[]), Some(stdin.as_bytes()), TIMEOUT)
    }
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

/// The JSON document a `--json` command printed.
#[track_caller]
pub fn json(o: &Output) -> serde_json::Value {
    o.ok();
    serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {o}"))
}

/// The loader key in `Loader key including prefix to supply to client will be "KEY"`.
#[track_caller]
pub fn loader_key(stdout: &str) -> String {
    let marker = "Loader key including prefix to supply to client will be \"";
    let at = stdout
        .find(marker)
        .unwrap_or_else(|| panic!("no loader key line in:\n{stdout}"));
    let rest = &stdout[at + marker.len()..];
    rest[..rest.find('"').expect("closing quote")].to_string()
}
