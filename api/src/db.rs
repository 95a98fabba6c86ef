//! SQLite: one file in WAL mode, versioned migrations (`PRAGMA user_version`), a small pool of
//! connections. Every query in the crate is parameterised; no SQL is ever built from input.

use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long a writer waits for another writer before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse.
const POOL_IDLE: usize = 8;

/// The schema, one step per entry; entry N brings `user_version` from N to N+1. Never edit a
/// released step: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the whole first schema (docs/design.md §6.5, with MIG's flaws fixed: no unique queueloc,
    // verified signatures only, reported facts apart from administrator-owned attributes).
    r#"
    CREATE TABLE investigators (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        name          TEXT NOT NULL,
        fingerprint   TEXT NOT NULL UNIQUE,
        publickey     TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
        permissions   INTEGER NOT NULL,
        created       INTEGER NOT NULL,
        lastmodified  INTEGER NOT NULL,
        apikey_prefix TEXT UNIQUE,
        apikey_hash   BLOB,
        apikey_salt   BLOB
    );
    -- AUTOINCREMENT: a manifest id is the statement serial and must never be reused.
    CREATE TABLE manifests (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        name           TEXT NOT NULL,
        target         TEXT NOT NULL,
        status         TEXT NOT NULL CHECK (status IN ('staged', 'active', 'disabled')),
        os             TEXT NOT NULL,
        arch           TEXT NOT NULL,
        created        INTEGER NOT NULL,
        issued         INTEGER NOT NULL,
        expires        INTEGER NOT NULL,
        statement      TEXT NOT NULL,
        archive_sha256 TEXT NOT NULL,
        archive_size   INTEGER NOT NULL,
        creator        INTEGER NOT NULL
    );
    CREATE INDEX manifests_status ON manifests (status, id);
    CREATE TABLE manifest_files (
        manifest_id INTEGER NOT NULL REFERENCES manifests (id),
        position    INTEGER NOT NULL,
        name        TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        size        INTEGER NOT NULL,
        PRIMARY KEY (manifest_id, position),
        UNIQUE (manifest_id, name)
    );
    CREATE INDEX manifest_files_sha256 ON manifest_files (manifest_id, sha256);
    CREATE TABLE signatures (
        manifest_id     INTEGER NOT NULL REFERENCES manifests (id),
        investigator_id INTEGER NOT NULL REFERENCES investigators (id),
        fingerprint     TEXT NOT NULL,
        signature       TEXT NOT NULL,
        created         INTEGER NOT NULL,
        PRIMARY KEY (manifest_id, investigator_id)
    );
    CREATE TABLE loaders (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        name           TEXT NOT NULL UNIQUE,
        keyprefix      TEXT NOT NULL UNIQUE,
        keyhash        BLOB NOT NULL,
        salt           BLOB NOT NULL,
        enabled        INTEGER NOT NULL DEFAULT 0,
        expectenv      TEXT,
        attributes     TEXT NOT NULL DEFAULT '{}',
        agentname      TEXT,
        env            TEXT,
        tags           TEXT,
        queueloc       TEXT,
        lastseen       INTEGER,
        given_manifest INTEGER REFERENCES manifests (id),
        created        INTEGER NOT NULL
    );
    CREATE TABLE loader_reports (
        loader_id INTEGER PRIMARY KEY REFERENCES loaders (id),
        serial    INTEGER NOT NULL,
        result    TEXT NOT NULL,
        message   TEXT NOT NULL,
        time      INTEGER NOT NULL
    );
    CREATE TABLE plugins (
        name    TEXT PRIMARY KEY,
        sha256  TEXT NOT NULL,
        wasm    BLOB NOT NULL,
        created INTEGER NOT NULL
    );
    "#,
    // 2: every report, kept for [reports] keepdays (reports.rs); loader_reports stays the latest.
    r#"
    CREATE TABLE report_history (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        loader_id INTEGER NOT NULL REFERENCES loaders (id),
        serial    INTEGER NOT NULL,
        result    TEXT NOT NULL,
        message   TEXT NOT NULL,
        time      INTEGER NOT NULL
    );
    CREATE INDEX report_history_loader ON report_history (loader_id, id);
    CREATE INDEX report_history_time ON report_history (time);
    INSERT INTO report_history (loader_id, serial, result, message, time)
        SELECT loader_id, serial, result, message, time FROM loader_reports ORDER BY time;
    CREATE INDEX loader_reports_serial ON loader_reports (serial, result);
    CREATE INDEX loaders_given ON loaders (given_manifest);
    "#,
    // 3: halt rules (halt.rs). The status check gains 'halted', which SQLite can only change by
    // rebuilding the table; `migrate` turns foreign keys off around the steps and checks them
    // before each commit. The id sequence is carried over so no serial is ever reused.
    r#"
    CREATE TABLE manifests_new (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        name           TEXT NOT NULL,
        target         TEXT NOT NULL,
        status         TEXT NOT NULL
                       CHECK (status IN ('staged', 'active', 'halted', 'disabled')),
        os             TEXT NOT NULL,
        arch           TEXT NOT NULL,
        created        INTEGER NOT NULL,
        issued         INTEGER NOT NULL,
        expires        INTEGER NOT NULL,
        statement      TEXT NOT NULL,
        archive_sha256 TEXT NOT NULL,
        archive_size   INTEGER NOT NULL,
        creator        INTEGER NOT NULL,
        halt_after     TEXT,
        halt_min       INTEGER,
        halt_since     INTEGER NOT NULL DEFAULT 0,
        halted_at      INTEGER,
        halted_reason  TEXT
    );
    INSERT INTO manifests_new (id, name, target, status, os, arch, created, issued, expires,
        statement, archive_sha256, archive_size, creator)
        SELECT id, name, target, status, os, arch, created, issued, expires,
        statement, archive_sha256, archive_size, creator FROM manifests;
    DELETE FROM sqlite_sequence WHERE name = 'manifests_new';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'manifests_new', seq FROM sqlite_sequence WHERE name = 'manifests';
    DROP TABLE manifests;
    ALTER TABLE manifests_new RENAME TO manifests;
    CREATE INDEX manifests_status ON manifests (status, id);
    -- The history row of each latest report: a resumed rule counts reports from halt_since on.
    ALTER TABLE loader_reports ADD COLUMN history_id INTEGER NOT NULL DEFAULT 0;
    "#,
    // 4: MIG's v1 protocol (docs/design.md §8.3). A manifest for Go loaders keeps the text they
    // verify beside its statement; an investigator's signature row keeps its signature over that
    // text too, and a row imported from MIG has only that one (the table is rebuilt: SQLite
    // cannot drop a NOT NULL); a loader keeps the protocol it last spoke; what `import-mig`
    // brought in is remembered by MIG's id, so a second import adds nothing twice.
    r#"
    ALTER TABLE manifests ADD COLUMN v1_text TEXT;
    CREATE TABLE signatures_new (
        manifest_id     INTEGER NOT NULL REFERENCES manifests (id),
        investigator_id INTEGER NOT NULL REFERENCES investigators (id),
        fingerprint     TEXT NOT NULL,
        signature       TEXT,
        v1_signature    TEXT,
        created         INTEGER NOT NULL,
        PRIMARY KEY (manifest_id, investigator_id),
        CHECK (signature IS NOT NULL OR v1_signature IS NOT NULL)
    );
    INSERT INTO signatures_new (manifest_id, investigator_id, fingerprint, signature, created)
        SELECT manifest_id, investigator_id, fingerprint, signature, created FROM signatures;
    DROP TABLE signatures;
    ALTER TABLE signatures_new RENAME TO signatures;
    ALTER TABLE loaders ADD COLUMN protocol TEXT CHECK (protocol IN ('v1', 'v2'));
    CREATE TABLE mig_imports (
        kind    TEXT NOT NULL CHECK (kind IN ('investigator', 'loader', 'manifest')),
        mig_id  INTEGER NOT NULL,
        our_id  INTEGER NOT NULL,
        PRIMARY KEY (kind, mig_id)
    );
    "#,
    // 5: token nonces in the database (auth.rs): a token is accepted once by every process on
    // it, across restarts too.
    r#"
    CREATE TABLE token_nonces (
        fingerprint TEXT NOT NULL,
        nonce       TEXT NOT NULL,
        until       INTEGER NOT NULL,
        PRIMARY KEY (fingerprint, nonce)
    );
    CREATE INDEX token_nonces_until ON token_nonces (until);
    "#,
];

/// The database: its path and a pool of open connections.
pub struct Db {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({})", self.path.display())
    }
}

impl Db {
    /// Opens (creating on first start) and migrates the database.
    pub fn open(path: &Path) -> Result<Db> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::io("creating directory", dir))?;
        }
        let mut conn = connect(path)?;
        migrate(&mut conn, path)?;
        Ok(Db {
            path: path.to_path_buf(),
            pool: Mutex::new(vec![conn]),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled connection. Call from blocking code only (routes use
    /// `App::run`, which moves the work off the async executor).
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = self.pool.lock().map_err(|_| poisoned())?.pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(&self.path)?,
        };
        let out = f(&mut conn);
        // A connection left inside a transaction by a panic or an early return is not reused.
        if conn.is_autocommit() {
            let mut pool = self.pool.lock().map_err(|_| poisoned())?;
            if pool.len() < POOL_IDLE {
                pool.push(conn);
            }
        }
        out
    }
}

impl Db {
    /// Like [`Db::with`], for the loaders' per-request bookkeeping (last seen, reported
    /// environment, given manifest, last report): its commits skip the fsync. In WAL mode that
    /// is still safe against a killed process and never corrupts; a power cut may forget the
    /// last few of these updates, which the next loader run writes again. Administrator writes
    /// (manifests, signatures, keys, investigators) keep `synchronous = FULL`.
    pub fn with_relaxed<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.with(|c| {
            exec_cached(c, "PRAGMA synchronous = NORMAL", [])
                .map_err(Error::db("relaxing synchronous"))?;
            let out = f(c);
            exec_cached(c, "PRAGMA synchronous = FULL", [])
                .map_err(Error::db("restoring synchronous"))?;
            out
        })
    }
}

fn poisoned() -> Error {
    Error::Internal("the connection pool lock is poisoned".into())
}

fn connect(path: &Path) -> Result<Connection> {
    let what = || format!("opening {}", path.display());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Error::db(what()))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(Error::db(what()))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(Error::db(what()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Internal(format!(
            "{}: SQLite refused WAL mode (journal_mode is {mode})",
            path.display()
        )));
    }
    // FULL: a committed transaction survives a power cut too, not only a killed process.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(Error::db(what()))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(Error::db("reading the schema version"))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(Error::Config(format!(
            "{}: schema version {version} is newer than this mig-api knows ({known})",
            path.display()
        )));
    }
    if version == known {
        return Ok(());
    }
    // A step may rebuild a table others refer to; SQLite only lets foreign keys be switched
    // outside a transaction, so they are off for the steps and checked inside each one.
    conn.execute_batch("PRAGMA foreign_keys = OFF;")
        .map_err(Error::db("migrating: turning foreign keys off"))?;
    let out = (|| {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
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
                    "{}: migration {step} leaves a broken reference in table {table}",
                    path.display()
                )));
            }
            tx.pragma_update(None, "user_version", step)
                .map_err(what())?;
            tx.commit().map_err(what())?;
        }
        Ok(())
    })();
    conn.execute_batch("PRAGMA foreign_keys = ON;")
        .map_err(Error::db("migrating: turning foreign keys on"))?;
    out
}

/// `execute` through the connection's statement cache: hot paths parse each SQL text once.
pub fn exec_cached(c: &Connection, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(p)
}

/// `query_row` through the connection's statement cache.
pub fn row_cached<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    c.prepare_cached(sql)?.query_row(p, f)
}

/// A text column holding a typed value (a sha256, a status), checked again on the way out: the
/// database is disk, hostile too.
pub fn parsed_column<T>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = r.get(i)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
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
        let db = Db::open(&p).unwrap();
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
        assert_eq!(v, MIGRATIONS.len() as i64);
        assert_eq!(mode, "wal");
        drop(db);
        Db::open(&p).unwrap();
    }

    #[test]
    fn relaxed_writes_restore_full_synchronous() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("x.db")).unwrap();
        let level = |c: &mut Connection| -> Result<i64> {
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
        for sql in &MIGRATIONS[..2] {
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

        let db = Db::open(&p).unwrap();
        db.with(|c| {
            let v: i64 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, MIGRATIONS.len() as i64);
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
            assert_eq!(c.last_insert_rowid(), 6, "the sequence went on from 5");
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
        drop(Db::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = Db::open(&p).unwrap_err().to_string();
        assert!(e.contains("schema version 99"), "{e}");
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
        for sql in &MIGRATIONS[..3] {
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
        let db = Db::open(&p).unwrap();
        db.with(|c| {
            let rows: Vec<(String, Option<String>)> = c
                .prepare("SELECT signature, v1_signature FROM signatures ORDER BY created")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
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
