//! The database survives a kill during writes: every acknowledged write is there after a
//! restart, the file passes SQLite's integrity check, and every manifest is whole.

mod common;

use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[test]
fn a_kill_during_writes_loses_no_acknowledged_write_and_leaves_no_half_manifest() {
    let mut srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let base = srv.base_url.clone();
    let audience = srv.audience();
    let stop = Arc::new(AtomicBool::new(false));
    let acked_loaders = Arc::new(Mutex::new(Vec::<String>::new()));
    let acked_manifests = Arc::new(Mutex::new(Vec::<u64>::new()));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (stop, acked_loaders, acked_manifests) =
            (stop.clone(), acked_loaders.clone(), acked_manifests.clone());
        let (base, audience) = (base.clone(), audience.clone());
        let admin = if w == 0 { Admin::dev(1) } else { Admin::dev(2) };
        writers.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let token = ("X-PGPAUTHORIZATION", admin.token(&audience));
                // Connection errors are expected once the server is killed.
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                if w == 2 {
                    let (archive, _) = standard_archive(&format!("d{i}"));
                    let body = json!({"name": format!("d{i}"), "target": "true",
                        "platform": host_platform(), "archive": b64(&archive)});
                    let r = agent
                        .post(format!("{base}manifests"))
                        .header(token.0, &token.1)
                        .send_json(&body);
                    if let Ok(mut r) = r {
                        if r.status() == 201 {
                            let v: serde_json::Value = r.body_mut().read_json().unwrap();
                            acked_manifests
                                .lock()
                                .unwrap()
                                .push(v["id"].as_u64().unwrap());
                        }
                    }
                } else {
                    let name = format!("w{w}-{i}");
                    let r = agent
                        .post(format!("{base}loaders"))
                        .header(token.0, &token.1)
                        .send_json(json!({ "name": name }));
                    if matches!(r, Ok(ref r) if r.status() == 201) {
                        acked_loaders.lock().unwrap().push(name);
                    }
                }
            }
        }));
    }
    // Let the writers get going, then pull the plug mid-stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while acked_loaders.lock().unwrap().len() < 40 || acked_manifests.lock().unwrap().len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "writers made no progress; log:\n{}",
            srv.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    srv.kill();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    // SQLite's file is the API's own: its integrity is checked here. PostgreSQL's is the
    // server's, which the killed replica never wrote directly.
    if srv.postgres().is_none() {
        assert_eq!(
            srv.sql("PRAGMA integrity_check"),
            vec![vec!["ok".to_string()]]
        );
    }
    srv.restart();
    let loaders = srv
        .get(&a1, "search?type=loader&limit=1000")
        .expect(200)
        .json();
    let names: Vec<&str> = loaders
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    for n in acked_loaders.lock().unwrap().iter() {
        assert!(names.contains(&n.as_str()), "acknowledged loader {n} lost");
    }
    let manifests = srv
        .get(&a1, "search?type=manifest&limit=1000")
        .expect(200)
        .json();
    let manifests = manifests.as_array().unwrap();
    for id in acked_manifests.lock().unwrap().iter() {
        assert!(
            manifests.iter().any(|m| m["id"] == *id),
            "manifest {id} lost"
        );
    }
    // Every manifest that exists is whole: statement, entries and file bodies.
    for m in manifests {
        let id = m["id"].as_u64().unwrap();
        assert_eq!(m["entries"].as_array().unwrap().len(), 3, "{m}");
        let st =
            mig_protocol::statement::Statement::parse(m["statement"].as_str().unwrap().as_bytes())
                .unwrap();
        assert_eq!(st.serial.get(), id);
        let archive = srv.get(&a1, &format!("manifests/{id}/archive")).expect(200);
        assert!(!archive.body.is_empty());
    }
    // And the restarted server serves them: the last one can be signed and fetched.
    let last = manifests[0]["id"].as_u64().unwrap();
    srv.sign_manifest(&a1, last).expect(200);
    srv.sign_manifest(&a2, last).expect(200);
    let (_, key) = srv.enabled_loader(&a1, "after-crash", None);
    let r = srv
        .loader(
            &key,
            "POST",
            "loader/manifest",
            Some(manifest_request("h", &[])),
        )
        .expect(200)
        .json();
    let st = mig_protocol::statement::Statement::parse(r["statement"].as_str().unwrap().as_bytes())
        .unwrap();
    for e in &st.entries {
        let body = srv
            .loader_get(&key, &format!("loader/files/{}", e.sha256), &[])
            .expect(200);
        assert_eq!(sha256_hex(&body.body), e.sha256.as_str());
    }
}
