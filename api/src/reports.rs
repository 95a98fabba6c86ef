//! Loaders' reports: every report kept for `[reports] keepdays` (and at most `maxrows`), the
//! latest one per loader beside it, and the rollout of each manifest counted from the fleet's
//! latest state (docs/design.md §3.6).

use crate::config::Retention;
use crate::db::parsed_column;
use crate::db::Conn;
use crate::error::{Error, Result};
use crate::params;
use mig_protocol::admin::{FailureCount, ReportRecord, Rollout};
use mig_protocol::loader::ReportResult;
use mig_protocol::statement::Platform;
use mig_protocol::time::Timestamp;
use std::time::Duration;

/// How often the history is pruned while the API runs (and once at start).
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Rows deleted per transaction while pruning, so loaders' writes never wait long.
const PRUNE_BATCH: i64 = 5000;
/// Failure messages listed per manifest.
const TOP_FAILURES: i64 = 5;

/// Stores one report: appended to the history, kept as the loader's latest, and its time as
/// the loader's `lastseen`, in one transaction, which also applies the halt rule of the
/// manifest reported about. Returns why that manifest halted, when this report tripped it.
/// A report about a manifest the loader was not given is refused first ([`check_given`]).
pub fn store(
    conn: &mut Conn,
    loader: u64,
    serial: i64,
    result: ReportResult,
    message: &str,
    now: Timestamp,
) -> Result<Option<String>> {
    let what = || Error::db("storing a report");
    let tx = conn.transaction().map_err(what())?;
    let (id, at) = (loader as i64, now.0 as i64);
    let before = check_given(&tx, id, serial, result)?;
    let history_id: i64 = tx
        .query_row(
            "INSERT INTO report_history (loader_id, serial, result, message, time)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![id, serial, result.as_str(), message, at],
            |r| r.get(0),
        )
        .map_err(what())?;
    tx.execute(
        "INSERT INTO loader_reports (loader_id, serial, result, message, time, history_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (loader_id) DO UPDATE SET serial = excluded.serial,
           result = excluded.result, message = excluded.message, time = excluded.time,
           history_id = excluded.history_id",
        params![id, serial, result.as_str(), message, at, history_id],
    )
    .map_err(what())?;
    let after = crate::halt::Latest {
        serial,
        result,
        history_id,
    };
    crate::halt::recount(&tx, before, after)?;
    tx.execute(
        "UPDATE loaders SET lastseen = ?1 WHERE id = ?2",
        params![at, id],
    )
    .map_err(what())?;
    let halted = crate::halt::apply(&tx, serial, now)?;
    tx.commit().map_err(what())?;
    Ok(halted)
}

/// docs/design.md §3.6: a loader reports only about the manifest its last manifest request was
/// given, or about the one it last reported on (what it still runs while a newer one is
/// tried, or after it was refused one). Anything else, a manifest it was never offered or a
/// serial that does not exist, is refused before it reaches the history, the rollout counts,
/// the adoption or a halt rule: one enrolled key cannot halt or fake another rollout. Serial 0
/// `rejected` is admitted: it is what a loader sends when it refused a statement whose
/// signatures failed (so its serial is not believed) or was refused before anything was
/// installed (docs/design.md §4.19); it is about no manifest and counts for none. Returns the
/// loader's latest report so far, which the halt rules' counts drop ([`crate::halt::recount`]).
fn check_given(
    conn: &Conn,
    loader: i64,
    serial: i64,
    result: ReportResult,
) -> Result<Option<crate::halt::Latest>> {
    let (given, last) = conn
        .query_row(
            "SELECT l.given_manifest, r.serial, r.result, r.history_id FROM loaders l
             LEFT JOIN loader_reports r ON r.loader_id = l.id WHERE l.id = ?1",
            params![loader],
            |r| {
                let given: Option<i64> = r.get(0)?;
                let last = match r.get::<_, Option<i64>>(1)? {
                    Some(serial) => Some(crate::halt::Latest {
                        serial,
                        result: stored_result(r, 2)?,
                        history_id: r.get(3)?,
                    }),
                    None => None,
                };
                Ok((given, last))
            },
        )
        .map_err(Error::db("reading what a loader was given"))?;
    if (serial == 0 && result == ReportResult::Rejected)
        || given == Some(serial)
        || last.is_some_and(|l| l.serial == serial)
    {
        return Ok(last);
    }
    let name = |m: Option<i64>| m.map_or_else(|| "none".to_string(), |m| m.to_string());
    Err(Error::forbidden(
        "report_not_given",
        format!(
            "loader {loader} reported about manifest {serial}, which it was not given: a report \
             is about the manifest it was last given ({}) or the one it last reported on ({})",
            name(given),
            name(last.map(|l| l.serial))
        ),
    ))
}

/// The report result stored in column `i`.
fn stored_result(r: &crate::db::Row, i: usize) -> crate::db::SqlResult<ReportResult> {
    let text: String = r.get(i)?;
    ReportResult::parse(&text).ok_or_else(|| crate::db::SqlError::Column {
        index: i,
        problem: format!("{text:?} is not a report result"),
    })
}

/// A loader's reports, newest first.
pub fn history(conn: &Conn, loader: u64, limit: u64) -> Result<Vec<ReportRecord>> {
    let mut st = conn
        .prepare_cached(
            "SELECT serial, result, message, time FROM report_history WHERE loader_id = ?1
             ORDER BY id DESC LIMIT ?2",
        )
        .map_err(Error::db("reading report history"))?;
    st.query_map(params![loader as i64, limit as i64], |r| {
        Ok(ReportRecord {
            serial: r.get::<_, i64>(0)? as u64,
            result: r.get(1)?,
            message: r.get(2)?,
            time: Timestamp(r.get::<_, i64>(3)? as u64),
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(Error::db("reading report history"))
}

/// Deletes history older than `keep_days` before `now`, then the oldest rows beyond
/// `max_rows`, in batches. Returns the rows deleted. The latest report of each loader is kept
/// apart (`loader_reports`) and never pruned.
///
/// Each batch visits only the rows it deletes, whatever the table's size: the old rows are
/// found through the `time` index in its order, and the cap is one key range, every id at or
/// below the newest id less `max_rows` (ids only grow, so that keeps at most `max_rows` rows),
/// read once and deleted from the primary key's start (docs/design.md §3.6).
pub fn prune(conn: &Conn, now: Timestamp, keep: Retention) -> Result<u64> {
    let what = || Error::db("pruning report history");
    let cutoff = now.0.saturating_sub(keep.keep_days * 86_400) as i64;
    let mut deleted = in_batches(conn, PRUNE_OLD, cutoff)?;
    let newest: Option<i64> = conn
        .query_row("SELECT MAX(id) FROM report_history", [], |r| r.get(0))
        .map_err(what())?;
    let cap = i64::try_from(keep.max_rows).unwrap_or(i64::MAX);
    if let Some(last) = newest.and_then(|n| n.checked_sub(cap)) {
        deleted += in_batches(conn, PRUNE_UPTO, last)?;
    }
    Ok(deleted)
}

/// One batch of history rows with `time` before ?1, oldest first by the `time` index.
const PRUNE_OLD: &str = "DELETE FROM report_history WHERE id IN
    (SELECT id FROM report_history WHERE time < ?1 ORDER BY time LIMIT ?2)";
/// One batch of history rows with an id at most ?1, from the first.
const PRUNE_UPTO: &str = "DELETE FROM report_history WHERE id IN
    (SELECT id FROM report_history WHERE id <= ?1 ORDER BY id LIMIT ?2)";

/// Runs the delete `sql` of one batch, bounded by `bound`, until a batch finds fewer than
/// [`PRUNE_BATCH`] rows: each its own short transaction, so loaders' writes never wait long.
fn in_batches(conn: &Conn, sql: &str, bound: i64) -> Result<u64> {
    let mut deleted = 0u64;
    loop {
        let n = conn
            .execute(sql, params![bound, PRUNE_BATCH])
            .map_err(Error::db("pruning report history"))?;
        deleted += n as u64;
        if (n as i64) < PRUNE_BATCH {
            return Ok(deleted);
        }
    }
}

/// The rollout of every active or halted manifest, newest first. A loader counts as stale when
/// it was not heard from for more than `stale_after` before `now`.
pub fn rollouts(conn: &Conn, now: Timestamp, stale_after: u64) -> Result<Vec<Rollout>> {
    counted(conn, None, now, stale_after)
}

/// The rollout of manifest `id`, whatever its status; 404 when unknown.
pub fn rollout(conn: &Conn, id: u64, now: Timestamp, stale_after: u64) -> Result<Rollout> {
    counted(conn, Some(id), now, stale_after)?
        .pop()
        .ok_or_else(|| Error::NotFound(format!("manifest {id} does not exist")))
}

fn counted(
    conn: &Conn,
    manifest: Option<u64>,
    now: Timestamp,
    stale_after: u64,
) -> Result<Vec<Rollout>> {
    let what = || Error::db("counting rollouts");
    let since = now.0.saturating_sub(stale_after) as i64;
    let mut st = conn
        .prepare_cached(
            "SELECT m.id, m.name, m.status, m.os, m.arch,
               (SELECT COUNT(*) FROM loaders l WHERE l.given_manifest = m.id),
               (SELECT COUNT(*) FROM loader_reports r
                  WHERE r.serial = m.id AND r.result IN ('installed', 'unchanged')),
               (SELECT COUNT(*) FROM loaders l LEFT JOIN loader_reports r ON r.loader_id = l.id
                  WHERE l.given_manifest = m.id AND (r.serial IS NULL OR r.serial < m.id)),
               (SELECT COUNT(*) FROM loader_reports r WHERE r.serial = m.id AND r.result = 'failed'),
               (SELECT COUNT(*) FROM loader_reports r
                  WHERE r.serial = m.id AND r.result = 'rolled_back'),
               (SELECT COUNT(*) FROM loader_reports r
                  WHERE r.serial = m.id AND r.result = 'rejected'),
               (SELECT COUNT(*) FROM loaders l
                  WHERE l.given_manifest = m.id AND (l.lastseen IS NULL OR l.lastseen < ?2)),
               m.halt_after, m.halt_min, m.halted_at, m.halted_reason, m.expires,
               (SELECT COUNT(*) FROM loader_reports r WHERE r.serial = m.id
                  AND r.result = 'rejected' AND r.message LIKE ?3)
             FROM manifests m
             WHERE (?1 IS NULL AND m.status IN ('active', 'halted')) OR m.id = ?1
             ORDER BY m.id DESC",
        )
        .map_err(what())?;
    let mut out: Vec<Rollout> = st
        .query_map(
            params![
                manifest.map(|m| m as i64),
                since,
                // The loader's refusal starts so; the constant has no `%` or `_`.
                format!("{}%", mig_protocol::freshness::EXPIRED)
            ],
            |r| {
                let count = |i| r.get::<_, i64>(i).map(|n| n as u64);
                Ok(Rollout {
                    manifest: r.get::<_, i64>(0)? as u64,
                    name: r.get(1)?,
                    status: parsed_column(r, 2)?,
                    platform: Platform {
                        os: r.get(3)?,
                        arch: r.get(4)?,
                    },
                    given: count(5)?,
                    on_it: count(6)?,
                    older: count(7)?,
                    failed: count(8)?,
                    rolled_back: count(9)?,
                    rejected: count(10)?,
                    stale: count(11)?,
                    stale_after,
                    failures: Vec::new(),
                    halt: crate::halt::stored_rule(r, 12)?,
                    halted: crate::halt::stored_halted(r, 14)?,
                    expires: Some(Timestamp(r.get::<_, i64>(16)?.max(0) as u64)),
                    freshness_expired: count(17)?,
                })
            },
        )
        .and_then(|rows| rows.collect())
        .map_err(what())?;
    for r in &mut out {
        r.failures = failures(conn, r.manifest)?;
    }
    Ok(out)
}

/// The most common failure messages loaders last reported about `serial`.
fn failures(conn: &Conn, serial: u64) -> Result<Vec<FailureCount>> {
    let mut st = conn
        .prepare_cached(
            "SELECT result, message, COUNT(*) AS n FROM loader_reports
             WHERE serial = ?1 AND result IN ('failed', 'rolled_back', 'rejected')
             GROUP BY result, message ORDER BY n DESC, result, message LIMIT ?2",
        )
        .map_err(Error::db("counting failures"))?;
    st.query_map(params![serial as i64, TOP_FAILURES], |r| {
        Ok(FailureCount {
            result: r.get(0)?,
            message: r.get(1)?,
            loaders: r.get::<_, i64>(2)? as u64,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(Error::db("counting failures"))
}

/// Loaders by the serial and result of their latest report, for `/metrics`: the newest
/// `serials` serials only, so the label set stays bounded.
pub fn by_serial(conn: &Conn, serials: i64) -> Result<Vec<(u64, String, u64)>> {
    let mut st = conn
        .prepare_cached(
            "SELECT serial, result, COUNT(*) FROM loader_reports
             WHERE serial IN (SELECT DISTINCT serial FROM loader_reports ORDER BY serial DESC LIMIT ?1)
             GROUP BY serial, result ORDER BY serial DESC, result",
        )
        .map_err(Error::db("counting loaders by serial"))?;
    st.query_map(params![serials], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            r.get(1)?,
            r.get::<_, i64>(2)? as u64,
        ))
    })
    .and_then(|rows| rows.collect())
    .map_err(Error::db("counting loaders by serial"))
}

pub mod adoption;
pub mod rate;

#[cfg(test)]
mod tests;
