//! The targets mig-loader is built for, and how a test runs a build of another architecture:
//! under Debian's qemu-user (`qemu-user-static`). This is the one table of them: size-budget
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
    /// Go's GOARM for `arm` (`7`, `6`), empty for every other GOARCH: `make mig-loader ARCH=arm
    /// GOARM=6` picks the ARMv6 build. The loader reports `arm` either way, as MIG's does.
    pub go_arm: &'static str,
    /// Debian's architecture name (the .deb's `Architecture`).
    pub deb_arch: &'static str,
    /// The program (and its first arguments) that runs this build on an x86_64 Linux host, before
    /// the loader's own path: empty for the host's build.
    pub runner: &'static [&'static str],
    /// rustup ships no standard library for this triple: `std` is built from the toolchain's
    /// `rust-src` (`-Z build-std`, allowed on the pinned stable by `RUSTC_BOOTSTRAP=1`), and zig
    /// (`cargo zigbuild`) supplies the C compiler for ring and the musl C library and crt objects
    /// for the target's CPU. `.ci/run` installs both; the Makefile's `LOADER_STD_<key>` rows name
    /// these targets.
    pub std_from_source: bool,
}

/// The cargo subcommand and its arguments that build a target whose std is built from source.
pub const BUILD_STD: &[&str] = &["zigbuild", "-Z", "build-std=std,panic_abort"];

impl Target {
    /// The key of this target's rows in the Makefile (`LOADER_TRIPLE_<key> := <triple>`): Go's
    /// `<GOOS>_<GOARCH><GOARM>`, which `make mig-loader OS=… ARCH=… [GOARM=…]` spells.
    pub fn make_key(&self) -> String {
        format!("{}_{}{}", self.go_os, self.go_arch, self.go_arm)
    }

    /// `cargo build` for this target (`cargo zigbuild -Z build-std=…` when its std is built from
    /// source), without the package or profile arguments.
    pub fn cargo_build(&self, cargo: &str) -> Command {
        let mut c = Command::new(cargo);
        if self.std_from_source {
            c.env("RUSTC_BOOTSTRAP", "1").args(BUILD_STD);
        } else {
            c.arg("build");
        }
        c.args(["--target", self.triple]);
        c
    }
}

/// The host's target: the build the memory budget, the benchmarks and the walk-through run.
pub const HOST: Target = Target {
    triple: "x86_64-unknown-linux-musl",
    go_os: "linux",
    go_arch: "amd64",
    go_arm: "",
    deb_arch: "amd64",
    runner: &[],
    std_from_source: false,
};

/// Every target mig-loader is built for.
pub const TARGETS: &[Target] = &[
    HOST,
    Target {
        triple: "aarch64-unknown-linux-musl",
        go_os: "linux",
        go_arch: "arm64",
        go_arm: "",
        deb_arch: "arm64",
        runner: &["qemu-aarch64-static"],
        std_from_source: false,
    },
    // ARMv7 with hard float: Raspberry Pi 2 and later in 32-bit mode; Debian's armhf baseline.
    Target {
        triple: "armv7-unknown-linux-musleabihf",
        go_os: "linux",
        go_arch: "arm",
        go_arm: "7",
        deb_arch: "armhf",
        runner: &["qemu-arm-static"],
        std_from_source: true,
    },
    // ARMv6 with hard float: Raspberry Pi 1 and Zero. qemu's default CPU would also run ARMv7
    // instructions; the ARM1176 (the Pi 1's core) refuses them, so the suite proves the build
    // runs on that core.
    Target {
        triple: "arm-unknown-linux-musleabihf",
        go_os: "linux",
        go_arch: "arm",
        go_arm: "6",
        deb_arch: "armhf",
        runner: &["qemu-arm-static", "-cpu", "arm1176"],
        std_from_source: true,
    },
];

/// The target of `triple`.
pub fn target(triple: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.triple == triple)
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
        let Some(triple) = std::env::var(ENV_LOADER_TARGET)
            .ok()
            .filter(|t| !t.is_empty())
        else {
            let host = mig_protocol::statement::Platform::host();
            return LoaderUnderTest {
                path: host_build.to_path_buf(),
                runner: &[],
                go_os: host.os,
                go_arch: host.arch,
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
            "{} is missing: {:?} -p loader-min --bin mig-loader",
            path.display(),
            t.cargo_build("cargo")
        );
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
        assert_eq!(HOST.go_arch, mig_protocol::statement::Platform::host().arch);
        assert_eq!(HOST.go_os, mig_protocol::statement::Platform::host().os);
        assert_eq!(TARGETS.iter().filter(|t| t.runner.is_empty()).count(), 1);
        let mut keys: Vec<String> = TARGETS.iter().map(Target::make_key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys.len(),
            TARGETS.len(),
            "two targets share a Makefile key"
        );
    }

    /// The two ARM builds report Go's `arm` (what `std::env::consts::ARCH` says there, mapped by
    /// `Platform::host`) and are told apart by GOARM only.
    #[test]
    fn arm_builds_are_goarch_arm_with_goarm_7_and_6() {
        let v7 = target("armv7-unknown-linux-musleabihf").unwrap();
        let v6 = target("arm-unknown-linux-musleabihf").unwrap();
        assert_eq!(
            (v7.go_arch, v7.go_arm, v7.make_key().as_str()),
            ("arm", "7", "linux_arm7")
        );
        assert_eq!(
            (v6.go_arch, v6.go_arm, v6.make_key().as_str()),
            ("arm", "6", "linux_arm6")
        );
        assert_eq!(v6.runner, &["qemu-arm-static", "-cpu", "arm1176"]);
        let args = |t: Target| {
            let c = t.cargo_build("cargo");
            c.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            args(v6),
            [
                "zigbuild",
                "-Z",
                "build-std=std,panic_abort",
                "--target",
                "arm-unknown-linux-musleabihf"
            ]
        );
        assert_eq!(
            args(HOST),
            ["build", "--target", "x86_64-unknown-linux-musl"]
        );
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
            .map(|t| (t.make_key(), t.deb_arch.to_string()))
            .collect();
        debs.sort();
        assert_eq!(rows("LOADER_TRIPLE_"), triples, "{}", path.display());
        assert_eq!(rows("DEB_ARCH_"), debs, "{}", path.display());
        let mut from_source: Vec<(String, String)> = TARGETS
            .iter()
            .filter(|t| t.std_from_source)
            .map(|t| (t.make_key(), "source".to_string()))
            .collect();
        from_source.sort();
        assert_eq!(rows("LOADER_STD_"), from_source, "{}", path.display());
    }
}
