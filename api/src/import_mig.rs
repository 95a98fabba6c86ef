//! `mig-api import-mig --from postgresql://…` (docs/design.md §8.4): MIG's investigators,
//! loaders and manifests into this database, so that every loader key of a fleet keeps working
//! without reissue. MIG's database is hostile input like any other: every row is checked, and
//! is either imported or listed with the reason it was not imported as it was, never dropped in
//! silence. A second run imports nothing twice (`mig_imports` remembers MIG's ids).

use crate::app::App;
use crate::db::{Conn, OptionalExtension, Tx};
use crate::error::{Error, Result};
use crate::investigators::{self, check_name};
use crate::manifests::{self, NewRow};
use crate::params;
use mig_protocol::loader::Environment;
use mig_protocol::signature::{self, Keyring};
use mig_protocol::statement::Platform;
use mig_protocol::time::Timestamp;
use mig_protocol::{ManifestStatus, Permission};
use postgres::types::FromSql;
use postgres::{Client, NoTls, Row, Transaction};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long connecting to MIG's database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one import did.
#[derive(Debug, Default)]
pub struct Summary {
    pub investigators: usize,
    pub loaders: usize,
    pub manifests: usize,
    /// Rows an earlier run imported, or that match one already here.
    pub already: usize,
    /// One line per row not imported as it was, with the reason.
    pub notes: Vec<String>,
}

/// Connects to MIG's database. The password comes from `PGPASSWORD`, never from `url`, which a
/// process list shows; there is no TLS here, so a `sslmode` that requires it is refused: run the
/// import where the database is reached over a trusted path (its host, a Unix socket, a tunnel).
pub fn connect(url: &str) -> Result<Client> {
    let pw = std::env::var("PGPASSWORD").ok();
    let mut cfg = crate::db::pg_config(url, pw, false)
        .map_err(|e| Error::Config(format!("--from: {e} (import-mig reads PGPASSWORD)")))?;
    cfg.connect_timeout(CONNECT_TIMEOUT);
    cfg.connect(NoTls).map_err(|e| {
        Error::Import(format!(
            "connecting to MIG's database: {}",
            crate::db::SqlError::Pg(e)
        ))
    })
}

/// Imports everything from one consistent, read-only snapshot of MIG's database.
pub fn run(app: &App, client: &mut Client, platform: &Platform) -> Result<Summary> {
    platform
        .check_spelling()
        .map_err(|e| Error::Config(format!("--platform: {e}")))?;
    let mut pg = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg_err("starting a read-only snapshot"))?;
    pg.batch_execute("SET LOCAL statement_timeout = '300s'")
        .map_err(pg_err("setting a statement timeout"))?;
    let mut s = Summary::default();
    import_investigators(app, &mut pg, &mut s)?;
    import_loaders(app, &mut pg, &mut s)?;
    import_manifests(app, &mut pg, platform, &mut s)?;
    pg.commit().map_err(pg_err("ending the snapshot"))?;
    Ok(s)
}

fn pg_err(what: &'static str) -> impl Fn(postgres::Error) -> Error {
    move |e| {
        Error::Import(format!(
            "{what} in MIG's database: {}",
            crate::db::SqlError::Pg(e)
        ))
    }
}

/// Column `i` of a MIG row, or an error naming the table and column: never a panic.
fn col<'a, T: FromSql<'a>>(r: &'a Row, i: usize, table: &str) -> Result<T> {
    r.try_get(i).map_err(|e| {
        Error::Import(format!(
            "MIG's {table}: column {} is not what MIG writes: {e}",
            r.columns().get(i).map_or("?", |c| c.name())
        ))
    })
}

/// The id of the row `sql` finds by one unique value, if any.
fn find_id(c: &Conn, sql: &str, value: &str) -> Result<Option<u64>> {
    c.query_row(sql, params![value], |r| r.get::<_, i64>(0))
        .optional()
        .map(|o| o.map(|id| id as u64))
        .map_err(Error::db("finding a row to match"))
}

fn imported(c: &Conn, kind: &str, mig_id: i64) -> Result<Option<u64>> {
    c.query_row(
        "SELECT our_id FROM mig_imports WHERE kind = ?1 AND mig_id = ?2",
        params![kind, mig_id],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|o| o.map(|id| id as u64))
    .map_err(Error::db("reading mig_imports"))
}

fn remember(c: &Conn, kind: &str, mig_id: i64, our_id: u64) -> Result<()> {
    c.execute(
        "INSERT INTO mig_imports (kind, mig_id, our_id) VALUES (?1, ?2, ?3)",
        params![kind, mig_id, our_id as i64],
    )
    .map(|_| ())
    .map_err(Error::db("recording an import"))
}

/// Runs `f` in one immediate SQLite transaction.
fn in_tx<T>(app: &App, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
    app.db.with(|c| {
        let tx = c.transaction().map_err(Error::db("importing from MIG"))?;
        let out = f(&tx)?;
        tx.commit().map_err(Error::db("importing from MIG"))?;
        Ok(out)
    })
}

fn import_investigators(app: &App, pg: &mut Transaction<'_>, s: &mut Summary) -> Result<()> {
    const T: &str = "investigators";
    let rows = pg
        .query(
            "SELECT id::bigint, name, publickey, status, permissions, privatekey IS NOT NULL
             FROM investigators ORDER BY id",
            &[],
        )
        .map_err(pg_err("reading investigators"))?;
    for r in &rows {
        let mig_id: i64 = col(r, 0, T)?;
        let name: String = col(r, 1, T)?;
        let publickey: Option<Vec<u8>> = col(r, 2, T)?;
        let status: String = col(r, 3, T)?;
        let perms: i64 = col(r, 4, T)?;
        let has_private: bool = col(r, 5, T)?;
        let who = format!("investigator {mig_id} {name:?}");
        if app
            .db
            .with(|c| imported(c, "investigator", mig_id))?
            .is_some()
        {
            s.already += 1;
            continue;
        }
        // MIG keeps its scheduler's private key in the database: that key cannot be trusted to
        // sign anything here.
        if has_private {
            s.notes.push(format!(
                "{who}: not imported: MIG's database holds its private key (MIG's scheduler)"
            ));
            continue;
        }
        let Some(armored) = publickey.and_then(|k| String::from_utf8(k).ok()) else {
            s.notes
                .push(format!("{who}: not imported: no armored public key"));
            continue;
        };
        let outcome = in_tx(app, |tx| {
            let key = signature::parse_public_key(&who, &armored)
                .map_err(|e| Error::invalid("bad_public_key", e.to_string()))?;
            let fp = signature::fingerprint_hex(&key.primary_key);
            let existing = find_id(
                tx,
                "SELECT id FROM investigators WHERE fingerprint = ?1",
                &fp,
            )?;
            let (id, new) = match existing {
                Some(id) => (id, false),
                None => {
                    let mask = perms.max(0) as u64 & Permission::all_bits();
                    let rec = investigators::add(tx, &name, &armored, mask)?;
                    if status != "active" {
                        tx.execute(
                            "UPDATE investigators SET status = 'disabled' WHERE id = ?1",
                            params![rec.id as i64],
                        )
                        .map_err(Error::db("disabling an imported investigator"))?;
                    }
                    (rec.id, true)
                }
            };
            remember(tx, "investigator", mig_id, id)?;
            Ok((id, new))
        });
        match outcome {
            Ok((_, true)) => s.investigators += 1,
            Ok((id, false)) => {
                s.already += 1;
                s.notes.push(format!(
                    "{who}: its key is investigator {id}'s here: matched"
                ));
            }
            Err(e) => s.notes.push(format!("{who}: not imported: {e}")),
        }
    }
    Ok(())
}

fn import_loaders(app: &App, pg: &mut Transaction<'_>, s: &mut Summary) -> Result<()> {
    const T: &str = "loaders";
    let rows = pg
        .query(
            "SELECT id::bigint, loadername, keyprefix, loaderkey, salt, name, env::text, tags::text,
                    extract(epoch FROM lastseen)::bigint, enabled, expectenv, queueloc
             FROM loaders ORDER BY id",
            &[],
        )
        .map_err(pg_err("reading loaders"))?;
    for r in &rows {
        let mig_id: i64 = col(r, 0, T)?;
        let name: String = col(r, 1, T)?;
        let prefix: String = col(r, 2, T)?;
        let hash: Vec<u8> = col(r, 3, T)?;
        let salt: Vec<u8> = col(r, 4, T)?;
        let agentname: Option<String> = col(r, 5, T)?;
        let env: Option<String> = col(r, 6, T)?;
        let tags: Option<String> = col(r, 7, T)?;
        let lastseen: Option<i64> = col(r, 8, T)?;
        let mut enabled: bool = col(r, 9, T)?;
        let expectenv: Option<String> = col(r, 10, T)?;
        let queueloc: Option<String> = col(r, 11, T)?;
        let who = format!("loader {mig_id} {name:?}");
        if app.db.with(|c| imported(c, "loader", mig_id))?.is_some() {
            s.already += 1;
            continue;
        }
        // MIG's key rules (mig-reference §3.8): 8 alphanumerics of prefix, a 32-byte PBKDF2
        // hash and a 16-byte salt; anything else could never authenticate.
        let bad = if check_name("loader", &name).is_err() {
            Some("its name is empty, too long or has control characters".to_string())
        } else if prefix.len() != 8 || !prefix.bytes().all(|c| c.is_ascii_alphanumeric()) {
            Some(format!(
                "key prefix {prefix:?} is not 8 ASCII alphanumerics"
            ))
        } else if hash.len() != crate::keys::HASH_LEN || salt.len() != 16 {
            Some(format!(
                "a {}-byte key hash and a {}-byte salt, not MIG's 32 and 16",
                hash.len(),
                salt.len()
            ))
        } else {
            None
        };
        if let Some(why) = bad {
            s.notes.push(format!("{who}: not imported: {why}"));
            continue;
        }
        let expectenv = expectenv.filter(|e| !e.trim().is_empty());
        if let Some(e) = &expectenv {
            if let Err(err) = manifests::check_target(app, "expectenv", e) {
                if enabled {
                    enabled = false;
                }
                s.notes.push(format!("{who}: imported disabled: {err}"));
            }
        }
        // Reported facts are kept only in the shape loaders report them.
        let env = env
            .and_then(|t| serde_json::from_str::<Environment>(&t).ok())
            .and_then(|e| serde_json::to_string(&e).ok());
        let tags = tags
            .and_then(|t| serde_json::from_str::<BTreeMap<String, String>>(&t).ok())
            .and_then(|t| serde_json::to_string(&t).ok());
        let outcome = in_tx(app, |tx| {
            if let Some(id) = find_id(tx, "SELECT id FROM loaders WHERE keyprefix = ?1", &prefix)? {
                remember(tx, "loader", mig_id, id)?;
                return Ok(None);
            }
            let id: i64 = tx
                .query_row(
                    "INSERT INTO loaders (name, keyprefix, keyhash, salt, enabled, expectenv,
                   agentname, env, tags, queueloc, lastseen, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
                    params![
                        name,
                        prefix,
                        hash,
                        salt,
                        enabled,
                        expectenv,
                        agentname,
                        env,
                        tags,
                        queueloc,
                        lastseen,
                        Timestamp::now().0 as i64
                    ],
                    |r| r.get(0),
                )
                .map_err(|e| match e {
                    e if e.is_constraint() => {
                        Error::Conflict(format!("a loader named {name:?} exists with another key"))
                    }
                    e => Error::db("importing a loader")(e),
                })?;
            let id = id as u64;
            remember(tx, "loader", mig_id, id)?;
            Ok(Some(id))
        });
        match outcome {
            Ok(Some(_)) => s.loaders += 1,
            Ok(None) => {
                s.already += 1;
                s.notes.push(format!(
                    "{who}: its key prefix {prefix} is here already: matched"
                ));
            }
            Err(e) => s.notes.push(format!("{who}: not imported: {e}")),
        }
    }
    Ok(())
}

/// A MIG signature that verified over the v1 text, by an imported investigator.
struct V1Signature {
    investigator: u64,
    fingerprint: String,
    armored: String,
}

fn import_manifests(
    app: &App,
    pg: &mut Transaction<'_>,
    platform: &Platform,
    s: &mut Summary,
) -> Result<()> {
    const T: &str = "manifests";
    let rows = pg
        .query(
            "SELECT id::bigint, name, octet_length(content)::bigint, status, target,
                    extract(epoch FROM timestamp)::bigint
             FROM manifests ORDER BY id",
            &[],
        )
        .map_err(pg_err("reading manifests"))?;
    let trusted = &app.cfg.v1.fingerprints;
    let required = app.cfg.v1_required();
    for r in &rows {
        let mig_id: i64 = col(r, 0, T)?;
        let name: String = col(r, 1, T)?;
        let len: i64 = col(r, 2, T)?;
        let status: String = col(r, 3, T)?;
        let target: String = col(r, 4, T)?;
        let created: i64 = col(r, 5, T)?;
        let who = format!("manifest {mig_id} {name:?}");
        if app.db.with(|c| imported(c, "manifest", mig_id))?.is_some() {
            s.already += 1;
            continue;
        }
        if len as u64 > app.cfg.limits.upload {
            s.notes.push(format!(
                "{who}: not imported: its content is {len} bytes, over [limits] uploadsize"
            ));
            continue;
        }
        let content: String = pg
            .query_one(
                "SELECT content FROM manifests WHERE id = $1::bigint",
                &[&mig_id],
            )
            .map_err(pg_err("reading a manifest's content"))
            .and_then(|r| col(&r, 0, T))?;
        let stored = check_name("manifest", &name)
            .and_then(|()| {
                base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    content.trim().as_bytes(),
                )
                .map_err(|e| Error::invalid("bad_archive", format!("content: not base64: {e}")))
            })
            .and_then(|bytes| manifests::store_archive(app, &bytes))
            .and_then(|a| manifests::v1_text_of(&a.entries).map(|t| (a, t)));
        let (archive, v1_text) = match stored {
            Ok(x) => x,
            Err(e) => {
                s.notes.push(format!("{who}: not imported: {e}"));
                continue;
            }
        };
        let sigs = signatures(app, pg, mig_id, &who, &v1_text, s)?;
        let counted = sigs
            .iter()
            .filter(|g| !app.cfg.v1.enabled() || trusted.contains(&g.fingerprint))
            .count();
        let mut wanted = match status.as_str() {
            "active" if counted >= required => ManifestStatus::Active,
            "active" => {
                s.notes.push(format!(
                    "{who}: imported staged: active in MIG, but {counted} of the {required} \
                     signatures Go loaders need verify"
                ));
                ManifestStatus::Staged
            }
            "staged" => ManifestStatus::Staged,
            "disabled" => ManifestStatus::Disabled,
            other => {
                s.notes.push(format!(
                    "{who}: imported disabled: MIG status {other:?} is none of active, staged, \
                     disabled"
                ));
                ManifestStatus::Disabled
            }
        };
        if let Err(e) = manifests::check_target(app, "target", &target) {
            if wanted != ManifestStatus::Disabled {
                wanted = ManifestStatus::Disabled;
                s.notes.push(format!("{who}: imported disabled: {e}"));
            }
        }
        let now = Timestamp::now();
        let outcome = in_tx(app, |tx| {
            let id = manifests::insert(
                tx,
                &NewRow {
                    name: &name,
                    target: &target,
                    status: wanted,
                    platform,
                    created: Timestamp(created.max(0) as u64),
                    issued: now,
                    expires: now.plus(u64::from(app.cfg.valid_days) * 86_400),
                    archive: &archive,
                    creator: 0,
                    halt: None,
                    v1_text: Some(&v1_text),
                },
            )?;
            for g in &sigs {
                tx.execute(
                    "INSERT INTO signatures (manifest_id, investigator_id, fingerprint,
                       v1_signature, created)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        id as i64,
                        g.investigator as i64,
                        g.fingerprint,
                        g.armored,
                        now.0 as i64
                    ],
                )
                .map_err(Error::db("importing a signature"))?;
            }
            remember(tx, "manifest", mig_id, id)?;
            Ok(id)
        });
        match outcome {
            Ok(_) => s.manifests += 1,
            Err(e) => s.notes.push(format!("{who}: not imported: {e}")),
        }
    }
    Ok(())
}

/// The signatures of MIG manifest `mig_id` that verify over `text` with the key of the
/// imported investigator who made them; every other one is listed.
fn signatures(
    app: &App,
    pg: &mut Transaction<'_>,
    mig_id: i64,
    who: &str,
    text: &str,
    s: &mut Summary,
) -> Result<Vec<V1Signature>> {
    const T: &str = "manifestsig";
    let rows = pg
        .query(
            "SELECT investigatorid::bigint, pgpsignature FROM manifestsig
             WHERE manifestid = $1::bigint ORDER BY investigatorid",
            &[&mig_id],
        )
        .map_err(pg_err("reading manifest signatures"))?;
    let mut out = Vec::new();
    for r in &rows {
        let inv: i64 = col(r, 0, T)?;
        let flat: String = col(r, 1, T)?;
        let Some(ours) = app.db.with(|c| imported(c, "investigator", inv))? else {
            s.notes.push(format!(
                "{who}: the signature of MIG investigator {inv}, who was not imported, is left out"
            ));
            continue;
        };
        let key = app.db.with(|c| investigators::public_key_of(c, ours))?;
        let checked = signature::parse_public_key("key", &key)
            .map_err(|e| e.to_string())
            .and_then(|k| {
                let armored = signature::rearmor(flat.trim()).map_err(|e| e.to_string())?;
                let v = signature::verify(
                    &Keyring::from_keys(vec![k.clone()]),
                    text.as_bytes(),
                    std::slice::from_ref(&armored),
                );
                let Some(fp) = v.valid.first() else {
                    return Err(v.ignored.join("; "));
                };
                // One a Go loader would refuse is left out here too.
                signature::go_check(&armored, &k).map_err(|e| e.to_string())?;
                Ok((fp.clone(), armored))
            });
        match checked {
            Ok((fingerprint, armored)) => out.push(V1Signature {
                investigator: ours,
                fingerprint,
                armored,
            }),
            Err(why) => s.notes.push(format!(
                "{who}: the signature of MIG investigator {inv} does not verify and is left \
                 out: {why}"
            )),
        }
    }
    Ok(out)
}
