//! What selection picks from: the active manifests a loader's platform and signatures reach,
//! and the statement and signatures a loader is sent (docs/design.md §3.2, §8.3).

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::params;
use mig_protocol::time::Timestamp;

/// The loaders a selection is for: ours, or MIG's Go loaders, which refuse a manifest over one
/// signature they cannot verify.
#[derive(Debug, Clone, Copy)]
pub enum Reach<'a> {
    V2 {
        /// `[manifest] requiredsignatures`: a manifest made active by signatures imported from
        /// MIG (v1 only) is not served to our loaders until enough of them sign its statement.
        required: usize,
    },
    V1 {
        /// `[v1] fingerprints`, the keys built into the Go loaders.
        fingerprints: &'a [String],
        /// `[v1] requiredsignatures`.
        required: usize,
    },
}

impl Reach<'_> {
    /// `(v2 required, v1 required, v1 fingerprints as a JSON array)` for the SQL below; one of
    /// the two thresholds is 0.
    fn sql(&self) -> (i64, i64, String) {
        match self {
            Reach::V2 { required } => (*required as i64, 0, "[]".into()),
            Reach::V1 {
                fingerprints,
                required,
            } => (0, *required as i64, json_array(fingerprints)),
        }
    }
}

/// `fingerprints` as the JSON array the SQL reads with `json_each`.
fn json_array(fingerprints: &[String]) -> String {
    serde_json::Value::from(fingerprints.to_vec()).to_string()
}

/// A manifest a loader may be offered: its id, target and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: u64,
    pub target: String,
    pub expires: Timestamp,
}

/// The manifests `loader` may be offered for a platform at `now`, newest first. That is every
/// active one, and a halted one only when the loader's latest report says it is on it; never
/// one whose statement expired (docs/design.md §3.2: the loader would refuse it, and a newer
/// expired manifest would shadow an older valid one for ever). For Go loaders
/// (docs/design.md §8.3) only a manifest made for them, with enough v1 signatures by the keys
/// they hold.
pub fn candidates(
    conn: &Conn,
    os: &str,
    arch: &str,
    loader: u64,
    now: Timestamp,
    reach: Reach<'_>,
) -> Result<Vec<Candidate>> {
    let (v2_required, v1_required, v1_keys) = reach.sql();
    let mut st = conn
        .prepare_cached(
            "SELECT m.id, m.target, m.expires FROM manifests m
             WHERE m.os = ?1 AND m.arch = ?2 AND m.expires > ?6 AND (m.status = 'active'
               OR (m.status = 'halted' AND EXISTS (SELECT 1 FROM loader_reports r
                     WHERE r.loader_id = ?3 AND r.serial = m.id
                       AND r.result IN ('installed', 'unchanged'))))
               AND (?4 = 0 OR (m.v1_text IS NOT NULL
                 AND (SELECT COUNT(*) FROM signatures s WHERE s.manifest_id = m.id
                       AND s.v1_signature IS NOT NULL
                       AND s.fingerprint IN (SELECT value FROM json_each(?5))) >= ?4))
               AND (?7 = 0 OR (SELECT COUNT(*) FROM signatures s WHERE s.manifest_id = m.id
                       AND s.signature IS NOT NULL) >= ?7)
             ORDER BY m.id DESC",
        )
        .map_err(Error::db("listing active manifests"))?;
    st.query_map(
        params![
            os,
            arch,
            loader as i64,
            v1_required,
            v1_keys,
            now.0 as i64,
            v2_required
        ],
        |r| {
            Ok(Candidate {
                id: r.get::<_, i64>(0)? as u64,
                target: r.get(1)?,
                expires: Timestamp(r.get::<_, i64>(2)?.max(0) as u64),
            })
        },
    )
    .and_then(|rows| rows.collect())
    .map_err(Error::db("listing active manifests"))
}

/// The statement text and every stored (verified) signature of a manifest.
pub fn statement_and_signatures(conn: &Conn, id: u64) -> Result<(String, Vec<String>)> {
    let statement: String = conn
        .query_row(
            "SELECT statement FROM manifests WHERE id = ?1",
            params![id as i64],
            |r| r.get(0),
        )
        .map_err(Error::db("reading a statement"))?;
    let mut st = conn
        .prepare_cached(
            "SELECT signature FROM signatures WHERE manifest_id = ?1 AND signature IS NOT NULL
             ORDER BY created, investigator_id",
        )
        .map_err(Error::db("reading signatures"))?;
    let sigs = st
        .query_map(params![id as i64], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(Error::db("reading signatures"))?;
    Ok((statement, sigs))
}

/// What a Go loader is sent for manifest `id`: the v1 text and the armored v1 signatures by
/// `fingerprints` (never one it cannot check), oldest first.
pub fn v1_text_and_signatures(
    conn: &Conn,
    id: u64,
    fingerprints: &[String],
) -> Result<(String, Vec<String>)> {
    let text: Option<String> = conn
        .query_row(
            "SELECT v1_text FROM manifests WHERE id = ?1",
            params![id as i64],
            |r| r.get(0),
        )
        .map_err(Error::db("reading a v1 text"))?;
    let text = text.ok_or_else(|| {
        Error::Internal(format!(
            "manifest {id} was selected for v1 but has no v1 text"
        ))
    })?;
    let keys = json_array(fingerprints);
    let mut st = conn
        .prepare_cached(
            "SELECT v1_signature FROM signatures WHERE manifest_id = ?1
               AND v1_signature IS NOT NULL
               AND fingerprint IN (SELECT value FROM json_each(?2))
             ORDER BY created, investigator_id",
        )
        .map_err(Error::db("reading v1 signatures"))?;
    let sigs = st
        .query_map(params![id as i64, keys], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(Error::db("reading v1 signatures"))?;
    Ok((text, sigs))
}
