//! Guarded rollouts (docs/design.md §6.4): a manifest's halt rule is applied in the transaction
//! that stores each report about it, so it trips at exactly its threshold, once. A halted
//! manifest is offered only to the loaders already on it (`manifests::candidates`) until an
//! administrator resumes it, after which only reports sent after the resume count.

use crate::db::parsed_column;
use crate::db::{Conn, OptionalExtension};
use crate::error::{Error, Result};
use crate::logging;
use crate::params;
use mig_protocol::admin::{HaltAfter, HaltRule, Halted};
use mig_protocol::halt::HaltCounts;
use mig_protocol::loader::ReportResult;
use mig_protocol::time::Timestamp;
use mig_protocol::ManifestStatus;

/// The stored rule of a manifest, from its `halt_after` and `halt_min` columns at `col` and
/// `col + 1`.
pub fn stored_rule(r: &crate::db::Row, col: usize) -> crate::db::SqlResult<Option<HaltRule>> {
    let Some(after) = r.get::<_, Option<String>>(col)? else {
        return Ok(None);
    };
    let after = HaltAfter::parse(&after).map_err(|e| crate::db::SqlError::Column {
        index: col,
        problem: format!("{after:?}: {e}"),
    })?;
    let min = r.get::<_, Option<i64>>(col + 1)?;
    Ok(Some(HaltRule {
        after,
        min: min.map(|m| m.max(0) as u64),
    }))
}

/// When and why a manifest halted, from its `halted_at` and `halted_reason` columns at `col`
/// and `col + 1`.
pub fn stored_halted(r: &crate::db::Row, col: usize) -> crate::db::SqlResult<Option<Halted>> {
    let at = r.get::<_, Option<i64>>(col)?;
    let reason = r.get::<_, Option<String>>(col + 1)?;
    Ok(at.zip(reason).map(|(at, reason)| Halted {
        at: Timestamp(at.max(0) as u64),
        reason,
    }))
}

/// A loader's latest report about manifest `serial`: its result and its history row.
#[derive(Debug, Clone, Copy)]
pub struct Latest {
    pub serial: i64,
    pub result: ReportResult,
    pub history_id: i64,
}

/// What one latest report adds to its manifest's counts (`HaltCounts`): `rejected` is about a
/// statement the loader refused, not a run of it, and counts for no rule.
fn weight(result: ReportResult) -> (i64, i64) {
    match result {
        ReportResult::Installed | ReportResult::Unchanged => (1, 0),
        ReportResult::Failed | ReportResult::RolledBack => (1, 1),
        ReportResult::Rejected => (0, 0),
    }
}

/// Keeps the counts every manifest's rule reads (`manifests.halt_reported`, `halt_bad`: the
/// latest reports about it from history row `halt_since` on) when a loader's latest report goes
/// from `before` to `after`, in that report's transaction, which every writer of every replica
/// takes in turn (`Conn::transaction`). Two updates of one row each, whatever the fleet's size:
/// the rule never recounts the reports (docs/design.md §6.4).
pub fn recount(conn: &Conn, before: Option<Latest>, after: Latest) -> Result<()> {
    let what = || Error::db("keeping the counts of a halt rule");
    for (latest, sign) in before.map(|b| (b, -1)).into_iter().chain([(after, 1)]) {
        let (reported, bad) = weight(latest.result);
        if reported == 0 {
            continue;
        }
        conn.execute(
            "UPDATE manifests SET halt_reported = halt_reported + ?1, halt_bad = halt_bad + ?2
             WHERE id = ?3 AND halt_since <= ?4",
            params![
                sign * reported,
                sign * bad,
                latest.serial,
                latest.history_id
            ],
        )
        .map_err(what())?;
    }
    Ok(())
}

/// Applies the halt rule of manifest `serial`, if it has one and is active: when the counts
/// trip it, the manifest becomes `halted` with the reason, which is logged and returned.
pub fn apply(conn: &Conn, serial: i64, now: Timestamp) -> Result<Option<String>> {
    let what = || Error::db("reading a halt rule");
    let row = conn
        .query_row(
            "SELECT status, halt_reported, halt_bad, halt_after, halt_min FROM manifests
             WHERE id = ?1",
            params![serial],
            |r| {
                let count = |i| r.get::<_, i64>(i).map(|n| n.max(0) as u64);
                Ok((
                    parsed_column::<ManifestStatus>(r, 0)?,
                    HaltCounts {
                        reported: count(1)?,
                        bad: count(2)?,
                    },
                    stored_rule(r, 3)?,
                ))
            },
        )
        .optional()
        .map_err(what())?;
    // A report about a serial the API never issued, or a manifest without a rule or not
    // active, changes nothing here.
    let Some((ManifestStatus::Active, c, Some(rule))) = row else {
        return Ok(None);
    };
    if !rule.trips(c) {
        return Ok(None);
    }
    let reason = rule.reason(c);
    conn.execute(
        "UPDATE manifests SET status = 'halted', halted_at = ?1, halted_reason = ?2
         WHERE id = ?3 AND status = 'active'",
        params![now.0 as i64, reason, serial],
    )
    .map_err(Error::db("halting a manifest"))?;
    logging::event(
        "warn",
        "manifest_halted",
        &[("manifest", &serial), ("reason", &reason)],
    );
    Ok(Some(reason))
}

/// Refuses a rule from a request that is out of bounds (400 `bad_halt_rule`).
pub fn check_rule(rule: Option<&HaltRule>) -> Result<()> {
    match rule {
        Some(r) => r
            .check()
            .map_err(|e| Error::invalid("bad_halt_rule", e.to_string())),
        None => Ok(()),
    }
}

/// Sets or clears the rule of manifest `id`, and applies it at once to the reports so far.
pub fn set_rule(conn: &mut Conn, id: u64, rule: Option<HaltRule>) -> Result<()> {
    check_rule(rule.as_ref())?;
    let tx = conn
        .transaction()
        .map_err(Error::db("setting a halt rule"))?;
    let n = tx
        .execute(
            "UPDATE manifests SET halt_after = ?1, halt_min = ?2 WHERE id = ?3",
            params![
                rule.map(|r| r.after.to_string()),
                rule.and_then(|r| r.min).map(|m| m as i64),
                id as i64
            ],
        )
        .map_err(Error::db("setting a halt rule"))?;
    if n == 0 {
        return Err(Error::NotFound(format!("manifest {id} does not exist")));
    }
    apply(&tx, id as i64, Timestamp::now())?;
    tx.commit().map_err(Error::db("setting a halt rule"))
}

/// `halted` → `active`: the rule counts again from the next report on. Called inside the
/// status change's transaction, so no report's [`recount`] comes between.
pub fn resume(conn: &Conn, id: u64) -> Result<()> {
    // No latest report is at or after the new halt_since: the counts start again from none.
    conn.execute(
        "UPDATE manifests SET status = 'active', halted_at = NULL, halted_reason = NULL,
           halt_since = COALESCE(
             (SELECT MAX(id) FROM report_history), 0) + 1,
           halt_reported = 0, halt_bad = 0
         WHERE id = ?1 AND status = 'halted'",
        params![id as i64],
    )
    .map_err(Error::db("resuming a manifest"))?;
    logging::event("info", "manifest_resumed", &[("manifest", &id)]);
    Ok(())
}
