//! MIG's v1 loader routes, for the Go `mig-loader`s of a fleet moving to mig-api
//! (docs/design.md §8.3), under `[v1] baseroute`: `POST manifest/agent/`, `POST manifest/fetch/`
//! (form field `parameters`, key in `X-LOADERKEY`) and `GET ip`. Every answer, error or not, is
//! Collection+JSON, which is all a Go loader reads.

use super::{read_body, set_protocol, ContentLength, Loader};
use crate::app::App;
use crate::error::{Error, Result};
use crate::poll::Outcome;
use crate::serve::{self, LOADER_BODY};
use base64::Engine as _;
use bytes::Bytes;
use mig_protocol::loader::ManifestRequest;
use mig_protocol::mig_v1::{self, Collection, FetchValue};
use rocket::data::Data;
use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder, Response};
use rocket::tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use rocket::{catch, catchers, get, post, routes, Catcher, Request, Route, State};
use std::io::{Cursor, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub fn routes() -> Vec<Route> {
    routes![manifest_agent, manifest_fetch, ip]
}

pub fn catchers() -> Vec<Catcher> {
    catchers![catcher]
}

/// A v1 answer: one named value, or the error, both as Collection+JSON.
pub struct V1(Result<(&'static str, serde_json::Value)>);

impl<'r> Responder<'r, 'static> for V1 {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        set_protocol(req, "v1");
        let href = req.uri().path().to_string();
        let (status, collection) = match self.0 {
            Ok((name, value)) => (Status::Ok, Collection::item(&href, name, value)),
            Err(e) => {
                super::note_failure(req, &e);
                let status = e.status();
                let c = Collection::error(&href, status.code, &e.public_message());
                (status, c)
            }
        };
        collection_response(status, &collection)
    }
}

fn collection_response(status: Status, c: &Collection) -> response::Result<'static> {
    let body = serde_json::to_vec(c).map_err(|_| Status::InternalServerError)?;
    Response::build()
        .status(status)
        .header(ContentType::JSON)
        .raw_header("Cache-Control", "no-cache")
        .sized_body(body.len(), Cursor::new(body))
        .ok()
}

/// Reads the form and authenticates, in the handler's blocking task.
async fn parameters(
    app: &State<App>,
    auth: Loader,
    len: ContentLength,
    data: Data<'_>,
    what: &'static str,
) -> Result<(serve::Authenticated, mig_v1::ManifestParameters)> {
    let body = read_body(data, len, LOADER_BODY, what).await?;
    app.run(move |a| {
        let who = auth.authenticate(a)?;
        let p = mig_v1::parse_form(&body)
            .map_err(|e| Error::invalid("malformed_form", format!("{what}: {e}")))?;
        Ok((who, p))
    })
    .await
}

#[post("/manifest/agent", data = "<data>")]
async fn manifest_agent(app: &State<App>, auth: Loader, len: ContentLength, data: Data<'_>) -> V1 {
    V1(async {
        let (who, p) = parameters(app, auth, len, data, "manifest request").await?;
        let req = ManifestRequest {
            agent: p.agent,
            have: Default::default(),
        };
        let chosen = app.run(move |a| serve::v1_manifest(a, &who, &req)).await?;
        match chosen {
            Ok(m) => serde_json::to_value(m)
                .map(|v| ("manifest", v))
                .map_err(|e| Error::Internal(format!("a v1 manifest: {e}"))),
            Err(Outcome::NoneMatched(m)) => Err(Error::NotFound(m)),
            Err(Outcome::Denied(m)) => Err(Error::forbidden("expectenv", m)),
            Err(Outcome::Given(id, _)) => Err(Error::Internal(format!(
                "manifest {id} came back as a refusal"
            ))),
        }
    }
    .await)
}

#[post("/manifest/fetch", data = "<data>")]
async fn manifest_fetch(
    app: &State<App>,
    auth: Loader,
    len: ContentLength,
    data: Data<'_>,
) -> V1Fetch {
    V1Fetch(
        async {
            let (who, p) = parameters(app, auth, len, data, "fetch request").await?;
            if p.object.is_empty() {
                return Err(Error::invalid(
                    "malformed_form",
                    "fetch request: parameters has no object",
                ));
            }
            app.run(move |a| serve::v1_fetch(a, &who, &p.object)).await
        }
        .await,
    )
}

/// Bytes Rocket reads from a [`FetchBody`] at a time: what one answer holds of its body.
const FETCH_CHUNK: usize = 64 * 1024;

/// A `manifest/fetch/` answer: the file's gzip stream (shared, `serve::v1_fetch`) as the
/// base64 `data` of a [`V1`] answer, encoded as it is sent, so a request holds one chunk of its
/// answer and never the whole (a 32 MiB agent is some 43 MiB of base64; BENCHMARKS.md).
pub struct V1Fetch(Result<Arc<Bytes>>);

impl<'r> Responder<'r, 'static> for V1Fetch {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let gz = match self.0 {
            Ok(gz) => gz,
            Err(e) => return V1(Err(e)).respond_to(req),
        };
        set_protocol(req, "v1");
        let body = FetchBody::new(req.uri().path().as_str(), gz).map_err(|e| {
            super::note_failure(req, &e);
            Status::InternalServerError
        })?;
        Response::build()
            .status(Status::Ok)
            .header(ContentType::JSON)
            .raw_header("Cache-Control", "no-cache")
            .max_chunk_size(FETCH_CHUNK)
            .sized_body(body.len(), body)
            .ok()
    }
}

/// The bytes of `Collection::item(href, "content", {"data": base64(gz)})` as serde_json writes
/// them, read from any position: the Collection+JSON around the value is made once by
/// serde_json with an empty `data`, and the base64 between its quotes is encoded from `gz` a
/// chunk at a time, each group of four characters from its three bytes.
pub struct FetchBody {
    head: Vec<u8>,
    gz: Arc<Bytes>,
    /// Length of the base64 of `gz`, padded.
    encoded: usize,
    tail: Vec<u8>,
    pos: usize,
}

impl FetchBody {
    pub fn new(href: &str, gz: Arc<Bytes>) -> Result<FetchBody> {
        let failed = |e: String| Error::Internal(format!("a v1 file body: {e}"));
        let empty = serde_json::to_value(FetchValue {
            data: String::new(),
        })
        .map_err(|e| failed(e.to_string()))?;
        let frame = serde_json::to_vec(&Collection::item(href, "content", empty))
            .map_err(|e| failed(e.to_string()))?;
        // The value is the last text of the frame: after it come only the empty template and
        // error, so the last `{"data":""}` is it, whatever the href holds.
        const EMPTY: &[u8] = br#"{"data":""}"#;
        let at = frame
            .windows(EMPTY.len())
            .rposition(|w| w == EMPTY)
            .ok_or_else(|| failed("its Collection+JSON has no empty data".into()))?
            + EMPTY.len()
            - 2;
        let encoded = base64::encoded_len(gz.len(), true)
            .ok_or_else(|| failed(format!("{} bytes are too many to encode", gz.len())))?;
        Ok(FetchBody {
            head: frame[..at].to_vec(),
            gz,
            encoded,
            tail: frame[at..].to_vec(),
            pos: 0,
        })
    }

    /// The answer's length in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.encoded + self.tail.len()
    }

    /// Fills `out` with the bytes from `pos` on; returns how many (0 at the end).
    pub fn read_at(&self, pos: usize, out: &mut [u8]) -> usize {
        let b64 = &base64::engine::general_purpose::STANDARD;
        let mut n = 0;
        while n < out.len() {
            let at = pos + n;
            let dst = &mut out[n..];
            let k = if at < self.head.len() {
                copy(&self.head[at..], dst)
            } else if at - self.head.len() < self.encoded {
                let (group, skip) = ((at - self.head.len()) / 4, (at - self.head.len()) % 4);
                let input = self.gz.get(group * 3..).unwrap_or_default();
                let whole = dst.len() / 4;
                if skip == 0 && whole > 0 {
                    // Whole groups straight into `out`; the last one padded, as at the end.
                    let input = &input[..input.len().min(whole * 3)];
                    b64.encode_slice(input, dst).unwrap_or(0)
                } else {
                    // Part of one group: a read began or ends inside it.
                    let mut quad = [0u8; 4];
                    let w = b64
                        .encode_slice(&input[..input.len().min(3)], &mut quad)
                        .unwrap_or(0);
                    copy(quad.get(skip..w).unwrap_or_default(), dst)
                }
            } else {
                let t = at - self.head.len() - self.encoded;
                copy(self.tail.get(t..).unwrap_or_default(), dst)
            };
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    }
}

/// Copies what fits of `src` into `dst`; returns how many bytes.
fn copy(src: &[u8], dst: &mut [u8]) -> usize {
    let k = src.len().min(dst.len());
    dst[..k].copy_from_slice(&src[..k]);
    k
}

impl AsyncRead for FetchBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let pos = self.pos;
        let n = self.read_at(pos, buf.initialize_unfilled());
        buf.advance(n);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for FetchBody {
    fn start_seek(mut self: Pin<&mut Self>, to: SeekFrom) -> std::io::Result<()> {
        let (base, delta) = match to {
            SeekFrom::Start(p) => (0, i128::from(p)),
            SeekFrom::End(d) => (self.len(), i128::from(d)),
            SeekFrom::Current(d) => (self.pos, i128::from(d)),
        };
        self.pos = usize::try_from(base as i128 + delta).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a seek before the start of a v1 file body",
            )
        })?;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        Poll::Ready(Ok(self.pos as u64))
    }
}

/// The caller's address as text, which a Go loader asks for as `<base>//ip` when built to
/// discover its public address (Rocket matches the empty segment as `<base>/ip`).
#[get("/ip")]
fn ip(addr: std::net::IpAddr) -> (ContentType, String) {
    (ContentType::Plain, addr.to_string())
}

/// Rocket's own errors under the v1 base (no route, a guard's failure) as Collection+JSON too.
#[catch(default)]
fn catcher(status: Status, req: &Request<'_>) -> V1Error {
    let message = match status.code {
        404 => format!("no such endpoint: {} {}", req.method(), req.uri().path()),
        _ => status.reason_lossy().to_string(),
    };
    V1Error(status, message)
}

pub struct V1Error(Status, String);

impl<'r> Responder<'r, 'static> for V1Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        set_protocol(req, "v1");
        let c = Collection::error(req.uri().path().as_str(), self.0.code, &self.1);
        collection_response(self.0, &c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the answer was when it was made whole in memory.
    fn whole(href: &str, gz: &[u8]) -> Vec<u8> {
        let data = base64::engine::general_purpose::STANDARD.encode(gz);
        let value = serde_json::to_value(FetchValue { data }).unwrap();
        serde_json::to_vec(&Collection::item(href, "content", value)).unwrap()
    }

    #[test]
    fn a_fetch_body_read_in_any_chunks_from_any_position_is_the_whole_answer() {
        let gz: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let href = r#"/api/v1/manifest/fetch/{"data":""}"#;
        for len in (0..12).chain([4096, 4097, 4098, 5000]) {
            let want = whole(href, &gz[..len]);
            let body = FetchBody::new(href, Arc::new(Bytes::copy_from_slice(&gz[..len]))).unwrap();
            assert_eq!(body.len(), want.len(), "{len} bytes");
            for chunk in [1, 2, 3, 5, 7, 64, 4096, 1 << 20] {
                for start in [0, 1, 2, 3, want.len() / 2, want.len() - 1] {
                    let mut got = Vec::new();
                    let mut buf = vec![0u8; chunk];
                    loop {
                        let n = body.read_at(start + got.len(), &mut buf);
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    assert_eq!(
                        got,
                        want[start..],
                        "{len} bytes, chunks of {chunk}, from {start}"
                    );
                }
            }
            assert_eq!(body.read_at(want.len() + 3, &mut [0u8; 8]), 0);
        }
    }
}
