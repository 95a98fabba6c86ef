//! The loader-facing protocol (docs/design.md §3.2, §3.7, §8.3): a loader's key checked, its
//! manifest request answered (from the poll cache when it repeats itself), MIG's v1 manifest
//! and file routes, the files of the manifest it was given, and its reports.

use crate::app::App;
use crate::db::{Conn, OptionalExtension};
use crate::error::{Error, Result};
use crate::keys;
use crate::loaders::{facts, get};
use crate::manifests::{self, Candidate, Reach};
use crate::params;
use crate::poll::{Outcome, Stamp};
use crate::targeting::Selection;
use bytes::Bytes;
use mig_protocol::dictionary::DictName;
use mig_protocol::loader::{ManifestRequest, ManifestResponse, Report};
use mig_protocol::mig_v1::{self, V1Manifest};
use mig_protocol::signature;
use mig_protocol::statement::is_sha256_hex;
use mig_protocol::time::Timestamp;
use mig_protocol::Serial;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

/// Largest manifest request or report body (a real one is about 1 KiB).
pub const LOADER_BODY: u64 = 64 * 1024;
/// Longest stored report message.
const MAX_REPORT_MESSAGE: usize = 4096;
/// Longest agent name, queue location (MIG: varchar(2048)).
const MAX_AGENT_FIELD: usize = 2048;
/// What every loader authentication failure answers: the precise cause is only logged.
const GENERIC_401: &str = "loader authentication failed";

/// A loader whose key checked out.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub id: u64,
    pub name: String,
    /// The shared generation, read with the key (poll.rs): a manifest request catches up with
    /// it without another round trip to the database.
    pub shared_generation: i64,
    /// The row's `selection_rev`, read with the key: what selection reads from this loader's
    /// own row (expectenv, attributes) as of this request (poll.rs).
    pub selection_rev: i64,
}

impl Authenticated {
    pub fn label(&self) -> String {
        format!("loader:{}", self.id)
    }
}

/// A loader's key row, with the shared generation read in the same query.
struct KeyRow {
    id: u64,
    name: String,
    salt: Vec<u8>,
    hash: Vec<u8>,
    fast: Option<Vec<u8>>,
    enabled: bool,
    shared_generation: i64,
    selection_rev: i64,
}

/// Checks `X-LOADERKEY` (PBKDF2 at most once per loader and key, `keys::check_row`): unknown prefix, wrong secret and disabled loader all answer the same
/// 401 (docs/design.md §3.7), the log line says which.
pub fn authenticate(app: &App, header: Option<&str>) -> Result<Authenticated> {
    let key = header.ok_or_else(|| {
        Error::unauthorized("missing_loader_key", GENERIC_401, "no X-LOADERKEY header")
    })?;
    let (prefix, secret) = keys::split(key).ok_or_else(|| {
        Error::unauthorized(
            "malformed_loader_key",
            GENERIC_401,
            "X-LOADERKEY is not 40 ASCII alphanumerics",
        )
    })?;
    let row = app.db.with(|c| {
        c.query_row(
            "SELECT id, name, salt, keyhash, keyfast, enabled,
               (SELECT value FROM shared_state WHERE name = 'generation'), selection_rev
             FROM loaders WHERE keyprefix = ?1",
            params![prefix],
            |r| {
                Ok(KeyRow {
                    id: r.get::<_, i64>(0)? as u64,
                    name: r.get(1)?,
                    salt: r.get(2)?,
                    hash: r.get(3)?,
                    fast: r.get(4)?,
                    enabled: r.get(5)?,
                    shared_generation: r.get(6)?,
                    selection_rev: r.get(7)?,
                })
            },
        )
        .optional()
        .map_err(Error::db("finding a loader key"))
    })?;
    let Some(KeyRow {
        id,
        name,
        salt,
        hash,
        fast,
        enabled,
        shared_generation,
        selection_rev,
    }) = row
    else {
        return Err(Error::unauthorized(
            "unknown_loader_prefix",
            GENERIC_401,
            format!("no loader key with prefix {prefix}"),
        ));
    };
    let check = keys::check_row(secret, &salt, &hash, fast.as_deref());
    if check.pbkdf2 {
        app.metrics.pbkdf2("loader");
    }
    if !check.ok {
        return Err(Error::unauthorized(
            "wrong_loader_secret",
            GENERIC_401,
            format!("wrong secret for loader {id} (prefix {prefix})"),
        ));
    }
    if !enabled {
        return Err(Error::unauthorized(
            "loader_disabled",
            GENERIC_401,
            format!("loader {id} {name:?} is disabled"),
        ));
    }
    if let Some(learned) = check.learned {
        // Only beside the hash it was made from: a rotation in between voids it.
        let kept = app.db.with_relaxed(|c| {
            c.execute(
                "UPDATE loaders SET keyfast = ?1 WHERE id = ?2 AND keyhash = ?3",
                params![learned.to_vec(), id as i64, hash],
            )
            .map_err(Error::db("storing a loader's fast key verifier"))
        });
        // The key checked out; the next request runs PBKDF2 again and retries the write.
        if let Err(e) = kept {
            crate::logging::event("error", "key_verifier_not_stored", &[("error", &e)]);
        }
    }
    Ok(Authenticated {
        id,
        name,
        shared_generation,
        selection_rev,
    })
}

fn check_request(req: &ManifestRequest) -> Result<()> {
    let a = &req.agent;
    let bad = |m: String| Error::invalid("bad_manifest_request", m);
    if a.name.trim().is_empty() {
        return Err(bad("agent.name is empty".into()));
    }
    for (what, v) in [("agent.name", &a.name), ("agent.queueloc", &a.queueloc)] {
        if v.len() > MAX_AGENT_FIELD || v.chars().any(char::is_control) {
            return Err(bad(format!(
                "{what} must be at most {MAX_AGENT_FIELD} bytes without control characters"
            )));
        }
    }
    Ok(())
}

/// `POST loader/manifest`: record what the loader reports, check expectenv, select the newest
/// active manifest for its platform whose target matches, and remember which one it was given.
/// `body` is the request's bytes: a loader repeating them exactly is answered from
/// [`crate::poll::PollCache`] before they are even parsed (they were, the first time); else
/// `parse` (the route's JSON reader) makes them a request.
pub fn manifest_request(
    app: &App,
    who: &Authenticated,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<ManifestRequest>,
) -> Result<Outcome> {
    // Read before the database (poll.rs): an outcome is kept under the generation it saw,
    // after catching up with the other replicas.
    crate::replicas::catch_up(app, who.shared_generation)?;
    let generation = app.poll.generation();
    let digest = crate::poll::digest(body);
    let now = Timestamp::now();
    let stamp = Stamp {
        generation,
        loader: who.selection_rev,
    };
    if let Some(kept) = app.poll.lookup(who.id, stamp, &digest, now) {
        // The selection is kept; the answer is the manifest's current one, whose freshness
        // signature is renewed past its half-life (docs/design.md §4.20).
        let kept = match kept {
            Outcome::Given(id, _) => Outcome::Given(id, answer(app, id, now)?),
            other => other,
        };
        app.poll.saw(who.id, now);
        app.metrics.selection(selection_label(&kept));
        return Ok(kept);
    }
    let req = parse(body)?;
    check_request(&req)?;
    let reach = Reach::V2 {
        required: app.cfg.required_signatures,
    };
    // Kept until the chosen manifest expires: then an older one may be the choice.
    let (outcome, until) = match choose(app, who, &req, now, reach)? {
        Ok(c) => (Outcome::Given(c.id, answer(app, c.id, now)?), c.expires),
        Err(not) => (not, Timestamp(u64::MAX)),
    };
    app.metrics.selection(selection_label(&outcome));
    app.poll
        .store(who.id, stamp, digest, outcome.clone(), until);
    Ok(outcome)
}

fn selection_label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Given(..) => "selected",
        Outcome::NoneMatched(_) => "none",
        Outcome::Denied(_) => "expectenv_denied",
    }
}

/// `POST <v1>/manifest/agent/` (docs/design.md §8.3): the same record, expectenv and selection
/// as [`manifest_request`], among the manifests a Go loader can verify; the answer is the
/// manifest value a Go loader reads, or the refusal. Never from the poll cache, whose answers
/// are v2's, and it empties this loader's entry there: the given manifest may change here.
pub fn v1_manifest(
    app: &App,
    who: &Authenticated,
    req: &ManifestRequest,
) -> Result<std::result::Result<V1Manifest, Outcome>> {
    check_request(req)?;
    crate::replicas::catch_up(app, who.shared_generation)?;
    app.poll.forget(who.id);
    let now = Timestamp::now();
    let reach = Reach::V1 {
        fingerprints: &app.cfg.v1.fingerprints,
        required: app.cfg.v1_required(),
    };
    let chosen = choose(app, who, req, now, reach)?;
    let outcome_label = match &chosen {
        Ok(_) => "selected",
        Err(o) => selection_label(o),
    };
    app.metrics.selection(outcome_label);
    let id = match chosen {
        Ok(c) => c.id,
        Err(not) => return Ok(Err(not)),
    };
    let (text, armored) = app
        .db
        .with(|c| manifests::v1_text_and_signatures(c, id, &app.cfg.v1.fingerprints))?;
    // The entries are read back from the signed text itself, so a Go loader rebuilds exactly
    // the text whose signatures were verified at signing.
    let entries = mig_v1::entries_of(&text)
        .map_err(|e| Error::Internal(format!("manifest {id}'s v1 text: {e}")))?;
    let signatures = armored
        .iter()
        .map(|a| signature::go_flat(a))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("manifest {id}'s v1 signatures: {e}")))?;
    Ok(Ok(V1Manifest {
        loader_name: who.name.clone(),
        entries,
        signatures,
    }))
}

/// `POST <v1>/manifest/fetch/`: the first entry named `object` of the manifest this loader was
/// given by its last manifest request, as the bytes a Go loader decodes (gzip of the file), the
/// file checked against its sha256 first; one copy shared by every request sending it.
pub fn v1_fetch(app: &App, who: &Authenticated, object: &str) -> Result<Arc<Bytes>> {
    let manifest = given_manifest(app, who)?;
    let row: Option<(String, i64)> = app.db.with(|c| {
        c.query_row(
            "SELECT f.sha256, f.size FROM manifest_files f JOIN manifests m ON m.id = f.manifest_id
             WHERE f.manifest_id = ?1 AND f.name = ?2 AND m.v1_text IS NOT NULL
             ORDER BY f.position LIMIT 1",
            params![manifest as i64, object],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(Error::db("reading manifest entries"))
    })?;
    let Some((sha256, size)) = row else {
        return Err(Error::NotFound(format!(
            "object {object:?} is not in manifest {manifest} given to this loader over v1"
        )));
    };
    // Compressed once per blob while it stays in the v1 cache or is being sent: a fleet moving
    // over fetches the same agent many times, and many at once.
    if let Some(done) = app.v1_bodies.cached(&sha256) {
        return Ok(Arc::new(done));
    }
    let mut sending = app
        .v1_sending
        .lock()
        .map_err(|_| Error::Internal("the v1 compression lock is poisoned".into()))?;
    // Made by another request while this one waited, or still being sent to one.
    if let Some(done) = app.v1_bodies.cached(&sha256) {
        return Ok(Arc::new(done));
    }
    if let Some(shared) = sending.get(&sha256).and_then(Weak::upgrade) {
        return Ok(shared);
    }
    let bytes = crate::filecache::read_verified(&app.blobs, &sha256, size as u64)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let gz = std::io::Write::write_all(&mut gz, &bytes)
        .and_then(|()| gz.finish())
        .map(Bytes::from)
        .map_err(|e| Error::Internal(format!("compressing blob {sha256}: {e}")))?;
    drop(bytes);
    let gz = app.v1_bodies.get_or_make(&sha256, || Ok(gz))?;
    let gz = Arc::new(gz);
    sending.retain(|_, w| w.strong_count() > 0);
    sending.insert(sha256, Arc::downgrade(&gz));
    Ok(gz)
}

/// The manifest this loader's last manifest request gave it, while it is active (or halted:
/// a halted manifest is only given to the loaders already on it, `manifests::candidates`).
fn given_manifest(app: &App, who: &Authenticated) -> Result<u64> {
    let row = app.db.with(|c| {
        c.query_row(
            "SELECT l.given_manifest, m.status FROM loaders l
             LEFT JOIN manifests m ON m.id = l.given_manifest WHERE l.id = ?1",
            params![who.id as i64],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .map_err(Error::db("reading a loader"))
    })?;
    let (Some(manifest), Some(status)) = row else {
        return Err(Error::forbidden(
            "file_not_given",
            "no manifest is given to this loader: request loader/manifest first (v1: manifest/agent/)",
        ));
    };
    if !matches!(
        status.parse::<mig_protocol::ManifestStatus>(),
        Ok(mig_protocol::ManifestStatus::Active | mig_protocol::ManifestStatus::Halted)
    ) {
        return Err(Error::forbidden(
            "file_not_given",
            format!("manifest {manifest} given to this loader is no longer active"),
        ));
    }
    Ok(manifest as u64)
}

/// The whole selection, from the database and the engine: the manifest chosen, or why none.
fn choose(
    app: &App,
    who: &Authenticated,
    req: &ManifestRequest,
    now: Timestamp,
    reach: Reach<'_>,
) -> Result<std::result::Result<Candidate, Outcome>> {
    let env = serde_json::to_string(&req.agent.environment)
        .map_err(|e| Error::Internal(format!("environment: {e}")))?;
    let tags = serde_json::to_string(&req.agent.tags)
        .map_err(|e| Error::Internal(format!("tags: {e}")))?;
    let queueloc = Some(req.agent.queueloc.as_str()).filter(|q| !q.is_empty());
    let protocol = match reach {
        Reach::V2 { .. } => "v2",
        Reach::V1 { .. } => "v1",
    };
    let record = app.db.with_relaxed(|c| {
        c.execute(
            "UPDATE loaders SET agentname = ?1, env = ?2, tags = ?3, queueloc = ?4, lastseen = ?5,
               protocol = ?7
             WHERE id = ?6",
            params![
                req.agent.name,
                env,
                tags,
                queueloc,
                now.0 as i64,
                who.id as i64,
                protocol
            ],
        )
        .map_err(Error::db("recording a loader's environment"))?;
        get(c, who.id)
    })?;
    // Reported facts come from this request; attributes only ever from administrators.
    let facts = facts(&record);
    let env = &req.agent.environment;
    let candidates = app
        .db
        .with(|c| manifests::candidates(c, &env.os, &env.arch, who.id, now, reach))?;
    let refs: Vec<(u64, &str)> = candidates
        .iter()
        .map(|c| (c.id, c.target.as_str()))
        .collect();
    // expectenv and the targets in one evaluator instance; no target is evaluated for a
    // loader whose expectenv is not true.
    let selected = match app
        .engine
        .select_expecting(&facts, record.expectenv.as_deref(), &refs)
    {
        Selection::Selected(id) => id,
        Selection::Refused(why) => {
            app.db.with_relaxed(|c| set_given(c, who.id, None))?;
            let why = why.map(|e| format!(": {e}")).unwrap_or_default();
            return Ok(Err(Outcome::Denied(format!(
                "the reported environment does not meet this loader's expectenv{why}"
            ))));
        }
    };
    let Some(id) = selected else {
        app.db.with_relaxed(|c| set_given(c, who.id, None))?;
        return Ok(Err(Outcome::NoneMatched(format!(
            "no active manifest for {}/{} targets this loader{}",
            env.os,
            env.arch,
            match reach {
                Reach::V2 { .. } => "",
                Reach::V1 { .. } => " and carries enough v1 signatures for MIG's Go loaders",
            }
        ))));
    };
    app.db.with_relaxed(|c| set_given(c, who.id, Some(id)))?;
    candidates
        .into_iter()
        .find(|c| c.id == id)
        .map(Ok)
        .ok_or_else(|| Error::Internal(format!("the engine chose {id}, not a candidate")))
}

/// The bytes of `POST loader/manifest`'s answer for manifest `id`: its statement and verified
/// signatures as `ManifestResponse` JSON.
/// Manifest `id`'s answer, shared by every loader given it (poll.rs).
fn answer(app: &App, id: u64, now: Timestamp) -> Result<Arc<[u8]>> {
    app.poll.answer(id, now, || {
        let ((statement, signatures), root) = app.db.with(|db| {
            Ok((
                manifests::statement_and_signatures(db, id)?,
                crate::roots::announced(app, db)?,
            ))
        })?;
        answer_bytes(app.freshness.as_ref(), id, statement, signatures, root, now)
    })
}

/// The answer bytes (`ManifestResponse` JSON) of manifest `id`, with a freshness signature over
/// its statement when the API has a freshness key and the newest root of trust when it has
/// roots, and when they should be made again.
pub fn answer_bytes(
    freshness: Option<&crate::freshness::Signer>,
    id: u64,
    statement: String,
    signatures: Vec<String>,
    root: Option<u64>,
    now: Timestamp,
) -> Result<crate::poll::Made> {
    let (freshness, refresh_at, signed) = match freshness {
        Some(signer) => {
            let s = signer.sign(statement.as_bytes(), Serial::new(id), now)?;
            (Some(s.freshness), s.refresh_at, Some((s.issued, s.expires)))
        }
        None => (None, Timestamp(u64::MAX), None),
    };
    let body = serde_json::to_vec(&ManifestResponse {
        statement,
        signatures,
        freshness,
        root,
    })
    .map_err(|e| Error::Internal(format!("manifest {id}'s answer: {e}")))?;
    Ok(crate::poll::Made {
        body,
        refresh_at,
        signed,
    })
}

fn set_given(conn: &Conn, loader: u64, manifest: Option<u64>) -> Result<()> {
    conn.execute(
        "UPDATE loaders SET given_manifest = ?1 WHERE id = ?2",
        params![manifest.map(|m| m as i64), loader as i64],
    )
    .map_err(Error::db("recording the given manifest"))?;
    Ok(())
}

/// `GET loader/files/<sha256>`: the blob path and size, only for a file of the active manifest
/// this loader was given by its last manifest request.
pub fn file(app: &App, who: &Authenticated, sha256: &str) -> Result<GivenFile> {
    if !is_sha256_hex(sha256) {
        return Err(Error::invalid(
            "bad_hash",
            format!("{sha256:?} is not 64 lower-case hex digits"),
        ));
    }
    let manifest = given_manifest(app, who)? as i64;
    // Every entry of the given manifest with these bytes: the body is secret when any of them is
    // a secret dictionary entry (or a name the dictionary does not know, to be safe).
    let rows: Vec<(i64, String)> = app.db.with(|c| {
        let mut st = c
            .prepare_cached(
                "SELECT size, name FROM manifest_files WHERE manifest_id = ?1 AND sha256 = ?2",
            )
            .map_err(Error::db("reading manifest entries"))?;
        st.query_map(params![manifest, sha256], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(Error::db("reading manifest entries"))
    })?;
    let Some((size, _)) = rows.first() else {
        return Err(Error::forbidden(
            "file_not_given",
            format!("file {sha256} is not in manifest {manifest} given to this loader"),
        ));
    };
    let secret = rows
        .iter()
        .any(|(_, name)| DictName::parse(name).is_none_or(DictName::is_secret));
    Ok(GivenFile {
        path: crate::blobs::local(&app.blobs, &app.db, sha256)?,
        size: *size as u64,
        secret,
    })
}

/// A file body a loader may fetch.
pub struct GivenFile {
    pub path: PathBuf,
    pub size: u64,
    /// Holds a secret (`agentkey`, `configuration`, `loaderconfig`): never cacheable.
    pub secret: bool,
}

/// `POST loader/report`: appends to the loader's history and keeps it as its latest report.
pub fn report(app: &App, who: &Authenticated, r: &Report) -> Result<()> {
    let serial = i64::try_from(r.serial.get()).map_err(|_| {
        Error::invalid(
            "bad_report",
            format!("serial {} is out of range", r.serial.get()),
        )
    })?;
    let now = Timestamp::now();
    app.report_rate.take(who.id, now.0)?;
    let mut message: String = r.message.chars().take(MAX_REPORT_MESSAGE).collect();
    message.retain(|c| c == '\n' || !c.is_control());
    // Relaxed even when this report halts a manifest: a halt lost to a power cut trips again
    // at the next report, since the counts it came from are kept.
    let halted = app
        .db
        .with_relaxed(|c| crate::reports::store(c, who.id, serial, r.result, &message, now))?;
    // poll.rs: a report decides whether a halted manifest is still this loader's; a halt
    // changes every loader's selection.
    app.poll.forget(who.id);
    if halted.is_some() {
        crate::replicas::changed(app)?;
    }
    app.metrics.report(r.result.as_str());
    Ok(())
}
