//! A fault-injecting HTTP proxy for the tests: it sits on loopback between a client (`mig-loader`,
//! `mig-console`) and the real `mig-api`, forwards every request, and spoils the answers to the
//! requests a test picks, one [`Fault`] at a time. Each request gets a fresh upstream connection
//! and each answer closes the client's connection, so one fault never leaks into the next request.
//!
//! The proxy is blocking, one thread per connection, and bounded: heads at [`MAX_HEAD`], bodies
//! at [`MAX_BODY`], every wait at [`HOLD`], so a client that never gives up cannot keep a test
//! running past it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest request or response head the proxy reads.
pub const MAX_HEAD: usize = 1024 * 1024;
/// The largest request or response body the proxy relays.
pub const MAX_BODY: usize = 256 * 1024 * 1024;
/// The longest the proxy holds a stalled, dripping or endless answer open.
pub const HOLD: Duration = Duration::from_secs(120);

/// What the proxy does to one exchange. Offsets count bytes of the answer's body (after the head)
/// unless they say otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Sends the head and `after` body bytes, then nothing, holding the connection open.
    Stall { after: usize },
    /// Sends the head and `after` body bytes, then closes the connection (FIN).
    Drop { after: usize },
    /// Sends the head and `after` body bytes, then resets the connection (RST).
    Reset { after: usize },
    /// Sends the whole answer one byte every `every`.
    Drip { every: Duration },
    /// Flips the lowest bit of the body byte at `at` (of the middle byte when `at` is past the end).
    FlipBit { at: usize },
    /// Appends `extra` bytes to the body, with a `Content-Length` that counts them.
    Longer { extra: usize },
    /// Sends the real body under a `Content-Length` that is `by` bytes more than it.
    LengthTooLong { by: usize },
    /// Sends the real body under a `Content-Length` that is `by` bytes less than it.
    LengthTooShort { by: usize },
    /// Sends the body with no `Content-Length`, delimited by closing the connection.
    NoLength,
    /// Replaces the body by `inflated` zero bytes, gzip-compressed, as `Content-Encoding: gzip`.
    GzipBomb { inflated: usize },
    /// Adds one header line of `size` bytes.
    HugeHeader { size: usize },
    /// Sends a status line, then header lines without end (until the client leaves or [`HOLD`]).
    EndlessHeader,
    /// Answers `302 Found` to `location` without asking the API.
    Redirect { location: String },
    /// Relays only the request head and `after` bytes of its body to the API, then closes both
    /// connections: the upload is cut on its way.
    CutRequest { after: usize },
    /// Asks the API, then sends `body` instead of its answer, under the API's head: a man in the
    /// middle replaying an answer it recorded.
    Replace { body: Vec<u8> },
}

impl Fault {
    /// A short name for the proxy's log.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Stall { .. } => "stall",
            Fault::Drop { .. } => "drop",
            Fault::Reset { .. } => "reset",
            Fault::Drip { .. } => "drip",
            Fault::FlipBit { .. } => "flip-bit",
            Fault::Longer { .. } => "longer",
            Fault::LengthTooLong { .. } => "length-too-long",
            Fault::LengthTooShort { .. } => "length-too-short",
            Fault::NoLength => "no-length",
            Fault::GzipBomb { .. } => "gzip-bomb",
            Fault::HugeHeader { .. } => "huge-header",
            Fault::EndlessHeader => "endless-header",
            Fault::Redirect { .. } => "redirect",
            Fault::CutRequest { .. } => "cut-request",
            Fault::Replace { .. } => "replace",
        }
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// The request's `Range` header.
    pub range: Option<String>,
    /// The API's status, when it was asked.
    pub status: Option<u16>,
    /// The fault applied, if any.
    pub fault: Option<&'static str>,
    /// The API's answer body as it sent it, when at most [`MAX_RECORDED`] bytes (a manifest
    /// answer; file bodies are not kept).
    pub answer: Vec<u8>,
}

/// The largest answer body an [`Exchange`] keeps.
pub const MAX_RECORDED: usize = 256 * 1024;

struct Rule {
    path_contains: String,
    fault: Fault,
    times: usize,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Exchange>>,
    stop: AtomicBool,
}

/// The running proxy; stopped on drop.
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// A proxy on `127.0.0.1:0` in front of `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(client) = conn {
                    let s = s.clone();
                    std::thread::spawn(move || {
                        let _ = serve(client, upstream, &s);
                    });
                }
            }
        });
        FaultProxy { addr, shared }
    }

    /// The API's base URL through the proxy: `http://PROXY/api/v2/`.
    pub fn base_url(&self) -> String {
        format!("http://{}{}/", self.addr, crate::BASEROUTE)
    }

    /// Applies `fault` to the next `times` requests whose target contains `path_contains`.
    /// Rules are tried in the order they were added.
    pub fn inject(&self, path_contains: &str, fault: Fault, times: usize) {
        lock(&self.shared.rules).push(Rule {
            path_contains: path_contains.to_string(),
            fault,
            times,
        });
    }

    /// Drops every rule that has not been used up: from now on the proxy only relays.
    pub fn heal(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Every request seen so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.shared.log).clone()
    }

    /// The requests whose target contains `path_contains`.
    pub fn exchanges_to(&self, path_contains: &str) -> Vec<Exchange> {
        self.exchanges()
            .into_iter()
            .filter(|e| e.path.contains(path_contains))
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A parsed HTTP/1.1 head.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    /// The head's bytes up to (not including) the blank line.
    fn parse(bytes: &[u8]) -> Head {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Head { start, headers }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn without(mut self, names: &[&str]) -> Head {
        self.headers
            .retain(|(k, _)| !names.iter().any(|n| k.eq_ignore_ascii_case(n)));
        self
    }

    fn with(mut self, name: &str, value: impl Into<String>) -> Head {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// Reads a head; `None` when the peer closed before sending one. What followed the head is
/// returned with it.
fn read_head(s: &mut TcpStream) -> std::io::Result<Option<(Head, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            return Ok(Some((Head::parse(&buf[..end]), buf[end + 4..].to_vec())));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("head larger than the proxy reads"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads exactly `len` body bytes, `already` of which came with the head.
fn read_body(s: &mut TcpStream, mut already: Vec<u8>, len: usize) -> std::io::Result<Vec<u8>> {
    if len > MAX_BODY {
        return Err(std::io::Error::other("body larger than the proxy relays"));
    }
    let missing = len.saturating_sub(already.len());
    let mut rest = vec![0u8; missing];
    s.read_exact(&mut rest)?;
    already.extend_from_slice(&rest);
    already.truncate(len);
    Ok(already)
}

/// Decodes a chunked body that has been read to its end.
fn dechunk(mut raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = || std::io::Error::other("malformed chunked body from the API");
    let mut out = Vec::new();
    loop {
        let eol = find(raw, b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            return Err(bad());
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn serve(mut client: TcpStream, upstream: SocketAddr, shared: &Shared) -> std::io::Result<()> {
    client.set_read_timeout(Some(HOLD))?;
    client.set_write_timeout(Some(HOLD))?;
    let Some((head, early)) = read_head(&mut client)? else {
        return Ok(());
    };
    let len = head
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let body = read_body(&mut client, early, len)?;
    let mut parts = head.start.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let fault = {
        let mut rules = lock(&shared.rules);
        let hit = rules
            .iter_mut()
            .find(|r| r.times > 0 && path.contains(&r.path_contains));
        hit.map(|r| {
            r.times -= 1;
            r.fault.clone()
        })
    };
    let mut exchange = Exchange {
        method,
        path,
        range: head.get("range").map(str::to_string),
        status: None,
        fault: fault.as_ref().map(Fault::name),
        answer: Vec::new(),
    };
    let record = |e: &Exchange| lock(&shared.log).push(e.clone());

    if let Some(Fault::Redirect { location }) = &fault {
        record(&exchange);
        let answer = Head {
            start: "HTTP/1.1 302 Found".into(),
            headers: Vec::new(),
        }
        .with("Location", location.clone())
        .with("Content-Length", "0")
        .with("Connection", "close");
        return client.write_all(&answer.bytes());
    }

    let mut up = TcpStream::connect_timeout(&upstream, Duration::from_secs(10))?;
    up.set_read_timeout(Some(HOLD))?;
    let request = head
        .without(&["connection", "keep-alive", "proxy-connection"])
        .with("Connection", "close");
    up.write_all(&request.bytes())?;
    if let Some(Fault::CutRequest { after }) = &fault {
        up.write_all(&body[..(*after).min(body.len())])?;
        record(&exchange);
        let _ = up.shutdown(Shutdown::Both);
        return client.shutdown(Shutdown::Both);
    }
    up.write_all(&body)?;
    let mut raw = Vec::new();
    (&mut up).take(MAX_BODY as u64).read_to_end(&mut raw)?;
    let end = find(&raw, b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("the API's answer has no complete head"))?;
    let answer = Head::parse(&raw[..end]);
    let mut body = raw[end + 4..].to_vec();
    if answer
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    } else if let Some(n) = answer
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    exchange.status = answer.start.split(' ').nth(1).and_then(|c| c.parse().ok());
    if body.len() <= MAX_RECORDED {
        exchange.answer = body.clone();
    }
    record(&exchange);
    let answer = answer.without(&["content-length", "transfer-encoding", "connection"]);
    respond(&mut client, answer, body, fault)
}

/// Writes the answer with `fault` applied, then closes.
fn respond(
    client: &mut TcpStream,
    answer: Head,
    mut body: Vec<u8>,
    fault: Option<Fault>,
) -> std::io::Result<()> {
    let answer = answer.with("Connection", "close");
    let sized = |a: Head, n: usize| a.with("Content-Length", n.to_string());
    let whole = |a: Head, b: &[u8]| [a.bytes(), b.to_vec()].concat();
    match fault {
        None | Some(Fault::Redirect { .. }) | Some(Fault::CutRequest { .. }) => {
            let n = body.len();
            client.write_all(&whole(sized(answer, n), &body))
        }
        Some(Fault::Stall { after }) => {
            let n = body.len();
            client.write_all(&whole(sized(answer, n), &body[..after.min(n)]))?;
            hold(client)
        }
        Some(Fault::Drop { after }) => {
            let n = body.len();
            client.write_all(&whole(sized(answer, n), &body[..after.min(n)]))?;
            client.shutdown(Shutdown::Both)
        }
        Some(Fault::Reset { after }) => {
            let n = body.len();
            client.write_all(&whole(sized(answer, n), &body[..after.min(n)]))?;
            // A zero linger makes the close an RST instead of a FIN.
            socket2::SockRef::from(&*client).set_linger(Some(Duration::ZERO))
        }
        Some(Fault::Drip { every }) => {
            let n = body.len();
            let started = Instant::now();
            for b in whole(sized(answer, n), &body) {
                if started.elapsed() > HOLD {
                    break;
                }
                client.write_all(&[b])?;
                client.flush()?;
                std::thread::sleep(every);
            }
            Ok(())
        }
        Some(Fault::FlipBit { at }) => {
            if !body.is_empty() {
                let at = if at < body.len() { at } else { body.len() / 2 };
                body[at] ^= 1;
            }
            let n = body.len();
            client.write_all(&whole(sized(answer, n), &body))
        }
        Some(Fault::Longer { extra }) => {
            body.extend(std::iter::repeat_n(b'X', extra));
            let n = body.len();
            client.write_all(&whole(sized(answer, n), &body))
        }
        Some(Fault::LengthTooLong { by }) => {
            let n = body.len() + by;
            client.write_all(&whole(sized(answer, n), &body))
        }
        Some(Fault::LengthTooShort { by }) => {
            let n = body.len().saturating_sub(by);
            client.write_all(&whole(sized(answer, n), &body))
        }
        Some(Fault::NoLength) => client.write_all(&whole(answer, &body)),
        Some(Fault::Replace { body }) => client.write_all(&whole(sized(answer, body.len()), &body)),
        Some(Fault::GzipBomb { inflated }) => {
            let bomb = crate::archive::gzip(&vec![0u8; inflated]);
            let answer = answer
                .without(&["content-encoding"])
                .with("Content-Encoding", "gzip");
            client.write_all(&whole(sized(answer, bomb.len()), &bomb))
        }
        Some(Fault::HugeHeader { size }) => {
            let answer = answer.with("X-Fault", "a".repeat(size));
            let n = body.len();
            client.write_all(&whole(sized(answer, n), &body))
        }
        Some(Fault::EndlessHeader) => {
            client.write_all(format!("{}\r\n", answer.start).as_bytes())?;
            let started = Instant::now();
            let line = format!("{}\r\n", "a".repeat(1000));
            let mut i = 0u64;
            while started.elapsed() < HOLD {
                i += 1;
                client.write_all(format!("X-Fault-{i}: {line}").as_bytes())?;
            }
            Ok(())
        }
    }
}

/// Keeps a connection open without sending until the client leaves or [`HOLD`] passes.
fn hold(client: &mut TcpStream) -> std::io::Result<()> {
    client.set_read_timeout(Some(HOLD))?;
    let mut sink = [0u8; 4096];
    let started = Instant::now();
    while started.elapsed() < HOLD {
        match client.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded_and_broken_ones_refused() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n").unwrap(),
            b"hello world"
        );
        assert!(dechunk(b"5\r\nhel").is_err());
        assert!(dechunk(b"zz\r\n").is_err());
    }

    /// A one-shot upstream answering every request with `body`.
    fn upstream(body: &'static [u8]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let _ = read_head(&mut c);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = c.write_all(&[head.as_bytes(), body].concat());
            }
        });
        addr
    }

    fn get(proxy: &FaultProxy, path: &str) -> Vec<u8> {
        let mut c = TcpStream::connect(proxy.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        out
    }

    #[test]
    fn faults_apply_to_matching_requests_the_given_number_of_times() {
        let p = FaultProxy::start(upstream(b"0123456789"));
        p.inject("/files/", Fault::Drop { after: 4 }, 1);
        p.inject("/files/", Fault::FlipBit { at: 0 }, 1);
        let cut = get(&p, "/files/a");
        assert!(cut.ends_with(b"\r\n\r\n0123"), "{cut:?}");
        assert!(String::from_utf8_lossy(&cut).contains("Content-Length: 10"));
        assert!(get(&p, "/files/a").ends_with(b"\r\n\r\n1123456789"));
        assert!(get(&p, "/files/a").ends_with(b"\r\n\r\n0123456789"));
        assert!(get(&p, "/other").ends_with(b"\r\n\r\n0123456789"));
        let log = p.exchanges_to("/files/");
        let faults: Vec<_> = log.iter().map(|e| e.fault).collect();
        assert_eq!(faults, [Some("drop"), Some("flip-bit"), None]);
        assert!(log.iter().all(|e| e.status == Some(200)));
    }

    #[test]
    fn lying_lengths_and_redirects_are_what_they_say() {
        let p = FaultProxy::start(upstream(b"0123456789"));
        p.inject("/", Fault::LengthTooShort { by: 3 }, 1);
        p.inject(
            "/",
            Fault::Redirect {
                location: "http://elsewhere/".into(),
            },
            1,
        );
        let short = String::from_utf8_lossy(&get(&p, "/")).into_owned();
        assert!(short.contains("Content-Length: 7\r\n"), "{short}");
        let moved = String::from_utf8_lossy(&get(&p, "/")).into_owned();
        assert!(moved.starts_with("HTTP/1.1 302 Found\r\n"), "{moved}");
        assert!(moved.contains("Location: http://elsewhere/\r\n"), "{moved}");
        assert_eq!(
            p.exchanges()[1].status,
            None,
            "a redirect never asks the API"
        );
    }
}
