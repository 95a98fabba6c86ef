//! The schema, one history for both databases: step N brings the version from N to N+1 on
//! SQLite (`PRAGMA user_version`) and on PostgreSQL (table `schema_version`). PostgreSQL came at
//! version 5: its step 1 makes the whole schema of SQLite's steps 1–5 and its steps 2–5 are
//! empty; from step 6 on, each step is written once per dialect, side by side. Never edit a
//! released step: append a new one.

/// SQLite's steps.
pub const SQLITE: &[&str] = &[
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
    // 6: what the replicas of one database share (docs/design.md §6.6): the generation every
    // administrator write advances (poll.rs). File bodies stay in the directory beside the
    // SQLite file, which one machine owns.
    r#"
    CREATE TABLE shared_state (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO shared_state (name, value) VALUES ('generation', 0);
    "#,
    // 7: a loader's fast key verifier (keys.rs): PBKDF2 at most once per loader and key. NULL
    // until the first check passes for a row that predates it or came from MIG.
    r#"
    ALTER TABLE loaders ADD COLUMN keyfast BLOB;
    "#,
    // 8: a renewal (manifests/renew.rs) names the manifest it renews, for its signers.
    r#"
    ALTER TABLE manifests ADD COLUMN renews INTEGER REFERENCES manifests (id);
    "#,
    // 9: the counts each halt rule reads, kept by every report's transaction (halt::recount),
    // so a report never recounts a rollout: the latest reports about the manifest from
    // halt_since on, and of those the failed or rolled back.
    r#"
    ALTER TABLE manifests ADD COLUMN halt_reported INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE manifests ADD COLUMN halt_bad INTEGER NOT NULL DEFAULT 0;
    UPDATE manifests SET
      halt_reported = (SELECT COUNT(*) FROM loader_reports r
        WHERE r.serial = manifests.id AND r.history_id >= manifests.halt_since
          AND r.result IN ('installed', 'unchanged', 'failed', 'rolled_back')),
      halt_bad = (SELECT COUNT(*) FROM loader_reports r
        WHERE r.serial = manifests.id AND r.history_id >= manifests.halt_since
          AND r.result IN ('failed', 'rolled_back'));
    "#,
    // 10: advanced by every write of what selection reads from a loader's own row (its
    // expectenv and attributes, loaders.rs) and read with its key (serve::authenticate): that
    // loader's kept poll outcome is stale on every replica, and no other loader's (poll.rs).
    r#"
    ALTER TABLE loaders ADD COLUMN selection_rev INTEGER NOT NULL DEFAULT 0;
    "#,
    // 11: the root of trust chain after root 1 (roots.rs, docs/design.md §4.21): each proposed
    // document, whether it is accepted (signed by the thresholds of the root before it and its
    // own), and the signatures over it by primary fingerprint.
    r#"
    CREATE TABLE roots (
        version  INTEGER PRIMARY KEY,
        document TEXT NOT NULL,
        accepted INTEGER NOT NULL DEFAULT 0,
        created  INTEGER NOT NULL
    );
    CREATE TABLE root_signatures (
        version     INTEGER NOT NULL REFERENCES roots (version),
        fingerprint TEXT NOT NULL,
        signature   TEXT NOT NULL,
        created     INTEGER NOT NULL,
        PRIMARY KEY (version, fingerprint)
    );
    "#,
];

/// PostgreSQL's steps, the same numbering as [`SQLITE`]. Integers are BIGINT (SQLite's are 64
/// bits), blobs BYTEA, and an id that must never be reused (a manifest id is the statement
/// serial) is an identity column, whose sequence never goes back.
pub const POSTGRES: &[&str] = &[
    // 1: SQLite's steps 1–5 as they stand after step 5.
    r#"
    CREATE TABLE investigators (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name          TEXT NOT NULL,
        fingerprint   TEXT NOT NULL UNIQUE,
        publickey     TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
        permissions   BIGINT NOT NULL,
        created       BIGINT NOT NULL,
        lastmodified  BIGINT NOT NULL,
        apikey_prefix TEXT UNIQUE,
        apikey_hash   BYTEA,
        apikey_salt   BYTEA
    );
    CREATE TABLE manifests (
        id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name           TEXT NOT NULL,
        target         TEXT NOT NULL,
        status         TEXT NOT NULL
                       CHECK (status IN ('staged', 'active', 'halted', 'disabled')),
        os             TEXT NOT NULL,
        arch           TEXT NOT NULL,
        created        BIGINT NOT NULL,
        issued         BIGINT NOT NULL,
        expires        BIGINT NOT NULL,
        statement      TEXT NOT NULL,
        archive_sha256 TEXT NOT NULL,
        archive_size   BIGINT NOT NULL,
        creator        BIGINT NOT NULL,
        halt_after     TEXT,
        halt_min       BIGINT,
        halt_since     BIGINT NOT NULL DEFAULT 0,
        halted_at      BIGINT,
        halted_reason  TEXT,
        v1_text        TEXT
    );
    CREATE INDEX manifests_status ON manifests (status, id);
    CREATE TABLE manifest_files (
        manifest_id BIGINT NOT NULL REFERENCES manifests (id),
        position    BIGINT NOT NULL,
        name        TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        size        BIGINT NOT NULL,
        PRIMARY KEY (manifest_id, position),
        UNIQUE (manifest_id, name)
    );
    CREATE INDEX manifest_files_sha256 ON manifest_files (manifest_id, sha256);
    CREATE TABLE signatures (
        manifest_id     BIGINT NOT NULL REFERENCES manifests (id),
        investigator_id BIGINT NOT NULL REFERENCES investigators (id),
        fingerprint     TEXT NOT NULL,
        signature       TEXT,
        v1_signature    TEXT,
        created         BIGINT NOT NULL,
        PRIMARY KEY (manifest_id, investigator_id),
        CHECK (signature IS NOT NULL OR v1_signature IS NOT NULL)
    );
    CREATE TABLE loaders (
        id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        keyprefix      TEXT NOT NULL UNIQUE,
        keyhash        BYTEA NOT NULL,
        salt           BYTEA NOT NULL,
        enabled        BIGINT NOT NULL DEFAULT 0,
        expectenv      TEXT,
        attributes     TEXT NOT NULL DEFAULT '{}',
        agentname      TEXT,
        env            TEXT,
        tags           TEXT,
        queueloc       TEXT,
        lastseen       BIGINT,
        given_manifest BIGINT REFERENCES manifests (id),
        created        BIGINT NOT NULL,
        protocol       TEXT CHECK (protocol IN ('v1', 'v2'))
    );
    CREATE INDEX loaders_given ON loaders (given_manifest);
    CREATE TABLE loader_reports (
        loader_id  BIGINT PRIMARY KEY REFERENCES loaders (id),
        serial     BIGINT NOT NULL,
        result     TEXT NOT NULL,
        message    TEXT NOT NULL,
        time       BIGINT NOT NULL,
        history_id BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX loader_reports_serial ON loader_reports (serial, result);
    CREATE TABLE plugins (
        name    TEXT PRIMARY KEY,
        sha256  TEXT NOT NULL,
        wasm    BYTEA NOT NULL,
        created BIGINT NOT NULL
    );
    CREATE TABLE report_history (
        id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        loader_id BIGINT NOT NULL REFERENCES loaders (id),
        serial    BIGINT NOT NULL,
        result    TEXT NOT NULL,
        message   TEXT NOT NULL,
        time      BIGINT NOT NULL
    );
    CREATE INDEX report_history_loader ON report_history (loader_id, id);
    CREATE INDEX report_history_time ON report_history (time);
    CREATE TABLE mig_imports (
        kind    TEXT NOT NULL CHECK (kind IN ('investigator', 'loader', 'manifest')),
        mig_id  BIGINT NOT NULL,
        our_id  BIGINT NOT NULL,
        PRIMARY KEY (kind, mig_id)
    );
    CREATE TABLE token_nonces (
        fingerprint TEXT NOT NULL,
        nonce       TEXT NOT NULL,
        until       BIGINT NOT NULL,
        PRIMARY KEY (fingerprint, nonce)
    );
    CREATE INDEX token_nonces_until ON token_nonces (until);
    "#,
    // 2–5: in step 1.
    "",
    "",
    "",
    "",
    // 6: SQLite's step 6, and the file bodies every replica serves (blobs.rs): a body is its
    // chunks of at most 1 MiB, whole once its `blobs` row exists.
    r#"
    CREATE TABLE shared_state (
        name  TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    INSERT INTO shared_state (name, value) VALUES ('generation', 0);
    CREATE TABLE blob_chunks (
        sha256 TEXT NOT NULL,
        n      BIGINT NOT NULL,
        data   BYTEA NOT NULL,
        PRIMARY KEY (sha256, n)
    );
    CREATE TABLE blobs (
        sha256  TEXT PRIMARY KEY,
        size    BIGINT NOT NULL,
        created BIGINT NOT NULL
    );
    "#,
    // 7: SQLite's step 7.
    r#"
    ALTER TABLE loaders ADD COLUMN keyfast BYTEA;
    "#,
    // 8: SQLite's step 8.
    r#"
    ALTER TABLE manifests ADD COLUMN renews BIGINT REFERENCES manifests (id);
    "#,
    // 9: SQLite's step 9.
    r#"
    ALTER TABLE manifests ADD COLUMN halt_reported BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE manifests ADD COLUMN halt_bad BIGINT NOT NULL DEFAULT 0;
    UPDATE manifests SET
      halt_reported = (SELECT COUNT(*) FROM loader_reports r
        WHERE r.serial = manifests.id AND r.history_id >= manifests.halt_since
          AND r.result IN ('installed', 'unchanged', 'failed', 'rolled_back')),
      halt_bad = (SELECT COUNT(*) FROM loader_reports r
        WHERE r.serial = manifests.id AND r.history_id >= manifests.halt_since
          AND r.result IN ('failed', 'rolled_back'));
    "#,
    // 10: SQLite's step 10.
    r#"
    ALTER TABLE loaders ADD COLUMN selection_rev BIGINT NOT NULL DEFAULT 0;
    "#,
    // 11: SQLite's step 11.
    r#"
    CREATE TABLE roots (
        version  BIGINT PRIMARY KEY,
        document TEXT NOT NULL,
        accepted BIGINT NOT NULL DEFAULT 0,
        created  BIGINT NOT NULL
    );
    CREATE TABLE root_signatures (
        version     BIGINT NOT NULL REFERENCES roots (version),
        fingerprint TEXT NOT NULL,
        signature   TEXT NOT NULL,
        created     BIGINT NOT NULL,
        PRIMARY KEY (version, fingerprint)
    );
    "#,
];
