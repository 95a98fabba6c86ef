//! The seed's walk-through, end to end, with the real binaries: mig-api (requiredsignatures = 2),
//! two administrators driving mig-console (one through GnuPG, one with a key file), and the
//! development mig-loader (built-in threshold 2, admin1 and admin2) installing into a temporary
//! root with a stand-in mig-agent that records its calls. Then the refusals, each leaving the
//! running agent untouched with the reason in the loader's output and in the API's record.
//! Needs the workspace binaries: `cargo build --workspace --bins --all-features` first.

use e2e::host::sha256_hex;
use e2e::world::{bundle, check_installed, World, LINUX_TARGET};
use e2e::ApiOptions;

#[test]
fn walkthrough_installs_then_changes_nothing_then_upgrades_only_what_changed() {
    let w = World::new(ApiOptions::default());
    let files = bundle(&w.host, "v1", "[agent]\nrelay = \"amqp://relay:5671/\"\n");
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let archive = w.d.archive("mig-manifest-int-linux", &borrowed);
    let id =
        w.d.create_manifest("a new manifest", LINUX_TARGET, &archive, ("linux", "amd64"));
    assert_eq!(
        w.d.sign(id, &archive, &[&w.d.admin1]),
        "staged",
        "one signature of two is not enough"
    );
    assert_eq!(w.d.sign(id, &archive, &[&w.d.admin2]), "active");

    // First install.
    let out = w.run_loader();
    out.ok();
    for line in [
        "comparing mig-agent",
        "we have not found",
        "refreshing mig-agent",
        "installing staged file",
    ] {
        assert!(
            out.stdout.contains(line) || out.stderr.contains(line),
            "missing {line:?}:\n{out}"
        );
    }
    check_installed(&w.host.root, &files);
    let calls = w.host.agent_calls();
    assert!(
        calls.contains(&"v1 -u".to_string()),
        "the agent was (re)installed as a service: {calls:?}"
    );
    assert!(
        calls.contains(&"v1 -q pid".to_string()),
        "health was checked: {calls:?}"
    );
    assert_eq!(w.host.running_agent().as_deref(), Some("v1"));
    let report = w.last_report();
    assert_eq!(report["result"], "installed", "{report}");
    assert_eq!(report["serial"], id);
    let record = w.d.loader(w.loader_id);
    assert_eq!(record["environment"]["os"], "linux", "{record}");
    assert!(
        record["agentname"].as_str().is_some_and(|n| !n.is_empty()),
        "{record}"
    );

    // A second run changes nothing.
    let before = w.host.snapshot();
    let calls_before = w.host.agent_calls().len();
    let out = w.run_loader();
    out.ok();
    assert!(
        !out.stdout.contains("refreshing"),
        "nothing to refresh:\n{out}"
    );
    assert_eq!(w.host.snapshot(), before);
    assert!(w.host.agent_calls()[calls_before..]
        .iter()
        .all(|c| c.ends_with("-q pid")));

    // A newer manifest changes the agent and its configuration: only those are fetched.
    let v2 = bundle(&w.host, "v2", "[agent]\nrelay = \"amqp://relay2:5671/\"\n");
    let id2 = w.publish("agent v2", &v2, ("linux", "amd64"), 2);
    assert!(id2 > id);
    let out = w.run_loader();
    out.ok();
    let all = format!("{}{}", out.stdout, out.stderr);
    for changed in ["refreshing mig-agent", "refreshing configuration"] {
        assert!(all.contains(changed), "missing {changed:?}:\n{out}");
    }
    for same in ["mig-loader", "cacert", "agentcert", "agentkey"] {
        assert!(
            !all.contains(&format!("refreshing {same}")),
            "{same} did not change:\n{out}"
        );
    }
    check_installed(&w.host.root, &v2);
    assert_eq!(w.host.running_agent().as_deref(), Some("v2"));
    assert_eq!(w.last_report()["serial"], id2);
}

#[test]
fn disabled_loader_is_refused_and_agent_untouched() {
    let w = World::new(ApiOptions::default());
    w.installed_v1();
    w.d.admin1
        .run(&["loader", &w.loader_id.to_string(), "disable"])
        .ok();
    w.refused("401");
    assert!(
        w.d.api.log().contains("disabled"),
        "the API logs why it refused:\n{}",
        w.d.api.log()
    );
}

#[test]
fn expectenv_mismatch_is_refused_and_agent_untouched() {
    let w = World::new(ApiOptions::default());
    w.installed_v1();
    w.d.admin1
        .run(&[
            "loader",
            &w.loader_id.to_string(),
            "expectenv",
            "tags#>>'{operator}'='otherorg'",
        ])
        .ok();
    w.refused("expectenv");
    let report = w.last_report();
    assert_eq!(report["result"], "rejected", "{report}");
    assert!(
        report["message"]
            .as_str()
            .unwrap_or("")
            .contains("expectenv"),
        "{report}"
    );
}

#[test]
fn one_signature_of_two_is_refused_and_agent_untouched() {
    // An API whose own threshold is lower than the loader's (a hazard MIG had: docs/design.md §2.3) serves a
    // manifest with one signature: the loader's built-in threshold of 2 still refuses it.
    let w = World::new(ApiOptions {
        required_signatures: 1,
        ..ApiOptions::default()
    });
    w.installed_v1();
    let v2 = bundle(&w.host, "v2", "changed\n");
    let id2 = w.publish("one signature", &v2, ("linux", "amd64"), 1);
    assert_eq!(
        w.d.admin1.json(&["manifest", &id2.to_string(), "json"])["status"],
        "active"
    );
    w.refused("got 1, need 2");
    let report = w.last_report();
    assert_eq!(report["result"], "rejected", "{report}");
    assert!(
        report["message"]
            .as_str()
            .unwrap_or("")
            .contains("got 1, need 2"),
        "{report}"
    );
    // Unverified bytes are never parsed, so the loader cannot vouch for a serial (id {id2}).
    assert_eq!(report["serial"], 0, "{report}");
}

#[test]
fn tampered_file_body_is_refused_and_agent_untouched() {
    let w = World::new(ApiOptions::default());
    w.installed_v1();
    let v2 = bundle(&w.host, "v2", "[agent]\nrelay = \"amqp://relay2:5671/\"\n");
    w.publish("agent v2", &v2, ("linux", "amd64"), 2);
    // Someone with access to the API's disk changes a stored body after it was signed.
    let sha = sha256_hex(&v2.iter().find(|(n, _)| *n == "configuration").unwrap().1);
    let blob = w.d.api.dir().join("mig-api-files").join(&sha);
    assert!(blob.is_file(), "the API keeps bodies in {}", blob.display());
    std::fs::write(&blob, b"[agent]\nrelay = \"amqp://attacker:5671/\"\n").unwrap();
    w.refused("configuration");
    let report = w.last_report();
    assert_eq!(report["result"], "failed", "{report}");
}

#[test]
fn replayed_older_manifest_is_refused_and_agent_untouched() {
    let w = World::new(ApiOptions::default());
    let (id1, _) = w.installed_v1();
    let v2 = bundle(&w.host, "v1", "[agent]\nrelay = \"amqp://relay2:5671/\"\n");
    let id2 = w.publish("config v2", &v2, ("linux", "amd64"), 2);
    w.run_loader().ok();
    assert_eq!(w.last_report()["serial"], id2);
    // The newest manifest is disabled: the API now offers the older, validly signed one.
    w.d.admin1
        .run(&["manifest", &id2.to_string(), "disable"])
        .ok();
    w.refused("older");
    let report = w.last_report();
    assert_eq!(report["result"], "rejected", "{report}");
    assert_eq!(report["serial"], id1);
}

#[test]
fn manifest_for_another_platform_is_refused_and_agent_untouched() {
    let w = World::new(ApiOptions::default());
    w.installed_v1();
    let arm = bundle(&w.host, "v2", "arm64 build\n");
    let id = w.publish("arm64 agents", &arm, ("linux", "arm64"), 2);
    // mig-api only offers a loader the manifests of its reported platform; someone with write
    // access to its database relabels the arm64 manifest. Its signed statement still says arm64.
    let db = rusqlite::Connection::open(w.d.api.dir().join("mig-api.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert_eq!(
        db.execute(
            "UPDATE manifests SET arch = 'amd64' WHERE id = ?1",
            [id as i64]
        )
        .unwrap(),
        1
    );
    w.refused("platform");
    let report = w.last_report();
    assert_eq!(report["result"], "rejected", "{report}");
    assert_eq!(report["serial"], id);
}

/// `GET /loader/files/<sha256>` requests the API counted (its /metrics), whatever the answer.
fn file_requests(w: &World) -> u64 {
    let (status, body) = e2e::http_get(
        w.d.api.addr,
        "/api/v2/metrics",
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with("mig_api_requests_total{endpoint=\"GET /loader/files/"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// issue 28 item 3: `manifest N renew` and two signatures move a loader on manifest N to the
/// renewal (a new serial and expiry over the same entries) with no file fetched and the agent
/// left running; before the threshold signs, the loader stays on N.
#[test]
fn a_renewal_signed_by_the_threshold_reaches_the_loader_with_no_file_fetched() {
    let w = World::new(ApiOptions::default());
    let (id, files) = w.installed_v1();
    let fetched = file_requests(&w);
    assert!(fetched > 0, "the first install fetched its files");

    let o =
        w.d.admin1
            .run(&["manifest", &id.to_string(), "renew", "--valid-days", "30"]);
    let renewal = id + 1;
    assert!(
        o.ok()
            .stdout
            .contains(&format!("Manifest {renewal} renews manifest {id}")),
        "{o}"
    );
    let r = renewal.to_string();
    let o = w.d.admin1.run(&["manifest", &r, "sign"]);
    assert!(
        o.ok().stdout.contains(&format!(
            "Manifest {renewal} renews manifest {id} (expires "
        )) && o.stdout.contains("every one of its 6 entries is identical"),
        "{o}"
    );
    // One signature of two: the loader stays on the manifest it has.
    w.run_loader().ok();
    assert_eq!(w.last_report()["serial"], id);

    let o = w.d.admin2.run(&["manifest", &r, "sign"]);
    assert!(o.ok().stdout.contains("Status 'active'"), "{o}");
    let calls_before = w.host.agent_calls().len();
    let out = w.run_loader();
    out.ok();
    assert!(
        !out.stdout.contains("refreshing"),
        "nothing to refresh:\n{out}"
    );
    let report = w.last_report();
    assert_eq!(report["serial"], renewal, "{report}");
    assert_eq!(file_requests(&w), fetched, "no file was fetched:\n{out}");
    check_installed(&w.host.root, &files);
    assert_eq!(w.host.running_agent().as_deref(), Some("v1"));
    assert!(
        w.host.agent_calls()[calls_before..]
            .iter()
            .all(|c| c.ends_with("-q pid")),
        "the agent was only checked"
    );
    let old = w.d.admin1.json(&["manifest", &id.to_string(), "json"]);
    assert_eq!(old["status"], "disabled", "the renewal replaced it");
}
