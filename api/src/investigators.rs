//! Investigators (administrators): OpenPGP public key, status, MIG permission bits, API key.

use crate::db::{Conn, OptionalExtension};
use crate::error::{Error, Result};
use crate::keys;
use crate::params;
use mig_protocol::admin::{permission_names, InvestigatorRecord};
use mig_protocol::signature::{fingerprint_hex, parse_public_key, parse_stored_public_key};
use mig_protocol::time::Timestamp;
use pgp::composed::SignedPublicKey;

/// Largest armored public key accepted.
pub const MAX_PUBLIC_KEY_BYTES: usize = 64 * 1024;

/// An active investigator found by key.
#[derive(Debug, Clone)]
pub struct Active {
    pub id: u64,
    pub name: String,
    pub perms: u64,
}

/// What API-key authentication needs.
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: u64,
    pub name: String,
    pub perms: u64,
    pub active: bool,
    pub apikey_salt: Vec<u8>,
    pub apikey_hash: Vec<u8>,
}

/// Checks a display name: 1 to 256 characters, no control characters.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "bad_name",
            format!("{what} name {name:?} must be 1 to 256 characters without control characters"),
        ));
    }
    Ok(())
}

/// Adds an active investigator; its key must parse and its self-signatures verify.
pub fn add(conn: &Conn, name: &str, armored: &str, perms: u64) -> Result<InvestigatorRecord> {
    check_name("investigator", name)?;
    if armored.len() > MAX_PUBLIC_KEY_BYTES {
        return Err(Error::TooLarge(format!(
            "public key of {} bytes, at most {MAX_PUBLIC_KEY_BYTES}",
            armored.len()
        )));
    }
    let key = parse_public_key(&format!("public key of {name:?}"), armored)
        .map_err(|e| Error::invalid("bad_public_key", e.to_string()))?;
    let fingerprint = fingerprint_hex(&key.primary_key);
    let now = Timestamp::now().0 as i64;
    let inserted = conn.query_row(
        "INSERT INTO investigators (name, fingerprint, publickey, status, permissions, created, lastmodified)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?5) RETURNING id",
        params![name, fingerprint, armored, perms as i64, now],
        |r| r.get::<_, i64>(0),
    );
    match inserted {
        Ok(id) => get(conn, id as u64),
        Err(e) if e.is_constraint() => Err(Error::Conflict(format!(
            "an investigator with key {fingerprint} already exists"
        ))),
        Err(e) => Err(Error::db("adding an investigator")(e)),
    }
}

fn record(r: &crate::db::Row) -> crate::db::SqlResult<InvestigatorRecord> {
    let perms: i64 = r.get(4)?;
    Ok(InvestigatorRecord {
        id: r.get::<_, i64>(0)? as u64,
        name: r.get(1)?,
        fingerprint: r.get(2)?,
        status: crate::db::parsed_column(r, 3)?,
        permissions: permission_names(perms as u64),
        created: Timestamp(r.get::<_, i64>(5)? as u64),
        has_apikey: r.get::<_, Option<String>>(6)?.is_some(),
    })
}

/// The record of one investigator, 404 when unknown.
pub fn get(conn: &Conn, id: u64) -> Result<InvestigatorRecord> {
    conn.query_row(
        "SELECT id, name, fingerprint, status, permissions, created, apikey_prefix
         FROM investigators WHERE id = ?1",
        params![id as i64],
        record,
    )
    .optional()
    .map_err(Error::db("reading an investigator"))?
    .ok_or_else(|| Error::NotFound(format!("investigator {id} does not exist")))
}

/// Ids and fingerprints of the active investigators, by id.
pub fn active_fingerprints(conn: &mut Conn) -> Result<Vec<(u64, String)>> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, fingerprint FROM investigators WHERE status = 'active' ORDER BY id",
        )
        .map_err(Error::db("listing investigators"))?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .map_err(Error::db("listing investigators"))?;
    rows.collect::<crate::db::SqlResult<Vec<_>>>()
        .map_err(Error::db("listing investigators"))
}

/// The parsed public keys of the given investigators.
pub fn public_keys(conn: &mut Conn, ids: &[(u64, String)]) -> Result<Vec<SignedPublicKey>> {
    let mut out = Vec::with_capacity(ids.len());
    for (id, _) in ids {
        let armored = public_key_of(conn, *id)?;
        out.push(
            // A key stored before the RSA size rule still loads; its signatures are ignored
            // with the reason (docs/design.md §4.2).
            parse_stored_public_key(&format!("investigator {id}"), &armored)
                .map_err(|e| Error::Internal(e.to_string()))?,
        );
    }
    Ok(out)
}

/// The armored public key of an investigator.
pub fn public_key_of(conn: &Conn, id: u64) -> Result<String> {
    conn.query_row(
        "SELECT publickey FROM investigators WHERE id = ?1",
        params![id as i64],
        |r| r.get(0),
    )
    .optional()
    .map_err(Error::db("reading a public key"))?
    .ok_or_else(|| Error::NotFound(format!("investigator {id} does not exist")))
}

/// The active investigator holding this key, if any.
pub fn active_by_fingerprint(conn: &mut Conn, fp: &str) -> Result<Option<Active>> {
    conn.query_row(
        "SELECT id, name, permissions FROM investigators WHERE fingerprint = ?1 AND status = 'active'",
        params![fp],
        |r| {
            Ok(Active {
                id: r.get::<_, i64>(0)? as u64,
                name: r.get(1)?,
                perms: r.get::<_, i64>(2)? as u64,
            })
        },
    )
    .optional()
    .map_err(Error::db("finding an investigator by key"))
}

/// The investigator whose API key has this prefix.
pub fn by_apikey_prefix(conn: &mut Conn, prefix: &str) -> Result<Option<ApiKeyRow>> {
    conn.query_row(
        "SELECT id, name, permissions, status, apikey_salt, apikey_hash FROM investigators
         WHERE apikey_prefix = ?1",
        params![prefix],
        |r| {
            Ok(ApiKeyRow {
                id: r.get::<_, i64>(0)? as u64,
                name: r.get(1)?,
                perms: r.get::<_, i64>(2)? as u64,
                active: crate::db::parsed_column::<mig_protocol::InvestigatorStatus>(r, 3)?
                    == mig_protocol::InvestigatorStatus::Active,
                apikey_salt: r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                apikey_hash: r.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
            })
        },
    )
    .optional()
    .map_err(Error::db("finding an API key"))
}

/// Active investigators who can still manage investigators.
fn admins(conn: &Conn) -> Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM investigators WHERE status = 'active' AND (permissions & ?1) != 0",
        params![mig_protocol::Permission::InvestigatorUpdate.bit() as i64],
        |r| r.get(0),
    )
    .map_err(Error::db("counting administrators"))
}

/// Whether anybody can administer this API yet (the start-up hint).
pub fn has_admin(conn: &mut Conn) -> Result<bool> {
    Ok(admins(conn)? > 0)
}

/// Applies `change` (an UPDATE of one row) unless it leaves no active investigator holding
/// PermInvestigatorUpdate: nobody could then repair the API.
fn update_keeping_an_admin(
    conn: &mut Conn,
    id: u64,
    sql: &str,
    value: impl crate::db::ToValue,
) -> Result<InvestigatorRecord> {
    let tx = conn
        .transaction()
        .map_err(Error::db("updating an investigator"))?;
    let before = admins(&tx)?;
    let now = Timestamp::now().0 as i64;
    let n = tx
        .execute(sql, params![value, now, id as i64])
        .map_err(Error::db("updating an investigator"))?;
    if n == 0 {
        return Err(Error::NotFound(format!("investigator {id} does not exist")));
    }
    if before > 0 && admins(&tx)? == 0 {
        return Err(Error::Conflict(format!(
            "investigator {id} is the last active investigator with PermInvestigatorUpdate: \
             it cannot be disabled or lose that permission"
        )));
    }
    let rec = get(&tx, id)?;
    tx.commit().map_err(Error::db("updating an investigator"))?;
    Ok(rec)
}

pub fn set_permissions(conn: &mut Conn, id: u64, mask: u64) -> Result<InvestigatorRecord> {
    update_keeping_an_admin(
        conn,
        id,
        "UPDATE investigators SET permissions = ?1, lastmodified = ?2 WHERE id = ?3",
        mask as i64,
    )
}

pub fn set_status(conn: &mut Conn, id: u64, status: &str) -> Result<InvestigatorRecord> {
    let status = mig_protocol::InvestigatorStatus::parse(status)
        .map_err(|e| Error::invalid("bad_status", e.to_string()))?;
    update_keeping_an_admin(
        conn,
        id,
        "UPDATE investigators SET status = ?1, lastmodified = ?2 WHERE id = ?3",
        status.as_str(),
    )
}

/// Issues (or replaces) an investigator's API key; returns the key, shown once.
pub fn issue_apikey(conn: &mut Conn, id: u64) -> Result<String> {
    get(conn, id)?;
    // A prefix collision (62^8 space) is retried rather than reported.
    for _ in 0..4 {
        let k = keys::issue(None);
        let r = conn.execute(
            "UPDATE investigators SET apikey_prefix = ?1, apikey_salt = ?2, apikey_hash = ?3,
             lastmodified = ?4 WHERE id = ?5",
            params![
                k.prefix,
                k.salt,
                k.hash,
                Timestamp::now().0 as i64,
                id as i64
            ],
        );
        match r {
            Ok(_) => return Ok(k.key),
            Err(e) if e.is_constraint() => continue,
            Err(e) => return Err(Error::db("storing an API key")(e)),
        }
    }
    Err(Error::Internal(
        "could not find a free API key prefix".into(),
    ))
}

/// Names of investigators by id (signers of a manifest).
pub fn name_of(conn: &Conn, id: u64) -> Result<String> {
    Ok(get(conn, id)?.name)
}
