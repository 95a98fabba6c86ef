//! The targets mig-loader is built for, and how a test runs a build of another architecture:
//! under Debian's qemu-user (`qemu-user-static`). The Makefile's `ARCH` table says the same.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Which build of mig-loader the loader's suite runs: the host's, unless this names a target of
/// [`TARGETS`] whose debug build is then taken from `target/<triple>/debug/mig-loader`.
pub const ENV_LOADER_TARGET: &str = "MIG_TEST_LOADER_TARGET";

/// One target of mig-loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Rust's target triple.
    pub triple: &'static str,
    /// Go's GOARCH, as MIG's loaders report it and manifests name it.
    pub go_arch: &'static str,
    /// Debian's architecture name (the .deb's `Architecture`).
    pub deb_arch: &'static str,
    /// The qemu-user program that runs it on an x86_64 host.
    pub qemu: Option<&'static str>,
}

/// Every target mig-loader is built for.
pub const TARGETS: &[Target] = &[
    Target {
        triple: "x86_64-unknown-linux-musl",
        go_arch: "amd64",
        deb_arch: "amd64",
        qemu: None,
    },
    Target {
        triple: "aarch64-unknown-linux-musl",
        go_arch: "arm64",
        deb_arch: "arm64",
        qemu: Some("qemu-aarch64-static"),
    },
];

/// The target of `triple`.
pub fn target(triple: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.triple == triple)
}

/// The mig-loader a test runs: its path, how to start it, and the GOARCH it reports.
#[derive(Debug, Clone)]
pub struct LoaderUnderTest {
    pub path: PathBuf,
    /// The emulator it runs under, if it is not the host's build.
    pub runner: Option<&'static str>,
    /// The GOARCH it reports (`amd64`, `arm64`).
    pub go_arch: String,
}

impl LoaderUnderTest {
    /// `host_build` (the test's own `CARGO_BIN_EXE_mig-loader`), or the build that
    /// [`ENV_LOADER_TARGET`] names.
    #[track_caller]
    pub fn choose(host_build: &Path) -> LoaderUnderTest {
        let Some(triple) = std::env::var(ENV_LOADER_TARGET)
            .ok()
            .filter(|t| !t.is_empty())
        else {
            return LoaderUnderTest {
                path: host_build.to_path_buf(),
                runner: None,
                go_arch: mig_protocol::statement::Platform::host().arch,
            };
        };
        let t = target(&triple).unwrap_or_else(|| {
            panic!(
                "{ENV_LOADER_TARGET}={triple} is none of {:?}",
                TARGETS.iter().map(|t| t.triple).collect::<Vec<_>>()
            )
        });
        let target_root = crate::target_dir()
            .parent()
            .map_or_else(|| crate::workspace_root().join("target"), Path::to_path_buf);
        let path = target_root.join(t.triple).join("debug/mig-loader");
        assert!(
            path.is_file(),
            "{} is missing: cargo build -p loader-min --bin mig-loader --target {}",
            path.display(),
            t.triple
        );
        LoaderUnderTest {
            path,
            runner: t.qemu,
            go_arch: t.go_arch.to_string(),
        }
    }

    /// A command running `program` (this build, or a copy of it) the way this build runs.
    pub fn command(&self, program: &Path) -> Command {
        match self.runner {
            None => Command::new(program),
            Some(qemu) => {
                let mut c = Command::new(qemu);
                c.arg(program);
                c
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_one_row_and_the_host_build_runs_natively() {
        assert_eq!(
            target("aarch64-unknown-linux-musl").unwrap().go_arch,
            "arm64"
        );
        assert_eq!(target("armv7-unknown-linux-gnueabihf"), None);
        let host = TARGETS
            .iter()
            .find(|t| t.qemu.is_none())
            .expect("the host's target");
        assert_eq!(host.go_arch, mig_protocol::statement::Platform::host().arch);
    }
}
