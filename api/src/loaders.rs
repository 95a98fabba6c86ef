//! Loader administration (docs/design.md §3.7): keys, administrator-owned settings, search, and
//! which loaders a manifest targets. What a loader itself asks is answered by serve.rs.

use crate::app::App;
use crate::db::like_pattern;
use crate::db::{Conn, OptionalExtension};
use crate::error::{Error, Result};
use crate::investigators::check_name;
use crate::keys;
use crate::manifests;
use crate::params;
use crate::targeting::LoaderFacts;
use mig_protocol::admin::{LastReport, LoaderKeyIssued, LoaderRecord};
use mig_protocol::loader::{Environment, ReportResult};
use mig_protocol::time::Timestamp;
use mig_protocol::ManifestStatus;
use std::collections::BTreeMap;

/// Administrator-owned attributes: at most this many, with bounded keys and values.
pub const MAX_ATTRIBUTES: usize = 64;
const MAX_ATTRIBUTE_KEY: usize = 64;
const MAX_ATTRIBUTE_VALUE: usize = 1024;
const SELECT_RECORD: &str =
    "SELECT l.id, l.name, l.keyprefix, l.agentname, l.enabled, l.expectenv, l.attributes,
            l.lastseen, l.env, l.tags, r.serial, r.result, r.message, r.time, l.protocol
     FROM loaders l LEFT JOIN loader_reports r ON r.loader_id = l.id";

fn json_map(text: Option<String>) -> BTreeMap<String, String> {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn record_row(r: &crate::db::Row) -> crate::db::SqlResult<LoaderRecord> {
    let report = match r.get::<_, Option<i64>>(10)? {
        Some(serial) => Some(LastReport {
            serial: serial as u64,
            result: r.get(11)?,
            message: r.get(12)?,
            time: Timestamp(r.get::<_, i64>(13)? as u64),
        }),
        None => None,
    };
    Ok(LoaderRecord {
        id: r.get::<_, i64>(0)? as u64,
        name: r.get(1)?,
        prefix: r.get(2)?,
        agentname: r.get(3)?,
        enabled: r.get(4)?,
        expectenv: r.get(5)?,
        attributes: json_map(r.get(6)?),
        lastseen: r.get::<_, Option<i64>>(7)?.map(|t| Timestamp(t as u64)),
        environment: r
            .get::<_, Option<String>>(8)?
            .and_then(|t| serde_json::from_str::<Environment>(&t).ok()),
        tags: json_map(r.get(9)?),
        last_report: report,
        protocol: r.get(14)?,
    })
}

/// One loader, 404 when unknown.
pub fn get(conn: &Conn, id: u64) -> Result<LoaderRecord> {
    conn.query_row(
        &format!("{SELECT_RECORD} WHERE l.id = ?1"),
        params![id as i64],
        record_row,
    )
    .optional()
    .map_err(Error::db("reading a loader"))?
    .ok_or_else(|| Error::NotFound(format!("loader {id} does not exist")))
}

/// What targeting sees of a loader: reported facts plus administrator-owned attributes.
pub fn facts(record: &LoaderRecord) -> LoaderFacts {
    LoaderFacts {
        name: record.agentname.clone().unwrap_or_default(),
        loadername: record.name.clone(),
        env: record
            .environment
            .as_ref()
            .and_then(|e| serde_json::to_value(e).ok())
            .unwrap_or(serde_json::Value::Null),
        tags: serde_json::to_value(&record.tags).unwrap_or(serde_json::Value::Null),
        attributes: serde_json::to_value(&record.attributes).unwrap_or(serde_json::Value::Null),
    }
}

/// Every enabled loader with its facts.
pub fn enabled_with_facts(conn: &Conn) -> Result<Vec<(LoaderRecord, LoaderFacts)>> {
    let mut st = conn
        .prepare_cached(&format!(
            "{SELECT_RECORD} WHERE l.enabled = 1 ORDER BY l.id"
        ))
        .map_err(Error::db("listing loaders"))?;
    let rows: Vec<LoaderRecord> = st
        .query_map([], record_row)
        .and_then(|rows| rows.collect())
        .map_err(Error::db("listing loaders"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let f = facts(&r);
            (r, f)
        })
        .collect())
}

fn normalize_expectenv(app: &App, e: Option<String>) -> Result<Option<String>> {
    match e {
        Some(e) if !e.trim().is_empty() => {
            manifests::check_target(app, "expectenv", &e)?;
            Ok(Some(e))
        }
        _ => Ok(None),
    }
}

/// Creates a disabled loader and returns its key, shown this once.
pub fn create(app: &App, name: &str, expectenv: Option<String>) -> Result<LoaderKeyIssued> {
    check_name("loader", name)?;
    let expectenv = normalize_expectenv(app, expectenv)?;
    let id = app.db.with(|c| {
        for _ in 0..4 {
            let k = keys::issue(None);
            let r = c.query_row(
                "INSERT INTO loaders (name, keyprefix, keyhash, salt, keyfast, enabled, expectenv,
                     created)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7) RETURNING id",
                params![
                    name,
                    k.prefix,
                    k.hash,
                    k.salt,
                    k.fast,
                    expectenv,
                    Timestamp::now().0 as i64
                ],
                |r| r.get::<_, i64>(0),
            );
            match r {
                Ok(id) => return Ok((id as u64, k.key)),
                Err(e) if e.is_constraint() => {
                    // SQLite names the column, PostgreSQL the constraint.
                    let which = e.constraint_detail();
                    if which.contains("loaders.name") || which == "loaders_name_key" {
                        return Err(Error::Conflict(format!(
                            "a loader named {name:?} already exists"
                        )));
                    }
                    // A prefix collision in a 62^8 space: draw again.
                    continue;
                }
                Err(e) => return Err(Error::db("creating a loader")(e)),
            }
        }
        Err(Error::Internal(
            "could not find a free loader key prefix".into(),
        ))
    })?;
    let (id, key) = id;
    Ok(LoaderKeyIssued {
        loader: app.db.with(|c| get(c, id))?,
        key,
    })
}

/// Enables or disables a loader; a disabled loader is refused on its next request.
pub fn set_status(conn: &Conn, id: u64, status: &str) -> Result<LoaderRecord> {
    let enabled = mig_protocol::LoaderStatus::parse(status)
        .map_err(|e| Error::invalid("bad_status", e.to_string()))?
        == mig_protocol::LoaderStatus::Enabled;
    update(
        conn,
        id,
        "UPDATE loaders SET enabled = ?1 WHERE id = ?2",
        enabled,
    )
}

fn update(conn: &Conn, id: u64, sql: &str, v: impl crate::db::ToValue) -> Result<LoaderRecord> {
    let n = conn
        .execute(sql, params![v, id as i64])
        .map_err(Error::db("updating a loader"))?;
    if n == 0 {
        return Err(Error::NotFound(format!("loader {id} does not exist")));
    }
    get(conn, id)
}

/// Sets or (empty/absent) clears the expectenv expression. Like the attributes, it advances
/// the row's `selection_rev`: this loader's kept poll outcome is stale on every replica
/// (poll.rs).
pub fn set_expectenv(app: &App, id: u64, e: Option<String>) -> Result<LoaderRecord> {
    let e = normalize_expectenv(app, e)?;
    app.db.with(|c| {
        update(
            c,
            id,
            "UPDATE loaders SET expectenv = ?1, selection_rev = selection_rev + 1 WHERE id = ?2",
            &e,
        )
    })
}

/// Replaces the administrator-owned attributes (advancing `selection_rev`, as
/// [`set_expectenv`]).
pub fn set_attributes(
    conn: &Conn,
    id: u64,
    attrs: &BTreeMap<String, String>,
) -> Result<LoaderRecord> {
    if attrs.len() > MAX_ATTRIBUTES {
        return Err(Error::invalid(
            "bad_attributes",
            format!("{} attributes, at most {MAX_ATTRIBUTES}", attrs.len()),
        ));
    }
    for (k, v) in attrs {
        let key_ok = !k.is_empty()
            && k.len() <= MAX_ATTRIBUTE_KEY
            && k.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c));
        if !key_ok {
            return Err(Error::invalid(
                "bad_attributes",
                format!(
                    "attribute name {k:?} must be 1 to {MAX_ATTRIBUTE_KEY} letters, digits, _ - ."
                ),
            ));
        }
        if v.len() > MAX_ATTRIBUTE_VALUE || v.chars().any(char::is_control) {
            return Err(Error::invalid(
                "bad_attributes",
                format!("attribute {k:?}: the value must be at most {MAX_ATTRIBUTE_VALUE} bytes without control characters"),
            ));
        }
    }
    let text =
        serde_json::to_string(attrs).map_err(|e| Error::Internal(format!("attributes: {e}")))?;
    update(
        conn,
        id,
        "UPDATE loaders SET attributes = ?1, selection_rev = selection_rev + 1 WHERE id = ?2",
        &text,
    )
}

/// A new secret under the same prefix; the old key stops working at once.
pub fn rotate_key(conn: &Conn, id: u64) -> Result<LoaderKeyIssued> {
    let prefix: String = conn
        .query_row(
            "SELECT keyprefix FROM loaders WHERE id = ?1",
            params![id as i64],
            |r| r.get(0),
        )
        .optional()
        .map_err(Error::db("reading a loader"))?
        .ok_or_else(|| Error::NotFound(format!("loader {id} does not exist")))?;
    let k = keys::issue(Some(&prefix));
    conn.execute(
        "UPDATE loaders SET keyhash = ?1, salt = ?2, keyfast = ?3 WHERE id = ?4",
        params![k.hash, k.salt, k.fast, id as i64],
    )
    .map_err(Error::db("rotating a loader key"))?;
    Ok(LoaderKeyIssued {
        loader: get(conn, id)?,
        key: k.key,
    })
}

/// Search filters for loaders (docs/api.md `search?type=loader`).
#[derive(Debug, Default, Clone)]
pub struct Search {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub agentname: Option<String>,
    /// The serial and the result of the latest report.
    pub serial: Option<u64>,
    pub result: Option<ReportResult>,
    /// Not heard from since this time (or never).
    pub seen_before: Option<Timestamp>,
    pub limit: u64,
}

pub fn search(conn: &Conn, s: &Search) -> Result<Vec<LoaderRecord>> {
    let mut st = conn
        .prepare_cached(&format!(
            "{SELECT_RECORD} WHERE (?1 IS NULL OR l.id = ?1)
               AND (?2 IS NULL OR l.name LIKE ?2 ESCAPE '\\')
               AND (?3 IS NULL OR l.agentname LIKE ?3 ESCAPE '\\')
               AND (?5 IS NULL OR r.serial = ?5)
               AND (?6 IS NULL OR r.result = ?6)
               AND (?7 IS NULL OR l.lastseen IS NULL OR l.lastseen < ?7)
             ORDER BY l.id DESC LIMIT ?4"
        ))
        .map_err(Error::db("searching loaders"))?;
    st.query_map(
        params![
            s.id.map(|i| i as i64),
            s.name.as_deref().map(like_pattern),
            s.agentname.as_deref().map(like_pattern),
            s.limit as i64,
            s.serial.map(|n| n as i64),
            s.result.map(ReportResult::as_str),
            s.seen_before.map(|t| t.0 as i64),
        ],
        record_row,
    )
    .and_then(|rows| rows.collect())
    .map_err(Error::db("searching loaders"))
}

/// The enabled loaders whose facts this manifest's target matches now (a disabled manifest
/// targets nobody).
pub fn targeted_loaders(app: &App, id: u64) -> Result<Vec<LoaderRecord>> {
    let m = app.db.with(|c| manifests::get(c, id))?;
    if m.status == ManifestStatus::Disabled {
        return Ok(Vec::new());
    }
    let candidates = app.db.with(|c| enabled_with_facts(c))?;
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
