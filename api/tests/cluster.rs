//! Several mig-api replicas on one PostgreSQL database (docs/design.md §6.6), whatever
//! `MIG_TEST_DATABASE` says: every step of the walk-through on another replica than the one
//! before, replay, a disabled loader and a deleted plugin across replicas, replicas starting
//! together on an empty database, a replica killed mid-upload, the database stopped and
//! started again under load, and replicas stopped with SIGTERM under load.

mod common;

use common::*;
use mig_protocol::time::Timestamp;
use mig_test_support::postgres::{PgCluster, PgDatabase};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `n` replicas on one fresh database.
fn replicas_on(db: PgDatabase, n: usize) -> Vec<Server> {
    let first = Server::with(Settings {
        postgres: Some(db),
        ..Settings::default()
    });
    let mut all: Vec<Server> = (1..n).map(|_| first.replica()).collect();
    all.insert(0, first);
    all
}

fn replicas(n: usize) -> Vec<Server> {
    replicas_on(PgDatabase::fresh(), n)
}

fn poll(srv: &Server, key: &str) -> Reply {
    srv.loader(
        key,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[])),
    )
}

fn serial(r: Reply) -> u64 {
    mig_protocol::statement::Statement::parse(r.json()["statement"].as_str().unwrap().as_bytes())
        .unwrap()
        .serial
        .get()
}

#[test]
fn every_step_of_the_walkthrough_on_another_replica() {
    let r = replicas(3);
    let (a, b, c) = (&r[0], &r[1], &r[2]);
    // Each step on another replica than the step before: A, B, C, A, B, C, …
    let (a1, a2) = two_admins(a);
    let (lid, key) = b.enabled_loader(&a1, "host-1", None);
    let (archive, files) = standard_archive("cluster");
    let id = c.create_manifest(&a1, "cluster", "true", &archive)["id"]
        .as_u64()
        .unwrap();
    a.sign_manifest(&a1, id).expect(200);
    b.sign_manifest(&a2, id).expect(200);
    // Given on C; its files fetched from A then B, which never held them: they come from the
    // database, and the manifest given on C is the one A and B allow.
    assert_eq!(serial(poll(c, &key).expect(200)), id);
    for srv in [a, b] {
        for (_, body) in &files {
            let sha = sha256_hex(body);
            let got = srv
                .loader_get(&key, &format!("loader/files/{sha}"), &[])
                .expect(200);
            assert_eq!(&got.body, body);
        }
    }
    // The archive itself, from a replica that did not receive it.
    let got = a.get(&a1, &format!("manifests/{id}/archive")).expect(200);
    assert_eq!(got.body, archive);
    // Reported on B, read on C.
    b.loader(
        &key,
        "POST",
        "loader/report",
        Some(json!({"serial": id, "result": "installed", "message": "ok"})),
    )
    .expect(200);
    let rec = c.get(&a1, &format!("loaders/{lid}")).expect(200).json();
    assert_eq!(rec["last_report"]["serial"], id);
    // A newer manifest made on A, offered by B and C; disabled on A, offered by neither.
    let newer = active_manifest(a, &[&a1, &a2], "newer", "true");
    assert_eq!(serial(poll(b, &key).expect(200)), newer);
    assert_eq!(serial(poll(c, &key).expect(200)), newer);
    a.post(
        &a1,
        &format!("manifests/{newer}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    assert_eq!(serial(poll(b, &key).expect(200)), id);
    assert_eq!(serial(poll(c, &key).expect(200)), id);
}

#[test]
fn a_token_used_on_one_replica_is_refused_on_the_others() {
    let r = replicas(3);
    let a1 = r[0].dev_admin(1, "PermAdmin");
    let token = ("X-PGPAUTHORIZATION", a1.token(&r[1].audience()));
    request(
        "GET",
        &r[1].url("investigators/me"),
        std::slice::from_ref(&token),
        None,
    )
    .expect(200);
    for srv in [&r[0], &r[2], &r[1]] {
        let reply = request(
            "GET",
            &srv.url("investigators/me"),
            std::slice::from_ref(&token),
            None,
        )
        .expect(401);
        assert_eq!(reply.message(), "token replayed");
    }
}

#[test]
fn a_loader_disabled_on_one_replica_is_refused_by_another_at_its_next_request() {
    let r = replicas(2);
    let (a1, a2) = two_admins(&r[0]);
    let (lid, key) = r[0].enabled_loader(&a1, "host-1", None);
    let id = active_manifest(&r[0], &[&a1, &a2], "m", "true");
    // B keeps this answer in memory: the next identical poll would be served from it.
    assert_eq!(serial(poll(&r[1], &key).expect(200)), id);
    assert_eq!(serial(poll(&r[1], &key).expect(200)), id);
    r[0].post(
        &a1,
        &format!("loaders/{lid}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    poll(&r[1], &key).expect(401);
    // A rotated key, likewise: the old one is refused on B, the new one served.
    r[1].post(
        &a1,
        &format!("loaders/{lid}/status"),
        json!({"status": "enabled"}),
    )
    .expect(200);
    let new = r[1]
        .post(&a1, &format!("loaders/{lid}/key"), json!({}))
        .expect(200)
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    poll(&r[0], &key).expect(401);
    assert_eq!(serial(poll(&r[0], &new).expect(200)), id);
    // A disabled investigator is refused by every replica.
    let a3 = r[0].dev_admin(3, "PermManifest");
    r[1].get(&a3, "investigators/me").expect(200);
    r[0].post(
        &a1,
        &format!("investigators/{}/status", a3.id),
        json!({"status": "disabled"}),
    )
    .expect(200);
    r[1].get(&a3, "investigators/me").expect(401);
}

/// A loader's expectenv or attributes changed through one replica: that loader's answer kept by
/// another is not used at its next poll there (its row's `selection_rev`, read with the key).
#[test]
fn a_loaders_attributes_or_expectenv_set_on_one_replica_change_its_answer_on_another() {
    let r = replicas(2);
    let (a1, a2) = two_admins(&r[0]);
    let (lid, key) = r[0].enabled_loader(&a1, "host-1", None);
    let id = active_manifest(&r[0], &[&a1, &a2], "m", "attributes#>>'{group}'='canary'");
    // B keeps this answer in memory: the next identical poll would be served from it.
    poll(&r[1], &key).expect(404);
    poll(&r[1], &key).expect(404);
    r[0].post(
        &a1,
        &format!("loaders/{lid}/attributes"),
        json!({"attributes": {"group": "canary"}}),
    )
    .expect(200);
    assert_eq!(serial(poll(&r[1], &key).expect(200)), id);
    assert_eq!(serial(poll(&r[1], &key).expect(200)), id);
    r[0].post(
        &a1,
        &format!("loaders/{lid}/expectenv"),
        json!({"expectenv": "tags#>>'{operator}'='myorg'"}),
    )
    .expect(200);
    poll(&r[1], &key).expect(403);
}

#[test]
fn a_plugin_deleted_on_one_replica_is_never_evaluated_by_another_after_the_delete() {
    let r = replicas(2);
    let (a1, a2) = two_admins(&r[0]);
    let wasm = wat_plugin("always", true, false);
    r[0].post(
        &a1,
        "plugins",
        json!({"name": "always", "wasm": b64(&wasm)}),
    )
    .expect(201);
    // B loads it from the database at its next request, before validating the target.
    let id = active_manifest(&r[1], &[&a1, &a2], "plugged", "always()");
    let (_, key) = r[0].enabled_loader(&a1, "host-1", None);
    assert_eq!(serial(poll(&r[1], &key).expect(200)), id);
    assert!(
        r[1].log().contains("event=plugin_loaded name=always"),
        "{}",
        r[1].log()
    );
    r[0].call(&a1, "DELETE", "plugins/always", None).expect(200);
    // B's next request drops it: the target no longer matches and a new one naming it is
    // refused as unknown.
    poll(&r[1], &key).expect(404);
    assert!(
        r[1].log().contains("event=plugin_unloaded name=always"),
        "{}",
        r[1].log()
    );
    let listed = r[1].get(&a1, "plugins").expect(200).json();
    assert!(!listed
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "always"));
    let (archive, _) = standard_archive("x");
    r[1].post(
        &a1,
        "manifests",
        json!({"name": "m", "target": "always()", "platform": host_platform(), "archive": b64(&archive)}),
    )
    .expect(400);
}

#[test]
fn replicas_starting_together_on_an_empty_database_migrate_it_once() {
    let db = PgDatabase::fresh();
    let starters: Vec<_> = (0..3)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                Server::with(Settings {
                    postgres: Some(db),
                    ..Settings::default()
                })
            })
        })
        .collect();
    let servers: Vec<Server> = starters.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        db.rows("SELECT version FROM schema_version"),
        vec![vec!["11".to_string()]]
    );
    for s in &servers {
        request("GET", &s.url("health"), &[], None).expect(200);
    }
    let a1 = servers[2].dev_admin(1, "PermAdmin");
    servers[0].get(&a1, "investigators/me").expect(200);
}

/// What must hold in the database whatever was killed when: no manifest without its entries,
/// no entry without its whole body.
fn assert_consistent(db: &PgDatabase) {
    let broken = db.rows(
        "SELECT 'manifest without entries', id::text FROM manifests m
           WHERE NOT EXISTS (SELECT 1 FROM manifest_files f WHERE f.manifest_id = m.id)
         UNION ALL
         SELECT 'entry without body', f.sha256 FROM manifest_files f
           WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = f.sha256)
         UNION ALL
         SELECT 'archive without body', m.archive_sha256 FROM manifests m
           WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = m.archive_sha256)
         UNION ALL
         SELECT 'body missing chunks', b.sha256 FROM blobs b
           WHERE (SELECT COUNT(*) FROM blob_chunks c WHERE c.sha256 = b.sha256)
                 <> GREATEST(1, (b.size + 1048575) / 1048576)",
    );
    assert!(broken.is_empty(), "{broken:?}");
}

#[test]
fn a_replica_killed_mid_upload_leaves_the_database_whole_and_the_others_serving() {
    let mut r = replicas(2);
    let (a1, a2) = two_admins(&r[0]);
    let (_, key) = r[1].enabled_loader(&a1, "host-1", None);
    let db = r[0].postgres().unwrap().clone();
    // 24 MiB that do not compress: an upload that takes a while to arrive and to store.
    let big = mig_test_support::noise(24 << 20);
    let archive = targz(&[("m/mig-agent", &big), ("m/configuration", b"[agent]\n")]);
    let body = json!({"name": "big", "target": "true", "platform": host_platform(), "archive": b64(&archive)});
    for delay_ms in [30u64, 150, 400, 900, 1600] {
        let url = r[0].url("manifests");
        let auth = a1.auth(&r[0].audience());
        let sent = body.to_string().into_bytes();
        let upload = std::thread::spawn(move || {
            ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build(),
            )
            .post(&url)
            .header(auth.0, &auth.1)
            .send(&sent[..])
            .map(|r| r.status().as_u16())
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        r[0].kill();
        let _ = upload.join().unwrap();
        assert_consistent(&db);
        // B serves on, and takes writes.
        request("GET", &r[1].url("health"), &[], None).expect(200);
        r[0].launch();
    }
    // The same archive, uploaded whole on B, signed, served by A from the database.
    let id = r[1].create_manifest(&a1, "big", "true", &archive)["id"]
        .as_u64()
        .unwrap();
    r[0].sign_manifest(&a1, id).expect(200);
    r[1].sign_manifest(&a2, id).expect(200);
    assert_eq!(serial(poll(&r[1], &key).expect(200)), id);
    let got = r[0]
        .loader_get(&key, &format!("loader/files/{}", sha256_hex(&big)), &[])
        .expect(200);
    assert!(
        got.body == big,
        "the body A fetched from the database differs"
    );
    assert_consistent(&db);
}

#[test]
fn the_database_stopped_under_load_answers_503_then_recovers_with_no_acknowledged_write_lost() {
    // Its own cluster: stopping the shared one would stop the other tests' databases.
    let cluster = Arc::new(PgCluster::start());
    let r = replicas_on(PgDatabase::create(cluster.clone()), 2);
    let (a1, a2) = two_admins(&r[0]);
    let (_, key) = r[0].enabled_loader(&a1, "host-1", None);
    let id = active_manifest(&r[0], &[&a1, &a2], "m", "true");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(Mutex::new(Vec::<String>::new()));
    // An administrator creating loaders on A, a loader polling B, both until told to stop.
    let writer = {
        let (url, stop, acked, unavailable, other) = (
            r[0].url("loaders"),
            stop.clone(),
            acked.clone(),
            unavailable.clone(),
            other.clone(),
        );
        let (a1, audience) = (Admin::dev(1), r[0].audience());
        std::thread::spawn(move || {
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let name = format!("w-{i}");
                let body = json!({ "name": name }).to_string().into_bytes();
                let reply = request("POST", &url, &[a1.auth(&audience)], Some(body));
                match reply.status {
                    201 => acked.lock().unwrap().push(name),
                    503 => {
                        unavailable.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => other.lock().unwrap().push(reply.text()),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let poller = {
        let (url, stop, unavailable, other) = (
            r[1].url("loader/manifest"),
            stop.clone(),
            unavailable.clone(),
            other.clone(),
        );
        let key = key.clone();
        std::thread::spawn(move || {
            let body = manifest_request("h", &[]).to_string().into_bytes();
            while !stop.load(Ordering::SeqCst) {
                let reply = request(
                    "POST",
                    &url,
                    &[("X-LOADERKEY", key.clone())],
                    Some(body.clone()),
                );
                match reply.status {
                    200 => {}
                    503 => {
                        assert!(
                            reply.message().contains("cannot reach its database"),
                            "{}",
                            reply.text()
                        );
                        unavailable.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => other.lock().unwrap().push(reply.text()),
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let progress = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "no progress; log:\n{}",
                r[0].log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    progress(5);
    cluster.stop();
    let down = Instant::now();
    while unavailable.load(Ordering::SeqCst) < 4 && down.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let health = request("GET", &r[1].url("health"), &[], None);
    assert_eq!(health.status, 503, "{}", health.text());
    cluster.restart();
    let before = acked.lock().unwrap().len();
    progress(before + 5);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    poller.join().unwrap();
    assert!(
        unavailable.load(Ordering::SeqCst) >= 4,
        "no 503 while the database was down"
    );
    assert!(
        other.lock().unwrap().is_empty(),
        "{:?}",
        other.lock().unwrap()
    );
    // Every acknowledged write is there, and both replicas serve again.
    let stored: Vec<String> = r[1]
        .get(&a1, "search?type=loader&limit=1000")
        .expect(200)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    for name in acked.lock().unwrap().iter() {
        assert!(stored.contains(name), "acknowledged loader {name} lost");
    }
    assert_eq!(serial(poll(&r[0], &key).expect(200)), id);
    request("GET", &r[0].url("health"), &[], None).expect(200);
}

#[test]
fn tls_to_postgresql_is_required_and_verified_against_the_configured_ca() {
    // The cluster takes TCP connections over TLS only.
    let cluster = Arc::new(PgCluster::start_tls());
    let db = PgDatabase::create(cluster.clone());
    let srv = Server::with(Settings {
        postgres: Some(db.clone()),
        ..Settings::default()
    });
    request("GET", &srv.url("health"), &[], None).expect(200);
    let a1 = srv.dev_admin(1, "PermAdmin");
    srv.get(&a1, "investigators/me").expect(200);
    // What the server saw: every one of mig-api's connections encrypted.
    let seen = db.rows(
        "SELECT COUNT(*) FILTER (WHERE s.ssl), COUNT(*) FILTER (WHERE NOT s.ssl)
           FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
          WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
    );
    let (tls, plain): (u32, u32) = (seen[0][0].parse().unwrap(), seen[0][1].parse().unwrap());
    assert!(tls >= 1 && plain == 0, "{seen:?}");

    // Another CA, no CA, and sslmode=require without a CA: refused, each saying why.
    let dir = tempfile::tempdir().unwrap();
    let other = mig_test_support::postgres::make_ca(dir.path(), "other");
    let key = dev_key_path("admin2.pub.asc");
    for (database, why) in [
        (
            format!("url = {}\ncafile = {}\n", db.url(), other.display()),
            "certificate",
        ),
        (format!("url = {}\n", db.url()), "no encryption"),
        (
            format!("url = {}?sslmode=require\n", db.url()),
            "sslmode=require needs the CA",
        ),
    ] {
        let cfg = dir.path().join("api.cfg");
        std::fs::write(
            &cfg,
            format!(
                "[database]\npath = {}\n{database}",
                dir.path().join("x.db").display()
            ),
        )
        .unwrap();
        let mut c = std::process::Command::new(BIN);
        c.arg("--config")
            .arg(&cfg)
            .args(["investigator", "add", "--name", "admin2", "--pubkey"]);
        c.arg(&key).args(["--perms", "PermAdmin"]);
        let out = mig_test_support::run(c, None, Duration::from_secs(60));
        assert!(!out.success(), "{database}: {out}");
        assert!(out.stderr.contains(why), "{database}: {out}");
    }
}

#[test]
fn replicas_sent_sigterm_under_load_exit_0_and_write_every_lastseen() {
    let mut r = replicas(2);
    let (a1, a2) = two_admins(&r[0]);
    active_manifest(&r[0], &[&a1, &a2], "m", "true");
    // Four loaders polling each replica, one thread each, until the replica has gone: each poll
    // after the first is answered from memory, its `lastseen` held there until a flush.
    let stopping = Arc::new(AtomicBool::new(false));
    let mut pollers = Vec::new();
    for (n, srv) in r.iter().enumerate() {
        for i in 0..4 {
            let (lid, key) = srv.enabled_loader(&a1, &format!("host-{n}-{i}"), None);
            let url = srv.url("loader/manifest");
            let stopping = stopping.clone();
            pollers.push(std::thread::spawn(move || {
                let body = manifest_request("h", &[]).to_string().into_bytes();
                let (mut answered, mut last_sent, mut failures) = (0u32, None, Vec::new());
                loop {
                    let sent = Timestamp::now();
                    let headers = [("X-LOADERKEY", key.clone())];
                    match try_request("POST", &url, &headers, Some(body.clone())) {
                        Ok(reply) if reply.status == 200 => {
                            answered += 1;
                            last_sent = Some(sent);
                        }
                        Ok(reply) => failures.push(format!("{}: {}", reply.status, reply.text())),
                        // Refused or reset: the replica stopped accepting.
                        Err(_) if stopping.load(Ordering::SeqCst) => break,
                        Err(e) => failures.push(e),
                    }
                }
                (lid, answered, last_sent, failures)
            }));
        }
    }
    // Load on both: every loader answered many times, so its latest `lastseen` is in memory.
    let deadline = Instant::now() + Duration::from_secs(120);
    while r.iter().map(|s| s.poll_cache_hits()).min().unwrap() < 200 {
        assert!(Instant::now() < deadline, "no load; log:\n{}", r[0].log());
        std::thread::sleep(Duration::from_millis(50));
    }
    stopping.store(true, Ordering::SeqCst);
    for srv in r.iter_mut() {
        let status = srv.terminate();
        let log = srv.log();
        assert_eq!(status.code(), Some(0), "{status}; log:\n{log}");
        assert!(!log.contains("panicked"), "log:\n{log}");
        assert!(log.contains("event=stopping signal=SIGTERM"), "log:\n{log}");
        assert!(
            log.contains("event=stopped lastseen_written="),
            "log:\n{log}"
        );
    }
    let db = r[0].postgres().unwrap();
    for p in pollers {
        let (lid, answered, last_sent, failures) = p.join().unwrap();
        assert!(failures.is_empty(), "loader {lid}: {failures:?}");
        assert!(answered > 1, "loader {lid} was answered {answered} times");
        let last_sent = last_sent.unwrap().0;
        let stored = &db.rows(&format!("SELECT lastseen FROM loaders WHERE id = {lid}"))[0][0];
        let stored: u64 = stored.parse().unwrap_or(0);
        assert!(
            stored >= last_sent,
            "loader {lid}: lastseen {stored} in the database, its last answered poll was sent at {last_sent}"
        );
    }
}
