//! Slow and greedy clients (front/mod.rs): thousands of connections that drip a request head
//! one line a second, from many loopback addresses, while a loader and an administrator are
//! served; then every dripping connection is closed by the head deadline, a silent kept-alive
//! connection by the idle deadline, and a peer over its cap is refused at once. And Rocket's own
//! loopback socket, behind the front, answers nothing that did not come through the front.

mod common;

use common::*;
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

const PEERS: u8 = 20;
const PER_PEER: usize = 100;
const HEAD_DEADLINE_S: u64 = 8;
const IDLE_DEADLINE_S: u64 = 4;

/// Enough open files for this process's end of every connection.
fn raise_open_files() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    setrlimit(Resource::Nofile, lim).unwrap();
    let have = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        have > 3 * PEERS as u64 * PER_PEER as u64,
        "open files: {have}"
    );
}

/// A connection to `to` from the loopback address 127.0.0.`from`.
fn connect_from(from: u8, to: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let src = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, from), 0);
    s.bind(&SockAddr::from(src)).unwrap();
    s.connect(&SockAddr::from(to)).unwrap();
    s.into()
}

/// Whether the server has closed `s` (EOF or reset), without blocking.
fn closed(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer before the close
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

fn metric(srv: &Server, event: &str) -> u64 {
    let (status, body) =
        mig_test_support::http_get(srv.addr, "/metrics", Duration::from_secs(10)).unwrap();
    assert_eq!(status, 200);
    let line = format!("mig_api_connections_total{{event=\"{event}\"}} ");
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(&line).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn slow_clients_are_closed_by_the_deadlines_while_others_are_served() {
    raise_open_files();
    let srv = Server::with(Settings {
        extra: format!(
            "[limits]\nheaddeadline = {HEAD_DEADLINE_S}s\nidledeadline = {IDLE_DEADLINE_S}s\n\
             connections = 5000\nconnectionsperpeer = {PER_PEER}\n"
        ),
        ..Settings::default()
    });
    let (a, _) = two_admins(&srv);
    let (_, key) = srv.enabled_loader(&a, "l", None);

    // A kept-alive connection that finishes one request and then says nothing.
    let mut quiet = TcpStream::connect(srv.addr).unwrap();
    write!(quiet, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    quiet.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    // The slow clients: PEERS addresses × PER_PEER connections, each sends a head it never ends.
    // Every connection so far drips a header line after each peer's batch and before each
    // request below, so a slow machine never lets the idle deadline end one early: only the
    // head deadline may.
    let drip = |slow: &mut Vec<TcpStream>| {
        for s in slow.iter_mut() {
            let _ = s.write_all(b"X-Drip: 1\r\n");
        }
    };
    let mut slow = Vec::new();
    for peer in 2..2 + PEERS {
        for _ in 0..PER_PEER {
            let mut s = connect_from(peer, srv.addr);
            write!(s, "POST /api/v2/manifests HTTP/1.1\r\nHost: x\r\n").unwrap();
            slow.push(s);
        }
        drip(&mut slow);
    }
    // One more from a full peer: closed before anything is read.
    let mut over = connect_from(2, srv.addr);
    let refused_at = Instant::now();
    over.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    let refused = matches!(over.read(&mut b), Ok(0) | Err(_));
    assert!(
        refused && refused_at.elapsed() < Duration::from_secs(5),
        "a peer over its cap must be closed at once"
    );

    // While they all hang on, a loader and an administrator are served.
    drip(&mut slow);
    let r = srv.loader(
        &key,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[])),
    );
    assert!(
        r.status == 200 || r.status == 404,
        "loader: {} {}",
        r.status,
        r.text()
    );
    drip(&mut slow);
    srv.get(&a, "search?type=manifest").expect(200);
    drip(&mut slow);
    let still_open = slow.iter_mut().map(closed).filter(|c| !c).count();
    assert_eq!(
        still_open,
        slow.len(),
        "the slow connections were open while the others were served"
    );

    // They keep dripping (more often than the idle deadline), yet the head deadline ends them.
    let give_up = Instant::now() + Duration::from_secs(HEAD_DEADLINE_S + 30);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        drip(&mut slow);
        slow.retain_mut(|s| !closed(s));
        if slow.is_empty() {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "{} slow connections outlived the head deadline",
            slow.len()
        );
    }
    assert!(
        closed(&mut quiet),
        "the silent kept-alive connection was closed"
    );
    assert!(metric(&srv, "head_deadline") >= (PEERS as u64) * PER_PEER as u64);
    assert!(metric(&srv, "idle_deadline") >= 1);
    assert!(metric(&srv, "refused_peer") >= 1);

    // And the server still answers.
    srv.get(&a, "search?type=manifest").expect(200);
}

/// One raw HTTP/1.0 request; the whole answer as text.
fn raw_get(addr: SocketAddr, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{head}\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn only_the_front_reaches_rocket_and_the_client_address_cannot_be_forged() {
    let srv = Server::start();
    let forged = "X-Mig-Peer: 203.0.113.9\r\nX-Mig-Front: 00\r\nX-Real-IP: 203.0.113.9\r\n";
    let through = raw_get(srv.addr, &format!("GET /api/v2/ip HTTP/1.0\r\n{forged}"));
    assert!(through.starts_with("HTTP/1.0 200"), "{through}");
    assert!(
        through.ends_with("127.0.0.1"),
        "the front sets the address: {through}"
    );

    let pid = srv.pid().unwrap();
    let inner: Vec<u16> = mig_test_support::listening_ports(pid)
        .into_iter()
        .filter(|p| *p != srv.addr.port())
        .collect();
    assert_eq!(inner.len(), 1, "one loopback socket for Rocket: {inner:?}");
    let inner = SocketAddr::from(([127, 0, 0, 1], inner[0]));
    for path in ["/api/v2/ip", "/metrics", "/api/v2/health"] {
        let direct = raw_get(inner, &format!("GET {path} HTTP/1.0\r\n{forged}"));
        assert!(direct.starts_with("HTTP/1.0 403"), "{path}: {direct}");
        assert!(direct.contains("only on its public socket"), "{direct}");
        assert!(!direct.contains("203.0.113.9"), "{direct}");
    }
}
