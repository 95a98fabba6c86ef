//! Loaders: keys, administrator settings, and the loader endpoints (manifest selection through
//! the WASM engine, expectenv, file bodies with Range/ETag, reports).

mod common;

use common::*;
use mig_protocol::statement::Statement;
use serde_json::json;

#[test]
fn a_new_loader_is_disabled_and_its_key_is_shown_once() {
    let srv = Server::start();
    let (a, _) = two_admins(&srv);
    let r = srv
        .post(&a, "loaders", json!({"name": "corbomite"}))
        .expect(201)
        .json();
    let key = r["key"].as_str().unwrap();
    assert_eq!(key.len(), 40);
    assert!(key.bytes().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(r["loader"]["enabled"], false);
    assert_eq!(r["loader"]["prefix"], &key[..8]);
    let id = r["loader"]["id"].as_u64().unwrap();
    let rec = srv.get(&a, &format!("loaders/{id}")).expect(200);
    assert!(
        !rec.text().contains(&key[8..]),
        "the secret is never shown again"
    );
    // Nothing but a salted hash is stored.
    let db = std::fs::read(srv.db_path()).unwrap_or_default();
    let wal = std::fs::read(srv.db_path().with_extension("db-wal")).unwrap_or_default();
    let needle = &key.as_bytes()[8..];
    for bytes in [db, wal] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    }
    let r = srv
        .loader(
            key,
            "POST",
            "loader/manifest",
            Some(manifest_request("h", &[])),
        )
        .expect(401);
    assert_eq!(r.message(), "loader authentication failed");
    assert!(srv.log().contains("reason=loader_disabled"));
    srv.post(&a, "loaders", json!({"name": "corbomite"}))
        .expect(409);
    srv.post(&a, "loaders", json!({"name": ""})).expect(400);
    let r = srv
        .post(
            &a,
            "loaders",
            json!({"name": "x", "expectenv": "env#>>'{os}' ="}),
        )
        .expect(400);
    assert!(r.message().contains("expectenv"), "{}", r.text());
}

#[test]
fn unknown_prefix_wrong_secret_and_garbage_keys_get_the_same_401() {
    let srv = Server::start();
    let (a, _) = two_admins(&srv);
    let (_, key) = srv.enabled_loader(&a, "l", None);
    let body = Some(manifest_request("h", &[]));
    let wrong_secret = format!("{}{}", &key[..8], "Q".repeat(32));
    let unknown_prefix = format!("QQQQQQQQ{}", &key[8..]);
    let mut messages = Vec::new();
    for k in [wrong_secret.as_str(), unknown_prefix.as_str(), "short", ""] {
        let r = srv
            .loader(k, "POST", "loader/manifest", body.clone())
            .expect(401);
        messages.push(r.message());
    }
    let r = request(
        "POST",
        &srv.url("loader/manifest"),
        &[],
        Some(b"{}".to_vec()),
    )
    .expect(401);
    messages.push(r.message());
    assert!(
        messages.iter().all(|m| m == "loader authentication failed"),
        "{messages:?}"
    );
    let log = srv.log();
    for reason in [
        "wrong_loader_secret",
        "unknown_loader_prefix",
        "malformed_loader_key",
        "missing_loader_key",
    ] {
        assert!(log.contains(&format!("reason={reason}")), "{reason}");
    }
    let m = request("GET", &srv.url("metrics"), &[], None).text();
    assert!(
        m.contains("mig_api_failures_total{reason=\"wrong_loader_secret\"} 1"),
        "{m}"
    );
}

#[test]
fn the_newest_active_manifest_whose_target_matches_is_selected() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (lid, key) = srv.enabled_loader(&a1, "corbomite", None);
    let ask = |tags: &[(&str, &str)]| {
        srv.loader(
            &key,
            "POST",
            "loader/manifest",
            Some(manifest_request("corbomite.internal", tags)),
        )
    };
    let r = ask(&[]).expect(404);
    assert!(r.message().contains("no active manifest"), "{}", r.text());
    let old = active_manifest(&srv, &[&a1, &a2], "old", "tags#>>'{operator}'='myorg'");
    let newer = active_manifest(&srv, &[&a1, &a2], "newer", "tags#>>'{operator}'='myorg'");
    let other = active_manifest(&srv, &[&a1, &a2], "other", "tags#>>'{operator}'='other'");
    // Staged manifests are never served.
    let (archive, _) = standard_archive("staged");
    srv.create_manifest(&a1, "staged", "true", &archive);
    assert!(old < newer && newer < other);
    let serial = |r: Reply| {
        let st = r.json()["statement"].as_str().unwrap().to_string();
        mig_protocol::statement::Statement::parse(st.as_bytes())
            .unwrap()
            .serial
            .get()
    };
    assert_eq!(serial(ask(&[("operator", "myorg")]).expect(200)), newer);
    assert_eq!(serial(ask(&[("operator", "other")]).expect(200)), other);
    ask(&[("operator", "nobody")]).expect(404);
    // Disabling the newest falls back to the previous one.
    srv.post(
        &a1,
        &format!("manifests/{newer}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    assert_eq!(serial(ask(&[("operator", "myorg")]).expect(200)), old);
    // What the loader reported is recorded.
    let rec = srv.get(&a1, &format!("loaders/{lid}")).expect(200).json();
    assert_eq!(rec["agentname"], "corbomite.internal");
    assert_eq!(rec["tags"], json!({"operator": "myorg"}));
    assert_eq!(rec["environment"]["ident"], "Debian 12");
    assert!(rec["lastseen"].is_string());
    let m = request("GET", &srv.url("metrics"), &[], None).text();
    assert!(
        m.contains("mig_api_selections_total{result=\"selected\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("mig_api_selections_total{result=\"none\"} 2"),
        "{m}"
    );
}

#[test]
fn a_manifest_for_another_platform_is_not_selected() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (_, key) = srv.enabled_loader(&a1, "l", None);
    let windows = json!({"os": "windows", "arch": "amd64"});
    active_manifest_for(&srv, &[&a1, &a2], "win", "true", windows);
    srv.loader(
        &key,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[])),
    )
    .expect(404);
}

#[test]
fn each_architecture_gets_its_own_manifest_in_go_spelling() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let mut names = std::collections::BTreeMap::new();
    for arch in ["amd64", "arm64", "arm"] {
        let platform = json!({"os": "linux", "arch": arch});
        active_manifest_for(&srv, &[&a1, &a2], &format!("for {arch}"), "true", platform);
        names.insert(arch, format!("for {arch}"));
    }
    for arch in ["amd64", "arm64", "arm", "386"] {
        let (_, key) = srv.enabled_loader(&a1, &format!("l-{arch}"), None);
        let mut req = manifest_request("h", &[]);
        req["agent"]["environment"]["arch"] = json!(arch);
        let r = srv.loader(&key, "POST", "loader/manifest", Some(req));
        match names.get(arch) {
            Some(name) => {
                let st = r.expect(200).json()["statement"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let st = Statement::parse(st.as_bytes()).unwrap();
                assert_eq!(&st.name, name);
                assert_eq!(st.platform.arch, arch);
            }
            None => {
                r.expect(404);
            }
        }
    }
}

/// Windows and macOS manifests beside Linux ones (issue 25): each platform, in Go's spelling, is
/// offered only its own manifest, and a platform without one (windows/arm64, darwin/386) none;
/// the same OS with another architecture, or the same architecture on another OS, never.
#[test]
fn windows_and_macos_loaders_get_only_their_own_platform_s_manifest() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let platforms = [
        ("linux", "amd64"),
        ("linux", "arm64"),
        ("linux", "arm"),
        ("darwin", "amd64"),
        ("darwin", "arm64"),
        ("windows", "amd64"),
    ];
    for (os, arch) in platforms {
        let id = active_manifest_for(
            &srv,
            &[&a1, &a2],
            &format!("for {os}/{arch}"),
            "true",
            json!({"os": os, "arch": arch}),
        );
        let rec = srv.get(&a1, &format!("manifests/{id}")).expect(200).json();
        assert_eq!(rec["platform"], json!({"os": os, "arch": arch}));
    }
    for (os, arch) in platforms
        .into_iter()
        .chain([("windows", "arm64"), ("darwin", "386")])
    {
        let (_, key) = srv.enabled_loader(&a1, &format!("l-{os}-{arch}"), None);
        let mut req = manifest_request("h", &[]);
        req["agent"]["environment"]["os"] = json!(os);
        req["agent"]["environment"]["arch"] = json!(arch);
        req["agent"]["queueloc"] = json!(format!("{os}.h"));
        let r = srv.loader(&key, "POST", "loader/manifest", Some(req));
        if platforms.contains(&(os, arch)) {
            let st = r.expect(200).json()["statement"]
                .as_str()
                .unwrap()
                .to_string();
            let st = Statement::parse(st.as_bytes()).unwrap();
            assert_eq!(st.name, format!("for {os}/{arch}"));
            assert_eq!(
                (st.platform.os.as_str(), st.platform.arch.as_str()),
                (os, arch)
            );
        } else {
            r.expect(404);
        }
    }
}

#[test]
fn expectenv_mismatch_is_403_and_attributes_are_administrator_owned() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (lid, key) = srv.enabled_loader(&a1, "l", Some("tags#>>'{operator}'='myorg'"));
    active_manifest(&srv, &[&a1, &a2], "m", "attributes#>>'{group}'='canary'");
    let ask = |tags: &[(&str, &str)]| {
        srv.loader(
            &key,
            "POST",
            "loader/manifest",
            Some(manifest_request("h", tags)),
        )
    };
    let r = ask(&[("operator", "evil")]).expect(403);
    assert!(r.message().contains("expectenv"), "{}", r.text());
    // The environment is met but no manifest targets the loader yet: attributes are not
    // something a loader can report.
    ask(&[("operator", "myorg"), ("group", "canary")]).expect(404);
    let rec = srv
        .post(
            &a1,
            &format!("loaders/{lid}/attributes"),
            json!({"attributes": {"group": "canary"}}),
        )
        .expect(200)
        .json();
    assert_eq!(rec["attributes"], json!({"group": "canary"}));
    ask(&[("operator", "myorg")]).expect(200);
    ask(&[("operator", "evil")]).expect(403);
    // Clearing expectenv lifts the check.
    let rec = srv
        .post(
            &a1,
            &format!("loaders/{lid}/expectenv"),
            json!({"expectenv": ""}),
        )
        .expect(200)
        .json();
    assert_eq!(rec["expectenv"], serde_json::Value::Null);
    ask(&[("operator", "evil")]).expect(200);
    let r = srv
        .post(
            &a1,
            &format!("loaders/{lid}/expectenv"),
            json!({"expectenv": "env#>>'{os}' IN ("}),
        )
        .expect(400);
    assert!(r.message().contains("expectenv"), "{}", r.text());
    for bad in [
        json!({"attributes": {"bad key": "v"}}),
        json!({"attributes": {"k": "line\nbreak"}}),
    ] {
        srv.post(&a1, &format!("loaders/{lid}/attributes"), bad)
            .expect(400);
    }
    let m = request("GET", &srv.url("metrics"), &[], None).text();
    assert!(
        m.contains("mig_api_selections_total{result=\"expectenv_denied\"} 2"),
        "{m}"
    );
}

#[test]
fn files_are_served_only_from_the_manifest_the_loader_was_given() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (_, key) = srv.enabled_loader(&a1, "l", None);
    let (archive, files) = standard_archive("files");
    let id = srv.create_manifest(&a1, "files", "true", &archive)["id"]
        .as_u64()
        .unwrap();
    let agent_sha = sha256_hex(&files[0].1);
    // Before any manifest was given.
    let r = srv
        .loader_get(&key, &format!("loader/files/{agent_sha}"), &[])
        .expect(403);
    assert!(
        r.message().contains("request loader/manifest first"),
        "{}",
        r.text()
    );
    srv.sign_manifest(&a1, id).expect(200);
    srv.sign_manifest(&a2, id).expect(200);
    srv.loader(
        &key,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[])),
    )
    .expect(200);
    for (name, body) in &files {
        let sha = sha256_hex(body);
        let r = srv
            .loader_get(&key, &format!("loader/files/{sha}"), &[])
            .expect(200);
        assert_eq!(&r.body, body);
        assert_eq!(r.header("etag"), Some(format!("\"{sha}\"")));
        // Secrets (the agent's configuration here) must never be kept by a shared cache.
        let cache = if *name == "configuration" {
            "private, no-store"
        } else {
            "public, max-age=31536000, immutable"
        };
        assert_eq!(r.header("cache-control").as_deref(), Some(cache), "{name}");
        assert_eq!(r.header("accept-ranges").as_deref(), Some("bytes"));
        assert_eq!(r.header("content-length"), Some(body.len().to_string()));
    }
    // A file of another (staged) manifest, a hash of nothing, a malformed hash.
    let (other, other_files) = standard_archive("other");
    srv.create_manifest(&a1, "other", "true", &other);
    let foreign = sha256_hex(&other_files[0].1);
    let r = srv
        .loader_get(&key, &format!("loader/files/{foreign}"), &[])
        .expect(403);
    assert!(r.message().contains(&foreign), "{}", r.text());
    srv.loader_get(&key, &format!("loader/files/{}", "0".repeat(64)), &[])
        .expect(403);
    srv.loader_get(&key, "loader/files/ABC", &[]).expect(400);
    srv.loader_get(&key, &format!("loader/files/{}", "A".repeat(64)), &[])
        .expect(400);
    // Another loader that was given nothing, and no key at all.
    let (_, key2) = srv.enabled_loader(&a1, "l2", None);
    srv.loader_get(&key2, &format!("loader/files/{agent_sha}"), &[])
        .expect(403);
    request(
        "GET",
        &srv.url(&format!("loader/files/{agent_sha}")),
        &[],
        None,
    )
    .expect(401);
    // Disabling the manifest stops its files at once.
    srv.post(
        &a1,
        &format!("manifests/{id}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    let r = srv
        .loader_get(&key, &format!("loader/files/{agent_sha}"), &[])
        .expect(403);
    assert!(r.message().contains("no longer active"), "{}", r.text());
}

#[test]
fn ranges_resume_a_download_and_bad_ranges_are_416() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (_, key) = srv.enabled_loader(&a1, "l", None);
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let archive = targz(&[("m/mig-agent", &body)]);
    srv.give_archive(&[&a1, &a2], &key, "range", &archive);
    let sha = sha256_hex(&body);
    let path = format!("loader/files/{sha}");
    let range = |v: &str| srv.loader_get(&key, &path, &[("Range", v.to_string())]);
    let r = range("bytes=60000-").expect(206);
    assert_eq!(r.body, &body[60000..]);
    assert_eq!(
        r.header("content-range"),
        Some("bytes 60000-99999/100000".into())
    );
    // Streamed from disk (over 64 KiB) and from memory (under).
    let r = range("bytes=1000-").expect(206);
    assert_eq!(r.body, &body[1000..]);
    assert_eq!(r.header("content-length").as_deref(), Some("99000"));
    let r = range("bytes=10-19").expect(206);
    assert_eq!(r.body, &body[10..20]);
    assert_eq!(r.header("content-length").as_deref(), Some("10"));
    let r = range("bytes=99990-200000").expect(206);
    assert_eq!(r.body, &body[99990..]);
    for bad in [
        "bytes=100000-",
        "bytes=5-2",
        "bytes=0-1,5-6",
        "items=0-1",
        "bytes=x-",
    ] {
        let r = range(bad).expect(416);
        assert_eq!(
            r.header("content-range"),
            Some("bytes */100000".into()),
            "{bad}"
        );
    }
    let r = srv
        .loader_get(&key, &path, &[("If-None-Match", format!("\"{sha}\""))])
        .expect(304);
    assert!(r.body.is_empty());
}

/// The front sends file bodies from its cache of verified bytes (api/src/filecache.rs): a blob
/// altered on disk before it was first read is refused with a message that says so; one read
/// before keeps being served as it was verified; with `filecache = 0` Rocket streams them.
#[test]
fn file_bodies_are_served_only_as_verified_and_a_blob_altered_on_disk_is_refused() {
    for cache in [None, Some(0)] {
        let srv = Server::with(Settings {
            limits: cache.map(|c| vec![("filecache", c)]).unwrap_or_default(),
            ..Settings::default()
        });
        let (a1, a2) = two_admins(&srv);
        let (_, key) = srv.enabled_loader(&a1, "l", None);
        let agent: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let config: Vec<u8> = (0..90_000u32).map(|i| (i % 241) as u8).collect();
        let archive = targz(&[("m/mig-agent", &agent), ("m/configuration", &config)]);
        srv.give_archive(&[&a1, &a2], &key, "verified", &archive);
        let blob = |data: &[u8]| srv.dir().join("mig-api-files").join(sha256_hex(data));
        let get =
            |data: &[u8]| srv.loader_get(&key, &format!("loader/files/{}", sha256_hex(data)), &[]);
        assert_eq!(get(&agent).expect(200).body, agent);
        if cache == Some(0) {
            // No cache: streamed by Rocket as stored, the loader's sha256 check the only one.
            assert_eq!(get(&config).expect(200).body, config);
            continue;
        }
        // Read once, so cached; then altered on disk: the verified bytes are still served.
        let mut altered = agent.clone();
        altered[50_000] ^= 1;
        std::fs::write(blob(&agent), &altered).unwrap();
        assert_eq!(get(&agent).expect(200).body, agent);
        // Altered before it was ever read: refused, never served.
        std::fs::write(blob(&config), vec![0u8; config.len()]).unwrap();
        let r = get(&config).expect(500);
        // The network is told no more than of any internal failure; the log says what.
        assert_eq!(
            r.message(),
            "internal error, see the mig-api log",
            "{}",
            r.text()
        );
        let log = std::fs::read_to_string(srv.dir().join("api.log")).unwrap();
        assert!(
            log.contains("event=blob_corrupt"),
            "the corrupt blob is logged"
        );
        assert!(
            log.lines().any(|l| l.contains("event=file_body_failed")
                && l.contains(&sha256_hex(&config))
                && l.contains("altered on disk")),
            "the failed request is logged with the reason:\n{log}"
        );
    }
}

#[test]
fn a_64_mib_member_is_installed_and_streamed_back_exactly() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (_, key) = srv.enabled_loader(&a1, "big", None);
    // Incompressible content, packed by GNU tar and gzip as an administrator would.
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir(&m).unwrap();
    let body = mig_test_support::noise(64 << 20);
    std::fs::write(m.join("mig-agent"), &body).unwrap();
    let out = dir.path().join("m.tar.gz");
    let st = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(dir.path())
        .arg("m")
        .status()
        .unwrap();
    assert!(st.success());
    let archive = std::fs::read(&out).unwrap();
    srv.give_archive(&[&a1, &a2], &key, "big", &archive);
    let sha = sha256_hex(&body);
    let r = srv
        .loader_get(&key, &format!("loader/files/{sha}"), &[])
        .expect(200);
    assert_eq!(r.body.len(), body.len());
    assert_eq!(sha256_hex(&r.body), sha);
}

#[test]
fn reports_are_kept_as_the_loaders_last_result() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (lid, key) = srv.enabled_loader(&a1, "l", None);
    let rec = srv.get(&a1, &format!("loaders/{lid}")).expect(200).json();
    assert_eq!(rec["last_report"], serde_json::Value::Null);
    let poll = || {
        srv.loader(
            &key,
            "POST",
            "loader/manifest",
            Some(manifest_request("l", &[])),
        )
        .expect(200)
    };
    let first = active_manifest(&srv, &[&a1, &a2], "first", "true");
    poll();
    let r = srv
        .loader(&key, "POST", "loader/report", Some(json!({"serial": first, "result": "installed", "message": "ok", "files": {"mig-agent": "ab"}})))
        .expect(200);
    assert_eq!(r.json(), json!({}));
    let second = active_manifest(&srv, &[&a1, &a2], "second", "true");
    poll();
    srv.loader(
        &key,
        "POST",
        "loader/report",
        Some(json!({"serial": second, "result": "rolled_back", "message": "agent unhealthy"})),
    )
    .expect(200);
    let rec = srv.get(&a1, &format!("loaders/{lid}")).expect(200).json();
    assert_eq!(rec["last_report"]["serial"], second);
    assert_eq!(rec["last_report"]["result"], "rolled_back");
    assert_eq!(rec["last_report"]["message"], "agent unhealthy");
    assert!(rec["last_report"]["time"].is_string());
    for bad in [
        json!({"serial": 1, "result": "exploded"}),
        json!({"serial": u64::MAX, "result": "failed"}),
        json!({"result": "installed"}),
        json!([]),
    ] {
        srv.loader(&key, "POST", "loader/report", Some(bad))
            .expect(400);
    }
    srv.loader(
        "x",
        "POST",
        "loader/report",
        Some(json!({"serial": 1, "result": "failed"})),
    )
    .expect(401);
}

#[test]
fn rotating_a_key_keeps_the_prefix_and_retires_the_old_secret() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    active_manifest(&srv, &[&a1, &a2], "m", "true");
    let (lid, old) = srv.enabled_loader(&a1, "l", None);
    srv.loader(
        &old,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[])),
    )
    .expect(200);
    let r = srv
        .post(&a1, &format!("loaders/{lid}/key"), json!({}))
        .expect(200)
        .json();
    let new = r["key"].as_str().unwrap().to_string();
    assert_eq!(&new[..8], &old[..8]);
    assert_ne!(new, old);
    srv.loader(
        &old,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[])),
    )
    .expect(401);
    srv.loader(
        &new,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[])),
    )
    .expect(200);
    // Disabling works at once, too.
    srv.post(
        &a1,
        &format!("loaders/{lid}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    srv.loader(
        &new,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[])),
    )
    .expect(401);
    srv.post(
        &a1,
        &format!("loaders/{lid}/status"),
        json!({"status": "off"}),
    )
    .expect(400);
    srv.post(&a1, "loaders/999/key", json!({})).expect(404);
}

#[test]
fn loader_search_by_id_name_and_agent_name() {
    let srv = Server::start();
    let (a1, _) = two_admins(&srv);
    let (l1, k1) = srv.enabled_loader(&a1, "web-1", None);
    srv.enabled_loader(&a1, "web-2", None);
    srv.enabled_loader(&a1, "db_1", None);
    srv.loader(
        &k1,
        "POST",
        "loader/manifest",
        Some(manifest_request("web1.example.org", &[])),
    )
    .expect(404);
    let names = |q: &str| -> Vec<String> {
        srv.get(&a1, &format!("search?type=loader&{q}"))
            .expect(200)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(""), ["db_1", "web-2", "web-1"]);
    assert_eq!(names("loadername=web%25"), ["web-2", "web-1"]);
    assert_eq!(names("loadername=db_%25"), ["db_1"]);
    assert_eq!(names(&format!("loaderid={l1}")), ["web-1"]);
    assert_eq!(names("agentname=%25.example.org"), ["web-1"]);
    assert_eq!(names("limit=1"), ["db_1"]);
    srv.get(&a1, "search?type=loader&manifestname=x")
        .expect(400);
}

#[test]
fn a_repeated_poll_is_answered_from_memory_and_every_change_is_seen_at_once() {
    use mig_protocol::statement::Statement;
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (lid, key) = srv.enabled_loader(&a1, "poller", None);
    let tags = [("operator", "myorg")];
    let ask = || {
        srv.loader(
            &key,
            "POST",
            "loader/manifest",
            Some(manifest_request("h", &tags)),
        )
    };
    let serial = || {
        let r = ask().expect(200).json();
        let st = r["statement"].as_str().unwrap_or_else(|| panic!("{r}"));
        Statement::parse(st.as_bytes()).unwrap().serial.get()
    };
    let hits = || srv.poll_cache_hits();
    let one = active_manifest(&srv, &[&a1, &a2], "one", "true");
    assert_eq!(serial(), one);
    let before = hits();
    assert_eq!(serial(), one);
    assert_eq!(serial(), one);
    assert_eq!(hits(), before + 2, "the repeats are answered from memory");
    // Another report about itself is not the same poll.
    srv.loader(
        &key,
        "POST",
        "loader/manifest",
        Some(manifest_request("h", &[("operator", "other")])),
    )
    .expect(200);
    assert_eq!(hits(), before + 2);

    // Each change, then at once a poll that must see it.
    let two = active_manifest(&srv, &[&a1, &a2], "two", "true");
    assert_eq!(serial(), two, "a manifest activated");
    srv.post(
        &a1,
        &format!("manifests/{two}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    assert_eq!(serial(), one, "a manifest disabled");
    let path = format!("loaders/{lid}/expectenv");
    srv.post(
        &a1,
        &path,
        json!({"expectenv": "tags#>>'{operator}'='yours'"}),
    )
    .expect(200);
    ask().expect(403);
    srv.post(&a1, &path, json!({"expectenv": ""})).expect(200);
    assert_eq!(serial(), one, "expectenv cleared");
    let canary = active_manifest(
        &srv,
        &[&a1, &a2],
        "canary",
        "attributes#>>'{group}'='canary'",
    );
    assert_eq!(serial(), one);
    srv.post(
        &a1,
        &format!("loaders/{lid}/attributes"),
        json!({"attributes": {"group": "canary"}}),
    )
    .expect(200);
    assert_eq!(serial(), canary, "an attribute set");
    let upload = |answer: bool| {
        srv.post(
            &a1,
            "plugins",
            json!({"name": "flag", "wasm": b64(&wat_plugin("flag", answer, false))}),
        )
    };
    // A target may only call a function some plugin provides: the plugin comes first.
    upload(false).expect(201);
    let flagged = active_manifest(&srv, &[&a1, &a2], "flagged", "flag()");
    assert_eq!(serial(), canary, "flag() is false");
    let delete = || srv.call(&a1, "DELETE", "plugins/flag", None).expect(200);
    delete();
    upload(true).expect(201);
    assert_eq!(serial(), flagged, "a plugin uploaded");
    delete();
    assert_eq!(serial(), canary, "a plugin deleted");
    srv.post(
        &a1,
        &format!("loaders/{lid}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    ask().expect(401);
    srv.post(
        &a1,
        &format!("loaders/{lid}/status"),
        json!({"status": "enabled"}),
    )
    .expect(200);
    assert_eq!(serial(), canary, "the loader enabled again");

    // Requests refused for their credentials change nothing and do not empty the cache.
    assert_eq!(serial(), canary);
    let before = hits();
    let stranger = Admin::generated("stranger");
    srv.post(
        &stranger,
        &format!("manifests/{canary}/status"),
        json!({"status": "disabled"}),
    )
    .expect(401);
    assert_eq!(serial(), canary);
    assert_eq!(hits(), before + 1);

    // Polls answered from memory still move lastseen, in a batch a few seconds later.
    let seen = || srv.get(&a1, &format!("loaders/{lid}")).expect(200).json()["lastseen"].clone();
    let first = seen();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(serial(), canary);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while seen() == first {
        assert!(
            std::time::Instant::now() < deadline,
            "lastseen never moved from {first}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn pbkdf2_runs_at_most_once_per_loader_and_key_even_across_restarts() {
    let mut srv = Server::start();
    let a = srv.dev_admin(1, "PermAdmin,PermManifest,PermLoader");
    let pbkdf2 = |srv: &Server| srv.metric("mig_api_key_pbkdf2_total{key=\"loader\"}");
    let poll = |srv: &Server, key: &str| {
        srv.loader(
            key,
            "POST",
            "loader/manifest",
            Some(manifest_request("h", &[])),
        )
    };
    // A row as MIG's import writes it: its PBKDF2 hash and no fast verifier.
    let (old, old_key) = srv.enabled_loader(&a, "from-mig", None);
    srv.sql(&format!(
        "UPDATE loaders SET keyfast = NULL WHERE id = {old}"
    ));
    // A loader enrolled here carries its verifier from the start.
    let (new, new_key) = srv.enabled_loader(&a, "enrolled", None);
    for _ in 0..2 {
        poll(&srv, &old_key).expect(404);
        poll(&srv, &new_key).expect(404);
    }
    assert_eq!(pbkdf2(&srv), 1, "the imported row's first check only");
    let stored = srv.sql(&format!(
        "SELECT COUNT(*) FROM loaders WHERE keyfast IS NOT NULL AND id IN ({old}, {new})"
    ));
    assert_eq!(stored[0][0], "2", "the imported row learned its verifier");

    // Nothing in memory carries it: a restarted server checks both without PBKDF2.
    srv.restart();
    for _ in 0..2 {
        poll(&srv, &old_key).expect(404);
        poll(&srv, &new_key).expect(404);
    }
    // A wrong secret under a known prefix costs no PBKDF2 either, and is refused.
    let last = if old_key.ends_with('x') { 'y' } else { 'x' };
    poll(&srv, &format!("{}{last}", &old_key[..39])).expect(401);
    // A rotated key: the new one works at once without PBKDF2, the old one is refused.
    let rotated = srv
        .post(&a, &format!("loaders/{old}/key"), json!({}))
        .expect(200)
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    poll(&srv, &old_key).expect(401);
    poll(&srv, &rotated).expect(404);
    assert_eq!(pbkdf2(&srv), 0);
}

#[test]
fn enrolling_enabling_disabling_or_rotating_a_loader_leaves_the_others_answers_in_memory() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (_, key) = srv.enabled_loader(&a1, "known", None);
    let one = active_manifest(&srv, &[&a1, &a2], "one", "true");
    let poll = |key: &str| {
        srv.loader(
            key,
            "POST",
            "loader/manifest",
            Some(manifest_request("h", &[])),
        )
    };
    poll(&key).expect(200);
    let before = srv.poll_cache_hits();
    // An enrolment and an enabling: the known loader's next poll is still answered from memory.
    let (other, other_key) = srv.enabled_loader(&a1, "unrelated", None);
    poll(&key).expect(200);
    assert_eq!(srv.poll_cache_hits(), before + 1, "after enrolling another");
    poll(&other_key).expect(200);
    let rotated = srv
        .post(&a1, &format!("loaders/{other}/key"), json!({}))
        .expect(200)
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    poll(&key).expect(200);
    assert_eq!(
        srv.poll_cache_hits(),
        before + 2,
        "after another's rotation"
    );
    // The changed loader itself: its old key refused, its new one answered.
    poll(&other_key).expect(401);
    poll(&rotated).expect(200);
    srv.post(
        &a1,
        &format!("loaders/{other}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    poll(&rotated).expect(401);
    poll(&key).expect(200);
    assert_eq!(
        srv.poll_cache_hits(),
        before + 3,
        "after another's disabling"
    );

    // A manifest change can change every loader's answer: the kept one is not used.
    srv.post(
        &a1,
        &format!("manifests/{one}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    poll(&key).expect(404);
    assert_eq!(srv.poll_cache_hits(), before + 3, "after a manifest change");
}

#[test]
fn changing_a_loaders_expectenv_or_attributes_leaves_the_others_answers_in_memory() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (_, key) = srv.enabled_loader(&a1, "known", None);
    let (other, other_key) = srv.enabled_loader(&a1, "other", None);
    active_manifest(&srv, &[&a1, &a2], "m", "attributes#>>'{group}'='canary'");
    let poll = |key: &str| {
        srv.loader(
            key,
            "POST",
            "loader/manifest",
            Some(manifest_request("h", &[])),
        )
    };
    poll(&key).expect(404);
    poll(&other_key).expect(404);
    let before = srv.poll_cache_hits();
    // Another loader's attributes: the known loader's answer is still the kept one, and the
    // changed loader's is made again from its new attributes.
    srv.post(
        &a1,
        &format!("loaders/{other}/attributes"),
        json!({"attributes": {"group": "canary"}}),
    )
    .expect(200);
    poll(&key).expect(404);
    assert_eq!(
        srv.poll_cache_hits(),
        before + 1,
        "after another's attributes"
    );
    poll(&other_key).expect(200);
    assert_eq!(
        srv.poll_cache_hits(),
        before + 1,
        "the changed loader's own answer"
    );
    // Another loader's expectenv: the same.
    srv.post(
        &a1,
        &format!("loaders/{other}/expectenv"),
        json!({"expectenv": "tags#>>'{operator}'='myorg'"}),
    )
    .expect(200);
    poll(&key).expect(404);
    assert_eq!(
        srv.poll_cache_hits(),
        before + 2,
        "after another's expectenv"
    );
    poll(&other_key).expect(403);
    assert_eq!(
        srv.poll_cache_hits(),
        before + 2,
        "the changed loader's own answer"
    );
}

#[test]
fn a_full_poll_cache_evicts_its_coldest_loader_not_every_loader() {
    // Three outcomes that give a manifest (poll.rs ENTRY_BYTES = 160 bytes each).
    let srv = Server::with(Settings {
        limits: vec![("pollcache", 3 * 160)],
        ..Settings::default()
    });
    let (a1, a2) = two_admins(&srv);
    active_manifest(&srv, &[&a1, &a2], "one", "true");
    let keys: Vec<String> = (1..=4)
        .map(|n| srv.enabled_loader(&a1, &format!("l{n}"), None).1)
        .collect();
    let poll = |n: usize| {
        srv.loader(
            &keys[n - 1],
            "POST",
            "loader/manifest",
            Some(manifest_request("h", &[])),
        )
        .expect(200)
    };
    let poll_metric = |name: &str| srv.metric(&format!("{name}{{cache=\"poll\"}}"));
    for n in [1, 2, 3, 1, 3] {
        poll(n);
    }
    let hits = srv.poll_cache_hits();
    // A fourth loader makes room by evicting one entry: the cold one (2), not all.
    poll(4);
    assert_eq!(poll_metric("mig_api_cache_evictions_total"), 1);
    assert_eq!(poll_metric("mig_api_cache_entries"), 3);
    for n in [1, 3, 4] {
        poll(n);
    }
    assert_eq!(srv.poll_cache_hits(), hits + 3, "1, 3 and 4 are in memory");
    let misses = poll_metric("mig_api_cache_misses_total");
    poll(2);
    assert_eq!(srv.poll_cache_hits(), hits + 3, "2 was evicted");
    assert_eq!(poll_metric("mig_api_cache_misses_total"), misses + 1);
    assert_eq!(poll_metric("mig_api_cache_hits_total"), hits + 3);
}
