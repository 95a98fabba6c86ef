//! Manifests: upload (safe archive → statement made once, serial = id → `staged`), verified
//! signatures (→ `active` at `[manifest] requiredsignatures` distinct investigators), reset,
//! disable, search, and the loaders a manifest targets.

use crate::app::App;
use crate::archive;
use crate::auth::Caller;
use crate::db::like_pattern;
use crate::db::parsed_column;
use crate::db::{Conn, OptionalExtension, Tx};
use crate::error::{Error, Result};
use crate::halt;
use crate::investigators;
use crate::loaders;
use crate::params;
use base64::Engine as _;
use mig_protocol::admin::{LoaderRecord, ManifestRecord, NewManifest, NewSignature};
use mig_protocol::halt::HaltRule;
use mig_protocol::mig_v1;
use mig_protocol::signature::{self, Keyring};
use mig_protocol::statement::{Entry, Platform, Serial, Statement, FORMAT};
use mig_protocol::time::Timestamp;
use mig_protocol::ManifestStatus;
use std::collections::HashSet;

/// Longest target expression stored (MIG: varchar(2048)).
pub const MAX_TARGET_BYTES: usize = 2048;

const SELECT_RECORD: &str =
    "SELECT id, name, target, status, os, arch, created, issued, expires, statement,
       halt_after, halt_min, halted_at, halted_reason, v1_text
     FROM manifests";

/// Validates and stores a new manifest; the statement is made here, once.
pub fn create(app: &App, caller: &Caller, req: NewManifest) -> Result<ManifestRecord> {
    investigators::check_name("manifest", &req.name)?;
    check_target(app, "target", &req.target)?;
    check_platform(&req.platform)?;
    halt::check_rule(req.halt.as_ref())?;
    let days = req.valid_days.unwrap_or(app.cfg.valid_days);
    if !(1..=3650).contains(&days) {
        return Err(Error::invalid(
            "bad_manifest",
            format!("valid_days {days} is outside 1..=3650"),
        ));
    }
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
                expires: now.plus(u64::from(days) * 86_400),
                archive: &archive,
                creator: caller.id,
                halt: req.halt,
                v1_text: v1_text.as_deref(),
            },
        )?;
        tx.commit().map_err(Error::db("creating a manifest"))?;
        Ok(id)
    })?;
    app.db.with(|c| get(c, id))
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
        app,
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
}

/// Stores a manifest inside `tx`: the row first, since the serial is the row id, then its
/// statement, made here once, and its entries; the row never exists without them.
pub fn insert(tx: &Tx<'_>, row: &NewRow<'_>) -> Result<u64> {
    let what = || Error::db("storing a manifest");
    let id: i64 = tx
        .query_row(
            "INSERT INTO manifests (name, target, status, os, arch, created, issued, expires,
         statement, archive_sha256, archive_size, creator, halt_after, halt_min, v1_text)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', ?9, ?10, ?11, ?12, ?13, ?14) RETURNING id",
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
                row.v1_text
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

/// A signature as sent: size-capped, armored (MIG's one-line de-armored form is accepted too).
fn armored(what: &str, sig: &str) -> Result<String> {
    if sig.len() > mig_protocol::loader::MAX_SIGNATURE_BYTES {
        return Err(Error::TooLarge(format!(
            "{what} of {} bytes, at most {}",
            sig.len(),
            mig_protocol::loader::MAX_SIGNATURE_BYTES
        )));
    }
    if sig.trim_start().starts_with("-----BEGIN") {
        Ok(sig.to_string())
    } else {
        signature::rearmor(sig.trim())
            .map_err(|e| Error::invalid("bad_signature", format!("{what}: {e}")))
    }
}

/// Verifies a signature over the stored statement (and, for a manifest made for Go loaders, the
/// same investigator's signature over its v1 text) and records it (one per investigator).
pub fn add_signature(
    app: &App,
    caller: &Caller,
    id: u64,
    new: &NewSignature,
) -> Result<ManifestRecord> {
    let armored_sig = armored("signature", &new.signature)?;
    let armored_v1 = match &new.v1_signature {
        Some(s) => Some(armored("v1 signature", s)?),
        None => None,
    };
    let (status, statement, v1_text) = app.db.with(|c| {
        c.query_row(
            "SELECT status, statement, v1_text FROM manifests WHERE id = ?1",
            params![id as i64],
            |r| {
                Ok((
                    parsed_column::<ManifestStatus>(r, 0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()
        .map_err(Error::db("reading a manifest"))?
        .ok_or_else(|| Error::NotFound(format!("manifest {id} does not exist")))
    })?;
    if status == ManifestStatus::Disabled {
        return Err(Error::Conflict(format!(
            "manifest {id} is disabled: it takes no more signatures"
        )));
    }
    if app.cfg.auth_enabled && already_signed(app, id, caller.id)? {
        return Err(already_signed_error(caller.id, id));
    }
    // docs/design.md §2.3: verified against the caller's own key only (MIG never verified). With
    // authentication off there is no caller key: the signature counts for whichever active
    // investigator made it.
    let signers: Vec<(u64, String)> = if app.cfg.auth_enabled {
        let fp = app
            .db
            .with(|c| investigators::get(c, caller.id))?
            .fingerprint;
        vec![(caller.id, fp)]
    } else {
        app.db.with(investigators::active_fingerprints)?
    };
    let ring = Keyring::from_keys(app.db.with(|c| investigators::public_keys(c, &signers))?);
    let verdict = signature::verify(
        &ring,
        statement.as_bytes(),
        std::slice::from_ref(&armored_sig),
    );
    let Some(fp) = verdict.valid.first() else {
        app.metrics.signature("invalid");
        let why = if verdict.ignored.is_empty() {
            "no signature".to_string()
        } else {
            verdict.ignored.join("; ")
        };
        let keys = if app.cfg.auth_enabled {
            format!("your key {}", signers[0].1)
        } else {
            "the key of any active investigator".to_string()
        };
        return Err(Error::invalid(
            "bad_signature",
            format!("the signature does not count for manifest {id} with {keys}: {why}"),
        ));
    };
    app.metrics.signature("valid");
    let signer = signers
        .iter()
        .find(|(_, f)| f == fp)
        .map(|(i, _)| *i)
        .ok_or_else(|| Error::Internal(format!("verified key {fp} has no investigator")))?;
    let v1_signature = match (armored_v1, &v1_text) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(Error::invalid(
                "bad_signature",
                format!(
                    "manifest {id} is not made for MIG's Go loaders: it has no v1 text to sign"
                ),
            ))
        }
        (Some(v1), Some(text)) => Some(verify_v1(&ring, fp, id, text, v1)?),
    };
    let required = app.cfg.required_signatures as i64;
    app.db.with(|conn| {
        let tx = conn
            .transaction()
            .map_err(Error::db("signing a manifest"))?;
        let status: ManifestStatus = tx
            .query_row(
                "SELECT status FROM manifests WHERE id = ?1",
                params![id as i64],
                |r| parsed_column(r, 0),
            )
            .map_err(Error::db("signing a manifest"))?;
        if status == ManifestStatus::Disabled {
            return Err(Error::Conflict(format!(
                "manifest {id} is disabled: it takes no more signatures"
            )));
        }
        let r = tx.execute(
            // A row imported from MIG holds only a v1 signature: the statement's joins it.
            "INSERT INTO signatures (manifest_id, investigator_id, fingerprint, signature, created,
               v1_signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (manifest_id, investigator_id) DO UPDATE
               SET signature = excluded.signature,
                   v1_signature = COALESCE(excluded.v1_signature, signatures.v1_signature)
               WHERE signatures.signature IS NULL",
            params![
                id as i64,
                signer as i64,
                fp,
                armored_sig,
                Timestamp::now().0 as i64,
                v1_signature
            ],
        );
        match r {
            Ok(0) => return Err(already_signed_error(signer, id)),
            Ok(_) => {}
            Err(e) if e.is_constraint() => return Err(already_signed_error(signer, id)),
            Err(e) => return Err(Error::db("signing a manifest")(e)),
        }
        let count: i64 = tx
            .query_row(
                "SELECT COUNT(DISTINCT investigator_id) FROM signatures
                 WHERE manifest_id = ?1 AND signature IS NOT NULL",
                params![id as i64],
                |r| r.get(0),
            )
            .map_err(Error::db("counting signatures"))?;
        if count >= required {
            tx.execute(
                "UPDATE manifests SET status = 'active' WHERE id = ?1 AND status = 'staged'",
                params![id as i64],
            )
            .map_err(Error::db("activating a manifest"))?;
        }
        tx.commit().map_err(Error::db("signing a manifest"))?;
        get(conn, id)
    })
}

/// A v1 signature counts only when the key `fp` that made the statement's signature made it
/// over the stored v1 text, and a Go loader can verify it (docs/design.md §8.3).
fn verify_v1(ring: &Keyring, fp: &str, id: u64, text: &str, armored: String) -> Result<String> {
    let verdict = signature::verify(ring, text.as_bytes(), std::slice::from_ref(&armored));
    if verdict.valid.first().map(String::as_str) != Some(fp) {
        let why = if verdict.ignored.is_empty() {
            format!("it is not by {fp}, the key of the statement's signature")
        } else {
            verdict.ignored.join("; ")
        };
        return Err(Error::invalid(
            "bad_signature",
            format!("the v1 signature does not count for manifest {id}: {why}"),
        ));
    }
    let key = ring
        .key(fp)
        .ok_or_else(|| Error::Internal(format!("verified key {fp} is not in the keyring")))?;
    signature::go_check(&armored, key).map_err(|e| {
        Error::invalid(
            "bad_signature",
            format!(
                "the v1 signature of manifest {id} cannot reach MIG's Go loaders: {e}; sign the \
                 statement alone with this key, and the v1 text with an RSA, DSA or ECDSA key"
            ),
        )
    })?;
    Ok(armored)
}

fn already_signed(app: &App, id: u64, investigator: u64) -> Result<bool> {
    app.db.with(|c| {
        c.query_row(
            "SELECT 1 FROM signatures WHERE manifest_id = ?1 AND investigator_id = ?2
               AND signature IS NOT NULL",
            params![id as i64, investigator as i64],
            |_| Ok(()),
        )
        .optional()
        .map(|r| r.is_some())
        .map_err(Error::db("reading signatures"))
    })
}

fn already_signed_error(investigator: u64, id: u64) -> Error {
    Error::Conflict(format!(
        "investigator {investigator} already signed manifest {id}: one signature each"
    ))
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

/// The enabled loaders whose facts this manifest's target matches now (a disabled manifest
/// targets nobody).
pub fn targeted_loaders(app: &App, id: u64) -> Result<Vec<LoaderRecord>> {
    let m = app.db.with(|c| get(c, id))?;
    if m.status == ManifestStatus::Disabled {
        return Ok(Vec::new());
    }
    let candidates = app.db.with(|c| loaders::enabled_with_facts(c))?;
    let mut out = Vec::new();
    for (record, facts) in candidates {
        let platform_ok = record
            .environment
            .as_ref()
            .is_some_and(|e| e.os == m.platform.os && e.arch == m.platform.arch);
        if platform_ok && app.engine.matches(&facts, &m.target).unwrap_or(false) {
            out.push(record);
        }
    }
    Ok(out)
}
