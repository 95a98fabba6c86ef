//! `status` and `status manifest 34`: how far each active manifest (or one) has reached the
//! fleet, from the API's rollout counts (docs/api.md `rollout`); the whole fleet's status also
//! shows the API's freshness key (`GET freshness`).

use crate::api::typed;
use crate::error::Result;
use crate::session::Session;
use crate::table;
use mig_protocol::admin::{FreshnessState, Rollout};

/// The API path of a status.
pub fn path(manifest: Option<u64>, stale_hours: Option<u64>) -> String {
    let base = match manifest {
        Some(id) => format!("manifests/{id}/rollout"),
        None => "rollout".to_string(),
    };
    match stale_hours {
        Some(h) => format!("{base}?stale={}", h * 3600),
        None => base,
    }
}

/// Fetches the rollouts and prints the table (or the API's JSON).
pub fn run(s: &mut Session, manifest: Option<u64>, stale_hours: Option<u64>) -> Result<()> {
    let path = path(manifest, stale_hours);
    let v = s.api()?.get(&path)?;
    let what = format!("GET {path}");
    // Checked in --json too, so a script never gets a document the console cannot read.
    let rows: Vec<Rollout> = match manifest {
        Some(_) => vec![typed::<Rollout>(&v, &what)?],
        None => typed::<Vec<Rollout>>(&v, &what)?,
    };
    if s.ui.opts.json {
        s.ui.json(&v);
        return Ok(());
    }
    let now = mig_protocol::time::Timestamp::now();
    if rows.is_empty() {
        s.ui.say("No active manifest.");
    } else {
        s.ui.say_raw(&table::rollouts(&rows, now));
    }
    // The whole fleet's status also says whether answers are vouched for (`GET freshness`).
    if manifest.is_none() {
        let f = s.api()?.get("freshness")?;
        let f = typed::<FreshnessState>(&f, "GET freshness")?;
        s.ui.say_raw(&table::freshness(&f, now));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_one_manifest_or_all_and_the_staleness_in_seconds() {
        assert_eq!(path(None, None), "rollout");
        assert_eq!(path(Some(34), None), "manifests/34/rollout");
        assert_eq!(path(Some(34), Some(2)), "manifests/34/rollout?stale=7200");
    }
}
