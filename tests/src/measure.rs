//! Installs of a given size through a real mig-api set up as the operator's walk-through does,
//! measured with size-budget's GNU time wrapper; and the cost of a run that changes nothing
//! (`perf stat` task-clock, callgrind instruction counts), for `examples/loader_costs.rs`.

use crate::deployment::Deployment;
use crate::host::{sha256_hex, Host};
use crate::ApiOptions;
pub use size_budget::measure::{noise, parse_time_report, time_v, Measured};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// A deployment with one active manifest whose `configuration` is `size` incompressible bytes,
/// for loaders reporting `linux`/`go_arch`, and a host whose loader has not run yet.
pub struct Prepared {
    _deployment: Deployment,
    pub host: Host,
    body_sha256: String,
}

impl Prepared {
    pub fn new(go_arch: &str, size: usize) -> Result<Prepared, String> {
        let d = Deployment::start(ApiOptions::default());
        let (_, key) = d.enrol_loader("measured.internal", None);
        let host = Host::new(&d.api.base_url, &key);
        host.with_os_release()?;
        let body = noise(size);
        let agent = host.agent_script("v1", true);
        let archive = d.archive(
            "measured",
            &[("mig-agent", &agent), ("configuration", &body)],
        );
        let id = d.create_manifest(
            "measured",
            "env#>>'{os}'='linux'",
            &archive,
            ("linux", go_arch),
        );
        let status = d.sign(id, &archive, &[&d.admin1, &d.admin2]);
        if status != "active" {
            return Err(format!(
                "the manifest is {status}, not active, after two signatures"
            ));
        }
        Ok(Prepared {
            _deployment: d,
            host,
            body_sha256: sha256_hex(&body),
        })
    }

    /// The loader's arguments after `runner` (an emulator and its arguments, empty for the
    /// host's build): `[runner…,] loader --root ROOT`.
    pub fn args<'a>(&'a self, runner: &'a [&'a str], loader: &'a Path) -> Vec<&'a OsStr> {
        let mut a: Vec<&OsStr> = runner.iter().map(OsStr::new).collect();
        a.extend([
            loader.as_os_str(),
            OsStr::new("--root"),
            self.host.root.as_os_str(),
        ]);
        a
    }

    /// Whether the published file is installed, byte for byte.
    pub fn check_installed(&self) -> Result<(), String> {
        let installed = std::fs::read(self.host.root.join("etc/mig/mig-agent.cfg"))
            .map_err(|e| format!("no install: {e}"))?;
        if sha256_hex(&installed) != self.body_sha256 {
            return Err("the installed file does not match what was published".into());
        }
        Ok(())
    }
}

/// `program args` under GNU time: `args[0]` is run, the rest are its arguments.
fn time_args(args: &[&OsStr]) -> Result<Measured, String> {
    let (program, rest) = args.split_first().ok_or("nothing to run")?;
    Ok(time_v(Path::new(program), rest)?.0)
}

/// One first install of a manifest whose `configuration` is `size` incompressible bytes,
/// measured; the installed file is checked against what was published.
pub fn install_once(loader: &Path, size: usize) -> Result<Measured, String> {
    let p = Prepared::new(mig_test_support::targets::HOST.go_arch, size)?;
    let m = time_args(&p.args(&[], loader))?;
    p.check_installed()?;
    Ok(m)
}

/// [`install_once`] of a build run under `runner` (GNU time then measures the emulator and the
/// loader together); the prepared host is returned for runs that find nothing to change.
pub fn install_under(
    runner: &[&str],
    go_arch: &str,
    loader: &Path,
    size: usize,
) -> Result<(Measured, Prepared), String> {
    let p = Prepared::new(go_arch, size)?;
    let m = time_args(&p.args(runner, loader))?;
    p.check_installed()?;
    Ok((m, p))
}

/// `perf stat -r RUNS -e task-clock` of `args` (which must succeed every time): the mean
/// task-clock in milliseconds and perf's relative spread in percent.
pub fn perf_task_clock(args: &[&OsStr], runs: u32) -> Result<(f64, f64), String> {
    let out = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let st = Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            "task-clock",
            "-r",
            &runs.to_string(),
            "-o",
        ])
        .arg(out.path())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("run perf (apt-get install linux-perf): {e}"))?;
    if !st.success() {
        return Err(format!("perf stat {args:?} failed ({st})"));
    }
    let report = std::fs::read_to_string(out.path()).map_err(|e| e.to_string())?;
    parse_perf_csv(&report).ok_or_else(|| format!("no task-clock in perf's report:\n{report}"))
}

/// perf stat's `-x ,` line for task-clock: `msec,unit,event,spread%,…`.
pub fn parse_perf_csv(report: &str) -> Option<(f64, f64)> {
    let line = report.lines().find(|l| l.contains(",task-clock"))?;
    let mut f = line.split(',');
    let msec = f.next()?.parse().ok()?;
    let spread = f.nth(2)?.trim_end_matches('%').parse().unwrap_or(0.0);
    Some((msec, spread))
}

/// Instructions callgrind counts for one run of `args` (which must succeed).
pub fn callgrind_instructions(args: &[&OsStr]) -> Result<u64, String> {
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--error-exitcode=99",
        ])
        .args(args)
        .output()
        .map_err(|e| format!("run valgrind (apt-get install valgrind): {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("valgrind {args:?} failed: {stderr}"));
    }
    parse_callgrind(&stderr).ok_or_else(|| format!("no callgrind count in:\n{stderr}"))
}

/// callgrind's `==PID== Collected : N` line.
pub fn parse_callgrind(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.split_once("Collected :"))
        .and_then(|(_, n)| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_and_callgrind_reports_are_parsed() {
        let perf = "# started on Mon Dec  7\n\n3.41,msec,task-clock,1.23%,3412345,100.00,0.871,CPUs utilized\n";
        assert_eq!(parse_perf_csv(perf), Some((3.41, 1.23)));
        assert_eq!(parse_perf_csv("nothing"), None);
        let cg = "==22044== Events    : Ir\n==22044== Collected : 126651\n==22044==\n";
        assert_eq!(parse_callgrind(cg), Some(126_651));
        assert_eq!(parse_callgrind("==1== nothing"), None);
    }
}
