//! The release mig-loader, built the way `make mig-loader` does (static musl, `loader` profile)
//! but unstripped so that size-budget can attribute symbols, then stripped with binutils to
//! measure what ships.

use std::path::PathBuf;
use std::process::Command;

pub struct Built {
    pub unstripped: PathBuf,
    pub stripped: PathBuf,
}

/// The host's target: the build the memory budget and the benchmarks run.
pub const HOST_TRIPLE: &str = mig_test_support::targets::HOST.triple;

/// Every target whose size is budgeted: each Linux row of mig-test-support's table (this
/// measures ELF files; a Windows build is a PE file).
pub fn triples() -> impl Iterator<Item = &'static str> {
    mig_test_support::targets::TARGETS
        .iter()
        .filter(|t| t.go_os == "linux")
        .map(|t| t.triple)
}

/// [`loader_for`] the host's target.
pub fn loader() -> Result<Built, String> {
    loader_for(HOST_TRIPLE)
}

/// Builds mig-loader for `triple` on its own, so that no other member unifies features into it,
/// with the development configuration unless `LOADERCONF` is set. A foreign target is stripped
/// by llvm-strip (binutils' strip reads only the host's), the host's by binutils.
pub fn loader_for(triple: &str) -> Result<Built, String> {
    let root = mig_test_support::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let status = Command::new(&cargo)
        .current_dir(&root)
        .env("CARGO_PROFILE_LOADER_STRIP", "false")
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "-p",
            "loader-min",
            "--bin",
            "mig-loader",
            "--profile",
            "loader",
        ])
        .args(["--target", triple])
        .status()
        .map_err(|e| format!("run {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("building mig-loader failed ({status})"));
    }
    let unstripped = target_dir.join(triple).join("loader/mig-loader");
    let out_dir = target_dir.join("size-budget");
    let (stripped, strip) = if triple == HOST_TRIPLE {
        (out_dir.join("mig-loader.stripped"), "strip")
    } else {
        (
            out_dir.join(format!("mig-loader-{triple}.stripped")),
            "llvm-strip",
        )
    };
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
