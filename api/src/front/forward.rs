//! Hands each request from the public socket to Rocket on its loopback socket, over one
//! upstream connection per client connection (HTTP/1.1 requests on a connection come one after
//! another, so one upstream connection is always enough).
//!
//! Rocket learns the client's address from [`PEER_HEADER`], which the front always replaces,
//! and accepts a request only with [`FRONT_HEADER`] carrying this process's secret, so a local
//! process that finds the loopback port can neither skip the caps nor lie about its address.

use crate::app::App;
use crate::error::Error;
use crate::filecache::{Handoff, HANDOFF_HEADER};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rocket::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use rocket::tokio::net::TcpStream;
use rocket::tokio::sync::Mutex;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The client's address, as the front saw it.
pub const PEER_HEADER: &str = "x-mig-peer";
/// This process's secret: the request came through the front.
pub const FRONT_HEADER: &str = "x-mig-front";

pub type Body = http_body_util::Either<Incoming, http_body_util::Full<Bytes>>;

/// Where Rocket listens and the secret it expects.
pub struct Upstream {
    pub addr: SocketAddr,
    pub secret: HeaderValue,
}

/// One client connection's way to Rocket.
pub struct Link {
    upstream: Arc<Upstream>,
    /// The blob store and file cache, for bodies Rocket hands off (filecache.rs).
    app: App,
    /// The client's address as the value of [`PEER_HEADER`].
    peer: Option<HeaderValue>,
    sender: Mutex<Option<(SendRequest<Incoming>, Arc<AtomicBool>)>>,
}

/// The upstream socket. Rocket answers some requests (a body over its cap: 413) before it has
/// read their body, then closes; the body still on its way makes the close a reset, and our
/// next body write fails before the answer is read. So a write the peer refused is taken as
/// written (the bytes are dropped) and the answer, already in the socket, is still read; the
/// connection is marked `gone` and never used for another request.
struct UpstreamIo {
    inner: TcpStream,
    gone: Arc<AtomicBool>,
}

fn refused(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl UpstreamIo {
    /// A write of `all` bytes the peer refused is taken as written, and the link as gone.
    fn wrote(&self, r: Poll<io::Result<usize>>, all: usize) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Err(e)) if refused(&e) => {
                self.gone.store(true, Ordering::Relaxed);
                Poll::Ready(Ok(all))
            }
            other => other,
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.gone.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(data.len()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.wrote(r, data.len())
    }

    // Vectored, as front/idle.rs says why.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let all = bufs.iter().map(|b| b.len()).sum();
        if self.gone.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(all));
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(r, all)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.gone.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) if refused(&e) => {
                self.gone.store(true, Ordering::Relaxed);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.gone.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Link {
    /// The link of one client connection from `peer`.
    pub fn new(upstream: Arc<Upstream>, peer: IpAddr, app: App) -> Link {
        Link {
            upstream,
            app,
            // An address always formats as a valid header value; it is made once per connection.
            peer: HeaderValue::from_str(&peer.to_string()).ok(),
            sender: Mutex::new(None),
        }
    }

    pub async fn forward(&self, mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let headers = req.headers_mut();
        headers.remove(PEER_HEADER);
        headers.remove(FRONT_HEADER);
        if let Some(v) = &self.peer {
            headers.insert(PEER_HEADER, v.clone());
        }
        headers.insert(FRONT_HEADER, self.upstream.secret.clone());
        Ok(match self.send(req).await {
            Ok(mut resp) => match resp.headers_mut().remove(HANDOFF_HEADER) {
                None => resp.map(http_body_util::Either::Left),
                Some(value) => self.handed_off(resp, &value).await,
            },
            Err(e) => bad_error(
                StatusCode::BAD_GATEWAY,
                &format!("the request could not be handed to the server: {e}"),
            ),
        })
    }

    /// Rocket's answer with the body it handed off: the same status and headers, and the
    /// range of the blob from the file cache.
    async fn handed_off(&self, resp: Response<Incoming>, value: &HeaderValue) -> Response<Body> {
        let Some(h) = value.to_str().ok().and_then(Handoff::parse) else {
            return bad_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server handed off a file body with a malformed reference",
            );
        };
        let bytes = match self.app.file_cache.cached(&h.sha256) {
            Some(b) => b,
            None => {
                // A miss reads and hashes the file: off the async workers.
                let app = self.app.clone();
                let sha256 = h.sha256.clone();
                let read = rocket::tokio::task::spawn_blocking(move || {
                    app.file_cache.get(&app.blobs, &sha256)
                })
                .await
                .unwrap_or_else(|e| Err(Error::Internal(format!("the file read failed: {e}"))));
                match read {
                    Ok(b) => b,
                    // As everywhere, the detail goes to the log, not to the network.
                    Err(e) => {
                        crate::logging::event(
                            "error",
                            "file_body_failed",
                            &[("sha256", &h.sha256), ("error", &e)],
                        );
                        return bad_error(StatusCode::INTERNAL_SERVER_ERROR, &e.public_message());
                    }
                }
            }
        };
        let range = usize::try_from(h.start)
            .ok()
            .zip(usize::try_from(h.start.saturating_add(h.len)).ok())
            .and_then(|(a, b)| bytes.get(a..b).map(|_| (a, b)));
        let Some((a, b)) = range else {
            return bad_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "file {} holds {} bytes, not bytes {}..{} the server asked for",
                    h.sha256,
                    bytes.len(),
                    h.start,
                    h.start.saturating_add(h.len)
                ),
            );
        };
        let (mut parts, _) = resp.into_parts();
        parts
            .headers
            .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(b - a));
        Response::from_parts(
            parts,
            http_body_util::Either::Right(http_body_util::Full::new(bytes.slice(a..b))),
        )
    }

    async fn send(&self, req: Request<Incoming>) -> Result<Response<Incoming>, String> {
        let mut slot = self.sender.lock().await;
        let (mut sender, gone) = match slot.take() {
            Some((s, gone)) if !s.is_closed() && !gone.load(Ordering::Relaxed) => (s, gone),
            _ => self.connect().await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| format!("server connection: {e}"))?;
        let answer = sender.send_request(req);
        *slot = Some((sender, gone));
        drop(slot);
        answer.await.map_err(|e| format!("server: {e}"))
    }

    async fn connect(&self) -> Result<(SendRequest<Incoming>, Arc<AtomicBool>), String> {
        let addr = self.upstream.addr;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let gone = Arc::new(AtomicBool::new(false));
        let io = UpstreamIo {
            inner: stream,
            gone: Arc::clone(&gone),
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        rocket::tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((sender, gone))
    }
}

/// An answer of the front's own, in the API's JSON error shape.
fn bad_error(status: StatusCode, message: &str) -> Response<Body> {
    let body = mig_protocol::loader::ErrorBody::new(status.as_u16(), message.to_string());
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut resp = Response::new(http_body_util::Either::Right(http_body_util::Full::new(
        Bytes::from(bytes),
    )));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
