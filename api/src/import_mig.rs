//! `mig-api import-mig --from postgresql://…` (docs/design.md §8.4): MIG's investigators,
//! loaders and manifests into this database, so that every loader key of a fleet keeps working
//! without reissue. MIG's database is hostile input like any other: every row is checked, and
//! is either imported or listed with the reason it was not imported as it was, never dropped in
//! silence. A second run imports nothing twice (`mig_imports` remembers MIG's ids). Before
//! anything is read, every table's rows are counted against `--max-rows` and every column this
//! reads is measured against its cap, in the same snapshot, so that one hostile row stops the
//! whole import before a byte of it is written; the investigators it would create are shown, with
//! their permissions, to be confirmed.

use crate::app::App;
use crate::config::Config;
use crate::db::{Conn, Location, OptionalExtension, Tx, Verified};
use crate::error::{Error, Result};
use crate::investigators::{self, check_name};
use crate::manifests::{self, NewRow};
use crate::params;
use mig_protocol::loader::Environment;
use mig_protocol::signature::{self, Keyring};
use mig_protocol::statement::Platform;
use mig_protocol::time::Timestamp;
use mig_protocol::{ManifestStatus, Permission};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::FromSql;
use postgres::{Client, NoTls, Row, Transaction};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long connecting to MIG's database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `--max-rows` when not given: more rows than this in one of MIG's tables is refused.
pub const DEFAULT_MAX_ROWS: u64 = 100_000;

/// MIG's `varchar(n)`: `n` characters of at most 4 bytes each, so that no row MIG's schema
/// allows is refused by its size alone (our own checks then list it, row by row).
const fn varchar(n: u64) -> u64 {
    4 * n
}

/// A table of MIG's this import reads: how to name one of its rows, and each column read with
/// the SQL that measures it and its cap in bytes. `manifests.content` is not here: each one is
/// measured against `[limits] uploadsize` before it is read, alone, and listed if over.
struct Table {
    name: &'static str,
    row: &'static str,
    order: &'static str,
    columns: &'static [(&'static str, &'static str, u64)],
}

const TABLES: &[Table] = &[
    Table {
        name: "investigators",
        row: "'id ' || id::text",
        order: "id",
        columns: &[
            ("name", "name", varchar(1024)),
            ("status", "status", varchar(255)),
            (
                "publickey",
                "publickey",
                crate::investigators::MAX_PUBLIC_KEY_BYTES as u64,
            ),
        ],
    },
    Table {
        name: "loaders",
        row: "'id ' || id::text",
        order: "id",
        columns: &[
            ("loadername", "loadername", varchar(256)),
            ("keyprefix", "keyprefix", varchar(256)),
            // MIG writes 32 and 16 bytes; other lengths are listed, so a little room is enough.
            ("loaderkey", "loaderkey", 1024),
            ("salt", "salt", 1024),
            ("name", "name", varchar(2048)),
            // What a loader reports fits in one of its requests.
            ("env", "env::text", crate::serve::LOADER_BODY),
            ("tags", "tags::text", crate::serve::LOADER_BODY),
            ("expectenv", "expectenv", varchar(2048)),
            ("queueloc", "queueloc", varchar(2048)),
        ],
    },
    Table {
        name: "manifests",
        row: "'id ' || id::text",
        order: "id",
        columns: &[
            ("name", "name", varchar(256)),
            ("status", "status", varchar(255)),
            ("target", "target", varchar(2048)),
        ],
    },
    Table {
        name: "manifestsig",
        row: "'manifestid ' || manifestid::text || ' investigatorid ' || investigatorid::text",
        order: "manifestid, investigatorid",
        columns: &[("pgpsignature", "pgpsignature", varchar(4096))],
    },
];

/// What the command line asks of one import.
pub struct Options {
    /// The platform of the statements made for MIG's manifests (`--platform`).
    pub platform: Platform,
    /// More rows than this in one table refuses the whole import (`--max-rows`).
    pub max_rows: u64,
}

/// An investigator the import will create, shown before anything is written.
#[derive(Debug, Clone)]
pub struct Planned {
    pub mig_id: i64,
    pub name: String,
    pub fingerprint: String,
    /// MIG's permissions, cut to [`Permission::MIG_BITS`].
    pub permissions: u64,
    pub disabled: bool,
}

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

/// The CA MIG's database is verified against: `--cafile`, else `[database] cafile`.
pub fn source_ca(cfg: &Config, cafile: Option<&Path>) -> Result<Option<Verified>> {
    match cafile {
        Some(path) => Verified::new(&crate::pem::read_pem(path)?)
            .map(Some)
            .map_err(|m| Error::Config(format!("--cafile {}: {m}", path.display()))),
        None => Ok(match &cfg.postgres {
            Some(Location::Postgres { tls, .. }) => tls.clone(),
            _ => None,
        }),
    }
}

/// Connects to MIG's database. The password comes from `PGPASSWORD`, never from `url`, which a
/// process list shows. With `ca`, over TLS with the server verified against it; without, only
/// to this machine (a Unix socket or loopback, [`crate::db::pg_is_loopback`]), refused before
/// connecting otherwise: the password and every loader key hash would cross the network to
/// whoever answers.
pub fn connect(url: &str, ca: Option<&Verified>) -> Result<Client> {
    let pw = std::env::var("PGPASSWORD").ok();
    let mut cfg = crate::db::pg_config(url, pw, ca.is_some())
        .map_err(|e| Error::Config(format!("--from: {e} (import-mig reads PGPASSWORD)")))?;
    if ca.is_none() && !crate::db::pg_is_loopback(&cfg) {
        return Err(Error::Config(format!(
            "--from {url}: not on this machine, so MIG's database must be verified: give \
             --cafile (or [database] cafile) with the CA that signed its certificate"
        )));
    }
    cfg.connect_timeout(CONNECT_TIMEOUT);
    match ca {
        Some(tls) => cfg.connect(tls.clone()),
        None => cfg.connect(NoTls),
    }
    .map_err(|e| {
        Error::Import(format!(
            "connecting to MIG's database: {}",
            crate::db::SqlError::Pg(e)
        ))
    })
}

/// Imports everything from one consistent, read-only snapshot of MIG's database, once `confirm`
/// agreed to the investigators it will create; `None` when it did not, and nothing was written.
pub fn run(
    app: &App,
    client: &mut Client,
    opts: &Options,
    confirm: impl FnOnce(&[Planned]) -> Result<bool>,
) -> Result<Option<Summary>> {
    opts.platform
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
    check_tables(&mut pg, opts.max_rows)?;
    let mut plan = Vec::new();
    each_investigator(&mut pg, |inv| {
        if let Fate::Create { planned, .. } = app.db.with(|c| investigator_fate(c, &inv))? {
            plan.push(planned);
        }
        Ok(())
    })?;
    if !confirm(&plan)? {
        return Ok(None);
    }
    let mut s = Summary::default();
    import_investigators(app, &mut pg, &mut s)?;
    import_loaders(app, &mut pg, &mut s)?;
    import_manifests(app, &mut pg, &opts.platform, &mut s)?;
    pg.commit().map_err(pg_err("ending the snapshot"))?;
    Ok(Some(s))
}

/// Refuses the whole import when a table has more than `max_rows` rows or a column this reads
/// is over its cap, naming the table, the row and the column. PostgreSQL measures: no such
/// column is ever sent here.
fn check_tables(pg: &mut Transaction<'_>, max_rows: u64) -> Result<()> {
    let limit = i64::try_from(max_rows.saturating_add(1)).unwrap_or(i64::MAX);
    for t in TABLES {
        let count: i64 = pg
            .query_one(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT $1::bigint) AS x",
                    t.name
                ),
                &[&limit],
            )
            .map_err(pg_err("counting rows"))
            .and_then(|r| col(&r, 0, t.name))?;
        if count.unsigned_abs() > max_rows {
            return Err(Error::TooLarge(format!(
                "MIG's {}: more than {max_rows} rows (--max-rows): nothing imported",
                t.name
            )));
        }
        let lengths: Vec<String> = t
            .columns
            .iter()
            .map(|(_, sql, _)| format!("octet_length({sql})::bigint"))
            .collect();
        let over: Vec<String> = t
            .columns
            .iter()
            .map(|(_, sql, cap)| format!("octet_length({sql}) > {cap}"))
            .collect();
        let sql = format!(
            "SELECT {}, {} FROM {} WHERE {} ORDER BY {} LIMIT 1",
            t.row,
            lengths.join(", "),
            t.name,
            over.join(" OR "),
            t.order
        );
        let Some(r) = pg
            .query_opt(&sql, &[])
            .map_err(pg_err("measuring columns"))?
        else {
            continue;
        };
        let row: String = col(&r, 0, t.name)?;
        for (i, (column, _, cap)) in t.columns.iter().enumerate() {
            let len: Option<i64> = col(&r, i + 1, t.name)?;
            if let Some(len) = len.filter(|l| l.unsigned_abs() > *cap) {
                return Err(Error::TooLarge(format!(
                    "MIG's {}, row {row}, column {column}: {len} bytes, over the {cap} \
                     import-mig reads: nothing imported",
                    t.name
                )));
            }
        }
    }
    Ok(())
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

/// One row of MIG's `investigators`, as read.
struct MigInvestigator {
    mig_id: i64,
    name: String,
    publickey: Option<Vec<u8>>,
    status: String,
    permissions: i64,
    has_private: bool,
}

impl MigInvestigator {
    fn who(&self) -> String {
        format!("investigator {} {:?}", self.mig_id, self.name)
    }
}

/// Calls `f` with each of MIG's investigators in id order, one row in memory at a time.
fn each_investigator(
    pg: &mut Transaction<'_>,
    mut f: impl FnMut(MigInvestigator) -> Result<()>,
) -> Result<()> {
    const T: &str = "investigators";
    let mut rows = pg
        .query_raw(
            "SELECT id::bigint, name, publickey, status, permissions, privatekey IS NOT NULL
             FROM investigators ORDER BY id",
            std::iter::empty::<i64>(),
        )
        .map_err(pg_err("reading investigators"))?;
    while let Some(r) = rows.next().map_err(pg_err("reading investigators"))? {
        f(MigInvestigator {
            mig_id: col(&r, 0, T)?,
            name: col(&r, 1, T)?,
            publickey: col(&r, 2, T)?,
            status: col(&r, 3, T)?,
            permissions: col(&r, 4, T)?,
            has_private: col(&r, 5, T)?,
        })?;
    }
    Ok(())
}

/// What becomes of one of MIG's investigators: the plan shown before the import and the import
/// itself both ask this, so that what is shown is what is done.
enum Fate {
    /// An earlier run imported it.
    Already,
    /// Its key is this investigator's here.
    Matched(u64),
    /// Listed with the reason, not imported.
    Skipped(String),
    Create {
        planned: Planned,
        armored: String,
    },
}

fn investigator_fate(c: &Conn, inv: &MigInvestigator) -> Result<Fate> {
    if imported(c, "investigator", inv.mig_id)?.is_some() {
        return Ok(Fate::Already);
    }
    // MIG keeps its scheduler's private key in the database: that key cannot be trusted to
    // sign anything here.
    if inv.has_private {
        return Ok(Fate::Skipped(
            "MIG's database holds its private key (MIG's scheduler)".into(),
        ));
    }
    let Some(armored) = inv
        .publickey
        .as_deref()
        .and_then(|k| std::str::from_utf8(k).ok())
    else {
        return Ok(Fate::Skipped("no armored public key".into()));
    };
    let key = match signature::parse_public_key(&inv.who(), armored) {
        Ok(k) => k,
        Err(e) => return Ok(Fate::Skipped(e.to_string())),
    };
    let fingerprint = signature::fingerprint_hex(&key.primary_key);
    if let Some(id) = find_id(
        c,
        "SELECT id FROM investigators WHERE fingerprint = ?1",
        &fingerprint,
    )? {
        return Ok(Fate::Matched(id));
    }
    if let Err(e) = check_name("investigator", &inv.name) {
        return Ok(Fate::Skipped(e.to_string()));
    }
    Ok(Fate::Create {
        planned: Planned {
            mig_id: inv.mig_id,
            name: inv.name.clone(),
            fingerprint,
            permissions: inv.permissions.max(0).unsigned_abs() & Permission::MIG_BITS,
            disabled: inv.status != "active",
        },
        armored: armored.to_string(),
    })
}

fn import_investigators(app: &App, pg: &mut Transaction<'_>, s: &mut Summary) -> Result<()> {
    each_investigator(pg, |inv| {
        let who = inv.who();
        let outcome = in_tx(app, |tx| {
            let fate = investigator_fate(tx, &inv)?;
            match &fate {
                Fate::Create { planned, armored } => {
                    let rec = investigators::add(tx, &planned.name, armored, planned.permissions)?;
                    if planned.disabled {
                        tx.execute(
                            "UPDATE investigators SET status = 'disabled' WHERE id = ?1",
                            params![rec.id as i64],
                        )
                        .map_err(Error::db("disabling an imported investigator"))?;
                    }
                    remember(tx, "investigator", inv.mig_id, rec.id)?;
                }
                Fate::Matched(id) => remember(tx, "investigator", inv.mig_id, *id)?,
                Fate::Already | Fate::Skipped(_) => {}
            }
            Ok(fate)
        });
        match outcome {
            Ok(Fate::Create { .. }) => s.investigators += 1,
            Ok(Fate::Already) => s.already += 1,
            Ok(Fate::Matched(id)) => {
                s.already += 1;
                s.notes.push(format!(
                    "{who}: its key is investigator {id}'s here: matched"
                ));
            }
            Ok(Fate::Skipped(why)) => s.notes.push(format!("{who}: not imported: {why}")),
            Err(e) => s.notes.push(format!("{who}: not imported: {e}")),
        }
        Ok(())
    })
}

fn import_loaders(app: &App, pg: &mut Transaction<'_>, s: &mut Summary) -> Result<()> {
    const T: &str = "loaders";
    let mut rows = pg
        .query_raw(
            "SELECT id::bigint, loadername, keyprefix, loaderkey, salt, name, env::text, tags::text,
                    extract(epoch FROM lastseen)::bigint, enabled, expectenv, queueloc
             FROM loaders ORDER BY id",
            std::iter::empty::<i64>(),
        )
        .map_err(pg_err("reading loaders"))?;
    while let Some(row) = rows.next().map_err(pg_err("reading loaders"))? {
        let r = &row;
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
    // Ids first: each manifest's row, content and signatures are then read one at a time.
    let ids: Vec<i64> = pg
        .query("SELECT id::bigint FROM manifests ORDER BY id", &[])
        .map_err(pg_err("reading manifests"))?
        .iter()
        .map(|r| col(r, 0, T))
        .collect::<Result<_>>()?;
    let trusted = &app.cfg.v1.fingerprints;
    let required = app.cfg.v1_required();
    for mig_id in ids {
        let row = pg
            .query_one(
                "SELECT id::bigint, name, octet_length(content)::bigint, status, target,
                        extract(epoch FROM timestamp)::bigint
                 FROM manifests WHERE id = $1::bigint",
                &[&mig_id],
            )
            .map_err(pg_err("reading a manifest"))?;
        let r = &row;
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
                    renews: None,
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
