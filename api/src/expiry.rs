//! Expiries nobody misses (docs/design.md §3.2): a manifest's statement expires, after which no
//! loader installs it and selection passes it over. The active and halted manifests close to
//! their expiry are shown by `rollout` (the console's `status`), exported by `/metrics` and
//! logged once a day, so an operator renews one before the fleet stops updating.

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::params;
use mig_protocol::time::Timestamp;
use std::time::Duration;

/// How long before its expiry a manifest is called out.
pub const WARN_BEFORE: u64 = 14 * 86_400;
/// How often the log repeats its warnings.
pub const LOG_EVERY: Duration = Duration::from_secs(86_400);
/// Most manifests listed, soonest first: the label set of `/metrics` stays bounded.
const MAX_LISTED: i64 = 100;

/// An active or halted manifest that expires within [`WARN_BEFORE`] of now, or has expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring {
    pub id: u64,
    pub name: String,
    pub expires: Timestamp,
}

impl Expiring {
    /// Seconds from `now` to the expiry; negative once expired.
    pub fn seconds_left(&self, now: Timestamp) -> i64 {
        self.expires.0 as i64 - now.0 as i64
    }
}

/// The active and halted manifests that expire before `now` + [`WARN_BEFORE`], soonest first.
pub fn expiring(conn: &Conn, now: Timestamp) -> Result<Vec<Expiring>> {
    let what = || Error::db("listing manifests close to their expiry");
    let mut st = conn
        .prepare_cached(
            "SELECT id, name, expires FROM manifests
             WHERE status IN ('active', 'halted') AND expires < ?1
             ORDER BY expires, id LIMIT ?2",
        )
        .map_err(what())?;
    st.query_map(
        params![now.0.saturating_add(WARN_BEFORE) as i64, MAX_LISTED],
        |r| {
            Ok(Expiring {
                id: r.get::<_, i64>(0)? as u64,
                name: r.get(1)?,
                expires: Timestamp(r.get::<_, i64>(2)?.max(0) as u64),
            })
        },
    )
    .and_then(|rows| rows.collect())
    .map_err(what())
}
