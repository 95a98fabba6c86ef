//! Measuring real mig-loader runs with GNU time (`/usr/bin/time -v`): peak RSS and CPU; and
//! incompressible bytes, so that measured installs and transfers are really as large as stated.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long one measured run may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// What GNU time reported for one run.
pub struct Measured {
    pub peak_kib: u64,
    pub user_s: f64,
    pub system_s: f64,
}

/// Incompressible bytes (mig-test-support's, shared with the API's tests).
pub use mig_test_support::noise;

fn field(report: &str, name: &str) -> Option<String> {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .map(|v| v.trim().to_string())
}

/// Reads GNU time's `-v` report.
pub fn parse_time_report(report: &str) -> Option<Measured> {
    Some(Measured {
        peak_kib: field(report, "Maximum resident set size (kbytes):")?
            .parse()
            .ok()?,
        user_s: field(report, "User time (seconds):")?.parse().ok()?,
        system_s: field(report, "System time (seconds):")?.parse().ok()?,
    })
}

/// Runs `program args` under `/usr/bin/time -v`; fails when the program fails.
pub fn time_v(
    program: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<(Measured, mig_test_support::Output), String> {
    if !Path::new("/usr/bin/time").is_file() {
        return Err("/usr/bin/time is missing (apt-get install time)".into());
    }
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v").arg(program).args(args);
    let out = mig_test_support::run(cmd, None, RUN_TIMEOUT);
    if !out.success() {
        return Err(format!("the measured run failed: {out}"));
    }
    let m = parse_time_report(&out.stderr)
        .ok_or_else(|| format!("no GNU time report in:\n{}", out.stderr))?;
    Ok((m, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_time_report_is_parsed() {
        let r = "\tCommand being timed: \"x\"\n\tUser time (seconds): 0.11\n\tSystem time (seconds): 0.04\n\tMaximum resident set size (kbytes): 2244\n";
        let m = parse_time_report(r).unwrap();
        assert_eq!(m.peak_kib, 2244);
        assert!((m.user_s - 0.11).abs() < 1e-9 && (m.system_s - 0.04).abs() < 1e-9);
        assert!(parse_time_report("nothing").is_none());
    }

    #[test]
    fn noise_is_deterministic_and_not_constant() {
        let a = noise(4096);
        assert_eq!(a, noise(4096));
        assert!(a.windows(2).filter(|w| w[0] == w[1]).count() < 100);
    }
}
