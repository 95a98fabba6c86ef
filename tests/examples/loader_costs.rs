//! `cargo run -p size-budget && cargo build -p api -p console --bins && cargo run -p e2e --example
//! loader_costs [TRIPLE…]`: BENCHMARKS.md's per-target table of mig-loader. For each Linux build
//! that runs here (natively or under qemu-user; only the triples named, when any are),
//! size-budget's stripped `loader`-profile build:
//! - its stripped size;
//! - peak RSS of a first install of a 64 MiB file through a real mig-api (GNU time; under qemu
//!   it measures qemu and the loader together);
//! - a run that changes nothing, on that host (64 MiB installed) and on one with a 1 MiB
//!   `configuration` (the system benchmark's size): `perf stat -r 20 -e task-clock` (under qemu:
//!   the emulator's CPU, translation included), and callgrind's instruction count for the host's
//!   build (valgrind cannot run another architecture's code). Each host first waits until its
//!   installed files have settled and runs the loader once, so that the runs measured are the
//!   steady state of a timer tick: the files' sha256 recorded, none read (docs/design.md §4.9).
//!
//! Needs `perf` (linux-perf), `valgrind`, GNU `time` and qemu-user-static.

use e2e::measure::{callgrind_instructions, install_under, perf_task_clock, Prepared};
use mig_test_support::targets::{Runs, TARGETS};
use std::path::Path;
use std::process::ExitCode;

const INSTALL: usize = 64 * 1024 * 1024;
/// The installed file of the no-change runs: the system benchmark's (tests/benches/system.rs).
const NO_CHANGE: usize = 1024 * 1024;
const RUNS: u32 = 20;
/// A wait longer than loader-min's `known::SETTLE_SECS` (2 s): the files an install renames into
/// place are recorded by the first run after that (docs/design.md §4.9).
const SETTLED: std::time::Duration = std::time::Duration::from_secs(3);

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
    let only: Vec<String> = std::env::args().skip(1).collect();
    let target_dir = mig_test_support::target_dir()
        .parent()
        .map(std::path::Path::to_path_buf)
        .ok_or("no target directory")?;
    println!("| target | stripped size | peak RSS, 64 MiB install | no-change run, 64 MiB installed: task-clock (perf, {RUNS} runs) | instructions (callgrind) | no-change run, 1 MiB installed: task-clock | instructions |");
    println!("|---|---|---|---|---|---|---|");
    for t in TARGETS.iter().filter(|t| t.go_os == "linux") {
        if !only.is_empty() && !only.iter().any(|o| o == t.triple) {
            continue;
        }
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
        let (installed, big) = install_under(runner, t.go_arch, &loader, INSTALL)?;
        let (_, small) = install_under(runner, t.go_arch, &loader, NO_CHANGE)?;
        let under = if runner.is_empty() {
            String::new()
        } else {
            format!(" (under `{}`: qemu + loader)", runner.join(" "))
        };
        let big = no_change(&big, runner, &loader)?;
        let small = no_change(&small, runner, &loader)?;
        println!(
            "| {} {}{} | {size} B | {} KiB{under} | {big} | {small} |",
            t.triple, t.go_arch, t.go_arm, installed.peak_kib,
        );
    }
    Ok(())
}

/// The task-clock and instruction cells of the no-change runs on `host`.
fn no_change(host: &Prepared, runner: &[&str], loader: &Path) -> Result<String, String> {
    let args = host.args(runner, loader);
    std::thread::sleep(SETTLED);
    perf_task_clock(&args, 1)?;
    let (msec, spread) = perf_task_clock(&args, RUNS)?;
    // Each run must have found nothing to change.
    host.check_installed()?;
    let instructions = if runner.is_empty() {
        callgrind_instructions(&args)?.to_string()
    } else {
        "— (emulated)".to_string()
    };
    let under = if runner.is_empty() { "" } else { " (qemu)" };
    Ok(format!(
        "{msec:.2} ms ±{spread:.1} %{under} | {instructions}"
    ))
}
