//! `cargo run -p size-budget`: builds mig-loader for each target of `musl::targets()` with the
//! `loader` profile, checks what it links (`binary::check`: static ELF, a Mach-O linking only
//! macOS, a PE importing no MinGW runtime), measures its stripped size, prints it (with the
//! largest contributors by crate for ELF builds), and fails when one breaks a rule or is above the
//! budget. (The memory budget is checked by `tests/tests/budget.rs` against a real mig-api.)
#![forbid(unsafe_code)]

use mig_test_support::targets::Target;
use size_budget::{binary, elf, musl, MIG_GO_LOADER, SIZE_BUDGET};
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
    for target in musl::targets() {
        ok &= check(target)?;
    }
    if ok {
        println!("size-budget: every target within budget");
    }
    Ok(ok)
}

fn check(target: &Target) -> Result<bool, String> {
    let triple = target.triple;
    let built = musl::loader_for(target)?;
    let data = std::fs::read(&built.unstripped)
        .map_err(|e| format!("read {}: {e}", built.unstripped.display()))?;
    let checked =
        binary::check(&data, target).map_err(|e| format!("{}: {e}", built.unstripped.display()))?;
    let size = std::fs::metadata(&built.stripped)
        .map_err(|e| format!("stat {}: {e}", built.stripped.display()))?
        .len();

    println!(
        "mig-loader ({triple}, {}/{}, {}, profile loader): {}",
        target.go_os,
        target.go_arch,
        checked.format,
        built.stripped.display()
    );
    println!("  {}", checked.links);
    println!(
        "  stripped size: {size} bytes ({:.2} MiB; budget {:.2} MiB; MIG's Go loader {MIG_GO_LOADER} bytes, ratio {:.2})",
        size as f64 / 1048576.0,
        SIZE_BUDGET as f64 / 1048576.0,
        size as f64 / MIG_GO_LOADER as f64
    );
    if checked.format == "ELF" {
        let mut by_crate: Vec<(String, u64)> = elf::Elf::parse(&data)?
            .bytes_by_crate()?
            .into_iter()
            .collect();
        by_crate.sort_by_key(|c| std::cmp::Reverse(c.1));
        println!("  largest contributors (symbol bytes by crate, before stripping):");
        for (krate, bytes) in by_crate.iter().take(12) {
            println!("    {krate:<24} {bytes:>9}");
        }
    } else {
        println!("  (symbol bytes by crate: ELF builds only)");
    }
    let mut ok = true;
    for p in &checked.problems {
        println!("FAIL: mig-loader for {triple}: {p}");
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
