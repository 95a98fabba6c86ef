//! HTTP plumbing shared by the routes: authentication guards that never reject (the handler
//! turns their result into a JSON error after deciding what it needs), body reading with caps,
//! JSON parsing, file responses with Range, the request log fairing and the catchers.

pub mod admin;
mod front_only;
mod invalidate;
pub mod loader;
pub mod v1;

pub use front_only::{routes as front_only_routes, FrontOnly};
pub use invalidate::Invalidate;

use crate::admin_auth::{self, Credentials};
use crate::app::App;
use crate::auth::{Caller, Perm};
use crate::error::{Error, Result};
use crate::filecache::{Handoff, HANDOFF_HEADER};
use crate::logging;
use crate::serve::{self, Authenticated};
use mig_protocol::admin::{API_KEY_HEADER, PGP_AUTH_HEADER};
use mig_protocol::loader::{ErrorBody, LOADER_KEY_HEADER};
use rocket::data::{Data, ToByteUnit};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use rocket::tokio::io::AsyncReadExt;
use serde::de::DeserializeOwned;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the log line of one request gathers while it is handled.
struct RequestLog {
    start: Instant,
    /// Shared so that authentication running in a blocking task can fill it in.
    who: Arc<Mutex<Option<String>>>,
    failure: Mutex<Option<(&'static str, String)>>,
    /// The loader protocol of a loader request (`v1`, `v2`), logged as `protocol`.
    protocol: Mutex<Option<&'static str>>,
}

fn request_log<'r>(req: &'r Request<'_>) -> &'r RequestLog {
    req.local_cache(|| RequestLog {
        start: Instant::now(),
        who: Arc::new(Mutex::new(None)),
        failure: Mutex::new(None),
        protocol: Mutex::new(None),
    })
}

/// Whether a request is a loader's (v2 or MIG's v1): its [`Loader`] guard ran.
pub fn is_loader_request(req: &Request<'_>) -> bool {
    request_log(req)
        .protocol
        .lock()
        .map(|p| p.is_some())
        .unwrap_or(false)
}

/// Names the loader protocol a request spoke, for its log line.
pub fn set_protocol(req: &Request<'_>, protocol: &'static str) {
    if let Ok(mut p) = request_log(req).protocol.lock() {
        *p = Some(protocol);
    }
}

fn set_who(req: &Request<'_>, who: String) {
    if let Ok(mut w) = request_log(req).who.lock() {
        *w = Some(who);
    }
}

/// Counts a failure by reason and keeps its precise cause for the request's log line.
pub fn note_failure(req: &Request<'_>, e: &Error) {
    if let Some(app) = req.rocket().state::<App>() {
        app.metrics.failure(e.reason());
    }
    if let Ok(mut f) = request_log(req).failure.lock() {
        *f = Some((e.reason(), e.to_string()));
    }
}

/// An error answers `{"error": {"code", "message"}}` with its status (docs/api.md), and
/// notes its cause for the request log.
impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        // The request log line (routes::RequestLog) carries the precise cause and the metrics
        // count it by reason.
        note_failure(req, &self);
        let body = serde_json::to_string(&ErrorBody::new(status.code, self.public_message()))
            .unwrap_or_else(|_| format!("{{\"error\":{{\"code\":{}}}}}", status.code));
        let mut res = Response::build();
        res.status(status)
            .header(ContentType::JSON)
            .sized_body(body.len(), std::io::Cursor::new(body));
        match self {
            Error::RangeNotSatisfiable { size, .. } => {
                res.raw_header("Content-Range", format!("bytes */{size}"));
            }
            Error::TooMany { retry_after, .. } => {
                res.raw_header("Retry-After", retry_after.to_string());
            }
            _ => {}
        }
        Ok(res.finalize())
    }
}

fn app_of<'r>(req: &'r Request<'_>) -> Result<&'r App> {
    req.rocket()
        .state::<App>()
        .ok_or_else(|| Error::Internal("the application state is missing".into()))
}

/// An administrator request's authentication outcome; see [`Admin::require`].
pub struct Admin(Result<Caller>);

impl Admin {
    /// The caller, if authenticated and holding `perm` (401 / 403 otherwise).
    pub fn require(self, perm: Perm) -> Result<Caller> {
        let caller = self.0?;
        caller.require(perm)?;
        Ok(caller)
    }

    /// The caller, whatever its permissions (`investigators/me`).
    pub fn authenticated(self) -> Result<Caller> {
        self.0
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let app = match app_of(req) {
            Ok(a) => a,
            Err(e) => return Outcome::Success(Admin(Err(e))),
        };
        let creds = Credentials {
            token: req.headers().get_one(PGP_AUTH_HEADER).map(str::to_string),
            apikey: req.headers().get_one(API_KEY_HEADER).map(str::to_string),
        };
        let r = app
            .run(move |a| {
                let caller = admin_auth::authenticate(a, &creds)?;
                // What the request reads or validates against (plugins, manifests) is what
                // every replica stored (poll.rs).
                crate::replicas::sync(a)?;
                Ok(caller)
            })
            .await;
        if let Ok(c) = &r {
            set_who(req, c.label());
        }
        Outcome::Success(Admin(r))
    }
}

/// A loader request's key, authenticated by [`Loader::authenticate`] inside the handler's
/// blocking task: the loader endpoints are the hot path, and one hop to the blocking pool per
/// request is cheaper than two.
pub struct Loader {
    key: Option<String>,
    who: Arc<Mutex<Option<String>>>,
}

impl Loader {
    /// Checks the key (blocking: call inside `App::run`) and names the loader in the log line.
    pub fn authenticate(&self, app: &App) -> Result<Authenticated> {
        let l = serve::authenticate(app, self.key.as_deref())?;
        if let Ok(mut w) = self.who.lock() {
            *w = Some(l.label());
        }
        Ok(l)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Loader {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        // v1's responder says v1 (routes/v1.rs).
        set_protocol(req, "v2");
        Outcome::Success(Loader {
            key: req.headers().get_one(LOADER_KEY_HEADER).map(str::to_string),
            who: request_log(req).who.clone(),
        })
    }
}

/// The declared `Content-Length`, to refuse an oversized body before reading it, with the
/// configured time a small body may take (`[limits] bodydeadline`).
pub struct ContentLength {
    declared: Option<u64>,
    small_body_deadline: Duration,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ContentLength {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let small_body_deadline = req
            .rocket()
            .state::<crate::app::App>()
            .map_or(crate::config::DEFAULT_BODY_DEADLINE, |a| {
                a.cfg.limits.body_deadline
            });
        Outcome::Success(ContentLength {
            declared: req
                .headers()
                .get_one("Content-Length")
                .and_then(|v| v.trim().parse().ok()),
            small_body_deadline,
        })
    }
}

/// Slowest upload accepted: a body must arrive at 64 KiB/s or faster (and within the small-body
/// deadline at least).
const UPLOAD_BYTES_PER_SEC: u64 = 64 * 1024;

/// Reads a request body of at most `limit` bytes (413 beyond, before reading when declared)
/// within a deadline that grows with the limit (408 after it), so a client that trickles bytes
/// cannot hold a connection and a buffer forever.
pub async fn read_body(
    data: Data<'_>,
    declared: ContentLength,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let too_large = || Error::TooLarge(format!("{what} is larger than {limit} bytes"));
    if declared.declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let deadline = declared
        .small_body_deadline
        .max(Duration::from_secs(limit / UPLOAD_BYTES_PER_SEC));
    let read = rocket::tokio::time::timeout(deadline, data.open(limit.bytes()).into_bytes());
    let capped = read
        .await
        .map_err(|_| {
            Error::Timeout(format!(
                "{what} did not arrive within {} s",
                deadline.as_secs()
            ))
        })?
        .map_err(|e| Error::invalid("bad_body", format!("reading {what}: {e}")))?;
    if !capped.is_complete() {
        return Err(too_large());
    }
    Ok(capped.into_inner())
}

/// Parses a JSON body (400 naming what did not parse).
pub fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid("malformed_json", format!("malformed JSON in {what}: {e}")))
}

/// Parses an id path segment (MIG answered 400 for ids ≤ 0).
pub fn parse_id(what: &str, s: &str) -> Result<u64> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 && n <= i64::MAX as u64 => Ok(n),
        _ => Err(Error::invalid(
            "bad_id",
            format!("{what} id {s:?} is not a positive integer"),
        )),
    }
}

/// A JSON answer with a status.
pub type Answer<T> = Result<(Status, Json<T>)>;

pub fn ok<T>(v: T) -> Answer<T> {
    Ok((Status::Ok, Json(v)))
}

pub fn created<T>(v: T) -> Answer<T> {
    Ok((Status::Created, Json(v)))
}

/// What a file answer tells caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cacheable {
    /// No `Cache-Control` (administrators' downloads).
    NotSaid,
    /// `public, max-age=31536000, immutable`: content-addressed and not secret.
    Forever,
    /// `private, no-store`: a secret entry; no shared cache may keep it.
    Never,
}

/// A stored file streamed from disk, whole or one `Range`; never read into memory here. A
/// blob the file cache holds is handed to the front instead (filecache.rs).
pub struct FileBody {
    path: std::path::PathBuf,
    size: u64,
    /// The blob's sha256, for a content-addressed body.
    blob: Option<String>,
    /// Sent by the front from its file cache.
    handed_off: bool,
    content_type: ContentType,
    etag: Option<String>,
    cache: Cacheable,
    range: Option<String>,
    if_none_match: Option<String>,
    disposition: Option<String>,
}

impl FileBody {
    pub fn new(path: std::path::PathBuf, size: u64, content_type: ContentType) -> Self {
        FileBody {
            path,
            size,
            content_type,
            blob: None,
            handed_off: false,
            etag: None,
            cache: Cacheable::NotSaid,
            range: None,
            if_none_match: None,
            disposition: None,
        }
    }

    /// Content-addressed: `ETag: "<sha256>"`, conditional requests answered; cached forever by
    /// anyone unless `secret`, then by no one (a shared cache would hand it out without a key).
    pub fn content_addressed(mut self, sha256: &str, req: &RangeHeaders, secret: bool) -> Self {
        self.etag = Some(format!("\"{sha256}\""));
        self.blob = Some(sha256.to_string());
        self.cache = if secret {
            Cacheable::Never
        } else {
            Cacheable::Forever
        };
        self.range = req.range.clone();
        self.if_none_match = req.if_none_match.clone();
        self
    }

    /// A content-addressed body that `cache` holds is handed off to the front, which sends it
    /// from memory.
    pub fn handed_off_by(mut self, cache: &crate::filecache::FileCache) -> Self {
        self.handed_off = self.blob.is_some() && cache.holds(self.size);
        self
    }

    pub fn attachment(mut self, filename: &str) -> Self {
        self.disposition = Some(format!("attachment; filename=\"{filename}\""));
        self
    }

    /// Opens the file and positions it for the (range of the) answer. Blocking: call it inside
    /// `App::run`, in the same task as the lookup, so a small body costs no further hop.
    pub fn open(self) -> Result<OpenFile> {
        let not_modified = match (&self.etag, &self.if_none_match) {
            (Some(tag), Some(inm)) => inm.split(',').any(|t| t.trim() == tag || t.trim() == "*"),
            _ => false,
        };
        let range = match (&self.range, not_modified) {
            (Some(r), false) => Some(parse_range(r, self.size)?),
            _ => None,
        };
        let (start, len) = range.unwrap_or((0, self.size));
        let body = match (&self.blob, self.handed_off && !not_modified) {
            // The front reads and checks the bytes (filecache.rs).
            (Some(sha256), true) => FileData::Handoff(Handoff {
                sha256: sha256.clone(),
                start,
                len,
            }),
            _ => self.on_disk(start, len, not_modified)?,
        };
        Ok(OpenFile {
            meta: self,
            body,
            start,
            len,
            partial: range.is_some(),
            not_modified,
        })
    }

    /// The file on disk, checked against the database's size and positioned at `start`: read
    /// whole when small, else streamed; nothing for a 304.
    fn on_disk(&self, start: u64, len: u64, not_modified: bool) -> Result<FileData> {
        let mut file = std::fs::File::open(&self.path).map_err(Error::io("opening", &self.path))?;
        let actual = file
            .metadata()
            .map_err(Error::io("reading metadata of", &self.path))?
            .len();
        if actual != self.size {
            return Err(Error::Internal(format!(
                "{} holds {actual} bytes, the database says {}",
                self.path.display(),
                self.size
            )));
        }
        Ok(if not_modified {
            FileData::Inline(Vec::new())
        } else {
            if start > 0 {
                file.seek(SeekFrom::Start(start))
                    .map_err(Error::io("seeking in", &self.path))?;
            }
            if len <= INLINE_BODY {
                let mut data = Vec::with_capacity(len as usize);
                file.take(len)
                    .read_to_end(&mut data)
                    .map_err(Error::io("reading", &self.path))?;
                if data.len() as u64 != len {
                    return Err(Error::Internal(format!(
                        "{} ended early",
                        self.path.display()
                    )));
                }
                FileData::Inline(data)
            } else {
                FileData::Stream(file)
            }
        })
    }
}

/// Bodies up to this size are read in the lookup's blocking task and sent from memory; larger
/// ones are streamed from disk in [`STREAM_CHUNK`] pieces, never held whole.
const INLINE_BODY: u64 = 64 * 1024;
const STREAM_CHUNK: usize = 256 * 1024;

/// What an [`OpenFile`] sends.
enum FileData {
    Inline(Vec<u8>),
    Stream(std::fs::File),
    /// No bytes: the front sends them.
    Handoff(Handoff),
}

/// `Range` and `If-None-Match` of a request.
#[derive(Clone)]
pub struct RangeHeaders {
    range: Option<String>,
    if_none_match: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RangeHeaders {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(RangeHeaders {
            range: req.headers().get_one("Range").map(str::to_string),
            if_none_match: req.headers().get_one("If-None-Match").map(str::to_string),
        })
    }
}

/// `bytes=N-` or `bytes=N-M` (and the suffix form `bytes=-N`) → (start, length). Anything
/// else, several ranges, or a start at or past the end is a 416.
pub fn parse_range(value: &str, size: u64) -> Result<(u64, u64)> {
    let bad = |why: &str| Error::RangeNotSatisfiable {
        size,
        message: format!("Range {value:?}: {why} (file of {size} bytes)"),
    };
    let spec = value
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| bad("only bytes=N- and bytes=N-M are supported"))?;
    if spec.contains(',') {
        return Err(bad("only one range per request is supported"));
    }
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| bad("expected bytes=N- or bytes=N-M"))?;
    let num = |s: &str| -> Result<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("not a number"));
        }
        s.parse().map_err(|_| bad("number too large"))
    };
    if a.trim().is_empty() {
        let n = num(b)?;
        if n == 0 || size == 0 {
            return Err(bad("empty suffix range"));
        }
        let n = n.min(size);
        return Ok((size - n, n));
    }
    let start = num(a)?;
    if start >= size {
        return Err(bad("starts at or after the end"));
    }
    let end = if b.trim().is_empty() {
        size - 1
    } else {
        let end = num(b)?;
        if end < start {
            return Err(bad("ends before it starts"));
        }
        end.min(size - 1)
    };
    Ok((start, end - start + 1))
}

/// An opened file ready to be sent.
pub struct OpenFile {
    meta: FileBody,
    body: FileData,
    start: u64,
    len: u64,
    partial: bool,
    not_modified: bool,
}

impl<'r> Responder<'r, 'static> for OpenFile {
    fn respond_to(self, _req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.header(self.meta.content_type.clone())
            .raw_header("Accept-Ranges", "bytes");
        if let Some(tag) = &self.meta.etag {
            res.raw_header("ETag", tag.clone());
        }
        match self.meta.cache {
            Cacheable::NotSaid => {}
            Cacheable::Forever => {
                res.raw_header("Cache-Control", "public, max-age=31536000, immutable");
            }
            Cacheable::Never => {
                res.raw_header("Cache-Control", "private, no-store");
            }
        }
        if let Some(d) = &self.meta.disposition {
            res.raw_header("Content-Disposition", d.clone());
        }
        if self.not_modified {
            return Ok(res.status(Status::NotModified).finalize());
        }
        if self.partial {
            res.status(Status::PartialContent).raw_header(
                "Content-Range",
                format!(
                    "bytes {}-{}/{}",
                    self.start,
                    self.start + self.len - 1,
                    self.meta.size
                ),
            );
        }
        match self.body {
            FileData::Inline(data) => {
                res.sized_body(data.len(), std::io::Cursor::new(data));
            }
            FileData::Stream(file) => {
                // An explicit length, so the client sees Content-Length while the body streams.
                let file = rocket::tokio::fs::File::from_std(file);
                res.raw_header("Content-Length", self.len.to_string())
                    .streamed_body(file.take(self.len))
                    .max_chunk_size(STREAM_CHUNK);
            }
            FileData::Handoff(h) => {
                res.raw_header(HANDOFF_HEADER, h.header_value());
            }
        }
        Ok(res.finalize())
    }
}

/// The request log and the request counters.
pub struct RequestLogger;

/// A route's path below the base route: `/loader/manifest`, `/manifests/<id>`.
pub fn relative_path(r: &rocket::Route) -> &str {
    let base = r.uri.base();
    let path = r.uri.path();
    if base == "/" {
        path
    } else {
        path.strip_prefix(base).unwrap_or(path)
    }
}

#[rocket::async_trait]
impl Fairing for RequestLogger {
    fn info(&self) -> Info {
        Info {
            name: "request log and metrics",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        // Starts the clock.
        let _ = request_log(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let log = request_log(req);
        let endpoint = match req.route() {
            Some(r) => format!("{} {}", r.method, relative_path(r)),
            None => "unmatched".to_string(),
        };
        let status = res.status().code;
        if let Some(app) = req.rocket().state::<App>() {
            app.metrics.request(&endpoint, status);
        }
        let level = match status {
            500.. => "error",
            400.. => "warn",
            _ => "info",
        };
        let who = log
            .who
            .lock()
            .ok()
            .and_then(|w| w.clone())
            .unwrap_or_else(|| "-".into());
        let ms = format!("{:.3}", log.start.elapsed().as_secs_f64() * 1000.0);
        let remote = req
            .client_ip()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into());
        let method = req.method();
        let path = req.uri().path();
        let failure = log.failure.lock().ok().and_then(|f| f.clone());
        let mut fields: Vec<(&str, &dyn std::fmt::Display)> = vec![
            ("method", &method),
            ("path", &path),
            ("endpoint", &endpoint),
            ("status", &status),
            ("ms", &ms),
            ("who", &who),
            ("remote", &remote),
        ];
        let protocol = log.protocol.lock().ok().and_then(|p| *p);
        if let Some(p) = &protocol {
            fields.push(("protocol", p));
        }
        if let Some((reason, detail)) = &failure {
            fields.push(("reason", reason));
            fields.push(("detail", detail));
        }
        logging::event(level, "request", &fields);
    }
}

/// Every error Rocket produces itself (no route, guard failure) also answers the JSON body.
#[rocket::catch(default)]
pub fn default_catcher(status: Status, req: &Request<'_>) -> (Status, Json<ErrorBody>) {
    let message = match status.code {
        404 => format!("no such endpoint: {} {}", req.method(), req.uri().path()),
        _ => status.reason_lossy().to_string(),
    };
    (status, Json(ErrorBody::new(status.code, message)))
}
