//! Manifests over HTTP: upload → statement made once → signatures verified against the
//! caller's key → active at the threshold; reset, disable, search, archive, targeted loaders.

mod common;

use common::*;
use mig_protocol::signature::{dearmor, verify, Keyring};
use mig_protocol::statement::Statement;
use mig_protocol::time::Timestamp;
use serde_json::json;

const TARGET: &str = "env#>>'{os}'='linux'";

#[test]
fn upload_makes_a_staged_manifest_whose_statement_serial_is_its_id() {
    let srv = Server::start();
    let (a1, _) = two_admins(&srv);
    let (archive, files) = standard_archive("v1");
    let first = srv.create_manifest(&a1, "agent v1", TARGET, &archive);
    let second = srv.create_manifest(&a1, "agent v2", TARGET, &archive);
    assert_eq!(first["status"], "staged");
    let id = second["id"].as_u64().unwrap();
    assert_eq!(id, first["id"].as_u64().unwrap() + 1);
    let st = srv
        .get(&a1, &format!("manifests/{id}/statement"))
        .expect(200);
    assert_eq!(st.text(), second["statement"].as_str().unwrap());
    let statement = Statement::parse(&st.body).unwrap();
    assert_eq!(statement.serial.get(), id);
    assert_eq!(statement.name, "agent v2");
    assert!(statement.expires.0 - statement.issued.0 == 90 * 86_400);
    let names: Vec<&str> = statement.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["mig-agent", "configuration", "cacert"]);
    for (e, (name, body)) in statement.entries.iter().zip(&files) {
        assert_eq!(e.name, *name);
        assert_eq!(e.sha256.as_str(), sha256_hex(body));
        assert_eq!(e.size, body.len() as u64);
    }
    let rec = srv.get(&a1, &format!("manifests/{id}")).expect(200).json();
    assert_eq!(
        rec["entries"],
        serde_json::to_value(&statement.entries).unwrap()
    );
    assert_eq!(rec["platform"], host_platform());
    // The archive comes back byte for byte.
    let back = srv.get(&a1, &format!("manifests/{id}/archive")).expect(200);
    assert_eq!(back.body, archive);
    assert_eq!(
        back.header("content-type").as_deref(),
        Some("application/gzip")
    );
}

/// docs/design.md §2.3, §4.6: serials grow by one. The id sequence moved on without a manifest
/// (what a PostgreSQL transaction that rolled back after taking an id leaves, or a sequence set
/// by hand) does not make the next serial jump: it is one above the highest manifest, for an
/// upload and for a renewal.
#[test]
fn serials_are_one_above_the_highest_manifest_whatever_the_id_sequence_says() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (archive, _) = standard_archive("v1");
    let first = srv.create_manifest(&a1, "agent v1", TARGET, &archive);
    let first = first["id"].as_u64().unwrap();
    let advance = if srv.postgres().is_some() {
        "SELECT setval(pg_get_serial_sequence('manifests', 'id'), 1000000)"
    } else {
        "UPDATE sqlite_sequence SET seq = 1000000 WHERE name = 'manifests'"
    };
    srv.sql(advance);
    let second = srv.create_manifest(&a1, "agent v2", TARGET, &archive);
    let second = second["id"].as_u64().unwrap();
    assert_eq!(second, first + 1);
    let statement = srv
        .get(&a1, &format!("manifests/{second}/statement"))
        .expect(200);
    assert_eq!(
        Statement::parse(&statement.body).unwrap().serial.get(),
        second
    );
    for s in [&a1, &a2] {
        srv.sign_manifest(s, second).expect(200);
    }
    let renewal = srv
        .post(&a1, &format!("manifests/{second}/renew"), json!({}))
        .expect(201)
        .json();
    assert_eq!(renewal["id"].as_u64().unwrap(), second + 1);
}

#[test]
fn requiredsignatures_distinct_verified_signers_make_it_active() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (archive, _) = standard_archive("sig");
    let id = srv.create_manifest(&a1, "m", TARGET, &archive)["id"]
        .as_u64()
        .unwrap();
    let r = srv.sign_manifest(&a1, id).expect(200).json();
    assert_eq!(r["status"], "staged");
    assert_eq!(r["signers"], json!(["admin1"]));
    // One signature per investigator.
    let again = srv.sign_manifest(&a1, id).expect(409);
    assert!(
        again.message().contains("already signed"),
        "{}",
        again.text()
    );
    // MIG's de-armored one-line form is accepted too.
    let st = srv.get(&a2, &format!("manifests/{id}/statement")).body;
    let flat = dearmor(&a2.sign(&st)).unwrap();
    let r = srv
        .post(
            &a2,
            &format!("manifests/{id}/signatures"),
            json!({ "signature": flat }),
        )
        .expect(200)
        .json();
    assert_eq!(r["status"], "active");
    assert_eq!(r["signers"], json!(["admin1", "admin2"]));
    let m = request("GET", &srv.url("metrics"), &[], None).text();
    assert!(
        m.contains("mig_api_signature_verifications_total{result=\"valid\"} 2"),
        "{m}"
    );
}

#[test]
fn bad_and_foreign_signatures_are_refused_with_the_reason() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let outsider = Admin::dev(3);
    let (archive, _) = standard_archive("bad");
    let id = srv.create_manifest(&a1, "m", TARGET, &archive)["id"]
        .as_u64()
        .unwrap();
    let st = srv.get(&a1, &format!("manifests/{id}/statement")).body;
    let path = format!("manifests/{id}/signatures");
    // A signature by a key that is not the caller's (a registered colleague's or an outsider's).
    for foreign in [a2.sign(&st), outsider.sign(&st)] {
        let r = srv
            .post(&a1, &path, json!({ "signature": foreign }))
            .expect(400);
        let msg = r.message();
        assert!(
            msg.contains("your key 37050AE08CB33351018A809EFD575A3E1CEB348D"),
            "{msg}"
        );
        assert!(msg.contains("not in the keyring"), "{msg}");
    }
    // The caller's key over other bytes.
    let r = srv
        .post(&a1, &path, json!({"signature": a1.sign(b"something else")}))
        .expect(400);
    assert!(r.message().contains("does not verify"), "{}", r.text());
    // Not a signature at all, and not base64 in the de-armored form.
    for junk in [
        "hello",
        "-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
    ] {
        srv.post(&a1, &path, json!({ "signature": junk }))
            .expect(400);
    }
    let r = srv
        .post(&a1, &path, json!({"signature": "x".repeat(20_000)}))
        .expect(413);
    assert!(r.message().contains("signature"), "{}", r.text());
    let rec = srv.get(&a1, &format!("manifests/{id}")).expect(200).json();
    assert_eq!(rec["signers"], json!([]));
    let m = request("GET", &srv.url("metrics"), &[], None).text();
    assert!(
        m.contains("mig_api_signature_verifications_total{result=\"invalid\"} 5"),
        "{m}"
    );
}

#[test]
fn a_gnupg_signature_over_the_statement_verifies() {
    let srv = Server::with(Settings {
        required_signatures: 1,
        ..Settings::default()
    });
    let a1 = srv.dev_admin(1, "PermManifest");
    let (archive, _) = standard_archive("gpg");
    let id = srv.create_manifest(&a1, "m", TARGET, &archive)["id"]
        .as_u64()
        .unwrap();
    let st = srv.get(&a1, &format!("manifests/{id}/statement")).body;
    let home = mig_test_support::GnupgHome::new();
    let gpg = |args: &[&str]| {
        let out = home
            .batch()
            .args(args)
            .output()
            .expect("gpg is installed (apt-get install gnupg)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    gpg(&["--import", dev_key_path("admin1.sec.asc").to_str().unwrap()]);
    let file = home.path().join("statement");
    std::fs::write(&file, &st).unwrap();
    let sig = home.path().join("statement.asc");
    gpg(&[
        "--armor",
        "--detach-sign",
        "--local-user",
        "37050AE08CB33351018A809EFD575A3E1CEB348D",
        "--output",
        sig.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let r = srv
        .post(
            &a1,
            &format!("manifests/{id}/signatures"),
            json!({"signature": std::fs::read_to_string(&sig).unwrap()}),
        )
        .expect(200)
        .json();
    assert_eq!(r["status"], "active");
}

#[test]
fn a_gnupg_sha1_signature_is_not_stored_and_a_sha256_one_is() {
    let srv = Server::with(Settings {
        required_signatures: 1,
        ..Settings::default()
    });
    let a1 = srv.dev_named_admin("rsa1", "PermManifest");
    let (archive, _) = standard_archive("sha1");
    let id = srv.create_manifest(&a1, "m", TARGET, &archive)["id"]
        .as_u64()
        .unwrap();
    let st = srv.get(&a1, &format!("manifests/{id}/statement")).body;
    let home = mig_test_support::GnupgHome::with_keys(&[dev_key_path("rsa1.sec.asc")]);
    let sign = |digest: &str| {
        let mut c = home.batch();
        c.args([
            "--digest-algo",
            digest,
            "--armor",
            "--detach-sign",
            "--local-user",
            "DD849759069EA9CDA347E88F2C2A590399DF0DCD",
        ]);
        let out = mig_test_support::run(c, Some(&st), std::time::Duration::from_secs(60));
        out.ok();
        out.stdout
    };
    let path = format!("manifests/{id}/signatures");
    let r = srv
        .post(&a1, &path, json!({ "signature": sign("SHA1") }))
        .expect(400);
    assert!(
        r.message().contains(
            "signature #1 by DD849759069EA9CDA347E88F2C2A590399DF0DCD uses SHA1; only SHA-256 or \
             stronger counts"
        ),
        "{}",
        r.text()
    );
    let rec = srv.get(&a1, &format!("manifests/{id}")).expect(200).json();
    assert_eq!(rec["signers"], json!([]));
    let r = srv
        .post(&a1, &path, json!({ "signature": sign("SHA256") }))
        .expect(200)
        .json();
    assert_eq!(r["status"], "active");
}

#[test]
fn reset_removes_signatures_and_disable_is_final() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let id = active_manifest(&srv, &[&a1, &a2], "reset", TARGET);
    let path = format!("manifests/{id}/status");
    let r = srv
        .post(&a1, &path, json!({"status": "staged"}))
        .expect(200)
        .json();
    assert_eq!(r["status"], "staged");
    assert_eq!(r["signers"], json!([]));
    srv.sign_manifest(&a1, id).expect(200);
    let r = srv.sign_manifest(&a2, id).expect(200).json();
    assert_eq!(r["status"], "active");
    for bad in ["active", "enabled", ""] {
        let r = srv.post(&a1, &path, json!({ "status": bad })).expect(400);
        assert!(
            r.message()
                .contains("staged (reset), active (resume a halted manifest) or disabled"),
            "{}",
            r.text()
        );
    }
    let r = srv
        .post(&a1, &path, json!({"status": "disabled"}))
        .expect(200)
        .json();
    assert_eq!(r["status"], "disabled");
    srv.post(&a1, &path, json!({"status": "staged"}))
        .expect(409);
    let r = srv.sign_manifest(&a1, id).expect(409);
    assert!(r.message().contains("disabled"), "{}", r.text());
    srv.get(&a1, "manifests/999/statement").expect(404);
    srv.post(&a1, "manifests/999/status", json!({"status": "disabled"}))
        .expect(404);
}

#[test]
fn statement_and_signatures_verify_with_the_loader_library() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let id = active_manifest(&srv, &[&a1, &a2], "verify", "true");
    let (lid, key) = srv.enabled_loader(&a1, "host1", None);
    assert!(lid > 0);
    let r = srv
        .loader(
            &key,
            "POST",
            "loader/manifest",
            Some(manifest_request("host1.example", &[])),
        )
        .expect(200)
        .json();
    let statement = r["statement"].as_str().unwrap();
    let sigs: Vec<String> = serde_json::from_value(r["signatures"].clone()).unwrap();
    let ring = Keyring::from_armored([
        ("admin1", a1.public.as_str()),
        ("admin2", a2.public.as_str()),
    ])
    .unwrap();
    let verdict = verify(&ring, statement.as_bytes(), &sigs)
        .require(2)
        .unwrap();
    assert_eq!(verdict.valid.len(), 2);
    assert_eq!(
        Statement::parse(statement.as_bytes()).unwrap().serial.get(),
        id
    );
}

#[test]
fn search_by_id_name_wildcard_status_time_and_limit() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (archive, _) = standard_archive("s");
    for name in ["alpha 1", "alpha_2", "beta"] {
        srv.create_manifest(&a1, name, TARGET, &archive);
    }
    let active = active_manifest(&srv, &[&a1, &a2], "gamma", TARGET);
    let names = |q: &str| -> Vec<String> {
        srv.get(&a1, &format!("search?type=manifest&{q}"))
            .expect(200)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(""), ["gamma", "beta", "alpha_2", "alpha 1"]);
    assert_eq!(names("manifestname=alpha%25"), ["alpha_2", "alpha 1"]);
    // `_` is literal, not LIKE's one-character wildcard.
    assert_eq!(names("manifestname=alpha_%25"), ["alpha_2"]);
    assert_eq!(names("manifestname=beta"), ["beta"]);
    assert_eq!(names("status=active"), ["gamma"]);
    assert_eq!(names(&format!("manifestid={active}")), ["gamma"]);
    assert_eq!(names("limit=2"), ["gamma", "beta"]);
    assert_eq!(names("before=2000-01-01T00:00:00Z"), Vec::<String>::new());
    assert_eq!(names("after=2000-01-01T00:00:00Z&limit=1"), ["gamma"]);
    for bad in [
        "type=manifest&limit=0",
        "type=manifest&limit=1001",
        "type=manifest&before=yesterday",
        "type=manifest&status=on",
        "type=manifest&colour=red",
        "type=manifest&manifestid=-3",
        "type=agent",
        "",
    ] {
        let r = srv.get(&a1, &format!("search?{bad}")).expect(400);
        assert!(!r.message().is_empty());
    }
}

#[test]
fn manifest_loaders_lists_enabled_loaders_its_target_matches_now() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let id = active_manifest(&srv, &[&a1, &a2], "targets", "tags#>>'{operator}'='myorg'");
    let (_, k1) = srv.enabled_loader(&a1, "in", None);
    let (_, k2) = srv.enabled_loader(&a1, "out", None);
    let (disabled, k3) = srv.enabled_loader(&a1, "off", None);
    srv.loader(
        &k1,
        "POST",
        "loader/manifest",
        Some(manifest_request("h1", &[("operator", "myorg")])),
    )
    .expect(200);
    srv.loader(
        &k2,
        "POST",
        "loader/manifest",
        Some(manifest_request("h2", &[("operator", "other")])),
    )
    .expect(404);
    srv.loader(
        &k3,
        "POST",
        "loader/manifest",
        Some(manifest_request("h3", &[("operator", "myorg")])),
    )
    .expect(200);
    srv.post(
        &a1,
        &format!("loaders/{disabled}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    let list = srv
        .get(&a1, &format!("manifests/{id}/loaders"))
        .expect(200)
        .json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["in"]);
    srv.post(
        &a1,
        &format!("manifests/{id}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    let list = srv
        .get(&a1, &format!("manifests/{id}/loaders"))
        .expect(200)
        .json();
    assert_eq!(list, json!([]));
}

#[test]
fn manifest_creation_validates_name_target_platform_and_validity() {
    let srv = Server::start();
    let (a1, _) = two_admins(&srv);
    let (archive, _) = standard_archive("v");
    let good = json!({"name": "m", "target": TARGET, "platform": host_platform(), "archive": b64(&archive)});
    let cases = [
        ("name", json!(""), "name"),
        ("target", json!("env#>>'{os}' = "), "target"),
        ("target", json!("DROP TABLE loaders"), "target"),
        (
            "platform",
            json!({"os": "Linux!", "arch": "amd64"}),
            "platform",
        ),
        (
            "platform",
            json!({"os": "linux", "arch": "aarch64"}),
            "write \"arm64\"",
        ),
        ("valid_days", json!(0), "valid_days"),
        ("archive", json!("%%% not base64"), "base64"),
    ];
    for (field, value, needle) in cases {
        let mut body = good.clone();
        body[field] = value;
        let r = srv.post(&a1, "manifests", body).expect(400);
        assert!(r.message().contains(needle), "{field}: {}", r.text());
    }
    let mut body = good.clone();
    body["valid_days"] = json!(7);
    let rec = srv.post(&a1, "manifests", body).expect(201).json();
    assert!(rec["expires"].as_str().unwrap() > rec["issued"].as_str().unwrap());
    let st = Statement::parse(rec["statement"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(st.expires.0 - st.issued.0, 7 * 86_400);
}

/// issue 31 item 3: a manifest whose statement expired is never selected, on either protocol,
/// and never from the poll cache: the newest unexpired one is. Every active manifest's expiry
/// shows in `rollout` and `/metrics`, and the log warns at start and daily of those within 14
/// days. The server's
/// clock is moved by libfaketime, not by waiting.
#[test]
fn an_expired_manifest_never_shadows_an_older_valid_one() {
    let clock = tempfile::tempdir().unwrap();
    let clock_file = clock.path().join("offset");
    std::fs::write(&clock_file, "+0").unwrap();
    let mut srv = Server::with(Settings {
        clock_file: Some(clock_file.clone()),
        ..Settings::default()
    });
    let (a, b) = two_admins(&srv);
    let make = |name: &str, days: u64| {
        let (archive, _) = standard_archive(name);
        let body = json!({"name": name, "target": "true", "platform": host_platform(),
            "archive": b64(&archive), "valid_days": days});
        let id = srv.post(&a, "manifests", body).expect(201).json()["id"]
            .as_u64()
            .unwrap();
        for s in [&a, &b] {
            srv.sign_manifest(s, id).expect(200);
        }
        id
    };
    let older = make("older", 90);
    let soon = make("soon", 12);
    let newer = make("newer", 1);
    let (_, seen) = srv.enabled_loader(&a, "seen", None);
    let (_, fresh) = srv.enabled_loader(&a, "fresh", None);
    let poll = |key: &str, name: &str| {
        let r = srv
            .loader(
                key,
                "POST",
                "loader/manifest",
                Some(manifest_request(name, &[])),
            )
            .expect(200)
            .json();
        Statement::parse(r["statement"].as_str().unwrap().as_bytes())
            .unwrap()
            .serial
            .get()
    };
    assert_eq!(poll(&seen, "seen"), newer);
    assert_eq!(poll(&seen, "seen"), newer, "answered from the poll cache");
    let hits = srv.poll_cache_hits();

    // Two days later `newer` has expired: the same poll is not answered from memory, and a
    // fresh host is given the newest manifest it can install.
    std::fs::write(&clock_file, "+2d").unwrap();
    assert_eq!(poll(&seen, "seen"), soon);
    assert_eq!(poll(&fresh, "fresh"), soon);
    assert_eq!(
        srv.poll_cache_hits(),
        hits,
        "no kept answer outlived its expiry"
    );

    let later = Timestamp(Timestamp::now().0 + 2 * 86_400);
    let admin_get = |path: &str| {
        request(
            "GET",
            &srv.url(path),
            &[("X-PGPAUTHORIZATION", a.token_at(later, &srv.audience()))],
            None,
        )
        .expect(200)
    };
    let rollouts = admin_get("rollout").json();
    let expires = |id: u64| {
        rollouts
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["manifest"] == id)
            .unwrap_or_else(|| panic!("{id} in {rollouts}"))["expires"]
            .clone()
    };
    let m = admin_get(&format!("manifests/{newer}")).json();
    assert_eq!(expires(newer), m["expires"], "rollout carries the expiry");
    let metrics = admin_get("metrics").text();
    let gauge = |id: u64| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "mig_api_manifest_expiry_seconds{{manifest=\"{id}\","
                ))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
    };
    let newer_left = gauge(newer).unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        (-86_400 - 600..-86_400 + 600).contains(&newer_left),
        "expired a day ago: {newer_left}"
    );
    let soon_left = gauge(soon).unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        (10 * 86_400 - 600..10 * 86_400 + 600).contains(&soon_left),
        "ten days left: {soon_left}"
    );
    let older_left = gauge(older).unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        (88 * 86_400 - 600..88 * 86_400 + 600).contains(&older_left),
        "every active manifest is exported, 88 days left too: {older_left}"
    );

    // The log warns of each at start (and then daily), from a task of its own.
    srv.restart();
    let expired = format!("event=manifest_expired manifest={newer} ");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !srv.log().contains(&expired) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = srv.log();
    assert!(
        log.contains(&format!("event=manifest_expired manifest={newer} ")),
        "{log}"
    );
    assert!(
        log.contains(&format!("event=manifest_expiring manifest={soon} ")),
        "{log}"
    );
    assert!(
        !log.lines().any(
            |l| l.contains("event=manifest_expir") && l.contains(&format!("manifest={older} "))
        ),
        "{log}"
    );
}

/// docs/design.md §4.20: every answer carries a freshness signature by the configured key over
/// exactly its statement, made once per manifest and generation and shared by every loader (the
/// poll cache is not undone), made again once half its lifetime has passed, and after any
/// administrator's write. Without `[freshness] key` the field is absent.
#[test]
fn answers_carry_one_shared_freshness_signature_renewed_past_half_its_lifetime() {
    let clock = tempfile::tempdir().unwrap();
    let clock_file = clock.path().join("offset");
    std::fs::write(&clock_file, "+0").unwrap();
    let srv = Server::with(Settings {
        clock_file: Some(clock_file.clone()),
        freshness_lifetime: Some("24h"),
        ..Settings::default()
    });
    let (a, b) = two_admins(&srv);
    let (archive, _) = standard_archive("fresh");
    let body = json!({"name": "fresh", "target": "true", "platform": host_platform(),
        "archive": b64(&archive)});
    let id = srv.post(&a, "manifests", body).expect(201).json()["id"]
        .as_u64()
        .unwrap();
    for s in [&a, &b] {
        srv.sign_manifest(s, id).expect(200);
    }
    let (_, k1) = srv.enabled_loader(&a, "one", None);
    let (_, k2) = srv.enabled_loader(&a, "two", None);
    let public = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/dev-keys/freshness.pub.asc"),
    )
    .unwrap();
    let key = mig_protocol::freshness::FreshnessKey::new(
        "freshness.pub.asc",
        &public,
        &mig_protocol::signature::Keyring::from_keys(vec![]),
    )
    .unwrap();
    let poll = |k: &str, name: &str| {
        let r = srv
            .loader(
                k,
                "POST",
                "loader/manifest",
                Some(manifest_request(name, &[])),
            )
            .expect(200);
        mig_protocol::loader::ManifestResponse::parse(&r.body).unwrap()
    };
    let first = poll(&k1, "one");
    let f1 = first.freshness.clone().expect("a freshness signature");
    let doc = key
        .check(
            Some(&f1),
            first.statement.as_bytes(),
            mig_protocol::Serial::new(id),
            Timestamp::now(),
        )
        .unwrap();
    assert_eq!(doc.expires.0 - doc.issued.0, 86_400, "{doc:?}");
    assert_eq!(
        poll(&k1, "one").freshness.as_ref(),
        Some(&f1),
        "the kept answer"
    );
    assert_eq!(
        poll(&k2, "two").freshness.as_ref(),
        Some(&f1),
        "another loader given the same manifest shares the signature"
    );

    // `GET freshness` (mig-console status) and `/metrics` show the key and that one signature.
    let state = srv.get(&a, "freshness").expect(200).json();
    assert_eq!(
        state,
        json!({"fingerprint": key.fingerprint(), "lifetime": 86_400, "signatures": [
            {"manifest": id, "issued": doc.issued.to_string(), "expires": doc.expires.to_string()}
        ]})
    );
    let gauge = |metrics: &str, name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
    };
    let metrics = srv.get(&a, "metrics").expect(200).text();
    let age = format!("mig_api_freshness_signature_age_seconds{{manifest=\"{id}\"}} ");
    let left = format!("mig_api_freshness_signature_expiry_seconds{{manifest=\"{id}\"}} ");
    assert_eq!(
        gauge(&metrics, "mig_api_freshness_lifetime_seconds "),
        Some(86_400)
    );
    let age_now = gauge(&metrics, &age).unwrap_or_else(|| panic!("{metrics}"));
    assert!((0..600).contains(&age_now), "{metrics}");
    let left_now = gauge(&metrics, &left).unwrap_or_else(|| panic!("{metrics}"));
    assert_eq!(left_now + age_now, 86_400, "{metrics}");

    // Past half the lifetime the answer is signed again, for kept and new selections alike.
    std::fs::write(&clock_file, "+13h").unwrap();
    let renewed = poll(&k1, "one").freshness.expect("a freshness signature");
    assert_ne!(renewed, f1);
    let later = key
        .check(
            Some(&renewed),
            first.statement.as_bytes(),
            mig_protocol::Serial::new(id),
            Timestamp(Timestamp::now().0 + 13 * 3600),
        )
        .unwrap();
    assert!(later.issued.0 >= doc.issued.0 + 13 * 3600, "{later:?}");
    assert_eq!(poll(&k2, "two").freshness, Some(renewed));
    let token = || a.token_at(Timestamp(Timestamp::now().0 + 13 * 3600), &srv.audience());
    let at_13h = |path: &str| {
        request(
            "GET",
            &srv.url(path),
            &[("X-PGPAUTHORIZATION", token())],
            None,
        )
        .expect(200)
    };
    let state = at_13h("freshness").json();
    assert_eq!(
        state["signatures"],
        json!([{"manifest": id, "issued": later.issued.to_string(),
            "expires": later.expires.to_string()}]),
        "the renewed signature is the one kept"
    );
    let metrics = at_13h("metrics").text();
    let age_13h = gauge(&metrics, &age).unwrap_or_else(|| panic!("{metrics}"));
    assert!((0..600).contains(&age_13h), "signed afresh: {metrics}");

    // An API without a freshness key sends none; the answer is otherwise the same.
    let plain = Server::with(Settings {
        freshness: false,
        ..Settings::default()
    });
    let (a, b) = two_admins(&plain);
    let id = plain
        .post(
            &a,
            "manifests",
            json!({"name": "plain", "target": "true",
        "platform": host_platform(), "archive": b64(&archive)}),
        )
        .expect(201)
        .json()["id"]
        .as_u64()
        .unwrap();
    for s in [&a, &b] {
        plain.sign_manifest(s, id).expect(200);
    }
    let (_, k) = plain.enabled_loader(&a, "plain", None);
    let r = plain
        .loader(
            &k,
            "POST",
            "loader/manifest",
            Some(manifest_request("plain", &[])),
        )
        .expect(200)
        .json();
    assert!(r.get("freshness").is_none(), "{r}");
    assert_eq!(r["signatures"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(
        plain.get(&a, "freshness").expect(200).json(),
        json!({"fingerprint": null, "lifetime": 0, "signatures": []})
    );
    let metrics = plain.get(&a, "metrics").expect(200).text();
    assert!(
        !metrics.lines().any(|l| l.starts_with("mig_api_freshness_")),
        "no freshness series without a key: {metrics}"
    );
}

/// Files in the blob store beside the database, and on PostgreSQL the shared blob rows.
fn blob_count(srv: &Server) -> (usize, Option<String>) {
    let dir = srv.db_path().parent().unwrap().join("mig-api-files");
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    let shared = srv
        .postgres()
        .map(|_| srv.sql("SELECT COUNT(*) FROM blobs")[0][0].clone());
    (files, shared)
}

/// issue 28 item 3: a renewal is a new staged manifest with the same entries, target, platform,
/// halt rule and name, a new serial and a new expiry, and no blob stored; signed by the
/// threshold it is given to the loader that had the renewed manifest, which is disabled.
#[test]
fn renew_makes_a_new_serial_and_expiry_over_the_same_entries_and_blobs() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (archive, _) = standard_archive("renewed");
    let body = json!({"name": "agent", "target": TARGET, "platform": host_platform(),
        "archive": b64(&archive), "valid_days": 10, "halt": {"after": "5%", "min": 3}});
    let old = srv.post(&a1, "manifests", body).expect(201).json();
    let old_id = old["id"].as_u64().unwrap();
    // Only an active manifest is renewed.
    let staged = srv
        .post(&a1, &format!("manifests/{old_id}/renew"), json!({}))
        .expect(409);
    assert!(staged.message().contains("staged"), "{}", staged.message());
    for s in [&a1, &a2] {
        srv.sign_manifest(s, old_id).expect(200);
    }
    let (_, key) = srv.enabled_loader(&a1, "host", None);
    let given = |srv: &Server| {
        let r = srv
            .loader(
                &key,
                "POST",
                "loader/manifest",
                Some(manifest_request("host", &[])),
            )
            .expect(200)
            .json();
        Statement::parse(r["statement"].as_str().unwrap().as_bytes())
            .unwrap()
            .serial
            .get()
    };
    assert_eq!(given(&srv), old_id);
    let blobs = blob_count(&srv);

    let new = srv
        .post(
            &a1,
            &format!("manifests/{old_id}/renew"),
            json!({"valid_days": 30}),
        )
        .expect(201)
        .json();
    let new_id = new["id"].as_u64().unwrap();
    assert!(new_id > old_id, "a new serial");
    assert_eq!(new["status"], "staged");
    assert_eq!(new["renews"], old_id);
    for field in ["name", "target", "platform", "entries", "halt"] {
        assert_eq!(new[field], old[field], "{field}");
    }
    let st = Statement::parse(new["statement"].as_str().unwrap().as_bytes()).unwrap();
    let old_st = Statement::parse(old["statement"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(st.serial.get(), new_id);
    assert_eq!(st.entries, old_st.entries);
    assert_eq!(st.expires.0 - st.issued.0, 30 * 86_400);
    assert!(st.expires > old_st.expires, "a later expiry");
    assert_eq!(blob_count(&srv), blobs, "no blob stored");
    // The renewal's archive is the renewed one's, byte for byte.
    let back = srv
        .get(&a1, &format!("manifests/{new_id}/archive"))
        .expect(200);
    assert_eq!(back.body, archive);
    // Staged: the loader keeps the renewed manifest until the threshold signs.
    assert_eq!(given(&srv), old_id);
    srv.sign_manifest(&a1, new_id).expect(200);
    assert_eq!(given(&srv), old_id);
    let signed = srv.sign_manifest(&a2, new_id).expect(200).json();
    assert_eq!(signed["status"], "active");
    assert_eq!(given(&srv), new_id);
    let old_now = srv
        .get(&a1, &format!("manifests/{old_id}"))
        .expect(200)
        .json();
    assert_eq!(old_now["status"], "disabled", "the renewal replaced it");
    assert_eq!(blob_count(&srv), blobs, "no blob stored");

    // Refused: an unknown manifest, a bad validity, a caller without PermManifestNew.
    srv.post(&a1, "manifests/9999/renew", json!({})).expect(404);
    let bad = srv
        .post(
            &a1,
            &format!("manifests/{new_id}/renew"),
            json!({"valid_days": 0}),
        )
        .expect(400);
    assert!(bad.message().contains("valid_days 0"), "{}", bad.message());
    let reader = srv.admin("reader", "PermLoader");
    srv.post(&reader, &format!("manifests/{new_id}/renew"), json!({}))
        .expect(403);
}
