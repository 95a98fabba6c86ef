//! Expiries nobody misses (docs/design.md §3.2): a manifest's statement expires, after which no
//! loader installs it and selection passes it over. Every active and halted manifest's expiry
//! is in `rollout` (the console's `status` shows the days left, its HTML report marks those
//! within 14 days) and in `/metrics`; those within 14 days are logged once a day, so an operator
//! renews one (manifests/renew.rs) before the fleet stops updating.

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::params;
use mig_protocol::time::Timestamp;
use std::time::Duration;

/// How long before its expiry a manifest is called out.
pub const WARN_BEFORE: u64 = mig_protocol::admin::EXPIRY_WARNING;
/// How often the log repeats its warnings.
pub const LOG_EVERY: Duration = Duration::from_secs(86_400);
/// Most manifests listed, soonest first: the label set of `/metrics` stays bounded.
const MAX_LISTED: i64 = 100;

/// An active or halted manifest and when its statement expires.
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

/// The active and halted manifests, soonest expiry first, at most [`MAX_LISTED`]: each of them
/// (`within` `None`: `/metrics`), or those that expire before `now` + `within` seconds (the
/// log, with [`WARN_BEFORE`]).
pub fn listed(conn: &Conn, now: Timestamp, within: Option<u64>) -> Result<Vec<Expiring>> {
    let what = || Error::db("listing the expiries of active manifests");
    let before = match within {
        Some(w) => now.0.saturating_add(w).min(i64::MAX as u64) as i64,
        None => i64::MAX,
    };
    let mut st = conn
        .prepare_cached(
            "SELECT id, name, expires FROM manifests
             WHERE status IN ('active', 'halted') AND expires < ?1
             ORDER BY expires, id LIMIT ?2",
        )
        .map_err(what())?;
    st.query_map(params![before, MAX_LISTED], |r| {
        Ok(Expiring {
            id: r.get::<_, i64>(0)? as u64,
            name: r.get(1)?,
            expires: Timestamp(r.get::<_, i64>(2)?.max(0) as u64),
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(what())
}
