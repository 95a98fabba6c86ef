//! Peak RSS of a real mig-loader run that installs a 64 MiB file through a real mig-api, set up
//! as the operator's walk-through does (two administrators sign through mig-console).

use e2e::deployment::Deployment;
use e2e::host::{sha256_hex, Host};
use e2e::ApiOptions;
use std::path::Path;

/// The file the measured run installs.
const BIG: usize = 64 * 1024 * 1024;

pub struct Rss {
    pub peak_kib: u64,
    pub summary: String,
}

/// Incompressible bytes (xorshift64*), so the archive and the transfer are really 64 MiB.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `Maximum resident set size (kbytes): N` from GNU time's `-v` report.
pub fn parse_max_rss(report: &str) -> Option<u64> {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
}

pub fn peak_rss_installing_64_mib(loader: &Path) -> Result<Rss, String> {
    if !Path::new("/usr/bin/time").is_file() {
        return Err("/usr/bin/time is missing (apt-get install time)".into());
    }
    let d = Deployment::start(ApiOptions::default());
    let (_, key) = d.enrol_loader("size-budget.internal", None);
    let host = Host::new(&d.api.base_url, &key);
    let big = noise(BIG);
    let agent = host.agent_script("v1", true);
    let archive = d.archive(
        "size-budget",
        &[("mig-agent", &agent), ("configuration", &big)],
    );
    let id = d.create_manifest(
        "64 MiB",
        "env#>>'{os}'='linux'",
        &archive,
        ("linux", "amd64"),
    );
    let status = d.sign(id, &archive, &[&d.admin1, &d.admin2]);
    if status != "active" {
        return Err(format!(
            "the manifest is {status}, not active, after two signatures"
        ));
    }
    let mut cmd = std::process::Command::new("/usr/bin/time");
    cmd.arg("-v").arg(loader).arg("--root").arg(&host.root);
    let out = e2e::run(cmd, None, e2e::host::RUN_TIMEOUT);
    if !out.success() {
        return Err(format!("the measured mig-loader run failed: {out}"));
    }
    let installed = std::fs::read(host.root.join("etc/mig/mig-agent.cfg"))
        .map_err(|e| format!("no install: {e}"))?;
    if sha256_hex(&installed) != sha256_hex(&big) {
        return Err("the installed 64 MiB file does not match what was published".into());
    }
    let peak_kib = parse_max_rss(&out.stderr)
        .ok_or_else(|| format!("no RSS in GNU time's report:\n{}", out.stderr))?;
    let cpu: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("User time") || l.contains("System time"))
        .map(str::trim)
        .collect();
    Ok(Rss {
        peak_kib,
        summary: format!("manifest {id}, {} installed; {}", BIG, cpu.join(", ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_time_report_is_parsed() {
        let r = "\tCommand being timed: \"x\"\n\tMaximum resident set size (kbytes): 2244\n\tExit status: 0\n";
        assert_eq!(parse_max_rss(r), Some(2244));
        assert_eq!(parse_max_rss("nothing"), None);
    }

    #[test]
    fn noise_is_deterministic_and_not_constant() {
        let a = noise(4096);
        assert_eq!(a, noise(4096));
        assert!(a.windows(2).filter(|w| w[0] == w[1]).count() < 100);
    }
}
