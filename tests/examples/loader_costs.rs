//! `cargo run -p size-budget && cargo build -p api -p console --bins && cargo run -p e2e --example
//! loader_costs`: BENCHMARKS.md's per-target table of mig-loader. For each Linux build that runs
//! here (natively or under qemu-user), size-budget's stripped `loader`-profile build:
//! - its stripped size;
//! - peak RSS of a first install of a 64 MiB file through a real mig-api (GNU time; under qemu
//!   it measures qemu and the loader together);
//! - a run that changes nothing (the manifest it already has, with a 1 MiB `configuration`: every
//!   run hashes each installed file, docs/design.md §4.9, so the installed size is part of the
//!   cost): `perf stat -r 20 -e task-clock` (under qemu: the emulator's CPU, translation
//!   included), and callgrind's instruction count for the host's build (valgrind cannot run
//!   another architecture's code).
//!
//! Needs `perf` (linux-perf), `valgrind`, GNU `time` and qemu-user-static.

use e2e::measure::{callgrind_instructions, install_under, perf_task_clock};
use mig_test_support::targets::{Runs, TARGETS};
use std::process::ExitCode;

const INSTALL: usize = 64 * 1024 * 1024;
/// The installed file of the no-change runs: the system benchmark's (tests/benches/system.rs).
const NO_CHANGE: usize = 1024 * 1024;
const RUNS: u32 = 20;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loader_costs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let target_dir = mig_test_support::target_dir()
        .parent()
        .map(std::path::Path::to_path_buf)
        .ok_or("no target directory")?;
    println!("| target | stripped size | peak RSS, 64 MiB install | no-change run, 1 MiB installed: task-clock (perf, {RUNS} runs) | the same: instructions (callgrind) |");
    println!("|---|---|---|---|---|");
    for t in TARGETS.iter().filter(|t| t.go_os == "linux") {
        let runner: &[&str] = match t.runs {
            Runs::Natively => &[],
            Runs::Under(r) => r,
            Runs::NotHere => continue,
        };
        let loader = size_budget::musl::stripped_path(&target_dir, t);
        let size = std::fs::metadata(&loader)
            .map_err(|e| {
                format!(
                    "{}: {e} (run `cargo run -p size-budget` first)",
                    loader.display()
                )
            })?
            .len();
        let (installed, _) = install_under(runner, t.go_arch, &loader, INSTALL)?;
        let (_, prepared) = install_under(runner, t.go_arch, &loader, NO_CHANGE)?;
        let args = prepared.args(runner, &loader);
        let (msec, spread) = perf_task_clock(&args, RUNS)?;
        // Each run must have found nothing to change.
        prepared.check_installed()?;
        let instructions = if runner.is_empty() {
            callgrind_instructions(&args)?.to_string()
        } else {
            "— (emulated)".to_string()
        };
        let under = if runner.is_empty() {
            String::new()
        } else {
            format!(" (under `{}`: qemu + loader)", runner.join(" "))
        };
        println!(
            "| {} {}{} | {size} B | {} KiB{under} | {msec:.2} ms ±{spread:.1} %{under} | {instructions} |",
            t.triple,
            t.go_arch,
            t.go_arm,
            installed.peak_kib,
        );
    }
    Ok(())
}
