//! Upload: a manifest's archive read safely into the blob store, its statement made once
//! (serial = id), the row `staged` (docs/design.md §2.3, §6.3).

use super::{get, MAX_TARGET_BYTES};
use crate::app::App;
use crate::auth::Caller;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::{archive, halt, investigators, params};
use base64::Engine as _;
use mig_protocol::admin::{ManifestRecord, NewManifest};
use mig_protocol::halt::HaltRule;
use mig_protocol::mig_v1;
use mig_protocol::statement::{Entry, Platform, Serial, Statement, FORMAT};
use mig_protocol::time::Timestamp;
use mig_protocol::ManifestStatus;

/// Validates and stores a new manifest; the statement is made here, once.
pub fn create(app: &App, caller: &Caller, req: NewManifest) -> Result<ManifestRecord> {
    investigators::check_name("manifest", &req.name)?;
    check_target(app, "target", &req.target)?;
    check_platform(&req.platform)?;
    halt::check_rule(req.halt.as_ref())?;
    let days = valid_days(app, req.valid_days)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(req.archive.as_bytes())
        .map_err(|e| Error::invalid("bad_archive", format!("archive: not standard base64: {e}")))?;
    drop(req.archive);
    let archive = store_archive(app, &bytes)?;
    drop(bytes);
    let v1_text = if req.v1 {
        Some(v1_text_of(&archive.entries)?)
    } else {
        None
    };
    let now = Timestamp::now();
    let id = app.db.with(|conn| {
        let tx = conn
            .transaction()
            .map_err(Error::db("creating a manifest"))?;
        let id = insert(
            &tx,
            &NewRow {
                name: &req.name,
                target: &req.target,
                status: ManifestStatus::Staged,
                platform: &req.platform,
                created: now,
                issued: now,
                expires: now.plus(days),
                archive: &archive,
                creator: caller.id,
                halt: req.halt,
                v1_text: v1_text.as_deref(),
                renews: None,
            },
        )?;
        tx.commit().map_err(Error::db("creating a manifest"))?;
        Ok(id)
    })?;
    app.db.with(|c| get(c, id))
}

/// `valid_days` as asked, or `[manifest] validdays`, in seconds: 1 to 3650 days.
pub fn valid_days(app: &App, asked: Option<u32>) -> Result<u64> {
    let days = asked.unwrap_or(app.cfg.valid_days);
    if !(1..=3650).contains(&days) {
        return Err(Error::invalid(
            "bad_manifest",
            format!("valid_days {days} is outside 1..=3650"),
        ));
    }
    Ok(u64::from(days) * 86_400)
}

/// An archive read into the blob store: its entries in order, and the archive's own blob.
pub struct StoredArchive {
    pub entries: Vec<Entry>,
    pub sha256: mig_protocol::Sha256,
    pub size: u64,
}

/// Reads a tar.gz safely (archive.rs), storing every member and the archive itself as blobs.
pub fn store_archive(app: &App, bytes: &[u8]) -> Result<StoredArchive> {
    let entries = archive::extract(bytes, &app.cfg.limits, &app.blobs)?;
    let (sha256, size) = app.blobs.put(bytes)?;
    // Before any row refers to them: every replica serves what a manifest names.
    crate::blobs::share(
        &app.blobs,
        &app.db,
        entries
            .iter()
            .map(|e| e.sha256.as_str())
            .chain([sha256.as_str()]),
    )?;
    Ok(StoredArchive {
        entries,
        sha256,
        size,
    })
}

/// docs/design.md §8.3: the text Go loaders verify, made once from the statement's entries.
pub fn v1_text_of(entries: &[Entry]) -> Result<String> {
    mig_v1::signed_text(entries.iter().map(|e| (e.name.as_str(), e.sha256.as_str())))
        .map_err(|e| Error::invalid("bad_manifest", format!("for MIG's Go loaders: {e}")))
}

/// A manifest row about to be stored: all but its id and statement, which [`insert`] makes.
pub struct NewRow<'a> {
    pub name: &'a str,
    pub target: &'a str,
    pub status: ManifestStatus,
    pub platform: &'a Platform,
    pub created: Timestamp,
    pub issued: Timestamp,
    pub expires: Timestamp,
    pub archive: &'a StoredArchive,
    /// The investigator who uploaded it (0: imported from MIG, which did not record it).
    pub creator: u64,
    pub halt: Option<HaltRule>,
    pub v1_text: Option<&'a str>,
    /// The manifest this one renews (renew.rs).
    pub renews: Option<u64>,
}

/// Stores a manifest inside `tx`: the row first, since the serial is the row id, then its
/// statement, made here once, and its entries; the row never exists without them.
pub fn insert(tx: &Tx<'_>, row: &NewRow<'_>) -> Result<u64> {
    let what = || Error::db("storing a manifest");
    let next = next_serial(tx)?;
    let id: i64 = tx
        .query_row(
            "INSERT INTO manifests (id, name, target, status, os, arch, created, issued, expires,
         statement, archive_sha256, archive_size, creator, halt_after, halt_min, v1_text, renews)
         VALUES (?16, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         RETURNING id",
            params![
                row.name,
                row.target,
                row.status.as_str(),
                row.platform.os,
                row.platform.arch,
                row.created.0 as i64,
                row.issued.0 as i64,
                row.expires.0 as i64,
                row.archive.sha256.as_str(),
                row.archive.size as i64,
                row.creator as i64,
                row.halt.map(|r| r.after.to_string()),
                row.halt.and_then(|r| r.min).map(|m| m as i64),
                row.v1_text,
                row.renews.map(|r| r as i64),
                next
            ],
            |r| r.get(0),
        )
        .map_err(what())?;
    let id = id as u64;
    let statement = Statement {
        format: FORMAT,
        serial: Serial::new(id),
        name: row.name.to_string(),
        platform: row.platform.clone(),
        issued: row.issued,
        expires: row.expires,
        entries: row.archive.entries.clone(),
    };
    let text = statement
        .to_bytes()
        .map_err(|e| Error::invalid("bad_manifest", e.to_string()))?;
    let text = String::from_utf8(text)
        .map_err(|e| Error::Internal(format!("statement is not UTF-8: {e}")))?;
    tx.execute(
        "UPDATE manifests SET statement = ?1 WHERE id = ?2",
        params![text, id as i64],
    )
    .map_err(what())?;
    for (pos, e) in row.archive.entries.iter().enumerate() {
        tx.execute(
            "INSERT INTO manifest_files (manifest_id, position, name, sha256, size)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id as i64,
                pos as i64,
                e.name,
                e.sha256.as_str(),
                e.size as i64
            ],
        )
        .map_err(Error::db("storing manifest entries"))?;
    }
    Ok(id)
}

/// docs/design.md §2.3: the serial of the next manifest, one above the highest there is. Not the
/// id sequence, which a PostgreSQL transaction that rolled back has moved on (and which can be set
/// by hand): a serial is chosen here, inside the writers' transaction, so loaders and consoles see
/// serials grow by one (§4.6). Manifest rows are never deleted, so no serial anyone signed is
/// given again.
fn next_serial(tx: &Tx<'_>) -> Result<i64> {
    let highest: i64 = tx
        .query_row("SELECT COALESCE(MAX(id), 0) FROM manifests", [], |r| {
            r.get(0)
        })
        .map_err(Error::db("choosing the next manifest serial"))?;
    highest
        .checked_add(1)
        .ok_or_else(|| Error::Internal(format!("manifest serial {highest} is the last one")))
}

/// A target or expectenv must parse in the engine (400 with the parser's message).
pub fn check_target(app: &App, what: &str, expr: &str) -> Result<()> {
    if expr.trim().is_empty() {
        return Err(Error::invalid("bad_target", format!("{what} is empty")));
    }
    if expr.len() > MAX_TARGET_BYTES {
        return Err(Error::invalid(
            "bad_target",
            format!("{what} is longer than {MAX_TARGET_BYTES} bytes"),
        ));
    }
    app.engine
        .validate(expr)
        .map_err(|e| Error::invalid("bad_target", format!("{what} {expr:?}: {e}")))
}

fn check_platform(p: &Platform) -> Result<()> {
    p.check_spelling()
        .map_err(|e| Error::invalid("bad_manifest", e.to_string()))
}
