//! Hostile requests: malformed JSON, forms, wrong types, oversized bodies, bad ids, unknown
//! routes. Every answer is the JSON error body with the right status.

mod common;

use common::*;
use serde_json::json;

fn raw(srv: &Server, who: &Admin, method: &str, path: &str, body: &[u8], ctype: &str) -> Reply {
    let (h, v) = who.auth(&srv.audience());
    request(
        method,
        &srv.url(path),
        &[(h, v), ("Content-Type", ctype.into())],
        Some(body.to_vec()),
    )
}

#[test]
fn malformed_json_and_forms_are_400_naming_what_did_not_parse() {
    let srv = Server::start();
    let (a, _) = two_admins(&srv);
    let (lid, key) = srv.enabled_loader(&a, "l", None);
    let form = b"parameters=%7B%22agent%22%3A%7B%7D%7D".to_vec();
    for (path, what) in [
        ("manifests".to_string(), "NewManifest"),
        ("manifests/1/signatures".into(), "NewSignature"),
        ("manifests/1/status".into(), "StatusChange"),
        ("loaders".into(), "NewLoader"),
        (format!("loaders/{lid}/status"), "StatusChange"),
        (format!("loaders/{lid}/expectenv"), "ExpectEnv"),
        (format!("loaders/{lid}/attributes"), "Attributes"),
        ("investigators".into(), "NewInvestigator"),
        (
            format!("investigators/{}/permissions", a.id),
            "PermissionChange",
        ),
        (format!("investigators/{}/status", a.id), "StatusChange"),
        ("plugins".into(), "NewPlugin"),
    ] {
        for (body, ctype) in [
            (&b"{\"name\": "[..], "application/json"),
            (&b"[1, 2, 3]"[..], "application/json"),
            (&form[..], "application/x-www-form-urlencoded"),
            (&b""[..], "application/json"),
        ] {
            let r = raw(&srv, &a, "POST", &path, body, ctype).expect(400);
            let msg = r.message();
            assert!(
                msg.contains(&format!("malformed JSON in {what}")),
                "{path}: {msg}"
            );
        }
    }
    // Right JSON, wrong types.
    srv.post(&a, "loaders", json!({"name": 5})).expect(400);
    srv.post(
        &a,
        &format!("loaders/{lid}/status"),
        json!({"status": true}),
    )
    .expect(400);
    for (path, what) in [
        ("loader/manifest", "ManifestRequest"),
        ("loader/report", "Report"),
    ] {
        for body in [&b"{"[..], &form[..], &b"{\"agent\": 3}"[..]] {
            let r = request(
                "POST",
                &srv.url(path),
                &[("X-LOADERKEY", key.clone())],
                Some(body.to_vec()),
            )
            .expect(400);
            assert!(r.message().contains(what), "{}", r.text());
        }
    }
    // An empty agent name is refused before anything is recorded.
    let mut req = manifest_request("", &[]);
    req["agent"]["name"] = json!("");
    let r = srv
        .loader(&key, "POST", "loader/manifest", Some(req))
        .expect(400);
    assert!(r.message().contains("agent.name"), "{}", r.text());
}

#[test]
fn oversized_bodies_are_413_before_anything_is_stored() {
    let srv = Server::with(Settings {
        limits: vec![("uploadsize", 256 << 10)],
        ..Settings::default()
    });
    let (a, _) = two_admins(&srv);
    let (_, key) = srv.enabled_loader(&a, "l", None);
    let big = vec![b' '; (256 << 10) + 1];
    let r = raw(&srv, &a, "POST", "manifests", &big, "application/json").expect(413);
    assert!(r.message().contains("manifest upload"), "{}", r.text());
    let r = raw(&srv, &a, "POST", "plugins", &big, "application/json").expect(413);
    assert!(r.message().contains("plugin upload"), "{}", r.text());
    let r = raw(
        &srv,
        &a,
        "POST",
        "loaders",
        &vec![b' '; (64 << 10) + 1],
        "application/json",
    )
    .expect(413);
    assert!(r.message().contains("NewLoader"), "{}", r.text());
    let mut req = manifest_request("h", &[]);
    req["agent"]["queueloc"] = json!("q".repeat(70 << 10));
    let r = srv
        .loader(&key, "POST", "loader/manifest", Some(req))
        .expect(413);
    assert!(r.message().contains("manifest request"), "{}", r.text());
    let found = srv.get(&a, "search?type=manifest").expect(200).json();
    assert_eq!(found, json!([]));
}

#[test]
fn unauthenticated_requests_are_refused_before_their_body_is_read() {
    let srv = Server::start();
    two_admins(&srv);
    // 1 MiB announced, 4 KiB sent: the answer must come without the rest. (A client that writes
    // the whole body races the server's close and may see a broken pipe instead of the 401.)
    let head = format!(
        "POST /api/v2/manifests HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        srv.addr,
        1 << 20
    );
    let text = answer_to_partial_request(srv.addr, &[head.as_bytes(), &[b'{'; 4096]].concat());
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("authentication required"), "{text}");
}

/// Sends the start of a request and never the rest; returns the head and the start of the JSON
/// body the server answers with on its own.
fn answer_to_partial_request(addr: std::net::SocketAddr, sent: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    s.write_all(sent).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n{") {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed without an answer: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    // The error body is small; read what else has arrived so its message is there too.
    s.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    if let Ok(n) = s.read(&mut buf) {
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn bad_ids_unknown_routes_and_methods_answer_json_errors() {
    let srv = Server::start();
    let (a, _) = two_admins(&srv);
    for path in [
        "manifests/0",
        "manifests/-1",
        "manifests/abc",
        "loaders/1.5",
        "investigators/x",
    ] {
        let r = srv.get(&a, path).expect(400);
        assert!(
            r.message().contains("not a positive integer"),
            "{path}: {}",
            r.text()
        );
    }
    srv.get(&a, "manifests/99999").expect(404);
    let r = srv.get(&a, "nothing/here").expect(404);
    assert!(r.message().contains("no such endpoint"), "{}", r.text());
    let r = request("DELETE", &srv.url("manifests/1"), &[], None).expect(404);
    assert_eq!(r.json()["error"]["code"], 404);
    let r = request(
        "GET",
        &format!("{}../../etc/passwd", srv.base_url),
        &[],
        None,
    );
    assert_eq!(r.status, 404);
}

#[test]
fn a_body_that_stalls_gets_408_instead_of_holding_the_connection() {
    // The deadline is configuration, so the test sets a short one instead of waiting 30 s.
    let srv = Server::with(Settings {
        extra: "[limits]\nbodydeadline = 2s\n".into(),
        ..Settings::default()
    });
    let (_, key) = {
        let (a, _) = two_admins(&srv);
        srv.enabled_loader(&a, "l", None)
    };
    // The client never sends the rest. (Rocket itself waits, without a deadline, for the first
    // 14 body bytes before routing, so this body has more.)
    let head = format!(
        "POST /api/v2/loader/manifest HTTP/1.1\r\nHost: {}\r\nX-LOADERKEY: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"agent\": {{\"name\": \"h",
        srv.addr
    );
    let text = answer_to_partial_request(srv.addr, head.as_bytes());
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive within 2 s"), "{text}");
}
