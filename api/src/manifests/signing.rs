//! Signatures: each verified against the signer's key over the exact statement (and the v1
//! text for Go loaders), counted by distinct investigator; enough make the manifest `active`
//! (docs/design.md §3.4, §8.3).

use super::get;
use crate::app::App;
use crate::auth::Caller;
use crate::db::{parsed_column, OptionalExtension};
use crate::error::{Error, Result};
use crate::{investigators, params};
use mig_protocol::admin::{ManifestRecord, NewSignature};
use mig_protocol::signature::{self, Keyring};
use mig_protocol::time::Timestamp;
use mig_protocol::ManifestStatus;

/// A signature as sent: size-capped, armored (MIG's one-line de-armored form is accepted too).
pub fn armored(what: &str, sig: &str) -> Result<String> {
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
            let activated = tx
                .execute(
                    "UPDATE manifests SET status = 'active' WHERE id = ?1 AND status = 'staged'",
                    params![id as i64],
                )
                .map_err(Error::db("activating a manifest"))?;
            // A renewal in force replaces the manifest it renews (renew.rs): that one is
            // offered to no loader and warned about no more.
            if activated > 0 {
                tx.execute(
                    "UPDATE manifests SET status = 'disabled'
                     WHERE id = (SELECT renews FROM manifests WHERE id = ?1)
                       AND status IN ('active', 'halted')",
                    params![id as i64],
                )
                .map_err(Error::db("disabling the renewed manifest"))?;
            }
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
