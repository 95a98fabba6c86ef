//! `cargo run -p size-budget`: builds mig-loader for each target of `musl::triples()` with the
//! `loader` profile, checks that each is static, measures its stripped size, prints it with the
//! largest contributors, and fails when one is dynamic or above the budget. (The memory budget is checked
//! by `tests/tests/budget.rs` against a real mig-api.)
#![forbid(unsafe_code)]

use size_budget::{elf, musl, MIG_GO_LOADER, SIZE_BUDGET};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("size-budget: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool, String> {
    let mut ok = true;
    for triple in musl::triples() {
        ok &= check(triple)?;
    }
    if ok {
        println!("size-budget: every target within budget");
    }
    Ok(ok)
}

fn check(triple: &str) -> Result<bool, String> {
    let built = musl::loader_for(triple)?;
    let data = std::fs::read(&built.unstripped)
        .map_err(|e| format!("read {}: {e}", built.unstripped.display()))?;
    let elf = elf::Elf::parse(&data)?;
    let is_static = elf.is_static()?;
    let mut by_crate: Vec<(String, u64)> = elf.bytes_by_crate()?.into_iter().collect();
    by_crate.sort_by_key(|c| std::cmp::Reverse(c.1));
    let size = std::fs::metadata(&built.stripped)
        .map_err(|e| format!("stat {}: {e}", built.stripped.display()))?
        .len();

    println!(
        "mig-loader ({triple}, profile loader): {}",
        built.stripped.display()
    );
    println!(
        "  static: {}",
        if is_static {
            "yes (no PT_INTERP)"
        } else {
            "NO"
        }
    );
    println!(
        "  stripped size: {size} bytes ({:.2} MiB; budget {:.2} MiB; MIG's Go loader {MIG_GO_LOADER} bytes, ratio {:.2})",
        size as f64 / 1048576.0,
        SIZE_BUDGET as f64 / 1048576.0,
        size as f64 / MIG_GO_LOADER as f64
    );
    println!("  largest contributors (symbol bytes by crate, before stripping):");
    for (krate, bytes) in by_crate.iter().take(12) {
        println!("    {krate:<24} {bytes:>9}");
    }
    let mut ok = true;
    if !is_static {
        println!("FAIL: mig-loader for {triple} is dynamically linked");
        ok = false;
    }
    if size > SIZE_BUDGET {
        println!(
            "FAIL: stripped size {size} for {triple} exceeds the budget of {SIZE_BUDGET} bytes"
        );
        ok = false;
    }
    Ok(ok)
}
