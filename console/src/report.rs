//! `report --html FILE`: the fleet at a glance as one self-contained HTML file, fetched with the
//! administrator's own credentials (`GET rollout`, `GET adoption`, `search` for the stale
//! hosts) and written to a new file, never over an existing one.

pub mod html;

use crate::api::typed;
use crate::error::Result;
use crate::grammar::{DEFAULT_HOURS, DEFAULT_STALE_HOURS};
use crate::session::Session;
use mig_protocol::admin::{Adoption, LoaderRecord, Rollout};
use mig_protocol::time::Timestamp;
use std::path::Path;

/// Stale hosts listed at most.
pub const STALE_LIMIT: usize = 1000;

/// Fetches what the page shows and writes it to `path`.
pub fn run(
    s: &mut Session,
    path: &Path,
    hours: Option<u64>,
    stale_hours: Option<u64>,
) -> Result<()> {
    let hours = hours.unwrap_or(DEFAULT_HOURS);
    let stale_hours = stale_hours.unwrap_or(DEFAULT_STALE_HOURS);
    let now = Timestamp::now();
    let api_url = s.config()?.api_url.clone();
    let api = s.api()?;
    let path_r = crate::status::path(None, Some(stale_hours));
    let rollouts: Vec<Rollout> = typed(&api.get(&path_r)?, &format!("GET {path_r}"))?;
    let path_a = format!("adoption?hours={hours}");
    let adoption: Adoption = typed(&api.get(&path_a)?, &format!("GET {path_a}"))?;
    let since = Timestamp(now.0.saturating_sub(stale_hours * 3600));
    let path_s = format!(
        "search?type=loader&seenbefore={}&limit={STALE_LIMIT}",
        crate::api::encode(&since.to_string())
    );
    let stale: Vec<LoaderRecord> = typed(&api.get(&path_s)?, &format!("GET {path_s}"))?;
    let page = html::render(&html::Report {
        api: &api_url,
        generated: now,
        stale_hours,
        rollouts: &rollouts,
        adoption: &adoption,
        stale: &stale,
        stale_limit: STALE_LIMIT,
    });
    crate::newfile::write_new(path, page.as_bytes())?;
    if s.ui.opts.json {
        s.ui.json(&serde_json::json!({
            "file": path.display().to_string(),
            "bytes": page.len(),
            "manifests": rollouts.len(),
            "serials": adoption.series.len(),
            "stale": stale.len(),
        }));
    } else {
        s.ui.say(format!(
            "Wrote {} ({} bytes): {} manifests, {} serials over {hours} h, {} stale hosts.",
            path.display(),
            page.len(),
            rollouts.len(),
            adoption.series.len(),
            stale.len()
        ));
    }
    Ok(())
}
