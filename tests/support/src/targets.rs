//! The targets mig-loader is built for, and how a test runs a build of another architecture or
//! OS: under Debian's qemu-user (`qemu-user-static`), or Windows builds under `wine` (its prefix
//! prepared by the Makefile's `wine-prefix`). This is the one table of them: size-budget
//! budgets each, and the Makefile's `ARCH` rows are checked against it by a test below.

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
    /// Go's GOOS, as MIG's loaders report it and manifests name it.
    pub go_os: &'static str,
    /// Go's GOARCH, as MIG's loaders report it and manifests name it.
    pub go_arch: &'static str,
    /// Debian's architecture name (the .deb's `Architecture`); `None` for a target that is not
    /// packaged as a .deb.
    pub deb_arch: Option<&'static str>,
    /// The program (and its first arguments) that runs this build on an x86_64 Linux host, before
    /// the loader's own path: empty for the host's build.
    pub runner: &'static [&'static str],
}

impl Target {
    /// The key of this target's rows in the Makefile (`LOADER_TRIPLE_<key> := <triple>`): Go's
    /// `<GOOS>_<GOARCH>`, which `make mig-loader OS=… ARCH=…` spells.
    pub fn make_key(&self) -> String {
        format!("{}_{}", self.go_os, self.go_arch)
    }

    /// The file name of a program built for this target (`mig-loader.exe` on Windows).
    pub fn exe(&self, name: &str) -> String {
        if self.go_os == "windows" {
            format!("{name}.exe")
        } else {
            name.to_string()
        }
    }
}

/// The host's target: the build the memory budget, the benchmarks and the walk-through run.
pub const HOST: Target = Target {
    triple: "x86_64-unknown-linux-musl",
    go_os: "linux",
    go_arch: "amd64",
    deb_arch: Some("amd64"),
    runner: &[],
};

/// Every target mig-loader is built for.
pub const TARGETS: &[Target] = &[
    HOST,
    Target {
        triple: "aarch64-unknown-linux-musl",
        go_os: "linux",
        go_arch: "arm64",
        deb_arch: Some("arm64"),
        runner: &["qemu-aarch64-static"],
    },
    Target {
        triple: "x86_64-pc-windows-gnu",
        go_os: "windows",
        go_arch: "amd64",
        deb_arch: None,
        runner: &["wine"],
    },
];

/// The target of `triple`.
pub fn target(triple: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.triple == triple)
}

/// The target [`ENV_LOADER_TARGET`] names, `None` for the host's build.
#[track_caller]
pub fn chosen() -> Option<Target> {
    let triple = std::env::var(ENV_LOADER_TARGET)
        .ok()
        .filter(|t| !t.is_empty())?;
    Some(target(&triple).unwrap_or_else(|| {
        panic!(
            "{ENV_LOADER_TARGET}={triple} is none of {:?}",
            TARGETS.iter().map(|t| t.triple).collect::<Vec<_>>()
        )
    }))
}

/// A debug build of `name` for `t`, built by `cargo build --target`: it must exist.
#[track_caller]
pub fn debug_build(t: &Target, name: &str, package: &str) -> PathBuf {
    let target_root = crate::target_dir()
        .parent()
        .map_or_else(|| crate::workspace_root().join("target"), Path::to_path_buf);
    let path = target_root.join(t.triple).join("debug").join(t.exe(name));
    assert!(
        path.is_file(),
        "{} is missing: cargo build -p {package} --bin {name} --target {}",
        path.display(),
        t.triple
    );
    path
}

/// The mig-loader a test runs: its path, how to start it, and the platform it reports.
#[derive(Debug, Clone)]
pub struct LoaderUnderTest {
    pub path: PathBuf,
    /// The emulator it runs under (program and first arguments): empty for the host's build.
    pub runner: &'static [&'static str],
    /// The GOOS it reports (`linux`).
    pub go_os: String,
    /// The GOARCH it reports (`amd64`, `arm64`).
    pub go_arch: String,
}

impl LoaderUnderTest {
    /// `host_build` (the test's own `CARGO_BIN_EXE_mig-loader`), or the build that
    /// [`ENV_LOADER_TARGET`] names.
    #[track_caller]
    pub fn choose(host_build: &Path) -> LoaderUnderTest {
        let Some(t) = chosen() else {
            let host = mig_protocol::statement::Platform::host();
            return LoaderUnderTest {
                path: host_build.to_path_buf(),
                runner: &[],
                go_os: host.os,
                go_arch: host.arch,
            };
        };
        let path = debug_build(&t, "mig-loader", "loader-min");
        if t.runner.first() == Some(&"wine") {
            assert!(
                std::env::var_os("WINEPREFIX").is_some_and(|p| Path::new(&p)
                    .join("drive_c/windows/system32/bcryptprimitives.dll")
                    .is_file()),
                "WINEPREFIX must name a prefix made by `make wine-prefix`"
            );
        }
        LoaderUnderTest {
            path,
            runner: t.runner,
            go_os: t.go_os.to_string(),
            go_arch: t.go_arch.to_string(),
        }
    }

    /// A command running `program` (this build, or a copy of it) the way this build runs.
    pub fn command(&self, program: &Path) -> Command {
        match self.runner.split_first() {
            None => Command::new(program),
            Some((emulator, args)) => {
                let mut c = Command::new(emulator);
                c.args(args).arg(program);
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
        assert!(HOST.runner.is_empty());
        let w = target("x86_64-pc-windows-gnu").unwrap();
        assert_eq!((w.go_os, w.runner), ("windows", &["wine"][..]));
        assert_eq!(w.exe("mig-loader"), "mig-loader.exe");
        assert_eq!(HOST.exe("mig-loader"), "mig-loader");
        assert_eq!(HOST.go_arch, mig_protocol::statement::Platform::host().arch);
        assert_eq!(HOST.go_os, mig_protocol::statement::Platform::host().os);
        assert_eq!(TARGETS.iter().filter(|t| t.runner.is_empty()).count(), 1);
    }

    /// `make mig-loader OS=… ARCH=…` and `make deb-loader OS=… ARCH=…` read their own rows
    /// (`LOADER_TRIPLE_<os>_<arch> := <triple>`, `DEB_ARCH_<os>_<arch> := <name>`): they must be
    /// this table.
    #[test]
    fn the_makefile_arch_rows_are_this_table() {
        let path = crate::workspace_root().join("Makefile");
        let makefile = std::fs::read_to_string(&path).expect("the workspace's Makefile");
        let rows = |prefix: &str| -> Vec<(String, String)> {
            let mut rows: Vec<(String, String)> = makefile
                .lines()
                .filter_map(|l| l.strip_prefix(prefix))
                .filter_map(|l| l.split_once(":="))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            rows.sort();
            rows
        };
        let mut triples: Vec<(String, String)> = TARGETS
            .iter()
            .map(|t| (t.make_key(), t.triple.to_string()))
            .collect();
        triples.sort();
        let mut debs: Vec<(String, String)> = TARGETS
            .iter()
            .filter_map(|t| Some((t.make_key(), t.deb_arch?.to_string())))
            .collect();
        debs.sort();
        assert_eq!(rows("LOADER_TRIPLE_"), triples, "{}", path.display());
        assert_eq!(rows("DEB_ARCH_"), debs, "{}", path.display());
    }
}
