//! The public socket. Rocket 0.5 reads a request's head with no deadline and takes every
//! connection it is offered, and it offers no way to serve on a listener of our own, so mig-api
//! accepts connections here, bounds them (docs/design.md §7: slow clients), terminates TLS, and
//! hands each request to Rocket listening on loopback (`forward`).
//!
//! Bounds, all from `[limits]` (config.rs):
//! - `connections` open at once, `connectionsperpeer` from one address (an IPv6 /64): the next
//!   connection is closed at once, before any byte is read;
//! - `headdeadline`: from the moment a request is awaited (the connection opened, or the last
//!   response ended) until its whole head has arrived, TLS handshake included;
//! - `idledeadline`: no byte moved in either direction (a stalled body, a reader that stopped
//!   reading its response).

mod caps;
mod forward;
mod idle;
mod tls;

pub use forward::{FRONT_HEADER, PEER_HEADER};
pub use tls::acceptor;

use crate::app::App;
use crate::tasks::stopped;
use caps::Caps;
use forward::{Link, Upstream};
use hyper::header::HeaderValue;
use hyper_util::rt::{TokioIo, TokioTimer};
use idle::Idle;
use rocket::tokio::io::{AsyncRead, AsyncWrite};
use rocket::tokio::net::{TcpListener, TcpStream};
use rocket::tokio::sync::watch;
use rocket::tokio::time::{sleep, timeout};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// Largest request head (request line and headers), and the most header lines.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// How long a stopping server waits for the requests in flight (docs/design.md §6.1): a
/// service manager's own stop timeout is longer (systemd: 90 s), so the server closes its
/// connections itself rather than being killed.
pub const DRAIN_GRACE: Duration = Duration::from_secs(20);

/// File descriptors one connection may hold: the client's socket, and the loopback
/// connection to Rocket at both its ends (both in this process).
const DESCRIPTORS_PER_CONNECTION: u64 = 3;
/// Descriptors kept for everything else (the database, blobs, plugins, logs).
const DESCRIPTORS_RESERVED: u64 = 256;

/// The connection bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub head: Duration,
    pub idle: Duration,
    pub connections: usize,
    pub per_peer: usize,
}

impl From<&crate::config::Limits> for Bounds {
    fn from(l: &crate::config::Limits) -> Bounds {
        Bounds {
            head: l.head_deadline,
            idle: l.idle_deadline,
            connections: l.connections,
            per_peer: l.connections_per_peer,
        }
    }
}

impl Bounds {
    /// Raises the open-files limit as far as the system allows and, if even that is too low
    /// for `connections`, lowers `connections` to what fits (and says so), so the server
    /// refuses a connection cleanly rather than failing `accept` with EMFILE.
    pub fn fit_to_descriptors(mut self) -> Bounds {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut lim = getrlimit(Resource::Nofile);
        let want = self.connections as u64 * DESCRIPTORS_PER_CONNECTION + DESCRIPTORS_RESERVED;
        let hard = lim.maximum.unwrap_or(u64::MAX);
        if lim.current.is_some_and(|c| c < want) {
            lim.current = Some(want.min(hard));
            let _ = setrlimit(Resource::Nofile, lim);
        }
        let have = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        if have < want {
            let fits = (have.saturating_sub(DESCRIPTORS_RESERVED) / DESCRIPTORS_PER_CONNECTION)
                .max(1) as usize;
            crate::logging::event(
                "warn",
                "connections_lowered",
                &[
                    ("configured", &self.connections),
                    ("effective", &fits),
                    ("open_files_limit", &have),
                ],
            );
            self.connections = fits;
            self.per_peer = self.per_peer.min(fits);
        }
        self
    }
}

struct Front {
    bounds: Bounds,
    caps: Arc<Caps>,
    tls: Option<TlsAcceptor>,
    upstream: Arc<Upstream>,
    app: App,
}

/// A fresh secret for [`FRONT_HEADER`] (32 bytes from the OS CSPRNG, hex).
pub fn secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    mig_protocol::sha256::hex(&b)
}

/// Serves `listener`, handing requests to Rocket at `rocket`, until `stop`; then stops
/// accepting, lets each connection finish the request it is in (none is begun after it), and
/// returns once every connection has closed or [`DRAIN_GRACE`] has passed.
pub async fn serve(
    listener: TcpListener,
    bounds: Bounds,
    tls: Option<TlsAcceptor>,
    rocket: SocketAddr,
    secret: &str,
    app: App,
    mut stop: watch::Receiver<bool>,
) -> crate::error::Result<()> {
    let secret = HeaderValue::from_str(secret)
        .map_err(|e| crate::error::Error::Internal(format!("front secret: {e}")))?;
    let front = Arc::new(Front {
        bounds,
        caps: Caps::new(bounds.connections, bounds.per_peer),
        tls,
        upstream: Arc::new(Upstream {
            addr: rocket,
            secret,
        }),
        app,
    });
    // Each connection holds a receiver: told to drain, it closes after its request in flight,
    // and the sender learns when the last one has gone.
    let (drain, draining) = watch::channel(false);
    loop {
        let accepted = rocket::tokio::select! {
            a = listener.accept() => a,
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: the caps keep this rare; wait rather than spin.
                front.app.metrics.connection("accept_failed");
                crate::logging::event("warn", "accept_failed", &[("error", &e)]);
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match front.caps.admit(peer.ip()) {
            Ok(place) => {
                front.app.metrics.connection("accepted");
                let front = Arc::clone(&front);
                let draining = draining.clone();
                rocket::tokio::spawn(async move {
                    front.connection(stream, peer, draining).await;
                    drop(place);
                });
            }
            Err(why) => {
                front.app.metrics.connection(why.as_str());
                drop(stream);
            }
        }
    }
    drop(listener);
    drop(draining);
    let _ = drain.send(true);
    if timeout(DRAIN_GRACE, drain.closed()).await.is_err() {
        crate::logging::event(
            "warn",
            "connections_cut",
            &[
                ("open", &drain.receiver_count()),
                ("grace_seconds", &DRAIN_GRACE.as_secs()),
            ],
        );
    }
    Ok(())
}

impl Front {
    async fn connection(&self, stream: TcpStream, peer: SocketAddr, drain: watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        let io = Idle::new(stream, self.bounds.idle);
        let expired = io.expired();
        match &self.tls {
            None => self.http(io, peer, drain).await,
            Some(acceptor) => match timeout(self.bounds.head, acceptor.accept(io)).await {
                Ok(Ok(tls)) => self.http(tls, peer, drain).await,
                Ok(Err(_)) => self.app.metrics.connection("tls_failed"),
                Err(_) => self.app.metrics.connection("head_deadline"),
            },
        }
        if expired.load(Ordering::Relaxed) {
            self.app.metrics.connection("idle_deadline");
        }
    }

    async fn http<I>(&self, io: I, peer: SocketAddr, mut drain: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let link = Arc::new(Link::new(
            Arc::clone(&self.upstream),
            peer.ip(),
            self.app.clone(),
        ));
        let service = hyper::service::service_fn(move |req| {
            let link = Arc::clone(&link);
            async move { link.forward(req).await }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.bounds.head)
            .keep_alive(true)
            .max_buf_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEADERS);
        let conn = http.serve_connection(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let served = rocket::tokio::select! {
            done = conn.as_mut() => done,
            _ = stopped(&mut drain) => {
                // The request in flight is answered, with `Connection: close`; an idle
                // connection closes now.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = served {
            if e.is_timeout() {
                self.app.metrics.connection("head_deadline");
            }
        }
    }
}
