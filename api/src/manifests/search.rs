//! Search over manifests (`GET manifests?…`).

use super::{complete, record_row, SELECT_RECORD};
use crate::db::{like_pattern, Conn};
use crate::error::{Error, Result};
use crate::params;
use mig_protocol::admin::ManifestRecord;
use mig_protocol::time::Timestamp;

/// Search filters for manifests (docs/api.md `search?type=manifest`).
#[derive(Debug, Default, Clone)]
pub struct Search {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub before: Option<Timestamp>,
    pub after: Option<Timestamp>,
    pub limit: u64,
}

/// Matching manifests, newest first.
pub fn search(conn: &Conn, s: &Search) -> Result<Vec<ManifestRecord>> {
    let mut st = conn
        .prepare_cached(&format!(
            "{SELECT_RECORD} WHERE (?1 IS NULL OR id = ?1)
               AND (?2 IS NULL OR name LIKE ?2 ESCAPE '\\')
               AND (?3 IS NULL OR status = ?3)
               AND (?4 IS NULL OR created <= ?4)
               AND (?5 IS NULL OR created >= ?5)
             ORDER BY id DESC LIMIT ?6"
        ))
        .map_err(Error::db("searching manifests"))?;
    let rows: Vec<ManifestRecord> = st
        .query_map(
            params![
                s.id.map(|i| i as i64),
                s.name.as_deref().map(like_pattern),
                s.status,
                s.before.map(|t| t.0 as i64),
                s.after.map(|t| t.0 as i64),
                s.limit as i64
            ],
            record_row,
        )
        .and_then(|rows| rows.collect())
        .map_err(Error::db("searching manifests"))?;
    rows.into_iter().map(|m| complete(conn, m)).collect()
}
