//! Starting mig-api: the README's first command, configuration errors, the bootstrap command,
//! health, metrics and the structured log.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn no_arguments_serves_on_1664_with_a_new_database_and_prints_the_bootstrap_hint() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.push(line.clone());
            if line.starts_with("mig-api listening on ") {
                let _ = tx.send(seen.clone());
            }
        }
    });
    let lines = rx.recv_timeout(Duration::from_secs(120));
    let health = lines
        .as_ref()
        .ok()
        .map(|_| request("GET", "http://127.0.0.1:1664/api/v2/health", &[], None));
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.expect("no listening line: is port 1664 taken on this machine?");
    let all = lines.join("\n");
    assert!(
        all.contains("mig-api listening on http://127.0.0.1:1664/api/v2/"),
        "{all}"
    );
    assert!(
        all.contains("mig-api investigator add --name NAME --pubkey")
            && all.contains("--perms PermAdmin,PermManifest,PermLoader"),
        "{all}"
    );
    assert!(dir.path().join("mig-api.db").exists());
    let health = health.unwrap().expect(200);
    assert_eq!(health.json(), serde_json::json!({"status": "ok"}));
}

#[test]
fn a_bad_configuration_stops_the_start_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        (
            "[manifest]\nrequiredsignatures = 0\n",
            "api.cfg:2: requiredsignatures = 0",
        ),
        (
            "[server]\nlisten = 127.0.0.1:0\nport = 4\n",
            "api.cfg:3: unknown key \"port\"",
        ),
        ("[limits]\nentries = many\n", "api.cfg:2: entries"),
    ] {
        let cfg = dir.path().join("api.cfg");
        std::fs::write(&cfg, text).unwrap();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{text:?}: {err}");
    }
    let out = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn investigator_add_bootstraps_the_first_administrator_and_the_hint_disappears() {
    let srv = Server::start();
    let admin = srv.dev_admin(1, "PermAdmin,PermManifest,PermLoader");
    let me = srv.get(&admin, "investigators/me").expect(200).json();
    assert_eq!(me["id"], admin.id);
    assert_eq!(
        me["fingerprint"],
        "37050AE08CB33351018A809EFD575A3E1CEB348D"
    );
    let perms: Vec<String> = serde_json::from_value(me["permissions"].clone()).unwrap();
    for p in [
        "PermSearch",
        "PermManifestStatus",
        "PermLoaderNew",
        "PermInvestigatorCreate",
    ] {
        assert!(perms.contains(&p.to_string()), "{perms:?}");
    }
    // The same key twice is refused, and so is an unknown permission name.
    let key = srv.dir.path().join("again.asc");
    std::fs::write(&key, &admin.public).unwrap();
    for perms in ["PermAdmin", "PermManifests"] {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&srv.config)
            .args(["investigator", "add", "--name", "again", "--pubkey"])
            .arg(&key)
            .args(["--perms", perms])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{perms}");
    }
    // The out-of-band add reaches the running server at once (it reads keys per request).
    let second = srv.admin("second", "PermManifest");
    srv.get(&second, "investigators/me").expect(200);
}

#[test]
fn health_metrics_and_the_request_log() {
    let srv = Server::start();
    let admin = srv.dev_admin(1, "PermAdmin,PermManifest,PermLoader");
    request("GET", &srv.url("health"), &[], None).expect(200);
    let ip = request("GET", &srv.url("ip"), &[], None).expect(200).text();
    assert_eq!(ip, "127.0.0.1", "the ip route answers the TCP peer");
    srv.get(&admin, "loaders/99").expect(404);
    request(
        "GET",
        &srv.url("investigators/me"),
        &[("X-MIGAPIKEY", "x".repeat(40))],
        None,
    )
    .expect(401);
    let m = request("GET", &srv.url("metrics"), &[], None)
        .expect(200)
        .text();
    assert!(
        m.contains("mig_api_requests_total{endpoint=\"GET /health\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("mig_api_requests_total{endpoint=\"GET /loaders/<id>\",status=\"404\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("mig_api_failures_total{reason=\"unknown_apikey\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("# TYPE mig_api_targeting_evaluations_total counter"),
        "{m}"
    );
    // Prometheus' default path works too.
    let root = srv
        .base_url
        .trim_end_matches('/')
        .trim_end_matches("/api/v2");
    let m2 = request("GET", &format!("{root}/metrics"), &[], None)
        .expect(200)
        .text();
    assert!(m2.contains("mig_api_requests_total"));
    let log = srv.log();
    let line = log
        .lines()
        .find(|l| l.contains("event=request") && l.contains("status=404"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("level=warn"), "{line}");
    assert!(
        line.contains(&format!("who=investigator:{}", admin.id)),
        "{line}"
    );
    assert!(line.contains("endpoint=\"GET /loaders/<id>\""), "{line}");
    assert!(
        line.contains("detail=\"loader 99 does not exist\""),
        "{line}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("reason=unknown_apikey"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("status=401"), "{line}");
}

#[test]
fn authentication_off_is_announced_and_every_request_has_every_permission() {
    let srv = Server::with(Settings {
        auth: false,
        required_signatures: 1,
        ..Settings::default()
    });
    let nobody = Admin::generated("nobody");
    let me = request("GET", &srv.url("investigators/me"), &[], None)
        .expect(200)
        .json();
    assert_eq!(me["id"], 0);
    assert!(srv.log().contains("event=authentication_disabled"));
    // Signatures are still verified: they count for the active investigator who made them.
    let signer = srv.admin("signer", "PermManifest");
    let (archive, _) = standard_archive("noauth");
    let m = request(
        "POST",
        &srv.url("manifests"),
        &[],
        Some(
            serde_json::json!({"name": "m", "target": "true", "platform": host_platform(), "archive": b64(&archive)})
                .to_string()
                .into_bytes(),
        ),
    )
    .expect(201)
    .json();
    let id = m["id"].as_u64().unwrap();
    let st = request(
        "GET",
        &srv.url(&format!("manifests/{id}/statement")),
        &[],
        None,
    )
    .body;
    let post = |sig: String| {
        request(
            "POST",
            &srv.url(&format!("manifests/{id}/signatures")),
            &[],
            Some(
                serde_json::json!({ "signature": sig })
                    .to_string()
                    .into_bytes(),
            ),
        )
    };
    post(nobody.sign(&st)).expect(400);
    let r = post(signer.sign(&st)).expect(200).json();
    assert_eq!(r["status"], "active");
    assert_eq!(r["signers"], serde_json::json!(["signer"]));
}
