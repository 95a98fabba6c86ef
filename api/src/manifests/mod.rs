//! Manifests: the stored record and its reads, status changes (reset, resume, disable), and
//! the blobs they name; upload (`upload.rs`: safe archive → statement made once, serial = id →
//! `staged`), verified signatures (`signing.rs`: → `active` at `[manifest] requiredsignatures`
//! distinct investigators), renewal (`renew.rs`: the same entries under a new serial and
//! expiry, no blob copied), search (`search.rs`) and what selection picks from
//! (`selection.rs`).

mod renew;
mod search;
mod selection;
mod signing;
mod upload;

pub use renew::renew;
pub use search::{search, Search};
pub use selection::{
    candidates, statement_and_signatures, v1_text_and_signatures, Candidate, Reach,
};
pub use signing::{add_signature, armored as armored_signature};
pub use upload::{check_target, create, insert, store_archive, v1_text_of, NewRow};

use crate::app::App;
use crate::db::parsed_column;
use crate::db::{Conn, OptionalExtension};
use crate::error::{Error, Result};
use crate::halt;
use crate::params;
use mig_protocol::admin::ManifestRecord;
use mig_protocol::statement::{Entry, Platform};
use mig_protocol::time::Timestamp;
use mig_protocol::ManifestStatus;
use std::collections::HashSet;

/// Longest target expression stored (MIG: varchar(2048)).
pub const MAX_TARGET_BYTES: usize = 2048;

const SELECT_RECORD: &str =
    "SELECT id, name, target, status, os, arch, created, issued, expires, statement,
       halt_after, halt_min, halted_at, halted_reason, v1_text, renews
     FROM manifests";

fn record_row(r: &crate::db::Row) -> crate::db::SqlResult<ManifestRecord> {
    Ok(ManifestRecord {
        id: r.get::<_, i64>(0)? as u64,
        name: r.get(1)?,
        target: r.get(2)?,
        status: parsed_column(r, 3)?,
        platform: Platform {
            os: r.get(4)?,
            arch: r.get(5)?,
        },
        created: Timestamp(r.get::<_, i64>(6)? as u64),
        issued: Timestamp(r.get::<_, i64>(7)? as u64),
        expires: Timestamp(r.get::<_, i64>(8)? as u64),
        signers: Vec::new(),
        entries: Vec::new(),
        statement: r.get(9)?,
        halt: halt::stored_rule(r, 10)?,
        halted: halt::stored_halted(r, 12)?,
        v1_text: r.get(14)?,
        v1_signers: Vec::new(),
        renews: r.get::<_, Option<i64>>(15)?.map(|v| v as u64),
    })
}

/// Fills signers (of the statement, and of the v1 text) and entries.
fn complete(conn: &Conn, mut m: ManifestRecord) -> Result<ManifestRecord> {
    let mut st = conn
        .prepare_cached(
            "SELECT i.name, s.signature IS NOT NULL, s.v1_signature IS NOT NULL
             FROM signatures s JOIN investigators i ON i.id = s.investigator_id
             WHERE s.manifest_id = ?1 ORDER BY s.created, s.investigator_id",
        )
        .map_err(Error::db("reading signers"))?;
    let rows: Vec<(String, bool, bool)> = st
        .query_map(params![m.id as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(Error::db("reading signers"))?;
    for (name, statement, v1) in rows {
        if v1 {
            m.v1_signers.push(name.clone());
        }
        if statement {
            m.signers.push(name);
        }
    }
    m.entries = entries(conn, m.id)?;
    Ok(m)
}

/// The entries of a manifest, in archive (= statement) order.
pub fn entries(conn: &Conn, id: u64) -> Result<Vec<Entry>> {
    let mut st = conn
        .prepare_cached(
            "SELECT name, sha256, size FROM manifest_files WHERE manifest_id = ?1 ORDER BY position",
        )
        .map_err(Error::db("reading entries"))?;
    st.query_map(params![id as i64], |r| {
        Ok(Entry {
            name: r.get(0)?,
            sha256: crate::db::parsed_column(r, 1)?,
            size: r.get::<_, i64>(2)? as u64,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(Error::db("reading entries"))
}

/// One manifest, 404 when unknown.
pub fn get(conn: &Conn, id: u64) -> Result<ManifestRecord> {
    let m = conn
        .query_row(
            &format!("{SELECT_RECORD} WHERE id = ?1"),
            params![id as i64],
            record_row,
        )
        .optional()
        .map_err(Error::db("reading a manifest"))?
        .ok_or_else(|| Error::NotFound(format!("manifest {id} does not exist")))?;
    complete(conn, m)
}

/// The sha256 of a manifest's stored archive.
pub fn archive_sha256(conn: &Conn, id: u64) -> Result<String> {
    conn.query_row(
        "SELECT archive_sha256 FROM manifests WHERE id = ?1",
        params![id as i64],
        |r| r.get(0),
    )
    .optional()
    .map_err(Error::db("reading a manifest"))?
    .ok_or_else(|| Error::NotFound(format!("manifest {id} does not exist")))
}

/// Every blob a manifest refers to (start-up garbage collection keeps these).
pub fn referenced_blobs(app: &App) -> Result<HashSet<String>> {
    app.db.with(|c| {
        let mut st = c
            .prepare("SELECT sha256 FROM manifest_files UNION SELECT archive_sha256 FROM manifests")
            .map_err(Error::db("listing blobs"))?;
        st.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(Error::db("listing blobs"))
    })
}

/// `staged` (reset: every signature removed), `active` (resume a halted manifest) or
/// `disabled` (final).
pub fn set_status(conn: &mut Conn, id: u64, status: &str) -> Result<ManifestRecord> {
    let refused = || {
        Error::invalid(
            "bad_status",
            format!(
                "manifest status {status:?} must be staged (reset), active (resume a halted \
                 manifest) or disabled; a manifest becomes active through signatures"
            ),
        )
    };
    let wanted = ManifestStatus::parse(status).map_err(|_| refused())?;
    let tx = conn
        .transaction()
        .map_err(Error::db("changing a manifest's status"))?;
    let current: ManifestStatus = tx
        .query_row(
            "SELECT status FROM manifests WHERE id = ?1",
            params![id as i64],
            |r| parsed_column(r, 0),
        )
        .optional()
        .map_err(Error::db("reading a manifest"))?
        .ok_or_else(|| Error::NotFound(format!("manifest {id} does not exist")))?;
    match wanted {
        ManifestStatus::Staged => {
            if current == ManifestStatus::Disabled {
                return Err(Error::Conflict(format!(
                    "manifest {id} is disabled, which is final"
                )));
            }
            tx.execute(
                "DELETE FROM signatures WHERE manifest_id = ?1",
                params![id as i64],
            )
            .map_err(Error::db("removing signatures"))?;
            tx.execute(
                "UPDATE manifests SET status = 'staged', halted_at = NULL, halted_reason = NULL
                 WHERE id = ?1",
                params![id as i64],
            )
            .map_err(Error::db("resetting a manifest"))?;
        }
        ManifestStatus::Active if current == ManifestStatus::Halted => halt::resume(&tx, id)?,
        ManifestStatus::Halted => {
            return Err(Error::invalid(
                "bad_status",
                format!("manifest {id}: only its halt rule halts a manifest"),
            ))
        }
        ManifestStatus::Disabled => {
            tx.execute(
                "UPDATE manifests SET status = 'disabled' WHERE id = ?1",
                params![id as i64],
            )
            .map_err(Error::db("disabling a manifest"))?;
        }
        ManifestStatus::Active => return Err(refused()),
    }
    tx.commit()
        .map_err(Error::db("changing a manifest's status"))?;
    get(conn, id)
}
