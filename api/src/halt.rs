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

/// What the rule of `manifest` counts: the latest reports about it from history row `since` on.
pub fn counts(conn: &Conn, manifest: u64, since: i64) -> Result<HaltCounts> {
    let (reported, bad) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(CASE WHEN result IN ('failed', 'rolled_back') THEN 1 END)
         FROM loader_reports
         WHERE serial = ?1 AND history_id >= ?2
           AND result IN ('installed', 'unchanged', 'failed', 'rolled_back')",
            params![manifest as i64, since],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .map_err(Error::db("counting reports for a halt rule"))?;
    Ok(HaltCounts {
        reported: reported as u64,
        bad: bad as u64,
    })
}

/// Applies the halt rule of manifest `serial`, if it has one and is active: when the counts
/// trip it, the manifest becomes `halted` with the reason, which is logged and returned.
pub fn apply(conn: &Conn, serial: i64, now: Timestamp) -> Result<Option<String>> {
    let what = || Error::db("reading a halt rule");
    let row = conn
        .query_row(
            "SELECT status, halt_since, halt_after, halt_min FROM manifests WHERE id = ?1",
            params![serial],
            |r| {
                Ok((
                    parsed_column::<ManifestStatus>(r, 0)?,
                    r.get::<_, i64>(1)?,
                    stored_rule(r, 2)?,
                ))
            },
        )
        .optional()
        .map_err(what())?;
    // A report about a serial the API never issued, or a manifest without a rule or not
    // active, changes nothing here.
    let Some((ManifestStatus::Active, since, Some(rule))) = row else {
        return Ok(None);
    };
    let id = serial as u64;
    let c = counts(conn, id, since)?;
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

/// `halted` → `active`: the rule counts again from the next report on.
pub fn resume(conn: &Conn, id: u64) -> Result<()> {
    conn.execute(
        "UPDATE manifests SET status = 'active', halted_at = NULL, halted_reason = NULL,
           halt_since = COALESCE(
             (SELECT MAX(id) FROM report_history), 0) + 1
         WHERE id = ?1 AND status = 'halted'",
        params![id as i64],
    )
    .map_err(Error::db("resuming a manifest"))?;
    logging::event("info", "manifest_resumed", &[("manifest", &id)]);
    Ok(())
}
