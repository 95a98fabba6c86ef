//! Targeting plugins over HTTP: built-ins listed, uploads validated, stored and loaded again
//! after a restart, hostile plugins contained, removal.

mod common;

use common::*;
use serde_json::json;

fn upload(srv: &Server, a: &Admin, name: &str, wasm: &[u8]) -> Reply {
    srv.post(a, "plugins", json!({"name": name, "wasm": b64(wasm)}))
}

#[test]
fn built_in_plugins_are_listed_and_cannot_be_removed() {
    let srv = Server::start();
    let (a, _) = two_admins(&srv);
    let list = srv.get(&a, "plugins").expect(200).json();
    let builtin: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["builtin"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(builtin.contains(&"rollout"), "{list}");
    let r = srv.call(&a, "DELETE", "plugins/rollout", None).expect(409);
    assert!(r.message().contains("built in"), "{}", r.text());
    srv.call(&a, "DELETE", "plugins/nosuch", None).expect(404);
}

#[test]
fn an_uploaded_plugin_targets_loaders_survives_a_restart_and_can_be_removed() {
    let mut srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let wasm = wat_plugin("always", true, false);
    let rec = upload(&srv, &a1, "always", &wasm).expect(201).json();
    assert_eq!(rec["functions"], json!(["always"]));
    assert_eq!(rec["sha256"], sha256_hex(&wasm));
    assert_eq!(rec["builtin"], false);
    upload(&srv, &a1, "always", &wasm).expect(409);
    let id = active_manifest(
        &srv,
        &[&a1, &a2],
        "plugged",
        "always() AND env#>>'{os}' IS NOT NULL",
    );
    let (_, key) = srv.enabled_loader(&a1, "l", None);
    let serial = |srv: &Server| {
        let r = srv
            .loader(
                &key,
                "POST",
                "loader/manifest",
                Some(manifest_request("h", &[])),
            )
            .expect(200)
            .json();
        mig_protocol::statement::Statement::parse(r["statement"].as_str().unwrap().as_bytes())
            .unwrap()
            .serial
            .get()
    };
    assert_eq!(serial(&srv), id);
    srv.restart();
    assert_eq!(
        serial(&srv),
        id,
        "the stored plugin is loaded again at start"
    );
    let listed = srv.get(&a1, "plugins").expect(200).json();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "always"));
    srv.call(&a1, "DELETE", "plugins/always", None).expect(200);
    srv.loader(
        &key,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[])),
    )
    .expect(404);
    let (archive, _) = standard_archive("x");
    let r = srv
        .post(
            &a1,
            "manifests",
            json!({"name": "m", "target": "always()", "platform": host_platform(), "archive": b64(&archive)}),
        )
        .expect(400);
    assert!(r.message().contains("always"), "{}", r.text());
    srv.restart();
    let listed = srv.get(&a1, "plugins").expect(200).json();
    assert!(!listed
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "always"));
}

#[test]
fn invalid_plugins_are_refused_with_the_reason() {
    let srv = Server::start();
    let (a, _) = two_admins(&srv);
    let r = upload(&srv, &a, "junk", b"not wasm").expect(400);
    assert!(r.message().contains("junk"), "{}", r.text());
    let wasi = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
    )
    .unwrap();
    let r = upload(&srv, &a, "wasi", &wasi).expect(400);
    assert!(
        r.message().contains("wasi_snapshot_preview1"),
        "{}",
        r.text()
    );
    upload(&srv, &a, "bad name!", &wat_plugin("x", true, false)).expect(400);
    srv.post(&a, "plugins", json!({"name": "b64", "wasm": "!!"}))
        .expect(400);
    let list = srv.get(&a, "plugins").expect(200).json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|p| p["builtin"] == true),
        "{list}"
    );
}

#[test]
fn a_plugin_that_spins_makes_only_its_manifest_not_match() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    upload(&srv, &a1, "spin", &wat_plugin("spin", true, true)).expect(201);
    let safe = active_manifest(&srv, &[&a1, &a2], "safe", "true");
    active_manifest(&srv, &[&a1, &a2], "spinning", "spin()");
    let (_, key) = srv.enabled_loader(&a1, "l", None);
    // A different agent name each time: a changed poll is evaluated again (poll.rs).
    for i in 0..3 {
        let r = srv
            .loader(
                &key,
                "POST",
                "loader/manifest",
                Some(manifest_request(&format!("h{i}"), &[])),
            )
            .expect(200)
            .json();
        let st =
            mig_protocol::statement::Statement::parse(r["statement"].as_str().unwrap().as_bytes())
                .unwrap();
        assert_eq!(st.serial.get(), safe);
    }
    request("GET", &srv.url("health"), &[], None).expect(200);
    let m = request("GET", &srv.url("metrics"), &[], None).text();
    let failures: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("mig_api_targeting_failures_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(failures >= 3, "{m}");
}

#[test]
fn a_stored_plugin_that_no_longer_loads_is_logged_and_can_be_removed() {
    let mut srv = Server::start();
    let (a, _) = two_admins(&srv);
    srv.kill();
    // One byte 0x00, in each database's spelling of a blob.
    let blob = if srv.postgres().is_some() {
        "'\\x00'"
    } else {
        "X'00'"
    };
    srv.sql(&format!(
        "INSERT INTO plugins (name, sha256, wasm, created) VALUES ('broken', 'x', {blob}, 0)"
    ));
    srv.launch();
    assert!(
        srv.log().contains("event=plugin_load_failed name=broken"),
        "{}",
        srv.log()
    );
    request("GET", &srv.url("health"), &[], None).expect(200);
    srv.call(&a, "DELETE", "plugins/broken", None).expect(200);
    srv.call(&a, "DELETE", "plugins/broken", None).expect(404);
}
