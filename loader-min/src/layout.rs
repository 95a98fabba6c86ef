//! Every path the loader touches, under the root prefix (docs/design.md §4.7: `--root DIR`, default `/`).
//! Managed files come only from the dictionary for the host OS.

use crate::error::{Error, Result};
use crate::fsutil::fsync_dir;
use mig_protocol::dictionary::{under_root, DictName};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Suffix of a file staged next to its target.
pub const STAGED: &str = ".mig-new";
/// Suffix of the previous generation kept until commit.
pub const PREVIOUS: &str = ".mig-prev";
/// Leftovers of MIG's Go loader (`<path>.loader` staged, `<path>.old` previous): removed, since
/// they may hold an old private key (docs/design.md §4.15).
pub const MIG_LEFTOVERS: [&str; 2] = [".loader", ".old"];

/// The paths of one host (or of a test root).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    os: String,
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Layout {
    /// Flushes the directories holding `names`' targets.
    pub fn sync_dirs(&self, names: impl IntoIterator<Item = DictName>) -> Result<()> {
        let dirs: BTreeSet<PathBuf> = names
            .into_iter()
            .filter_map(|n| self.target(n).ok()?.parent().map(Path::to_path_buf))
            .collect();
        for d in dirs {
            if d.is_dir() {
                fsync_dir(&d)?;
            }
        }
        Ok(())
    }

    /// `os` is the Go spelling of the host OS (`linux`, `darwin`).
    pub fn new(root: impl Into<PathBuf>, os: &str) -> Self {
        Layout {
            root: root.into(),
            os: os.to_string(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn under(&self, abs: &str) -> PathBuf {
        under_root(&self.root, abs)
    }

    /// MIG's configuration directory (`/etc/mig`; `C:\mig` on Windows).
    pub fn conf_dir(&self) -> PathBuf {
        match self.os.as_str() {
            "windows" => self.under("C:\\mig"),
            _ => self.under("/etc/mig"),
        }
    }

    /// The state directory: lock, installed serial, journal (MIG's run directory; on Windows the
    /// configuration directory, as MIG's agent has it).
    pub fn state_dir(&self) -> PathBuf {
        match self.os.as_str() {
            "darwin" => self.under("/Library/Preferences/mig"),
            "windows" => self.conf_dir(),
            _ => self.under("/var/lib/mig"),
        }
    }

    pub fn key_file(&self) -> PathBuf {
        self.conf_dir().join("mig-loader.key")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.state_dir().join("mig-loader.lock")
    }

    pub fn serial_file(&self) -> PathBuf {
        self.state_dir().join("mig-loader.serial")
    }

    pub fn journal_file(&self) -> PathBuf {
        self.state_dir().join("mig-loader.journal")
    }

    /// The sha256 last hashed per managed file, with its fingerprint (`known`, §4.9).
    pub fn known_file(&self) -> PathBuf {
        self.state_dir().join("mig-loader.known")
    }

    /// The roots of trust accepted since the built-in one, one file per version (roots.rs).
    pub fn roots_dir(&self) -> PathBuf {
        self.state_dir().join("mig-loader.roots")
    }

    pub fn report_file(&self) -> PathBuf {
        self.state_dir().join("mig-loader.reported")
    }

    /// The agent ID shared with mig-agent (`<rundir>/.migagtid`).
    pub fn agent_id_file(&self) -> PathBuf {
        self.state_dir().join(".migagtid")
    }

    /// The run-time configuration file (the dictionary's `loaderconfig`).
    pub fn runtime_config(&self) -> Result<PathBuf> {
        self.target(DictName::LoaderConfig)
    }

    /// Where a dictionary entry lives on this OS.
    pub fn target(&self, name: DictName) -> Result<PathBuf> {
        name.path_under(&self.root, &self.os).ok_or_else(|| {
            Error::Config(format!(
                "the dictionary has no path for {name} on {}",
                self.os
            ))
        })
    }

    /// The dictionary path without the root (for log lines like MIG's).
    pub fn display_path(&self, name: DictName) -> &'static str {
        name.path(&self.os).unwrap_or("?")
    }

    pub fn staged(&self, name: DictName) -> Result<PathBuf> {
        Ok(with_suffix(&self.target(name)?, STAGED))
    }

    pub fn previous(&self, name: DictName) -> Result<PathBuf> {
        Ok(with_suffix(&self.target(name)?, PREVIOUS))
    }

    /// The agent binary the triggers and the health check run.
    pub fn agent(&self) -> Result<PathBuf> {
        self.target(DictName::MigAgent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_under_the_root() {
        let l = Layout::new("/tmp/r", "linux");
        for p in [
            l.key_file(),
            l.lock_file(),
            l.journal_file(),
            l.runtime_config().unwrap(),
            l.staged(DictName::AgentKey).unwrap(),
        ] {
            assert!(p.starts_with("/tmp/r"), "{}", p.display());
        }
        assert_eq!(
            l.staged(DictName::MigAgent).unwrap(),
            PathBuf::from("/tmp/r/sbin/mig-agent.mig-new")
        );
        let w = Layout::new("/tmp/r", "windows");
        assert_eq!(w.key_file(), PathBuf::from("/tmp/r/mig/mig-loader.key"));
        assert_eq!(w.lock_file(), PathBuf::from("/tmp/r/mig/mig-loader.lock"));
        assert_eq!(
            w.staged(DictName::MigLoader).unwrap(),
            PathBuf::from("/tmp/r/mig/mig-loader.exe.mig-new")
        );
        assert!(Layout::new("/", "plan9")
            .target(DictName::MigAgent)
            .is_err());
    }
}
