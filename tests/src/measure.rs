//! Installs of a given size through a real mig-api set up as the operator's walk-through does,
//! measured with size-budget's GNU time wrapper.

use crate::deployment::Deployment;
use crate::host::{sha256_hex, Host};
use crate::ApiOptions;
pub use size_budget::measure::{noise, parse_time_report, time_v, Measured};
use std::path::Path;

/// One first install of a manifest whose `configuration` is `size` incompressible bytes,
/// measured; the installed file is checked against what was published.
pub fn install_once(loader: &Path, size: usize) -> Result<Measured, String> {
    let d = Deployment::start(ApiOptions::default());
    let (_, key) = d.enrol_loader("measured.internal", None);
    let host = Host::new(&d.api.base_url, &key);
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
        ("linux", "amd64"),
    );
    let status = d.sign(id, &archive, &[&d.admin1, &d.admin2]);
    if status != "active" {
        return Err(format!(
            "the manifest is {status}, not active, after two signatures"
        ));
    }
    let (m, _) = time_v(loader, &["--root".as_ref(), host.root.as_os_str()])?;
    let installed = std::fs::read(host.root.join("etc/mig/mig-agent.cfg"))
        .map_err(|e| format!("no install: {e}"))?;
    if sha256_hex(&installed) != sha256_hex(&body) {
        return Err(format!(
            "the installed {size}-byte file does not match what was published"
        ));
    }
    Ok(m)
}
