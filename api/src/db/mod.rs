//! The database: embedded SQLite (one file in WAL mode, the default) or PostgreSQL shared by
//! several mig-api replicas (`[database] url`, docs/design.md §6.6). The domain modules write one
//! SQL text for both, in SQLite's spelling with `?N` parameters; db/postgres.rs translates it,
//! and the schema's two dialects stand side by side in db/schema.rs. Every query in the crate is
//! parameterised; no SQL is ever built from input.

mod postgres;
mod schema;
mod tls;
mod value;

pub use crate::error::sql::{SqlError, SqlResult};
pub use tls::Verified;

pub use value::{ColumnIndex, FromValue, Params, Row, ToValue, Value};

use crate::error::{Error, Result};
use crate::params;
use postgres::PgConn;
use rusqlite::{Connection, OpenFlags};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How long a SQLite writer waits for another writer before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse.
const POOL_IDLE: usize = 8;
/// How long a replica waits for PostgreSQL to accept a connection before the request fails
/// with 503: loaders retry on their next run, administrators at once.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A statement that runs longer than this on PostgreSQL is cancelled by the server.
const PG_STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// Where the data lives.
#[derive(Clone)]
pub enum Location {
    Sqlite(PathBuf),
    /// The connection settings (password included), the URL as configured (it never holds
    /// the password), and TLS when `[database] cafile` is set.
    Postgres {
        config: Box<::postgres::Config>,
        shown: String,
        tls: Option<Verified>,
    },
}

/// Two locations are the same place when they name the same file or URL.
impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
            && matches!(
                (self, other),
                (Location::Sqlite(_), Location::Sqlite(_))
                    | (Location::Postgres { .. }, Location::Postgres { .. })
            )
    }
}

impl Eq for Location {}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres { shown, .. } => f.write_str(shown),
        }
    }
}

/// `query_row(…).optional()`: no row is `None`, as rusqlite's trait of the same name.
pub trait OptionalExtension<T> {
    fn optional(self) -> SqlResult<Option<T>>;
}

impl<T> OptionalExtension<T> for SqlResult<T> {
    fn optional(self) -> SqlResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(SqlError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Which SQL a connection speaks, for the few statements that differ (kept in this module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

enum Backend {
    Sqlite(Connection),
    Pg(Box<RefCell<PgConn>>),
}

/// One connection of either database.
pub struct Conn {
    backend: Backend,
    in_tx: bool,
    /// A PostgreSQL connection whose last call found the server gone is not pooled again.
    broken: std::cell::Cell<bool>,
}

impl Conn {
    fn sqlite(c: Connection) -> Conn {
        Conn {
            backend: Backend::Sqlite(c),
            in_tx: false,
            broken: false.into(),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Pg(_) => Dialect::Postgres,
        }
    }

    fn pg<T>(
        &self,
        p: &RefCell<PgConn>,
        f: impl FnOnce(&mut PgConn) -> SqlResult<T>,
    ) -> SqlResult<T> {
        let out = f(&mut p.borrow_mut());
        if let Err(e) = &out {
            if e.is_unreachable() {
                self.broken.set(true);
            }
        }
        out
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, p: impl Params) -> SqlResult<usize> {
        let values = p.into_values();
        match &self.backend {
            Backend::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(values.iter()))?),
            Backend::Pg(pg) => self.pg(pg, |pg| pg.execute(sql, &values)),
        }
    }

    /// Every row of a query.
    pub fn rows(&self, sql: &str, p: impl Params) -> SqlResult<Vec<Row>> {
        let values = p.into_values();
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(values.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(Row((0..n)
                        .map(|i| r.get_ref(i).map(sqlite_value))
                        .collect::<rusqlite::Result<_>>()?));
                }
                Ok(out)
            }
            Backend::Pg(pg) => self.pg(pg, |pg| pg.query(sql, &values)),
        }
    }

    /// The first row of a query, mapped by `f`; [`SqlError::NoRows`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        p: impl Params,
        f: impl FnOnce(&Row) -> SqlResult<T>,
    ) -> SqlResult<T> {
        let rows = self.rows(sql, p)?;
        f(rows.first().ok_or(SqlError::NoRows)?)
    }

    /// Every row of a query, each mapped by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        p: impl Params,
        f: impl FnMut(&Row) -> SqlResult<T>,
    ) -> SqlResult<Vec<T>> {
        self.rows(sql, p)?.iter().map(f).collect()
    }

    /// A statement to run once or many times (rusqlite's form, kept for the callers; every
    /// statement is cached by its text on either database).
    pub fn prepare_cached(&self, sql: &str) -> SqlResult<Stmt<'_>> {
        Ok(Stmt {
            conn: self,
            sql: sql.to_string(),
        })
    }

    /// The same as [`Conn::prepare_cached`].
    pub fn prepare(&self, sql: &str) -> SqlResult<Stmt<'_>> {
        self.prepare_cached(sql)
    }

    /// Runs statements without parameters (schema steps, tests).
    pub fn execute_batch(&self, sql: &str) -> SqlResult<()> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Backend::Pg(pg) => self.pg(pg, |pg| pg.batch(sql)),
        }
    }

    /// Starts a write transaction, rolled back unless [`Tx::commit`] is called. On SQLite it
    /// takes the write lock at once (`BEGIN IMMEDIATE`); on PostgreSQL it takes one advisory
    /// lock that every writing transaction of every replica takes, so the rules checked inside
    /// one hold as they do on SQLite.
    pub fn transaction(&mut self) -> SqlResult<Tx<'_>> {
        let begin = match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE".to_string(),
            Dialect::Postgres => format!(
                "BEGIN; SELECT pg_advisory_xact_lock({})",
                postgres::WRITE_LOCK
            ),
        };
        // Until rolled back, a connection whose BEGIN half ran (the lock timed out) is not
        // pooled: the next user would inherit an aborted transaction.
        self.in_tx = true;
        if let Err(e) = self.execute_batch(&begin) {
            if self.execute_batch("ROLLBACK").is_ok() {
                self.in_tx = false;
            }
            return Err(e);
        }
        Ok(Tx { conn: self })
    }

    /// The SQLite connection itself, for what only SQLite has (`PRAGMA`s, tests).
    pub fn as_sqlite(&self) -> Option<&Connection> {
        match &self.backend {
            Backend::Sqlite(c) => Some(c),
            Backend::Pg(_) => None,
        }
    }

    /// The SQLite connection itself, for what needs it mutable (tests' progress handlers).
    pub fn as_sqlite_mut(&mut self) -> Option<&mut Connection> {
        match &mut self.backend {
            Backend::Sqlite(c) => Some(c),
            Backend::Pg(_) => None,
        }
    }
}

/// A statement of a connection.
pub struct Stmt<'c> {
    conn: &'c Conn,
    sql: String,
}

impl Stmt<'_> {
    pub fn execute(&mut self, p: impl Params) -> SqlResult<usize> {
        self.conn.execute(&self.sql, p)
    }

    pub fn query_row<T>(
        &mut self,
        p: impl Params,
        f: impl FnOnce(&Row) -> SqlResult<T>,
    ) -> SqlResult<T> {
        self.conn.query_row(&self.sql, p, f)
    }

    /// Each row mapped by `f`, as an iterator of results (rusqlite's shape).
    pub fn query_map<T>(
        &mut self,
        p: impl Params,
        mut f: impl FnMut(&Row) -> SqlResult<T>,
    ) -> SqlResult<std::vec::IntoIter<SqlResult<T>>> {
        let rows = self.conn.rows(&self.sql, p)?;
        Ok(rows.iter().map(&mut f).collect::<Vec<_>>().into_iter())
    }

    /// The rows, to walk with [`Rows::next`].
    pub fn query(&mut self, p: impl Params) -> SqlResult<Rows> {
        Ok(Rows {
            rows: self.conn.rows(&self.sql, p)?.into_iter(),
            current: None,
        })
    }
}

/// The rows of [`Stmt::query`].
pub struct Rows {
    rows: std::vec::IntoIter<Row>,
    current: Option<Row>,
}

impl Rows {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> SqlResult<Option<&Row>> {
        self.current = self.rows.next();
        Ok(self.current.as_ref())
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as V;
    match v {
        // A NULL read back has no kind; Text is as good as any (readers only test for NULL).
        V::Null => Value::Null(value::Kind::Text),
        V::Integer(i) => Value::Int(i),
        V::Real(r) => Value::Real(r),
        V::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        V::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as V};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null(_) => V::Null,
            Value::Int(i) => V::Integer(*i),
            Value::Real(r) => V::Real(*r),
            Value::Text(s) => V::Text(s.as_bytes()),
            Value::Blob(b) => V::Blob(b),
        }))
    }
}

/// An open write transaction; dropping it without [`Tx::commit`] rolls it back.
pub struct Tx<'a> {
    conn: &'a mut Conn,
}

impl Tx<'_> {
    pub fn commit(self) -> SqlResult<()> {
        let out = self.conn.execute_batch("COMMIT");
        if out.is_ok() {
            self.conn.in_tx = false;
        }
        out
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.conn.in_tx && self.conn.execute_batch("ROLLBACK").is_ok() {
            self.conn.in_tx = false;
        }
    }
}

/// The database: where it is and a pool of open connections.
pub struct Db {
    location: Location,
    pool: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({})", self.location)
    }
}

impl Db {
    /// Opens (creating on first start) and migrates the database.
    pub fn open(location: &Location) -> Result<Db> {
        if let Location::Sqlite(path) = location {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(Error::io("creating directory", dir))?;
            }
        }
        let mut conn = connect(location)?;
        migrate(&mut conn, location)?;
        Ok(Db {
            location: location.clone(),
            pool: Mutex::new(vec![conn]),
        })
    }

    /// Opens the SQLite file at `path` (tests, tools).
    pub fn open_sqlite(path: &Path) -> Result<Db> {
        Self::open(&Location::Sqlite(path.to_path_buf()))
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The SQLite file, if the database is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.location {
            Location::Sqlite(p) => Some(p),
            Location::Postgres { .. } => None,
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.location {
            Location::Sqlite(_) => Dialect::Sqlite,
            Location::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// Runs `f` on a pooled connection. Call from blocking code only (routes use
    /// `App::run`, which moves the work off the async executor).
    pub fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let pooled = self.pool.lock().map_err(|_| poisoned())?.pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(&self.location)?,
        };
        let out = f(&mut conn);
        // A connection left inside a transaction by a panic or an early return is not reused.
        // One whose server went away takes the idle ones with it: they went with the same
        // server, and the next requests connect afresh instead of failing one by one.
        let mut pool = self.pool.lock().map_err(|_| poisoned())?;
        if conn.broken.get() {
            pool.clear();
        } else if !conn.in_tx && pool.len() < POOL_IDLE {
            pool.push(conn);
        }
        out
    }

    /// Closes the idle connections now, on the calling thread. A PostgreSQL connection's close
    /// blocks on a runtime of its own: call this outside any async runtime (server.rs).
    pub fn close(&self) {
        let idle = std::mem::take(&mut *self.pool.lock().unwrap_or_else(PoisonError::into_inner));
        drop(idle);
    }

    /// Like [`Db::with`], for the loaders' per-request bookkeeping (last seen, reported
    /// environment, given manifest, last report): its commits skip the fsync. In WAL mode that
    /// is still safe against a killed process and never corrupts; a power cut may forget the
    /// last few of these updates, which the next loader run writes again. Administrator writes
    /// (manifests, signatures, keys, investigators) keep `synchronous = FULL`. PostgreSQL keeps
    /// its own setting: its commit is the server's business.
    pub fn with_relaxed<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        self.with(|c| {
            if c.dialect() == Dialect::Postgres {
                return f(c);
            }
            c.execute("PRAGMA synchronous = NORMAL", [])
                .map_err(Error::db("relaxing synchronous"))?;
            let out = f(c);
            c.execute("PRAGMA synchronous = FULL", [])
                .map_err(Error::db("restoring synchronous"))?;
            out
        })
    }
}

fn poisoned() -> Error {
    Error::Internal("the connection pool lock is poisoned".into())
}

fn connect(location: &Location) -> Result<Conn> {
    match location {
        Location::Sqlite(path) => connect_sqlite(path),
        Location::Postgres { config, shown, tls } => {
            let mut config = (**config).clone();
            config.connect_timeout(PG_CONNECT_TIMEOUT);
            config.options(&format!("-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"));
            let pg = PgConn::connect(&config, tls.as_ref())
                .map_err(Error::db(format!("connecting to {shown}")))?;
            Ok(Conn {
                backend: Backend::Pg(Box::new(RefCell::new(pg))),
                in_tx: false,
                broken: false.into(),
            })
        }
    }
}

fn connect_sqlite(path: &Path) -> Result<Conn> {
    let what = || format!("opening {}", path.display());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Error::db::<rusqlite::Error>(what()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(Error::db::<rusqlite::Error>(what()))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(Error::db::<rusqlite::Error>(what()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Internal(format!(
            "{}: SQLite refused WAL mode (journal_mode is {mode})",
            path.display()
        )));
    }
    // FULL: a committed transaction survives a power cut too, not only a killed process.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(Error::db::<rusqlite::Error>(what()))?;
    Ok(Conn::sqlite(conn))
}

fn migrate(conn: &mut Conn, location: &Location) -> Result<()> {
    match conn.dialect() {
        Dialect::Sqlite => migrate_sqlite(conn, location),
        Dialect::Postgres => migrate_postgres(conn, location),
    }
}

fn newer(location: &Location, version: i64) -> Error {
    Error::Config(format!(
        "{location}: schema version {version} is newer than this mig-api knows ({})",
        schema::SQLITE.len()
    ))
}

fn migrate_sqlite(conn: &mut Conn, location: &Location) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(Error::db("reading the schema version"))?;
    let known = schema::SQLITE.len() as i64;
    if version > known {
        return Err(newer(location, version));
    }
    if version == known {
        return Ok(());
    }
    // A step may rebuild a table others refer to; SQLite only lets foreign keys be switched
    // outside a transaction, so they are off for the steps and checked inside each one.
    conn.execute_batch("PRAGMA foreign_keys = OFF;")
        .map_err(Error::db("migrating: turning foreign keys off"))?;
    let out = (|| {
        for (i, sql) in schema::SQLITE.iter().enumerate().skip(version as usize) {
            let step = i as i64 + 1;
            let what = || Error::db(format!("migration {step}"));
            let tx = conn.transaction().map_err(what())?;
            tx.execute_batch(sql).map_err(what())?;
            let broken: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                .optional()
                .map_err(what())?;
            if let Some(table) = broken {
                return Err(Error::Internal(format!(
                    "{location}: migration {step} leaves a broken reference in table {table}"
                )));
            }
            tx.execute_batch(&format!("PRAGMA user_version = {step}"))
                .map_err(what())?;
            tx.commit().map_err(what())?;
        }
        Ok(())
    })();
    conn.execute_batch("PRAGMA foreign_keys = ON;")
        .map_err(Error::db("migrating: turning foreign keys on"))?;
    out
}

/// Under a session advisory lock, so that replicas starting together on an empty database
/// migrate once: the second waits, then finds the schema current.
fn migrate_postgres(conn: &mut Conn, location: &Location) -> Result<()> {
    let lock = postgres::MIGRATE_LOCK;
    conn.execute_batch(&format!("SELECT pg_advisory_lock({lock})"))
        .map_err(Error::db("migrating: taking the migration lock"))?;
    let out = (|| {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .map_err(Error::db("migrating: the schema_version table"))?;
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map_err(Error::db("reading the schema version"))?
            .unwrap_or(0);
        let known = schema::POSTGRES.len() as i64;
        if version > known {
            return Err(newer(location, version));
        }
        for (i, sql) in schema::POSTGRES.iter().enumerate().skip(version as usize) {
            let step = i as i64 + 1;
            let what = || Error::db(format!("migration {step}"));
            let tx = conn.transaction().map_err(what())?;
            tx.execute_batch(sql).map_err(what())?;
            tx.execute("DELETE FROM schema_version", [])
                .map_err(what())?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                params![step],
            )
            .map_err(what())?;
            tx.commit().map_err(what())?;
        }
        Ok(())
    })();
    let unlocked = conn
        .execute_batch(&format!("SELECT pg_advisory_unlock({lock})"))
        .map_err(Error::db("migrating: releasing the migration lock"));
    out.and(unlocked)
}

/// A PostgreSQL URL checked for what mig-api needs of it, with `password` set. The password
/// never comes from the URL, which a process list or a configuration review shows. With `tls`
/// (a CA to verify the server against) TLS is required whatever the URL's `sslmode`; without
/// it, an `sslmode` that requires TLS is refused rather than honoured unverified.
pub fn pg_config(
    url: &str,
    password: Option<String>,
    tls: bool,
) -> std::result::Result<::postgres::Config, String> {
    let mut cfg: ::postgres::Config = url
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    if cfg.get_password().is_some() {
        return Err(
            "the URL holds a password, which would be shown wherever the URL is: \
                    give it in a file or the environment"
                .into(),
        );
    }
    if let Some(pw) = password {
        cfg.password(pw);
    }
    use ::postgres::config::SslMode;
    if tls {
        cfg.ssl_mode(SslMode::Require);
    } else if !matches!(cfg.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
        return Err(
            "sslmode=require needs the CA that signed PostgreSQL's certificate \
                    ([database] cafile), so that the server is verified; without it, use \
                    sslmode=disable and reach the database over a trusted path (its host, a \
                    Unix socket, an SSH tunnel, a private network)"
                .into(),
        );
    }
    Ok(cfg)
}

/// True when every address `cfg` connects to is on this machine: a Unix socket, `localhost` or a
/// loopback address (a `hostaddr`, when given, is where the connection goes, whatever the host
/// name). Off this machine a connection needs TLS verified against a CA to be trusted.
pub fn pg_is_loopback(cfg: &::postgres::Config) -> bool {
    use ::postgres::config::Host;
    let hosts = cfg.get_hosts();
    let addrs = cfg.get_hostaddrs();
    (0..hosts.len().max(addrs.len())).all(|i| match (addrs.get(i), hosts.get(i)) {
        (Some(ip), _) => ip.is_loopback(),
        (None, Some(Host::Tcp(name))) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        (None, Some(Host::Unix(_))) => true,
        (None, None) => false,
    })
}

/// A text column holding a typed value (a sha256, a status), checked again on the way out: the
/// database is disk, hostile too.
pub fn parsed_column<T>(r: &Row, i: usize) -> SqlResult<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = r.get(i)?;
    text.parse().map_err(|e: T::Err| SqlError::Column {
        index: i,
        problem: format!("{text:?}: {e}"),
    })
}

/// `?` placeholders are the only way values reach SQL; this turns a user's `%` wildcard search
/// into a LIKE pattern where every other special character is literal (`ESCAPE '\'`).
pub fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '_' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_migrates_and_reopens_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/mig-api.db");
        let db = Db::open_sqlite(&p).unwrap();
        let (v, mode): (i64, String) = db
            .with(|c| {
                Ok((
                    c.query_row("PRAGMA user_version", [], |r| r.get(0))
                        .unwrap(),
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                        .unwrap(),
                ))
            })
            .unwrap();
        assert_eq!(v, schema::SQLITE.len() as i64);
        assert_eq!(mode, "wal");
        drop(db);
        Db::open_sqlite(&p).unwrap();
    }

    #[test]
    fn relaxed_writes_restore_full_synchronous() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("x.db")).unwrap();
        let level = |c: &mut Conn| -> Result<i64> {
            Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap())
        };
        assert_eq!(db.with_relaxed(|c| level(c)).unwrap(), 1, "NORMAL inside");
        assert_eq!(db.with(level).unwrap(), 2, "FULL again after");
        let failed: Result<()> = db.with_relaxed(|_| Err(Error::Internal("x".into())));
        assert!(failed.is_err());
        assert_eq!(db.with(level).unwrap(), 2, "FULL again after a failure");
    }

    #[test]
    fn the_manifests_rebuild_keeps_rows_references_and_the_serial_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        let mut c = Connection::open(&p).unwrap();
        for sql in &schema::SQLITE[..2] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 2).unwrap();
        let tx = c.transaction().unwrap();
        for id in 1..=5 {
            tx.execute(
                "INSERT INTO manifests (id, name, target, status, os, arch, created, issued,
                 expires, statement, archive_sha256, archive_size, creator)
                 VALUES (?1, 'm', 't', 'active', 'linux', 'amd64', 1, 1, 2, 's', 'a', 1, 1)",
                [id],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO manifest_files VALUES (?1, 0, 'agent', 'x', 1)",
                [id],
            )
            .unwrap();
        }
        // Serials 4 and 5 existed once (a rolled-back creation would be the same): never reused.
        tx.execute("DELETE FROM manifest_files WHERE manifest_id > 3", [])
            .unwrap();
        tx.execute("DELETE FROM manifests WHERE id > 3", [])
            .unwrap();
        tx.commit().unwrap();
        drop(c);

        let db = Db::open_sqlite(&p).unwrap();
        db.with(|c| {
            let v: i64 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, schema::SQLITE.len() as i64);
            let fk: i64 = c
                .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .unwrap();
            assert_eq!(fk, 1, "foreign keys are on again");
            let n: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM manifests WHERE status = 'active'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 3);
            c.execute(
                "INSERT INTO manifests (name, target, status, os, arch, created, issued,
                 expires, statement, archive_sha256, archive_size, creator)
                 VALUES ('m', 't', 'halted', 'linux', 'amd64', 1, 1, 2, 's', 'a', 1, 1)",
                [],
            )
            .unwrap();
            assert_eq!(
                c.as_sqlite().unwrap().last_insert_rowid(),
                6,
                "the sequence went on from 5"
            );
            let orphan = c.execute(
                "INSERT INTO manifest_files VALUES (99, 0, 'agent', 'x', 1)",
                [],
            );
            assert!(orphan.is_err(), "manifest_files still refers to manifests");
            let bad = c.execute("UPDATE manifests SET status = 'gone' WHERE id = 1", []);
            assert!(bad.is_err(), "the status check still holds");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        drop(Db::open_sqlite(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = Db::open_sqlite(&p).unwrap_err().to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }

    #[test]
    fn only_unix_sockets_localhost_and_loopback_addresses_are_loopback() {
        let local = |url: &str| pg_is_loopback(&pg_config(url, None, false).unwrap());
        assert!(local("postgresql://mig@127.0.0.1:5432/mig"));
        assert!(local("postgresql://mig@localhost/mig"));
        assert!(local("postgresql://mig@[::1]/mig"));
        assert!(local("postgresql://mig@%2Fvar%2Frun%2Fpostgresql/mig"));
        assert!(!local("postgresql://mig@db.internal/mig"));
        assert!(!local("postgresql://mig@10.0.0.5/mig"));
        assert!(!local("postgresql://mig@localhost,db.internal/mig"));
        assert!(!local("postgresql://mig@localhost/mig?hostaddr=10.0.0.5"));
        assert!(local("postgresql://mig@db.internal/mig?hostaddr=127.0.0.1"));
    }

    #[test]
    fn like_pattern_keeps_only_percent_special() {
        assert_eq!(like_pattern("a_b%c\\d"), "a\\_b%c\\\\d");
    }

    #[test]
    fn step_4_keeps_every_signature_and_a_row_needs_one_of_its_two() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        let c = Connection::open(&p).unwrap();
        for sql in &schema::SQLITE[..3] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 3).unwrap();
        c.execute_batch(
            "INSERT INTO investigators (id, name, fingerprint, publickey, status, permissions,
               created, lastmodified) VALUES (1, 'a', 'F1', 'k', 'active', 1, 1, 1),
               (2, 'b', 'F2', 'k', 'active', 1, 1, 1);
             INSERT INTO manifests (id, name, target, status, os, arch, created, issued, expires,
               statement, archive_sha256, archive_size, creator)
               VALUES (1, 'm', 't', 'active', 'linux', 'amd64', 1, 1, 2, 's', 'a', 1, 1);
             INSERT INTO signatures VALUES (1, 1, 'F1', 'sig-a', 5), (1, 2, 'F2', 'sig-b', 6);",
        )
        .unwrap();
        drop(c);
        let db = Db::open_sqlite(&p).unwrap();
        db.with(|c| {
            let rows: Vec<(String, Option<String>)> = c
                .query_map(
                    "SELECT signature, v1_signature FROM signatures ORDER BY created",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(
                rows,
                vec![("sig-a".to_string(), None), ("sig-b".to_string(), None)]
            );
            c.execute("DELETE FROM signatures", []).unwrap();
            // Imported from MIG: a v1 signature alone is a row; neither is not.
            c.execute(
                "INSERT INTO signatures (manifest_id, investigator_id, fingerprint, v1_signature,
                   created) VALUES (1, 2, 'F2', 'v1', 7)",
                [],
            )
            .unwrap();
            let neither = c.execute(
                "INSERT INTO signatures (manifest_id, investigator_id, fingerprint, created)
                 VALUES (1, 1, 'F1', 8)",
                [],
            );
            assert!(
                neither.is_err(),
                "a row with no signature at all is refused"
            );
            Ok(())
        })
        .unwrap();
    }
}
