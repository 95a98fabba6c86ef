//! Administrators driving the real `mig-console`: a configuration file, a HOME, and a GnuPG home
//! when they sign through gpg. Shared by the console's tests, the end-to-end tests and the
//! size budget.

use crate::{binary, dev_key, fingerprint, GnupgHome, Output};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long one console command may take (gpg and pgp included).
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// One administrator's console.
pub struct Admin {
    pub home: tempfile::TempDir,
    pub config: PathBuf,
    pub gnupg: Option<GnupgHome>,
    program: PathBuf,
}

impl Admin {
    /// Signs through the local gpg with `admin` (`admin1`, …) imported into a fresh GNUPGHOME.
    pub fn with_gpg(base_url: &str, admin: &str) -> Admin {
        let gnupg = GnupgHome::with_keys(&[dev_key(&format!("{admin}.sec.asc"))]);
        let keyid = fingerprint(&dev_key(&format!("{admin}.pub.asc")));
        Self::write(
            format!("[api]\n    url = \"{base_url}\"\n[gpg]\n    keyid = {keyid}\n"),
            Some(gnupg),
        )
    }

    /// Signs in-process with the armored secret key file of `admin`.
    pub fn with_key_file(base_url: &str, admin: &str) -> Admin {
        let key = dev_key(&format!("{admin}.sec.asc"));
        Self::write(
            format!(
                "[api]\nurl = {base_url}\n[signing]\nkeyfile = {}   ; armored\n",
                key.display()
            ),
            None,
        )
    }

    fn write(config_text: String, gnupg: Option<GnupgHome>) -> Admin {
        let home = tempfile::tempdir().expect("a temporary HOME");
        let config = home.path().join("migrc");
        std::fs::write(&config, config_text).expect("write migrc");
        Admin {
            home,
            config,
            gnupg,
            program: binary("mig-console"),
        }
    }

    /// Sets `[api] timeout` (seconds one request may take).
    pub fn with_timeout(self, secs: u64) -> Admin {
        let text = std::fs::read_to_string(&self.config).expect("read migrc");
        let text = text.replacen("[api]\n", &format!("[api]\ntimeout = {secs}\n"), 1);
        std::fs::write(&self.config, text).expect("write migrc");
        self
    }

    /// Sets `[api] audience`: the API is reached by another URL than its own (here a proxy).
    pub fn with_audience(self, audience: &str) -> Admin {
        let text = std::fs::read_to_string(&self.config).expect("read migrc");
        let text = text.replacen("[api]\n", &format!("[api]\naudience = {audience}\n"), 1);
        std::fs::write(&self.config, text).expect("write migrc");
        self
    }

    /// Uses another `mig-console` executable (a test's own `CARGO_BIN_EXE_mig-console`).
    pub fn with_program(mut self, program: &Path) -> Admin {
        self.program = program.to_path_buf();
        self
    }

    /// `mig-console --config C <args>` with a clean environment (never a terminal).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
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
        crate::run(self.command(args), None, TIMEOUT)
    }

    /// An interactive session fed from `stdin`.
    pub fn session(&self, stdin: &str) -> Output {
        crate::run(self.command(&[]), Some(stdin.as_bytes()), TIMEOUT)
    }

    /// Script mode with `--json`, parsed.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        json(&self.run(&all))
    }
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

/// The id in the console's `New entry successfully created (id N)`.
#[track_caller]
pub fn created_id(stdout: &str) -> u64 {
    stdout
        .split("successfully created (id ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no new id in:\n{stdout}"))
}
