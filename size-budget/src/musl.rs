//! The release mig-loader, built the way `make mig-loader` does (`loader` profile, each target's
//! own build: `Target::cargo_build`) but unstripped so that size-budget can attribute
//! symbols, then stripped to measure what ships.

use mig_test_support::targets::{Target, TARGETS};
use std::path::PathBuf;
use std::process::Command;

pub struct Built {
    pub unstripped: PathBuf,
    pub stripped: PathBuf,
}

/// The host's target: the build the memory budget and the benchmarks run.
pub const HOST_TRIPLE: &str = mig_test_support::targets::HOST.triple;

/// Every target whose size is budgeted: each of mig-test-support's table.
pub fn targets() -> impl Iterator<Item = &'static Target> {
    TARGETS.iter()
}

/// [`loader_for`] the host's target.
pub fn loader() -> Result<Built, String> {
    loader_for(&mig_test_support::targets::HOST)
}

/// Where [`loader_for`] leaves the stripped copy of `target`'s build, under `target_dir` (the
/// cargo target directory).
pub fn stripped_path(target_dir: &std::path::Path, target: &Target) -> PathBuf {
    let out_dir = target_dir.join("size-budget");
    if target.triple == HOST_TRIPLE {
        out_dir.join("mig-loader.stripped")
    } else {
        out_dir.join(format!("mig-loader-{}.stripped", target.triple))
    }
}

/// Builds mig-loader for `triple` on its own, so that no other member unifies features into it,
/// with the development configuration unless `LOADERCONF` is set. A foreign target is stripped
/// by llvm-strip (binutils' strip reads only the host's ELF; llvm-strip also reads Mach-O and
/// PE), the host's by binutils. A stripped Mach-O loses its ad-hoc code signature: that copy is
/// for measuring only, the shipped build is stripped by the linker (`make mig-loader`).
pub fn loader_for(target: &Target) -> Result<Built, String> {
    let triple = target.triple;
    let root = mig_test_support::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let status = target
        .cargo_build(&cargo)
        .current_dir(&root)
        .env("CARGO_PROFILE_LOADER_STRIP", "false")
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "-p",
            "loader-min",
            "--bin",
            "mig-loader",
            "--profile",
            "loader",
        ])
        .status()
        .map_err(|e| format!("run {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building mig-loader for {triple} failed ({status})"
        ));
    }
    let unstripped = target_dir
        .join(triple)
        .join("loader")
        .join(target.exe("mig-loader"));
    let stripped = stripped_path(&target_dir, target);
    let strip = if triple == HOST_TRIPLE {
        "strip"
    } else {
        "llvm-strip"
    };
    let out_dir = target_dir.join("size-budget");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("mkdir {}: {e}", out_dir.display()))?;
    let st = Command::new(strip)
        .arg("-o")
        .arg(&stripped)
        .arg(&unstripped)
        .status()
        .map_err(|e| format!("run {strip}: {e}"))?;
    if !st.success() {
        return Err(format!("strip {} failed", unstripped.display()));
    }
    Ok(Built {
        unstripped,
        stripped,
    })
}
