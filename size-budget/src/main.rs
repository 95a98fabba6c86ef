//! `cargo run -p size-budget`: builds mig-loader for x86_64-unknown-linux-musl with the `loader`
//! profile, checks that it is static, measures its stripped size and its peak RSS while installing
//! a 64 MiB file through a local mig-api, prints both with the largest contributors, and fails when
//! a budget is exceeded.
#![forbid(unsafe_code)]

mod elf;

use std::process::ExitCode;

/// docs/design.md §9.1: at most 3 MiB stripped (MIG's Go loader: 5.95 MB).
const SIZE_BUDGET: u64 = 3 * 1024 * 1024;
/// docs/design.md §9.1: at most 8 MiB peak RSS for a run that installs a 64 MiB file.
const RSS_BUDGET_KIB: u64 = 8 * 1024;
/// MIG's Go loader, stripped, for the comparison line.
const MIG_GO_LOADER: u64 = 5_950_000;

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
    let only_size = std::env::args().any(|a| a == "--size-only");
    let built = e2e::musl::loader()?;
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
        "mig-loader (x86_64-unknown-linux-musl, profile loader): {}",
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
        println!("FAIL: mig-loader is dynamically linked");
        ok = false;
    }
    if size > SIZE_BUDGET {
        println!("FAIL: stripped size {size} exceeds the budget of {SIZE_BUDGET} bytes");
        ok = false;
    }
    if only_size {
        return Ok(ok);
    }
    let rss = e2e::measure::install_once(&built.stripped, 64 * 1024 * 1024)?;
    println!(
        "  peak RSS installing a 64 MiB file through mig-api: {} KiB (budget {RSS_BUDGET_KIB} KiB; CPU {:.2} s user, {:.2} s system)",
        rss.peak_kib, rss.user_s, rss.system_s
    );
    if rss.peak_kib > RSS_BUDGET_KIB {
        println!(
            "FAIL: peak RSS {} KiB exceeds the budget of {RSS_BUDGET_KIB} KiB",
            rss.peak_kib
        );
        ok = false;
    }
    if ok {
        println!("size-budget: within budget");
    }
    Ok(ok)
}
