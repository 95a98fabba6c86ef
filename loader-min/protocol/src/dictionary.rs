//! The fixed dictionary of entry names → local paths and modes (MIG's bundle dictionary).
//! docs/design.md §4.7: paths come only from this dictionary, never from the network.

use std::path::{Path, PathBuf};

/// A name that only dictionary names can become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DictName {
    MigAgent,
    MigLoader,
    Configuration,
    AgentCert,
    AgentKey,
    CaCert,
    LoaderConfig,
}

/// Every dictionary entry, in the order the loader compares and installs them.
pub const ALL: [DictName; 7] = [
    DictName::MigAgent,
    DictName::MigLoader,
    DictName::Configuration,
    DictName::AgentCert,
    DictName::AgentKey,
    DictName::CaCert,
    DictName::LoaderConfig,
];

impl DictName {
    /// The name used in manifests and archives.
    pub fn as_str(self) -> &'static str {
        match self {
            DictName::MigAgent => "mig-agent",
            DictName::MigLoader => "mig-loader",
            DictName::Configuration => "configuration",
            DictName::AgentCert => "agentcert",
            DictName::AgentKey => "agentkey",
            DictName::CaCert => "cacert",
            DictName::LoaderConfig => "loaderconfig",
        }
    }

    /// Parses a dictionary name; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// The Unix mode the installed file gets.
    pub fn mode(self) -> u32 {
        match self {
            DictName::MigAgent | DictName::MigLoader => 0o700,
            DictName::Configuration | DictName::AgentKey | DictName::LoaderConfig => 0o600,
            DictName::AgentCert | DictName::CaCert => 0o644,
        }
    }

    /// Whether the file is a program (it may be running while it is replaced).
    pub fn is_executable(self) -> bool {
        matches!(self, DictName::MigAgent | DictName::MigLoader)
    }

    /// Whether the file holds a secret (it must never be left behind as a stray copy).
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            DictName::AgentKey | DictName::Configuration | DictName::LoaderConfig
        )
    }

    /// The absolute path for `os` (Go spelling), or `None` on an OS the dictionary does not cover.
    pub fn path(self, os: &str) -> Option<&'static str> {
        Some(match (os, self) {
            ("linux", DictName::MigAgent) => "/sbin/mig-agent",
            ("linux", DictName::MigLoader) => "/sbin/mig-loader",
            ("darwin", DictName::MigAgent) => "/usr/local/bin/mig-agent",
            ("darwin", DictName::MigLoader) => "/usr/local/bin/mig-loader",
            ("linux" | "darwin", DictName::Configuration) => "/etc/mig/mig-agent.cfg",
            ("linux" | "darwin", DictName::AgentCert) => "/etc/mig/agent.crt",
            ("linux" | "darwin", DictName::AgentKey) => "/etc/mig/agent.key",
            ("linux" | "darwin", DictName::CaCert) => "/etc/mig/ca.crt",
            ("linux" | "darwin", DictName::LoaderConfig) => "/etc/mig/mig-loader.cfg",
            // MIG's bundleEntryWindows: everything in C:\mig, the run directory included.
            ("windows", DictName::MigAgent) => "C:\\mig\\mig-agent.exe",
            ("windows", DictName::MigLoader) => "C:\\mig\\mig-loader.exe",
            ("windows", DictName::Configuration) => "C:\\mig\\mig-agent.cfg",
            ("windows", DictName::AgentCert) => "C:\\mig\\agent.crt",
            ("windows", DictName::AgentKey) => "C:\\mig\\agent.key",
            ("windows", DictName::CaCert) => "C:\\mig\\ca.crt",
            ("windows", DictName::LoaderConfig) => "C:\\mig\\mig-loader.cfg",
            _ => return None,
        })
    }

    /// The path under a root prefix (`--root`): the dictionary path without its root (`/`, or a
    /// Windows drive `C:\\`), joined to `root` one component at a time, so that a Windows path
    /// lands under a test root on any host.
    pub fn path_under(self, root: &Path, os: &str) -> Option<PathBuf> {
        self.path(os).map(|p| under_root(root, p))
    }
}

/// `abs` (a dictionary path of any OS: `/etc/mig`, `C:\\mig`) under `root`.
pub fn under_root(root: &Path, abs: &str) -> PathBuf {
    let bytes = abs.as_bytes();
    let relative = if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        &abs[2..]
    } else {
        abs
    };
    let mut out = root.to_path_buf();
    out.extend(relative.split(['/', '\\']).filter(|c| !c.is_empty()));
    out
}

impl std::fmt::Display for DictName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        for n in ALL {
            assert_eq!(DictName::parse(n.as_str()), Some(n));
        }
        for s in ["../etc/passwd", "MIG-AGENT", "mig-agent ", "", "agent.key"] {
            assert_eq!(DictName::parse(s), None, "{s}");
        }
    }

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/tmp/r");
        for n in ALL {
            let p = n.path_under(root, "linux").unwrap();
            assert!(p.starts_with(root), "{}", p.display());
        }
        assert_eq!(DictName::MigAgent.path("plan9"), None);
    }

    #[test]
    fn windows_paths_are_migs_and_land_under_the_root() {
        assert_eq!(
            DictName::LoaderConfig.path("windows"),
            Some("C:\\mig\\mig-loader.cfg")
        );
        let root = Path::new("/tmp/r");
        for n in ALL {
            let p = n.path_under(root, "windows").unwrap();
            assert!(p.starts_with("/tmp/r/mig"), "{}", p.display());
            assert!(!p.to_string_lossy().contains('\\'), "{}", p.display());
        }
        assert_eq!(
            DictName::MigAgent.path_under(root, "windows").unwrap(),
            Path::new("/tmp/r/mig/mig-agent.exe")
        );
    }
}
