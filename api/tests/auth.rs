//! Administrator authentication and permissions: tokens (replay, expiry, foreign keys),
//! API keys, disabling, the last administrator, and every permission bit allowed and refused.

mod common;

use common::*;
use mig_protocol::time::Timestamp;
use serde_json::{json, Value};

fn me(srv: &Server, header: (&str, String)) -> Reply {
    request("GET", &srv.url("investigators/me"), &[header], None)
}

#[test]
fn a_token_is_accepted_once_and_its_replay_is_refused() {
    let srv = Server::start();
    let a = srv.dev_admin(1, "PermAdmin");
    let token = a.token(&srv.audience());
    me(&srv, ("X-PGPAUTHORIZATION", token.clone())).expect(200);
    let r = me(&srv, ("X-PGPAUTHORIZATION", token)).expect(401);
    assert_eq!(r.message(), "token replayed");
    // A fresh nonce works again.
    me(&srv, ("X-PGPAUTHORIZATION", a.token(&srv.audience()))).expect(200);
    assert!(srv.log().contains("reason=token_replayed"));
}

#[test]
fn a_token_is_not_replayable_after_a_restart_nor_on_another_process() {
    // Processes on one database answer for one URL (a load balancer's), whatever port each
    // has: a restart takes another.
    let mut srv = Server::with(Settings {
        audience: Some("https://mig-api.test/api/v2/".into()),
        ..Settings::default()
    });
    let a = srv.dev_admin(1, "PermAdmin");
    // A second mig-api on the same database (the same file, or a replica on PostgreSQL).
    let other = srv.replica();
    let token = a.token(&srv.audience());
    me(&srv, ("X-PGPAUTHORIZATION", token.clone())).expect(200);
    let r = me(&other, ("X-PGPAUTHORIZATION", token.clone())).expect(401);
    assert_eq!(r.message(), "token replayed");
    let fresh = a.token(&srv.audience());
    me(&other, ("X-PGPAUTHORIZATION", fresh.clone())).expect(200);
    srv.restart();
    for t in [token, fresh] {
        let r = me(&srv, ("X-PGPAUTHORIZATION", t)).expect(401);
        assert_eq!(r.message(), "token replayed");
    }
}

#[test]
fn expired_and_future_tokens_are_refused() {
    let srv = Server::with(Settings {
        token_duration: "2m",
        ..Settings::default()
    });
    let a = srv.dev_admin(1, "PermAdmin");
    let now = Timestamp::now().0;
    for ts in [now - 180, now + 180] {
        let r = me(
            &srv,
            (
                "X-PGPAUTHORIZATION",
                a.token_at(Timestamp(ts), &srv.audience()),
            ),
        )
        .expect(401);
        assert!(r.message().contains("token expired"), "{}", r.text());
    }
    me(
        &srv,
        (
            "X-PGPAUTHORIZATION",
            a.token_at(Timestamp(now - 60), &srv.audience()),
        ),
    )
    .expect(200);
}

#[test]
fn foreign_and_malformed_tokens_are_refused() {
    let srv = Server::start();
    let a = srv.dev_admin(1, "PermAdmin");
    let outsider = Admin::dev(3);
    let r = me(
        &srv,
        ("X-PGPAUTHORIZATION", outsider.token(&srv.audience())),
    )
    .expect(401);
    assert!(r.message().contains("does not verify"), "{}", r.text());
    // A valid signature over a different nonce than the one sent.
    let good = a.token(&srv.audience());
    let parts: Vec<&str> = good.splitn(5, ';').collect();
    let swapped = format!("2;{};other;{};{}", parts[1], parts[3], parts[4]);
    me(&srv, ("X-PGPAUTHORIZATION", swapped)).expect(401);
    for junk in [
        "",
        "2;2026",
        "3;2026-11-30T04:33:36Z;n;http://127.0.0.1:1/;AAAA",
        "2;2026-11-30T04:33:36Z;n;http://127.0.0.1:1/;@@@@",
    ] {
        me(&srv, ("X-PGPAUTHORIZATION", junk.to_string())).expect(401);
    }
    let r = request("GET", &srv.url("investigators/me"), &[], None).expect(401);
    assert!(r.message().contains("X-PGPAUTHORIZATION or X-MIGAPIKEY"));
}

/// docs/design.md §3.8: the live tokens are one pool, but one investigator cannot take it all,
/// and investigators who can only search cannot take its last part, kept for those who can
/// stop something: an administrator can still disable a manifest.
#[test]
fn a_search_investigator_cannot_take_every_token_and_an_administrator_still_disables_a_manifest() {
    let srv = Server::with(Settings {
        authentication: vec![
            ("maxtokens", "12".into()),
            ("maxtokensperinvestigator", "5".into()),
            ("reservedtokens", "4".into()),
        ],
        ..Settings::default()
    });
    let admin = srv.admin("alice", "PermAdmin,PermManifest");
    let readers = [
        srv.admin("reader1", "PermSearch"),
        srv.admin("reader2", "PermSearch"),
    ];
    let (archive, _) = standard_archive("pool");
    let id = srv.create_manifest(&admin, "compromised", "true", &archive)["id"]
        .as_u64()
        .unwrap();
    let search = |who: &Admin| srv.get(who, "search?type=manifest");
    // 1 token kept (alice's). reader1 reaches its own bound: 5.
    for _ in 0..5 {
        search(&readers[0]).expect(200);
    }
    let r = search(&readers[0]).expect(429);
    let m = r.message();
    assert!(
        m.contains("maxtokensperinvestigator = 5") && m.contains("\"reader1\""),
        "{m}"
    );
    // 6 kept; reader2 may take the pool up to its reserve: 12 - 4 = 8.
    for _ in 0..2 {
        search(&readers[1]).expect(200);
    }
    let r = search(&readers[1]).expect(503);
    let m = r.message();
    assert!(
        m.contains("reservedtokens")
            && m.contains("\"reader2\"")
            && m.contains("PermManifestStatus"),
        "{m}"
    );
    // The administrator still gets in, and disables the manifest.
    let rec = srv
        .post(
            &admin,
            &format!("manifests/{id}/status"),
            json!({"status": "disabled"}),
        )
        .expect(200)
        .json();
    assert_eq!(rec["status"], "disabled");
    assert_eq!(
        srv.get(&admin, &format!("manifests/{id}"))
            .expect(200)
            .json()["status"],
        "disabled"
    );
    let log = srv.log();
    assert!(log.contains("reason=investigator_token_bound"), "{log}");
}

/// docs/design.md §3.8: a token names the API it was made for. Another API that trusts the same
/// key (a second mig-api, or a hostile one forwarding it) refuses it; MIG's version 1, which
/// names none, is refused by both.
#[test]
fn a_token_made_for_one_api_is_refused_by_another_and_mig_version_1_tokens_by_both() {
    let a = Server::start();
    let b = Server::start();
    let admin = a.dev_admin(1, "PermAdmin");
    b.dev_admin(1, "PermAdmin");
    assert_ne!(a.audience(), b.audience());
    let token = admin.token(&a.audience());
    // B first, as API A would forward it: refused before its nonce is taken, naming both.
    let r = me(&b, ("X-PGPAUTHORIZATION", token.clone())).expect(401);
    let m = r.message();
    assert!(
        m.contains("token made for another API")
            && m.contains(&a.audience())
            && m.contains(&b.audience()),
        "{m}"
    );
    // A, which it was made for, accepts it once.
    me(&a, ("X-PGPAUTHORIZATION", token.clone())).expect(200);
    me(&a, ("X-PGPAUTHORIZATION", token)).expect(401);
    // MIG's format, correctly signed by an active investigator of both.
    let ts = Timestamp::now();
    let signed = format!("1;{ts};migconsole1\n");
    let sig = mig_protocol::signature::dearmor(&admin.sign(signed.as_bytes())).unwrap();
    let v1 = format!("1;{ts};migconsole1;{sig}");
    for srv in [&a, &b] {
        let m = me(srv, ("X-PGPAUTHORIZATION", v1.clone()))
            .expect(401)
            .message();
        assert!(m.contains("version 1") && m.contains("name no API"), "{m}");
        assert!(srv.log().contains("reason=token_version_refused"));
    }
    assert!(b.log().contains("reason=token_audience_mismatch"));
}

#[test]
fn api_keys_work_and_wrong_or_unknown_keys_get_the_same_answer() {
    let srv = Server::start();
    let a = srv.dev_admin(1, "PermAdmin");
    let b = srv.admin("bob", "PermManifest");
    let key = srv
        .post(&a, &format!("investigators/{}/apikey", b.id), json!({}))
        .expect(200)
        .json()["apikey"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(key.len(), 40);
    let rec = me(&srv, ("X-MIGAPIKEY", key.clone())).expect(200).json();
    assert_eq!(rec["name"], "bob");
    assert_eq!(rec["has_apikey"], true);
    let wrong_secret = format!("{}{}", &key[..8], "A".repeat(32));
    let unknown_prefix = format!("ZZZZZZZZ{}", &key[8..]);
    let a1 = me(&srv, ("X-MIGAPIKEY", wrong_secret))
        .expect(401)
        .message();
    let a2 = me(&srv, ("X-MIGAPIKEY", unknown_prefix))
        .expect(401)
        .message();
    assert_eq!(a1, a2);
    me(&srv, ("X-MIGAPIKEY", "short".into())).expect(401);
    let log = srv.log();
    assert!(log.contains("reason=wrong_apikey") && log.contains("reason=unknown_apikey"));
    // A new key replaces the old one.
    srv.post(&a, &format!("investigators/{}/apikey", b.id), json!({}))
        .expect(200);
    me(&srv, ("X-MIGAPIKEY", key)).expect(401);
}

#[test]
fn disabling_an_investigator_takes_effect_on_its_next_request() {
    let srv = Server::start();
    let a = srv.dev_admin(1, "PermAdmin");
    let mut b = srv.dev_admin(2, "PermManifest");
    me(&srv, ("X-PGPAUTHORIZATION", b.token(&srv.audience()))).expect(200);
    let key = srv
        .post(&a, &format!("investigators/{}/apikey", b.id), json!({}))
        .expect(200)
        .json()["apikey"]
        .as_str()
        .unwrap()
        .to_string();
    me(&srv, ("X-MIGAPIKEY", key.clone())).expect(200);
    let r = srv
        .post(
            &a,
            &format!("investigators/{}/status", b.id),
            json!({"status": "disabled"}),
        )
        .expect(200)
        .json();
    assert_eq!(r["status"], "disabled");
    me(&srv, ("X-PGPAUTHORIZATION", b.token(&srv.audience()))).expect(401);
    me(&srv, ("X-MIGAPIKEY", key.clone())).expect(401);
    srv.post(
        &a,
        &format!("investigators/{}/status", b.id),
        json!({"status": "active"}),
    )
    .expect(200);
    b.apikey = Some(key);
    srv.get(&b, "investigators/me").expect(200);
}

#[test]
fn the_last_administrator_cannot_be_disabled_or_lose_investigator_update() {
    let srv = Server::start();
    let a = srv.dev_admin(1, "PermAdmin,PermManifest");
    let path = format!("investigators/{}", a.id);
    let r = srv
        .post(&a, &format!("{path}/status"), json!({"status": "disabled"}))
        .expect(409);
    assert!(
        r.message().contains("last active investigator"),
        "{}",
        r.text()
    );
    srv.post(
        &a,
        &format!("{path}/permissions"),
        json!({"permissions": ["PermManifest"]}),
    )
    .expect(409);
    // With a second administrator, the first can step down.
    let b = srv.admin("bob", "PermAdmin");
    srv.post(
        &b,
        &format!("{path}/permissions"),
        json!({"permissions": ["PermManifest"]}),
    )
    .expect(200);
    let r = srv
        .post(
            &b,
            &format!("investigators/{}/status", b.id),
            json!({"status": "disabled"}),
        )
        .expect(409);
    assert!(r.message().contains("PermInvestigatorUpdate"));
    srv.post(&b, &format!("{path}/status"), json!({"status": "bogus"}))
        .expect(400);
    srv.post(
        &b,
        &format!("{path}/permissions"),
        json!({"permissions": ["PermEverything"]}),
    )
    .expect(400);
}

#[test]
fn investigators_are_created_with_a_valid_unique_key() {
    let srv = Server::start();
    let a = srv.dev_admin(1, "PermAdmin");
    let newbie = Admin::generated("newbie");
    let rec = srv
        .post(
            &a,
            "investigators",
            json!({"name": "newbie", "publickey": newbie.public, "permissions": ["PermLoader"]}),
        )
        .expect(201)
        .json();
    let perms: Vec<String> = serde_json::from_value(rec["permissions"].clone()).unwrap();
    assert!(
        perms.contains(&"PermLoaderKey".to_string()) && perms.contains(&"PermSearch".to_string())
    );
    assert!(!perms.contains(&"PermManifest".to_string()));
    let id = rec["id"].as_u64().unwrap();
    assert_eq!(
        srv.get(&a, &format!("investigators/{id}"))
            .expect(200)
            .json(),
        rec
    );
    srv.get(&a, "investigators/12345").expect(404);
    srv.post(
        &a,
        "investigators",
        json!({"name": "again", "publickey": newbie.public, "permissions": []}),
    )
    .expect(409);
    let r = srv
        .post(
            &a,
            "investigators",
            json!({"name": "junk", "publickey": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n", "permissions": []}),
        )
        .expect(400);
    assert!(r.message().contains("junk"), "{}", r.text());
}

#[test]
fn an_rsa_1024_investigator_key_is_refused_with_the_reason() {
    let srv = Server::start();
    let a = srv.dev_admin(1, "PermAdmin");
    let home = mig_test_support::GnupgHome::new();
    let gpg = |args: &[&str]| {
        let mut c = home.batch();
        c.args(args);
        let out = mig_test_support::run(c, None, std::time::Duration::from_secs(60));
        out.ok();
        out.stdout
    };
    gpg(&[
        "--quick-gen-key",
        "weak <weak@mig.test>",
        "rsa1024",
        "sign",
        "never",
    ]);
    let public = gpg(&["--armor", "--export", "weak@mig.test"]);
    let r = srv
        .post(
            &a,
            "investigators",
            json!({"name": "weak", "publickey": public, "permissions": []}),
        )
        .expect(400);
    assert!(
        r.message()
            .contains("1024-bit RSA key; only RSA keys of at least 2048 bits are accepted"),
        "{}",
        r.text()
    );
}

fn unique() -> u32 {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// One endpoint of docs/api.md: how to call it so that it succeeds, and the bit it needs.
struct Case {
    bit: &'static str,
    method: &'static str,
    path: String,
    body: Box<dyn Fn() -> Option<Value>>,
    ok: u16,
}

#[test]
fn every_admin_endpoint_checks_its_own_permission_bit() {
    let srv = Server::start();
    let (a1, _) = two_admins(&srv);
    // The probe: an investigator whose permission mask the test sets in the database.
    let mut probe = srv.admin("probe", "PermAdmin,PermManifest,PermLoader");
    probe.apikey = Some(
        srv.post(
            &a1,
            &format!("investigators/{}/apikey", probe.id),
            json!({}),
        )
        .expect(200)
        .json()["apikey"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let victim = srv.admin("victim", "PermManifest");
    let (archive, _) = standard_archive("perm");
    let manifest = srv.create_manifest(&a1, "perm", "true", &archive)["id"]
        .as_u64()
        .unwrap();
    let (loader, _) = srv.enabled_loader(&a1, "perm-loader", None);
    let st = srv
        .get(&a1, &format!("manifests/{manifest}/statement"))
        .expect(200)
        .body;
    let probe_sig = probe.sign(&st);
    srv.post(
        &a1,
        "plugins",
        json!({"name": "doomed", "wasm": b64(&wat_plugin("doomed", true, false))}),
    )
    .expect(201);
    let archive_b64 = b64(&archive);
    let m = |p: &str| format!("manifests/{manifest}{p}");
    let l = |p: &str| format!("loaders/{loader}{p}");
    let v = |p: &str| format!("investigators/{}{p}", victim.id);
    let none = || Box::new(|| None) as Box<dyn Fn() -> Option<Value>>;
    let body = |b: Value| Box::new(move || Some(b.clone())) as Box<dyn Fn() -> Option<Value>>;
    let cases = vec![
        Case {
            bit: "PermManifestNew",
            method: "POST",
            path: "manifests".into(),
            ok: 201,
            body: body(
                json!({"name": "p", "target": "true", "platform": host_platform(), "archive": archive_b64}),
            ),
        },
        Case {
            bit: "PermManifest",
            method: "GET",
            path: m(""),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermManifest",
            method: "GET",
            path: "roots".into(),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermManifest",
            method: "GET",
            path: m("/statement"),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermManifest",
            method: "GET",
            path: m("/archive"),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermManifestSign",
            method: "POST",
            path: m("/signatures"),
            ok: 200,
            body: body(json!({"signature": probe_sig})),
        },
        Case {
            bit: "PermManifestStatus",
            method: "POST",
            path: m("/status"),
            ok: 200,
            body: body(json!({"status": "staged"})),
        },
        Case {
            bit: "PermManifestLoaders",
            method: "GET",
            path: m("/loaders"),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermSearch",
            method: "GET",
            path: "search?type=manifest".into(),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermSearch",
            method: "GET",
            path: "search?type=loader&loadername=perm%25".into(),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermLoaderNew",
            method: "POST",
            path: "loaders".into(),
            ok: 201,
            body: Box::new(move || Some(json!({"name": format!("new-{}", unique())}))),
        },
        Case {
            bit: "PermLoader",
            method: "GET",
            path: l(""),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermLoaderStatus",
            method: "POST",
            path: l("/status"),
            ok: 200,
            body: body(json!({"status": "enabled"})),
        },
        Case {
            bit: "PermLoaderExpect",
            method: "POST",
            path: l("/expectenv"),
            ok: 200,
            body: body(json!({"expectenv": "env#>>'{os}'='linux'"})),
        },
        Case {
            bit: "PermLoaderExpect",
            method: "POST",
            path: l("/attributes"),
            ok: 200,
            body: body(json!({"attributes": {"group": "a"}})),
        },
        Case {
            bit: "PermLoaderKey",
            method: "POST",
            path: l("/key"),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermInvestigatorCreate",
            method: "POST",
            path: "investigators".into(),
            ok: 201,
            body: Box::new(move || {
                let k = Admin::generated(&format!("created{}", unique()));
                Some(json!({"name": k.name, "publickey": k.public, "permissions": []}))
            }),
        },
        Case {
            bit: "PermInvestigator",
            method: "GET",
            path: v(""),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermInvestigatorUpdate",
            method: "POST",
            path: v("/permissions"),
            ok: 200,
            body: body(json!({"permissions": ["PermManifest"]})),
        },
        Case {
            bit: "PermInvestigatorUpdate",
            method: "POST",
            path: v("/status"),
            ok: 200,
            body: body(json!({"status": "active"})),
        },
        Case {
            bit: "PermInvestigatorUpdate",
            method: "POST",
            path: v("/apikey"),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermSearch",
            method: "GET",
            path: "plugins".into(),
            ok: 200,
            body: none(),
        },
        Case {
            bit: "PermPlugin",
            method: "POST",
            path: "plugins".into(),
            ok: 201,
            body: Box::new(|| {
                let name = format!("fn{}", unique());
                Some(json!({"name": name, "wasm": b64(&wat_plugin(&name, true, false))}))
            }),
        },
        Case {
            bit: "PermPlugin",
            method: "DELETE",
            path: "plugins/doomed".into(),
            ok: 200,
            body: none(),
        },
    ];
    let all = all_perms();
    for c in &cases {
        let b = bit(c.bit);
        srv.set_perms_in_db(probe.id, all & !b);
        let r = srv.call(&probe, c.method, &c.path, (c.body)());
        assert_eq!(
            r.status,
            403,
            "{} {} without {}: {}",
            c.method,
            c.path,
            c.bit,
            r.text()
        );
        assert!(r.message().contains(c.bit), "{}", r.text());
        srv.set_perms_in_db(probe.id, b);
        let r = srv.call(&probe, c.method, &c.path, (c.body)());
        assert_eq!(
            r.status,
            c.ok,
            "{} {} with only {}: {}",
            c.method,
            c.path,
            c.bit,
            r.text()
        );
    }
    // investigators/me needs no bit at all.
    srv.set_perms_in_db(probe.id, 0);
    srv.get(&probe, "investigators/me").expect(200);
    // MIG's bug (docs/design.md §3.9): an investigator with every bit could not change a status.
    srv.set_perms_in_db(probe.id, all);
    srv.post(&probe, &m("/status"), json!({"status": "staged"}))
        .expect(200);
}
