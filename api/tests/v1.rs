//! MIG's v1 loader routes over real HTTP (docs/design.md §8.3): Collection+JSON answers and
//! errors, v1 signatures verified against the signer's key (Ed25519 and foreign ones refused),
//! a Go loader offered only what it can verify, files as base64 of gzip, and memory bounded
//! while many fetch a large agent at once. The real Go loader runs against them in
//! tests/tests/mig_go.rs.

mod common;

use common::*;
use mig_protocol::signature::{parse_public_key, rearmor, verify, Keyring};
use serde_json::{json, Value};
use std::io::Read;

/// A manifest made for MIG's Go loaders too (`"v1": true`): its record.
fn create_v1_manifest(srv: &Server, who: &Admin, name: &str, archive: &[u8]) -> Value {
    srv.post(
        who,
        "manifests",
        json!({"name": name, "target": "true", "platform": host_platform(),
               "archive": b64(archive), "v1": true}),
    )
    .expect(201)
    .json()
}

fn fingerprint(file: &str) -> String {
    mig_test_support::fingerprint(&dev_key_path(&format!("{file}.pub.asc")))
}

fn v1_server() -> Server {
    Server::with(Settings {
        extra: format!(
            "[v1]\nfingerprints = {}, {}\nrequiredsignatures = 2\n",
            fingerprint("rsa1"),
            fingerprint("rsa2")
        ),
        ..Settings::default()
    })
}

/// A manifest for Go loaders with `files`, signed for them by rsa1 and rsa2, and an enabled
/// loader that was given it over v1: the loader's key.
fn v1_manifest_given(srv: &Server, files: &[(&str, &[u8])]) -> String {
    let rsa1 = srv.dev_named_admin("rsa1", "PermAdmin,PermManifest,PermLoader");
    let rsa2 = srv.dev_named_admin("rsa2", "PermManifest");
    let paths: Vec<(String, &[u8])> = files
        .iter()
        .map(|(n, d)| (format!("manifest/{n}"), *d))
        .collect();
    let archive = targz(
        &paths
            .iter()
            .map(|(p, d)| (p.as_str(), *d))
            .collect::<Vec<_>>(),
    );
    let rec = create_v1_manifest(srv, &rsa1, "fleet", &archive);
    let id = rec["id"].as_u64().unwrap();
    let text = rec["v1_text"].as_str().unwrap().to_string();
    sign(srv, &rsa1, id, Some(text.as_bytes())).expect(200);
    sign(srv, &rsa2, id, Some(text.as_bytes())).expect(200);
    let (_, key) = srv.enabled_loader(&rsa1, "gofleet", None);
    v1(srv, Some(&key), "manifest/agent/", form("host7", "")).expect(200);
    key
}

/// A Go loader's form body: `parameters=` and the JSON, URL-encoded as Go's QueryEscape.
fn form(agent: &str, object: &str) -> Vec<u8> {
    let mut p = manifest_request(agent, &[]);
    p["object"] = json!(object);
    mig_protocol::mig_v1::form_body(&p.to_string()).into_bytes()
}

fn v1_url(srv: &Server, path: &str) -> String {
    srv.base_url.replace("/api/v2/", "/api/v1/") + path
}

/// A v1 request with MIG's header spelling as Go sends it.
fn v1(srv: &Server, key: Option<&str>, path: &str, body: Vec<u8>) -> Reply {
    let mut h = vec![(
        "Content-Type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    if let Some(k) = key {
        h.push(("X-Loaderkey", k.to_string()));
    }
    request("POST", &v1_url(srv, path), &h, Some(body))
}

/// The Collection+JSON error of a v1 answer: (code, message).
fn cljs_error(r: &Reply) -> (String, String) {
    let v = r.json();
    let e = &v["collection"]["error"];
    assert_eq!(v["collection"]["version"], "1.0", "{v}");
    (
        e["code"].as_str().unwrap_or_default().to_string(),
        e["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// `who`'s signature over a v1 text, made again a second later while it is one of the RSA
/// signatures Go loaders refuse (one in 256: `signature::go_check`), as mig-console does.
fn v1_sig(who: &Admin, text: &[u8]) -> String {
    let key = parse_public_key("k", &who.public).unwrap();
    let mut sig = who.sign(text);
    for _ in 0..8 {
        match mig_protocol::signature::go_check(&sig, &key) {
            Err(e) if e.to_string().contains("sign again") => {
                std::thread::sleep(std::time::Duration::from_millis(1100));
                sig = who.sign(text);
            }
            _ => break,
        }
    }
    sig
}

/// Signs manifest `id`'s statement, and its v1 text when `v1` is set, as `who`.
fn sign(srv: &Server, who: &Admin, id: u64, v1: Option<&[u8]>) -> Reply {
    let st = srv
        .get(who, &format!("manifests/{id}/statement"))
        .expect(200);
    let mut body = json!({"signature": who.sign(&st.body)});
    if let Some(text) = v1 {
        body["v1_signature"] = json!(v1_sig(who, text));
    }
    srv.post(who, &format!("manifests/{id}/signatures"), body)
}

#[test]
fn a_go_loader_gets_collection_json_and_only_what_it_can_verify() {
    let srv = v1_server();
    let rsa1 = srv.dev_named_admin("rsa1", "PermAdmin,PermManifest,PermLoader");
    let rsa2 = srv.dev_named_admin("rsa2", "PermManifest");
    let ed = srv.dev_named_admin("admin1", "PermManifest");
    let (loader_id, key) = srv.enabled_loader(&rsa1, "gofleet-7", None);
    let (archive, files) = standard_archive("v1");
    let rec = create_v1_manifest(&srv, &rsa1, "fleet", &archive);
    let id = rec["id"].as_u64().unwrap();
    let text = rec["v1_text"].as_str().unwrap().to_string();
    assert!(
        text.starts_with(r#"{"loader_name":"","entries":[{"name":"#),
        "{text}"
    );

    // The v1 signature must be by the same key as the statement's, over the v1 text, and one a
    // Go loader can verify.
    let st = srv
        .get(&rsa1, &format!("manifests/{id}/statement"))
        .expect(200);
    let r = srv
        .post(
            &rsa1,
            &format!("manifests/{id}/signatures"),
            json!({"signature": rsa1.sign(&st.body), "v1_signature": v1_sig(&rsa2, text.as_bytes())}),
        )
        .expect(400);
    assert!(
        r.message().contains("the v1 signature does not count"),
        "{}",
        r.message()
    );
    let r = sign(&srv, &ed, id, Some(text.as_bytes())).expect(400);
    assert!(
        r.message().contains("cannot reach MIG's Go loaders")
            && r.message().contains("RSA, DSA and ECDSA"),
        "{}",
        r.message()
    );
    // Refused whole: ed's statement signature was not stored either.
    let rec = srv
        .get(&rsa1, &format!("manifests/{id}"))
        .expect(200)
        .json();
    assert_eq!(rec["signers"], json!([]), "{rec}");

    // Active for our loaders with rsa1 (both texts) and ed (statement only); the Go loaders need
    // two v1 signatures by their keys, so they are not offered it.
    sign(&srv, &rsa1, id, Some(text.as_bytes())).expect(200);
    sign(&srv, &ed, id, None).expect(200);
    let rec = srv
        .get(&rsa1, &format!("manifests/{id}"))
        .expect(200)
        .json();
    assert_eq!(rec["status"], "active", "{rec}");
    assert_eq!(rec["v1_signers"], json!(["rsa1"]), "{rec}");
    let r = v1(&srv, Some(&key), "manifest/agent/", form("host7", "")).expect(404);
    let (code, message) = cljs_error(&r);
    assert_eq!(code, "404");
    assert!(message.contains("enough v1 signatures"), "{message}");
    // Our loaders get it, under the v1 base too.
    request(
        "POST",
        &v1_url(&srv, "loader/manifest"),
        &[("X-LOADERKEY", key.clone())],
        Some(manifest_request("host7", &[]).to_string().into_bytes()),
    )
    .expect(200);

    // A second investigator with an RSA key among the Go loaders' keys: served.
    sign(&srv, &rsa2, id, Some(text.as_bytes())).expect(200);
    let r = v1(&srv, Some(&key), "manifest/agent/", form("host7", "")).expect(200);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    let v = r.json();
    let item = &v["collection"]["items"][0]["data"][0];
    assert_eq!(item["name"], "manifest", "{v}");
    let m = &item["value"];
    assert_eq!(m["loader_name"], "gofleet-7", "{m}");
    let sent: Vec<(String, String)> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        mig_protocol::mig_v1::signed_text(sent.iter().map(|(n, s)| (n.as_str(), s.as_str())))
            .unwrap(),
        text,
        "the entries rebuild exactly the signed text"
    );
    // Exactly the two signatures the Go loaders hold keys for (not ed's), each in MIG's
    // one-line form with its CRC, each verifying over the text.
    let ring = Keyring::from_keys(
        [&rsa1, &rsa2]
            .iter()
            .map(|a| parse_public_key("k", &a.public).unwrap())
            .collect(),
    );
    let sigs: Vec<String> = m["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| rearmor(s.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(sigs.len(), 2, "{m}");
    assert!(m["signatures"][0].as_str().unwrap().contains('='));
    assert_eq!(verify(&ring, text.as_bytes(), &sigs).valid.len(), 2);
    let l = srv
        .get(&rsa1, &format!("loaders/{loader_id}"))
        .expect(200)
        .json();
    assert_eq!(l["protocol"], "v1", "{l}");

    // Files: base64 of gzip of the exact bytes; the first entry of that name.
    let (name, bytes) = &files[0];
    let r = v1(&srv, Some(&key), "manifest/fetch/", form("host7", name)).expect(200);
    let v = r.json();
    let item = &v["collection"]["items"][0]["data"][0];
    assert_eq!(item["name"], "content");
    let gz = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        item["value"]["data"].as_str().unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(&out, bytes);
    let r = v1(&srv, Some(&key), "manifest/fetch/", form("host7", "nosuch")).expect(404);
    assert!(cljs_error(&r).1.contains("\"nosuch\" is not in manifest"));

    // Errors are Collection+JSON too.
    let r = v1(&srv, None, "manifest/agent/", form("host7", "")).expect(401);
    assert_eq!(
        cljs_error(&r),
        ("401".into(), "loader authentication failed".into())
    );
    let r = v1(
        &srv,
        Some(&key),
        "manifest/agent/",
        b"parameters=%7B".to_vec(),
    )
    .expect(400);
    assert!(
        cljs_error(&r).1.contains("v1 parameters"),
        "{:?}",
        cljs_error(&r)
    );
    let r = v1(&srv, Some(&key), "manifest/fetch/", form("host7", "")).expect(400);
    assert!(cljs_error(&r).1.contains("no object"));
    let r = request("GET", &v1_url(&srv, "nowhere"), &[], None).expect(404);
    assert_eq!(cljs_error(&r).0, "404");
    // The address a Go loader asks for, with its double slash.
    let r = request("GET", &v1_url(&srv, "/ip"), &[], None).expect(200);
    assert_eq!(r.text(), "127.0.0.1");

    // A v1 signature for a manifest not made for Go loaders is refused.
    let plain = srv.create_manifest(&rsa1, "plain", "true", &archive)["id"]
        .as_u64()
        .unwrap();
    let r = sign(&srv, &rsa1, plain, Some(text.as_bytes())).expect(400);
    assert!(
        r.message().contains("not made for MIG's Go loaders"),
        "{}",
        r.message()
    );
    let log = srv.log();
    assert!(
        log.lines()
            .any(|l| l.contains("path=/api/v1/manifest/agent/") && l.contains("protocol=v1")),
        "{log}"
    );
}

#[test]
fn without_v1_fingerprints_mig_routes_are_not_served() {
    let srv = Server::start();
    let admin = srv.dev_admin(1, "PermAdmin,PermManifest,PermLoader");
    let (_, key) = srv.enabled_loader(&admin, "gofleet-8", None);
    let r = v1(&srv, Some(&key), "manifest/agent/", form("h", "")).expect(404);
    let v: Value = r.json();
    assert!(v.get("collection").is_none(), "{v}");
    // A manifest can still be made for Go loaders: its v1 text is signed now and served once
    // [v1] is configured.
    let (archive, _) = standard_archive("v1-off");
    let rec = create_v1_manifest(&srv, &admin, "ready", &archive);
    assert!(rec["v1_text"].is_string(), "{rec}");
}

#[test]
fn a_go_loaders_poll_leaves_every_kept_answer_and_the_shared_generation_alone() {
    let srv = v1_server();
    let rsa1 = srv.dev_named_admin("rsa1", "PermAdmin,PermManifest,PermLoader");
    let rsa2 = srv.dev_named_admin("rsa2", "PermManifest");
    let (archive, _) = standard_archive("kept");
    let rec = create_v1_manifest(&srv, &rsa1, "kept", &archive);
    let id = rec["id"].as_u64().unwrap();
    let text = rec["v1_text"].as_str().unwrap().to_string();
    sign(&srv, &rsa1, id, Some(text.as_bytes())).expect(200);
    sign(&srv, &rsa2, id, Some(text.as_bytes())).expect(200);
    let (_, ours) = srv.enabled_loader(&rsa1, "ours", None);
    let (_, go) = srv.enabled_loader(&rsa1, "go", None);
    let hits = || srv.poll_cache_hits();
    let generation = || srv.sql("SELECT value FROM shared_state WHERE name = 'generation'");
    let poll = || {
        srv.loader(
            &ours,
            "POST",
            "loader/manifest",
            Some(manifest_request("h", &[])),
        )
        .expect(200)
    };
    poll();
    let (before, shared) = (hits(), generation());
    // Go loaders poll and fetch (MIG's routes are not under loader/): nothing they do changes
    // what targeting depends on, so our loader's kept answer stays, here and on every replica.
    for _ in 0..3 {
        v1(&srv, Some(&go), "manifest/agent/", form("go7", "")).expect(200);
        v1(&srv, Some(&go), "manifest/fetch/", form("go7", "mig-agent")).expect(200);
    }
    poll();
    assert_eq!(hits(), before + 1, "our loader's answer was dropped");
    assert_eq!(generation(), shared, "the shared generation moved");
}

/// mig-api's peak resident memory so far (`VmHWM`), in bytes.
fn peak_rss(srv: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.pid().unwrap())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kib << 10
}

/// Go loaders fetching the agent at once, and the bound on mig-api's peak RSS while they do
/// (BENCHMARKS.md "v1 fetch memory").
const FETCHERS: usize = 200;
const PEAK_RSS_BOUND: u64 = 512 << 20;

#[test]
fn two_hundred_go_loaders_fetching_a_32_mib_agent_at_once_keep_mig_api_under_its_memory_bound() {
    let srv = v1_server();
    // As compressible as a real agent binary is (gzip keeps about a third): 2 bits a byte.
    let agent: Vec<u8> = mig_test_support::noise(32 << 20)
        .iter()
        .map(|b| b"ACGT"[(b & 3) as usize])
        .collect();
    let key = v1_manifest_given(
        &srv,
        &[("mig-agent", &agent), ("configuration", b"[agent]\n")],
    );
    let url = v1_url(&srv, "manifest/fetch/");
    let body = form("host7", "mig-agent");
    // One fetch read whole: the agent's exact bytes.
    let r = v1(&srv, Some(&key), "manifest/fetch/", body.clone()).expect(200);
    let answer_len = r.body.len() as u64;
    let v = r.json();
    let gz = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        v["collection"]["items"][0]["data"][0]["value"]["data"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    drop(v);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    assert!(out == agent, "the fetched agent differs");
    let before = peak_rss(&srv);
    // Then all at once, each answer counted as it streams in, never kept.
    let start = std::sync::Arc::new(std::sync::Barrier::new(FETCHERS));
    let fetchers: Vec<_> = (0..FETCHERS)
        .map(|_| {
            let (url, key, body, start) = (url.clone(), key.clone(), body.clone(), start.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                start.wait();
                let mut res = agent
                    .post(&url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("X-Loaderkey", &key)
                    .send(&body[..])
                    .unwrap();
                let status = res.status().as_u16();
                let n = std::io::copy(
                    &mut res.body_mut().with_config().reader(),
                    &mut std::io::sink(),
                )
                .unwrap();
                (status, n)
            })
        })
        .collect();
    for f in fetchers {
        assert_eq!(f.join().unwrap(), (200, answer_len));
    }
    let peak = peak_rss(&srv);
    // The figures of BENCHMARKS.md "v1 fetch memory" (`-- --nocapture`).
    eprintln!(
        "mig-api peak RSS: {} KiB before the {FETCHERS} fetches, {} KiB after; answer {answer_len} B",
        before >> 10,
        peak >> 10
    );
    assert!(
        peak < PEAK_RSS_BOUND,
        "mig-api's peak RSS was {} MiB with {FETCHERS} fetches of a {} MiB answer at once \
         ({} MiB before them), over the bound of {} MiB",
        peak >> 20,
        answer_len >> 20,
        before >> 20,
        PEAK_RSS_BOUND >> 20
    );
}
