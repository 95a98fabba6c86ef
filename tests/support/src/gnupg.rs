//! A temporary GnuPG home for tests: mode 0700, a short path (gpg-agent's socket must fit in
//! `sun_path`), and its gpg-agent stopped on drop so no test leaves daemons behind.

use crate::process::run;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

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

    /// `gpg --batch --yes` with an empty passphrase and no pinentry: what key generation and
    /// signing in tests need.
    pub fn batch(&self) -> Command {
        let mut c = self.gpg();
        c.args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gnupg_home_holds_the_imported_secret_key() {
        let h = GnupgHome::with_keys(&[crate::dev_key("admin1.sec.asc")]);
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
