//! The targets mig-loader is built for, and how a test runs a build of another architecture or
//! OS: under Debian's qemu-user (`qemu-user-static`), Windows builds under `wine` (its prefix
//! prepared by the Makefile's `wine-prefix`), or not at all here (macOS). This is the one table of
//! them: size-budget budgets each, and the Makefile's `OS`/`ARCH` rows are checked against it by a
//! test below.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Which build of mig-loader the loader's suite runs: the host's, unless this names a target of
/// [`TARGETS`] whose debug build is then taken from `target/<triple>/debug/mig-loader`.
pub const ENV_LOADER_TARGET: &str = "MIG_TEST_LOADER_TARGET";

/// Where a build runs on this project's x86_64 Linux hosts (developers' and CI's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// The host's own build.
    Natively,
    /// Under an emulator: the program and its first arguments, before the loader's own path.
    Under(&'static [&'static str]),
    /// Nowhere here (macOS: no emulator runs a Mach-O on Linux): built, its headers checked and
    /// its OS-specific logic unit-tested on Linux; never run (docs/design.md §2.7).
    NotHere,
}

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
    /// Debian's architecture name (the .deb's `Architecture`); `None`: no .deb is built.
    pub deb_arch: Option<&'static str>,
    /// Whether and how this build runs here.
    pub runs: Runs,
    /// How it is built.
    pub build: Build,
}

/// How cargo builds a target (the Makefile's `LOADER_BUILD_<key>` rows name the last two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `cargo build`: rustup ships the target's std, and a C compiler for ring is installed.
    Cargo,
    /// `cargo zigbuild` (`zig` in the Makefile): zig links Mach-O without Apple's SDK and builds
    /// ring's C for macOS.
    Zig,
    /// `cargo zigbuild -Z build-std=std,panic_abort` (`zig-std` in the Makefile): rustup ships no
    /// standard library for the triple, so std is built from the pinned toolchain's `rust-src`
    /// (allowed on stable by `RUSTC_BOOTSTRAP=1`), and zig supplies ring's C compiler and the musl
    /// C library and crt objects for the target's CPU.
    ZigStdFromSource,
}

impl Build {
    /// The Makefile's word for it (`LOADER_BUILD_<key> := <word>`), `None` for plain cargo.
    pub fn make_word(self) -> Option<&'static str> {
        match self {
            Build::Cargo => None,
            Build::Zig => Some("zig"),
            Build::ZigStdFromSource => Some("zig-std"),
        }
    }
}

/// What cargo sets, besides `CARGO_PKG_*`, for the package whose build script, test or program
/// it runs.
const PACKAGE_VARS: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];

impl Target {
    /// The key of this target's rows in the Makefile (`LOADER_TRIPLE_<key> := <triple>`): Go's
    /// `<GOOS>_<GOARCH><GOARM>`, which `make mig-loader OS=… ARCH=… [GOARM=…]` spells.
    pub fn make_key(&self) -> String {
        format!("{}_{}{}", self.go_os, self.go_arch, self.go_arm)
    }

    /// `cargo build` for this target (`cargo zigbuild`, with `-Z build-std=…` when its std is
    /// built from source), without the package or profile arguments.
    pub fn cargo_build(&self, cargo: &str) -> Command {
        let mut c = Command::new(cargo);
        // A test or `cargo run` inherits what cargo sets for the package it runs (its manifest
        // directory, name and version). Build scripts that read them declare them (ring:
        // `rerun-if-env-changed=CARGO_MANIFEST_DIR`…), and cargo compares them with its own
        // environment: from a test, every dependency of ring would be rebuilt, a whole release
        // build again (tests/tests/budget.rs after `make size-budget-builds`).
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("CARGO_PKG_") || PACKAGE_VARS.contains(&n.as_ref()) {
                c.env_remove(&name);
            }
        }
        match self.build {
            Build::Cargo => c.arg("build"),
            Build::Zig => c.arg("zigbuild"),
            Build::ZigStdFromSource => {
                c.env("RUSTC_BOOTSTRAP", "1")
                    .args(["zigbuild", "-Z", "build-std=std,panic_abort"])
            }
        };
        c.args(["--target", self.triple]);
        c
    }

    /// The file name of program `name` on this target's OS.
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
    go_arm: "",
    deb_arch: Some("amd64"),
    runs: Runs::Natively,
    build: Build::Cargo,
};

/// Every target mig-loader is built for.
pub const TARGETS: &[Target] = &[
    HOST,
    Target {
        triple: "aarch64-unknown-linux-musl",
        go_os: "linux",
        go_arch: "arm64",
        go_arm: "",
        deb_arch: Some("arm64"),
        runs: Runs::Under(&["qemu-aarch64-static"]),
        build: Build::Cargo,
    },
    // ARMv7 with hard float: Raspberry Pi 2 and later in 32-bit mode; Debian's armhf baseline.
    Target {
        triple: "armv7-unknown-linux-musleabihf",
        go_os: "linux",
        go_arch: "arm",
        go_arm: "7",
        deb_arch: Some("armhf"),
        runs: Runs::Under(&["qemu-arm-static"]),
        build: Build::ZigStdFromSource,
    },
    // ARMv6 with hard float: Raspberry Pi 1 and Zero. qemu's default CPU would also run ARMv7
    // instructions; the ARM1176 (the Pi 1's core) refuses them, so the suite proves the build
    // runs on that core.
    Target {
        triple: "arm-unknown-linux-musleabihf",
        go_os: "linux",
        go_arch: "arm",
        go_arm: "6",
        deb_arch: Some("armhf"),
        runs: Runs::Under(&["qemu-arm-static", "-cpu", "arm1176"]),
        build: Build::ZigStdFromSource,
    },
    Target {
        triple: "aarch64-apple-darwin",
        go_os: "darwin",
        go_arch: "arm64",
        go_arm: "",
        deb_arch: None,
        runs: Runs::NotHere,
        build: Build::Zig,
    },
    Target {
        triple: "x86_64-apple-darwin",
        go_os: "darwin",
        go_arch: "amd64",
        go_arm: "",
        deb_arch: None,
        runs: Runs::NotHere,
        build: Build::Zig,
    },
    Target {
        triple: "x86_64-pc-windows-gnu",
        go_os: "windows",
        go_arch: "amd64",
        go_arm: "",
        deb_arch: None,
        runs: Runs::Under(&["wine"]),
        build: Build::Cargo,
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

/// A debug build of `name` (of cargo package `package`) for `t`: it must exist.
#[track_caller]
pub fn debug_build(t: &Target, name: &str, package: &str) -> PathBuf {
    let target_root = crate::target_dir()
        .parent()
        .map_or_else(|| crate::workspace_root().join("target"), Path::to_path_buf);
    let path = target_root.join(t.triple).join("debug").join(t.exe(name));
    assert!(
        path.is_file(),
        "{} is missing: {:?} -p {package} --bin {name}",
        path.display(),
        t.cargo_build("cargo")
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
        let runner = match t.runs {
            Runs::Natively => &[][..],
            Runs::Under(runner) => runner,
            Runs::NotHere => panic!(
                "{ENV_LOADER_TARGET}={}: a {}/{} build cannot run on this host",
                t.triple, t.go_os, t.go_arch
            ),
        };
        let path = debug_build(&t, "mig-loader", "loader-min");
        if runner.first() == Some(&"wine") {
            assert!(
                std::env::var_os("WINEPREFIX").is_some_and(|p| Path::new(&p)
                    .join("drive_c/windows/system32/bcryptprimitives.dll")
                    .is_file()),
                "WINEPREFIX must name a prefix made by `make wine-prefix`"
            );
        }
        LoaderUnderTest {
            path,
            runner,
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
        assert_eq!(HOST.runs, Runs::Natively);
        let w = target("x86_64-pc-windows-gnu").unwrap();
        assert_eq!((w.go_os, w.runs), ("windows", Runs::Under(&["wine"])));
        assert_eq!(w.exe("mig-loader"), "mig-loader.exe");
        assert_eq!(HOST.exe("mig-loader"), "mig-loader");
        assert_eq!(HOST.go_arch, mig_protocol::statement::Platform::host().arch);
        assert_eq!(HOST.go_os, mig_protocol::statement::Platform::host().os);
        assert_eq!(
            TARGETS.iter().filter(|t| t.runs == Runs::Natively).count(),
            1
        );
        let mut keys: Vec<String> = TARGETS.iter().map(Target::make_key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), TARGETS.len());
    }

    /// macOS builds are Mach-O: nothing here runs them, and no .deb is made of them.
    #[test]
    fn darwin_targets_are_built_with_zig_and_never_run_here() {
        for arch in ["arm64", "amd64"] {
            let t = TARGETS
                .iter()
                .find(|t| t.go_os == "darwin" && t.go_arch == arch)
                .unwrap_or_else(|| panic!("no darwin/{arch} row"));
            assert!(t.triple.ends_with("-apple-darwin"), "{}", t.triple);
            assert_eq!(t.runs, Runs::NotHere);
            assert_eq!(t.deb_arch, None);
            assert_eq!(t.build, Build::Zig);
        }
        for t in TARGETS.iter().filter(|t| t.go_os == "linux") {
            assert_ne!(t.build, Build::Zig, "{}", t.triple);
            assert!(t.deb_arch.is_some(), "{}", t.triple);
        }
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
        assert_eq!(
            v6.runs,
            Runs::Under(&["qemu-arm-static", "-cpu", "arm1176"])
        );
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
            .filter_map(|t| Some((t.make_key(), t.deb_arch?.to_string())))
            .collect();
        debs.sort();
        // How it is built, where it is not plain `cargo build`.
        let mut builds: Vec<(String, String)> = TARGETS
            .iter()
            .filter_map(|t| Some((t.make_key(), t.build.make_word()?.to_string())))
            .collect();
        builds.sort();
        assert_eq!(rows("LOADER_TRIPLE_"), triples, "{}", path.display());
        assert_eq!(rows("DEB_ARCH_"), debs, "{}", path.display());
        assert_eq!(rows("LOADER_BUILD_"), builds, "{}", path.display());
    }
}
