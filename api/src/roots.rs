//! The root of trust chain (docs/design.md §4.21, docs/api.md "Roots of trust"). Root 1 is the
//! one built into the loaders, named by `[root] keys` and `[root] threshold` (app.rs); every
//! later root is a document administrators upload and sign here. A root is `accepted` once
//! mig-protocol's [`Root::accept_next`] takes it from the accepted root before it: only then do
//! loaders get it (`GET loader/root/<version>`), and only then can the next one be proposed.

use crate::app::App;
use crate::db::{Conn, OptionalExtension};
use crate::error::{Error, Result};
use crate::params;
use mig_protocol::root::{
    Document, NewRoot, NewRootSignature, Root, RootRecord, RootSigner, Signed, MAX_DOCUMENT_BYTES,
};
use mig_protocol::signature;
use mig_protocol::time::Timestamp;

fn root1(app: &App) -> Result<&Root> {
    app.root.as_ref().ok_or_else(|| {
        Error::Conflict(
            "this API has no root 1: set [root] keys (and threshold) to the keys and threshold \
             built into the loaders (docs/api.md)"
                .into(),
        )
    })
}

/// The newest accepted version (1 when none was uploaded).
fn latest(conn: &Conn) -> Result<u64> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT MAX(version) FROM roots WHERE accepted = 1",
            params![],
            |r| r.get(0),
        )
        .map_err(Error::db("reading the newest root"))?;
    Ok(v.map_or(1, |v| v as u64))
}

/// The newest accepted root, which every manifest answer announces (`ManifestResponse::root`);
/// `None` when `[root]` is not configured. Kept answers are made again after any
/// administrator's write (routes/invalidate.rs), so a root accepted by its last signature is
/// announced from the next poll on.
pub fn announced(app: &App, conn: &Conn) -> Result<Option<u64>> {
    if app.root.is_none() {
        return Ok(None);
    }
    latest(conn).map(Some)
}

/// The accepted root `version`: root 1 from the configuration, a later one from the document
/// stored when it was accepted.
fn trusted(app: &App, conn: &Conn, version: u64) -> Result<Root> {
    if version == 1 {
        return root1(app).cloned();
    }
    let doc: String = conn
        .query_row(
            "SELECT document FROM roots WHERE version = ?1 AND accepted = 1",
            params![version as i64],
            |r| r.get(0),
        )
        .optional()
        .map_err(Error::db("reading a root"))?
        .ok_or_else(|| Error::Conflict(format!("root {version} is not accepted yet")))?;
    let (d, keyring) = Document::parse(&doc)
        .map_err(|e| Error::Internal(format!("stored root {version} does not parse: {e}")))?;
    Ok(Root {
        version,
        threshold: d.threshold,
        keyring,
        expires: Some(d.expires),
    })
}

fn signatures(conn: &Conn, version: u64) -> Result<Vec<RootSigner>> {
    let mut st = conn
        .prepare_cached(
            "SELECT fingerprint, signature FROM root_signatures WHERE version = ?1
             ORDER BY created, fingerprint",
        )
        .map_err(Error::db("reading root signatures"))?;
    st.query_map(params![version as i64], |r| {
        Ok(RootSigner {
            fingerprint: r.get(0)?,
            signature: r.get(1)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(Error::db("reading root signatures"))
}

/// One stored root with its signers.
pub fn get(conn: &Conn, version: u64) -> Result<RootRecord> {
    let (document, accepted): (String, i64) = conn
        .query_row(
            "SELECT document, accepted FROM roots WHERE version = ?1",
            params![version as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(Error::db("reading a root"))?
        .ok_or_else(|| Error::NotFound(format!("root {version} does not exist")))?;
    Ok(RootRecord {
        version,
        document,
        signers: signatures(conn, version)?,
        accepted: accepted == 1,
    })
}

/// Every stored root, oldest first.
pub fn list(conn: &Conn) -> Result<Vec<RootRecord>> {
    let versions: Vec<i64> = {
        let mut st = conn
            .prepare_cached("SELECT version FROM roots ORDER BY version")
            .map_err(Error::db("listing roots"))?;
        st.query_map(params![], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(Error::db("listing roots"))?
    };
    versions.into_iter().map(|v| get(conn, v as u64)).collect()
}

/// `POST roots`: stores a proposed root. Refused unless it parses (mig-protocol's strict
/// parser), has not expired, and is the version after the newest accepted one; a proposal of
/// that version not yet accepted is replaced, its signatures dropped (they were over other bytes).
pub fn propose(app: &App, new: &NewRoot) -> Result<RootRecord> {
    root1(app)?;
    if new.document.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::TooLarge(format!(
            "root document of {} bytes, at most {MAX_DOCUMENT_BYTES}",
            new.document.len()
        )));
    }
    let (doc, _) = Document::parse(&new.document)
        .map_err(|e| Error::invalid("bad_root", format!("root document refused: {e}")))?;
    let now = Timestamp::now();
    if doc.expires <= now {
        return Err(Error::invalid(
            "bad_root",
            format!(
                "root {} expires at {}, which is past (now {now})",
                doc.version, doc.expires
            ),
        ));
    }
    app.db.with(|conn| {
        let tx = conn.transaction().map_err(Error::db("proposing a root"))?;
        let newest = latest(&tx)?;
        if doc.version != newest + 1 {
            return Err(Error::Conflict(format!(
                "root {} does not chain: the newest accepted root is {newest}, so only root {} \
                 can be proposed",
                doc.version,
                newest + 1
            )));
        }
        let v = doc.version as i64;
        tx.execute("DELETE FROM root_signatures WHERE version = ?1", params![v])
            .and_then(|_| tx.execute("DELETE FROM roots WHERE version = ?1", params![v]))
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO roots (version, document, accepted, created) VALUES (?1, ?2, 0, ?3)",
                    params![v, new.document.as_str(), now.0 as i64],
                )
            })
            .map_err(Error::db("proposing a root"))?;
        let rec = get(&tx, doc.version)?;
        tx.commit().map_err(Error::db("proposing a root"))?;
        Ok(rec)
    })
}

/// `POST roots/<version>/signatures`: records a signature over the stored document made by a key
/// of the root before it or of the root itself (refused otherwise, naming why), then accepts the
/// root once [`Root::accept_next`] takes it with every signature recorded.
pub fn sign(app: &App, version: u64, new: &NewRootSignature) -> Result<RootRecord> {
    let sig = crate::manifests::armored_signature("signature", &new.signature)?;
    app.db.with(|conn| {
        let tx = conn.transaction().map_err(Error::db("signing a root"))?;
        let rec = get(&tx, version)?;
        let previous = trusted(app, &tx, version - 1)?;
        let (_, own) = Document::parse(&rec.document)
            .map_err(|e| Error::Internal(format!("stored root {version} does not parse: {e}")))?;
        let bytes = rec.document.as_bytes();
        let one = std::slice::from_ref(&sig);
        let by_previous = signature::verify(&previous.keyring, bytes, one);
        let by_own = signature::verify(&own, bytes, one);
        let Some(fp) = by_previous
            .valid
            .first()
            .or_else(|| by_own.valid.first())
            .cloned()
        else {
            app.metrics.signature("invalid");
            return Err(Error::invalid(
                "bad_signature",
                format!(
                    "the signature does not count for root {version}: it is by no key of root \
                     {} or root {version}: {}",
                    version - 1,
                    by_own.ignored.join("; ")
                ),
            ));
        };
        app.metrics.signature("valid");
        tx.execute(
            "INSERT INTO root_signatures (version, fingerprint, signature, created)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (version, fingerprint) DO UPDATE SET signature = excluded.signature",
            params![
                version as i64,
                fp.as_str(),
                sig.as_str(),
                Timestamp::now().0 as i64
            ],
        )
        .map_err(Error::db("signing a root"))?;
        let signed = Signed {
            document: rec.document.clone(),
            signatures: signatures(&tx, version)?
                .into_iter()
                .map(|s| s.signature)
                .collect(),
        };
        if !rec.accepted && previous.accept_next(&signed).is_ok() {
            tx.execute(
                "UPDATE roots SET accepted = 1 WHERE version = ?1",
                params![version as i64],
            )
            .map_err(Error::db("accepting a root"))?;
        }
        let rec = get(&tx, version)?;
        tx.commit().map_err(Error::db("signing a root"))?;
        Ok(rec)
    })
}

/// `GET loader/root/<version>`: the accepted root and its signatures; 404 for any other.
pub fn serve(app: &App, version: u64) -> Result<Signed> {
    // Only "no such accepted root" is a 404: a loader reads it as the end of the chain, so a
    // database failure must not look like one.
    match app.db.with(|c| get(c, version)) {
        Ok(rec) if rec.accepted => Ok(Signed {
            document: rec.document,
            signatures: rec.signers.into_iter().map(|s| s.signature).collect(),
        }),
        Ok(_) | Err(Error::NotFound(_)) => Err(Error::NotFound(format!("no root {version}"))),
        Err(e) => Err(e),
    }
}
