//! A full disk under mig-api: its database and blob store on a small tmpfs of the test's own
//! (mounting needs root, as CI has). An upload once the disk is full is 507 with a message that
//! says so, nothing of it is stored, everything stored before reads back the same, and once space
//! is freed the same upload succeeds.

mod common;

use common::*;
use mig_test_support::tmpfs::Tmpfs;
use serde_json::json;

#[test]
fn an_upload_onto_a_full_disk_is_507_and_loses_nothing_stored_before() {
    let work = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&work.path().join("data"), 16 * 1024 * 1024);
    let srv = Server::with(Settings {
        data_dir: Some(disk.path().to_path_buf()),
        ..Settings::default()
    });
    let (a1, a2) = two_admins(&srv);
    let id = active_manifest(&srv, &[&a1, &a2], "before", "true");
    let record = srv.get(&a1, &format!("manifests/{id}")).expect(200).json();
    let archive = srv
        .get(&a1, &format!("manifests/{id}/archive"))
        .expect(200)
        .body;
    let listed = srv.get(&a1, "search?type=manifest").expect(200).json();

    let filler = disk.fill("filler");
    assert!(
        disk.free() < 4096,
        "the disk is full: {} bytes free",
        disk.free()
    );
    let (upload, _) = standard_archive("during");
    let body = json!({"name": "during", "target": "true", "platform": host_platform(),
        "archive": b64(&upload)});
    let full = srv.post(&a1, "manifests", body.clone()).expect(507);
    assert!(
        full.message().contains("storage is full") && full.message().contains("nothing"),
        "{}",
        full.message()
    );
    assert!(
        srv.log().contains("No space left on device"),
        "the log names the cause:\n{}",
        srv.log()
    );
    // Tokens are remembered in memory while the database cannot take them: reads go on, and a
    // token is still accepted once.
    assert!(srv.log().contains("event=nonce_in_memory"), "{}", srv.log());
    let token = a1.token(&srv.audience());
    let me = |t: &str| {
        request(
            "GET",
            &srv.url("investigators/me"),
            &[("X-PGPAUTHORIZATION", t.to_string())],
            None,
        )
    };
    me(&token).expect(200);
    assert_eq!(me(&token).expect(401).message(), "token replayed");
    // Everything stored before is there, byte for byte, and nothing of the refused upload is.
    assert_eq!(
        srv.get(&a1, &format!("manifests/{id}")).expect(200).json(),
        record
    );
    assert_eq!(
        srv.get(&a1, &format!("manifests/{id}/archive"))
            .expect(200)
            .body,
        archive
    );
    assert_eq!(
        srv.get(&a1, "search?type=manifest").expect(200).json(),
        listed
    );
    let metrics = srv.get(&a1, "metrics").text();
    assert!(
        metrics.contains("reason=\"storage_full\""),
        "counted by reason:\n{metrics}"
    );

    std::fs::remove_file(filler).unwrap();
    let created = srv.post(&a1, "manifests", body).expect(201).json();
    assert_eq!(created["name"], "during");
    let n = srv.get(&a1, "search?type=manifest").expect(200).json();
    assert_eq!(n.as_array().map(Vec::len), Some(2), "{n}");
    let check = rusqlite::Connection::open(srv.db_path()).unwrap();
    let verdict: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
}
