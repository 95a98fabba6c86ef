//! The fleet at a glance: a few hundred simulated loaders (real keys, real HTTP to a real
//! mig-api) poll and report in chosen proportions, and `rollout`, `search loader where serial=…
//! result=…`, a loader's report history and `/metrics` count them exactly.

mod common;

use common::*;
use mig_protocol::statement::Statement;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How the simulated fleet ends up on manifest `new`, in loaders.
const INSTALLED: usize = 120;
const FAILED: usize = 20;
const ROLLED_BACK: usize = 30;
const REJECTED: usize = 10;
/// Given `new`, still reporting `old`.
const STILL_OLD: usize = 25;
/// Given `new`, never reported since (their latest report is `old` installed).
const SILENT: usize = 15;
const FLEET: usize = INSTALLED + FAILED + ROLLED_BACK + REJECTED + STILL_OLD + SILENT;

struct Loader {
    id: u64,
    name: String,
    key: String,
}

/// One manifest request; the serial of the statement it was given.
fn poll(srv: &Server, l: &Loader) -> u64 {
    let r = srv
        .loader(
            &l.key,
            "POST",
            "loader/manifest",
            Some(manifest_request(&l.name, &[])),
        )
        .expect(200)
        .json();
    let st = r["statement"].as_str().unwrap_or_else(|| panic!("{r}"));
    Statement::parse(st.as_bytes()).unwrap().serial.get()
}

fn report(srv: &Server, l: &Loader, serial: u64, result: &str, message: &str) {
    srv.loader(
        &l.key,
        "POST",
        "loader/report",
        Some(json!({"serial": serial, "result": result, "message": message})),
    )
    .expect(200);
}

fn counts(r: &Value) -> [u64; 7] {
    [
        "given",
        "on_it",
        "older",
        "failed",
        "rolled_back",
        "rejected",
        "stale",
    ]
    .map(|k| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}")))
}

#[test]
fn a_fleet_in_chosen_proportions_is_counted_exactly() {
    let srv = Server::start();
    let (a, b) = two_admins(&srv);
    let old = active_manifest(&srv, &[&a, &b], "old", "true");
    let fleet: Vec<Loader> = (0..FLEET)
        .map(|i| {
            let name = format!("host{i:03}");
            let (id, key) = srv.enabled_loader(&a, &name, None);
            Loader { id, name, key }
        })
        .collect();
    // Everyone installs `old`.
    for l in &fleet {
        assert_eq!(poll(&srv, l), old);
        report(&srv, l, old, "installed", "");
    }
    let new = active_manifest(&srv, &[&a, &b], "new", "true");
    for l in &fleet {
        assert_eq!(poll(&srv, l), new);
    }
    let mut groups: BTreeMap<&str, Vec<&Loader>> = BTreeMap::new();
    let mut rest = fleet.iter();
    for (group, n, result, message) in [
        ("installed", INSTALLED, "installed", ""),
        ("failed", FAILED, "failed", "disk full"),
        ("rolled_back", ROLLED_BACK, "rolled_back", "agent unhealthy"),
        ("rejected", REJECTED, "rejected", "got 1, need 2"),
        ("still_old", STILL_OLD, "unchanged", ""),
        ("silent", SILENT, "", ""),
    ] {
        for l in rest.by_ref().take(n) {
            match group {
                "silent" => {}
                "still_old" => report(&srv, l, old, result, message),
                _ => report(&srv, l, new, result, message),
            }
            groups.entry(group).or_default().push(l);
        }
    }
    // Two of the rolled-back loaders failed differently the second time.
    for l in &groups["rolled_back"][..2] {
        report(&srv, l, new, "rolled_back", "agent did not start");
    }

    let all = srv.get(&a, "rollout").expect(200).json();
    let all = all.as_array().unwrap();
    assert_eq!(
        all.iter()
            .map(|r| r["manifest"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [new, old]
    );
    let r = &all[0];
    assert_eq!(
        counts(r),
        [
            FLEET as u64,
            INSTALLED as u64,
            (STILL_OLD + SILENT) as u64,
            FAILED as u64,
            ROLLED_BACK as u64,
            REJECTED as u64,
            0
        ],
        "{r}"
    );
    assert_eq!(r["name"], "new");
    assert_eq!(r["status"], "active");
    assert_eq!(r["stale_after"], 86_400);
    assert_eq!(
        r["failures"],
        json!([
            {"result": "rolled_back", "message": "agent unhealthy", "loaders": ROLLED_BACK - 2},
            {"result": "failed", "message": "disk full", "loaders": FAILED},
            {"result": "rejected", "message": "got 1, need 2", "loaders": REJECTED},
            {"result": "rolled_back", "message": "agent did not start", "loaders": 2},
        ])
    );
    // `old`: given to nobody any more, still installed where nothing newer was reported.
    let o = srv
        .get(&a, &format!("manifests/{old}/rollout"))
        .expect(200)
        .json();
    assert_eq!(
        counts(&o),
        [0, (STILL_OLD + SILENT) as u64, 0, 0, 0, 0, 0],
        "{o}"
    );
    srv.get(&a, "manifests/999/rollout").expect(404);
    srv.get(&a, "rollout?stale=0").expect(400);

    // The hosts behind a number.
    let found = srv
        .get(
            &a,
            &format!("search?type=loader&serial={new}&result=rolled_back&limit=1000"),
        )
        .expect(200)
        .json();
    let mut names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    names.sort();
    let mut want: Vec<&str> = groups["rolled_back"]
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    want.sort();
    assert_eq!(names, want);
    let r = srv
        .get(&a, "search?type=loader&result=exploded")
        .expect(400);
    assert!(r.message().contains("rolled_back"), "{}", r.text());

    // Every report is kept, newest first; the latest stays on the record.
    let l = groups["rolled_back"][0];
    let h = srv
        .get(&a, &format!("loaders/{}/reports", l.id))
        .expect(200)
        .json();
    let h: Vec<(u64, &str, &str)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["serial"].as_u64().unwrap(),
                r["result"].as_str().unwrap(),
                r["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        h,
        [
            (new, "rolled_back", "agent did not start"),
            (new, "rolled_back", "agent unhealthy"),
            (old, "installed", "")
        ]
    );
    let h1 = srv
        .get(&a, &format!("loaders/{}/reports?limit=1", l.id))
        .expect(200)
        .json();
    assert_eq!(h1.as_array().unwrap().len(), 1);
    srv.get(&a, "loaders/99999/reports").expect(404);

    // Dashboards: loaders on each serial by last result, and reports received.
    let m = srv.get(&a, "metrics").expect(200).text();
    for (serial, result, n) in [
        (new, "installed", INSTALLED),
        (new, "rolled_back", ROLLED_BACK),
        (old, "unchanged", STILL_OLD),
    ] {
        let line = format!("mig_api_loaders{{serial=\"{serial}\",result=\"{result}\"}} {n}\n");
        assert!(m.contains(&line), "{line} in\n{m}");
    }
    let line = format!(
        "mig_api_loader_reports_total{{result=\"installed\"}} {}\n",
        FLEET + INSTALLED
    );
    assert!(m.contains(&line), "{line} in\n{m}");

    // Loaders not heard from lately: all but the few that poll again now.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let again = &fleet[..10];
    for l in again {
        poll(&srv, l);
    }
    let r = srv
        .get(&a, &format!("manifests/{new}/rollout?stale=2"))
        .expect(200)
        .json();
    assert_eq!(r["stale"], (FLEET - again.len()) as u64, "{r}");
    assert_eq!(r["stale_after"], 2);
    // The hosts behind that number: not seen since a second ago (or never).
    let since = mig_protocol::time::Timestamp(mig_protocol::time::Timestamp::now().0 - 1);
    let found = srv
        .get(
            &a,
            &format!("search?type=loader&seenbefore={since}&limit=1000"),
        )
        .expect(200)
        .json();
    assert_eq!(found.as_array().unwrap().len(), FLEET - again.len());
    srv.get(&a, "search?type=loader&seenbefore=yesterday")
        .expect(400);

    // Adoption over time ends on the rollouts' on_it for each serial.
    let ad = srv.get(&a, "adoption?hours=1&points=3").expect(200).json();
    assert_eq!(ad["times"].as_array().unwrap().len(), 3);
    let last: Vec<(u64, u64)> = ad["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["serial"].as_u64().unwrap(),
                s["loaders"].as_array().unwrap()[2].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        last,
        [(new, INSTALLED as u64), (old, (STILL_OLD + SILENT) as u64)]
    );
    for bad in ["hours=0", "points=1", "points=501", "hours=100000"] {
        srv.get(&a, &format!("adoption?{bad}")).expect(400);
    }
}

#[test]
fn rollout_and_history_need_their_permissions() {
    let srv = Server::start();
    let (a, _) = two_admins(&srv);
    let (id, _) = srv.enabled_loader(&a, "l", None);
    // PermManifestLoaders (of PermManifest) reads rollouts, PermLoader reads loaders' reports.
    let loaders_only = srv.dev_admin(3, "PermLoader");
    srv.get(&loaders_only, "rollout").expect(403);
    srv.get(&loaders_only, "adoption").expect(403);
    srv.get(&loaders_only, &format!("loaders/{id}/reports"))
        .expect(200);
    srv.set_perms_in_db(loaders_only.id, bit("PermManifestLoaders"));
    srv.get(&loaders_only, "rollout").expect(200);
    srv.get(&loaders_only, &format!("loaders/{id}/reports"))
        .expect(403);
    assert_eq!(srv.get(&a, "rollout").expect(200).json(), json!([]));
    assert_eq!(
        srv.get(&a, &format!("loaders/{id}/reports"))
            .expect(200)
            .json(),
        json!([])
    );
}

/// The fleet of [`halt_rules_stop_a_rollout_at_exactly_their_threshold`], polled onto `serial`.
fn fleet_on(srv: &Server, a: &Admin, prefix: &str, n: usize) -> Vec<Loader> {
    (0..n)
        .map(|i| {
            let name = format!("{prefix}{i:03}");
            let (id, key) = srv.enabled_loader(a, &name, None);
            Loader { id, name, key }
        })
        .collect()
}

fn status_of(srv: &Server, a: &Admin, id: u64) -> Value {
    srv.get(a, &format!("manifests/{id}")).expect(200).json()
}

#[test]
fn halt_rules_stop_a_rollout_at_exactly_their_threshold() {
    let srv = Server::start();
    let (a, b) = two_admins(&srv);
    let old = active_manifest(&srv, &[&a, &b], "old", "true");
    // The rule comes with the upload; it counts nothing until loaders report.
    let (archive, _) = standard_archive("canary");
    let body = json!({"name": "canary", "target": "true", "platform": host_platform(),
        "archive": b64(&archive), "halt": {"after": "5%"}});
    let new = srv.post(&a, "manifests", body).expect(201).json();
    assert_eq!(new["halt"], json!({"after": "5%"}));
    let new = new["id"].as_u64().unwrap();
    for s in [&a, &b] {
        srv.sign_manifest(s, new).expect(200);
    }
    let fleet = fleet_on(&srv, &a, "wave", 60);
    // fleet[20] is given it too but does not report: its next poll after the halt must not be
    // answered from the poll cache.
    for l in &fleet[..21] {
        assert_eq!(poll(&srv, l), new);
    }
    // 5% of those that reported, after at least 20 reports: 1 failure in 19 reports is more
    // than 5% but too early; the 20th report makes it exactly 5%.
    report(&srv, &fleet[0], new, "failed", "disk full");
    for l in &fleet[1..19] {
        report(&srv, l, new, "installed", "");
    }
    assert_eq!(status_of(&srv, &a, new)["status"], "active");
    report(&srv, &fleet[19], new, "installed", "");
    let m = status_of(&srv, &a, new);
    assert_eq!(m["status"], "halted", "{m}");
    assert_eq!(
        m["halted"]["reason"],
        "1 of 20 loaders that reported failed or rolled back (halt rule 5%, at least 20 reports)"
    );
    let r = srv
        .get(&a, &format!("manifests/{new}/rollout"))
        .expect(200)
        .json();
    assert_eq!(r["status"], "halted");
    assert_eq!(r["halted"], m["halted"]);
    let all = srv.get(&a, "rollout").expect(200).json();
    assert_eq!(all[0]["manifest"], new, "a halted manifest is still listed");

    // Halted: loaders on it keep it (and may fetch its files), the one that failed and the ones
    // that never had it get the older manifest.
    assert_eq!(poll(&srv, &fleet[5]), new);
    let sha = m["entries"][0]["sha256"].as_str().unwrap();
    srv.loader_get(&fleet[5].key, &format!("loader/files/{sha}"), &[])
        .expect(200);
    assert_eq!(poll(&srv, &fleet[0]), old);
    assert_eq!(poll(&srv, &fleet[20]), old);
    // Only the rule halts a manifest.
    let r = srv
        .post(
            &a,
            &format!("manifests/{new}/status"),
            json!({"status": "halted"}),
        )
        .expect(400);
    assert!(r.message().contains("halt rule"), "{}", r.text());

    // Resumed: offered to everyone again, and only reports from now on count: after 20
    // successes, 1 failure in 21 and then in 39 reports is below 5%; a second one in 40 is
    // exactly 5%.
    let m = srv
        .post(
            &a,
            &format!("manifests/{new}/status"),
            json!({"status": "active"}),
        )
        .expect(200)
        .json();
    assert_eq!(
        (m["status"].as_str(), &m["halted"]),
        (Some("active"), &Value::Null)
    );
    for l in &fleet[20..60] {
        assert_eq!(poll(&srv, l), new);
    }
    for l in &fleet[21..41] {
        report(&srv, l, new, "installed", "");
    }
    report(&srv, &fleet[20], new, "failed", "disk full");
    for l in &fleet[41..59] {
        report(&srv, l, new, "installed", "");
    }
    assert_eq!(status_of(&srv, &a, new)["status"], "active");
    report(&srv, &fleet[59], new, "rolled_back", "agent unhealthy");
    let m = status_of(&srv, &a, new);
    assert_eq!(m["status"], "halted");
    assert!(
        m["halted"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("2 of 40 loaders"),
        "{m}"
    );
    // `disable` still ends it, halted or not: nobody is offered it any more.
    srv.post(
        &a,
        &format!("manifests/{new}/status"),
        json!({"status": "disabled"}),
    )
    .expect(200);
    assert_eq!(poll(&srv, &fleet[5]), old);
    srv.post(
        &a,
        &format!("manifests/{new}/status"),
        json!({"status": "active"}),
    )
    .expect(400);
}

#[test]
fn a_count_rule_set_later_trips_at_its_count_and_can_be_cleared() {
    let srv = Server::start();
    let (a, b) = two_admins(&srv);
    let m = active_manifest(&srv, &[&a, &b], "counted", "true");
    let fleet = fleet_on(&srv, &a, "host", 6);
    for l in &fleet {
        assert_eq!(poll(&srv, l), m);
    }
    report(&srv, &fleet[0], m, "failed", "x");
    report(&srv, &fleet[1], m, "rolled_back", "y");
    // Rejected (a bad signature, an older serial) is not the agent failing: not counted.
    report(&srv, &fleet[2], m, "rejected", "z");
    let path = format!("manifests/{m}/halt");
    let r = srv
        .post(&a, &path, json!({"halt": {"after": "3"}}))
        .expect(200)
        .json();
    assert_eq!(
        (r["status"].as_str(), &r["halt"]),
        (Some("active"), &json!({"after": "3"}))
    );
    report(&srv, &fleet[3], m, "failed", "x");
    assert_eq!(status_of(&srv, &a, m)["status"], "halted");
    // Cleared and resumed; a rule set on counts already past it halts at once.
    srv.post(&a, &path, json!({"halt": null})).expect(200);
    srv.post(
        &a,
        &format!("manifests/{m}/status"),
        json!({"status": "active"}),
    )
    .expect(200);
    report(&srv, &fleet[4], m, "failed", "x");
    report(&srv, &fleet[5], m, "failed", "x");
    assert_eq!(
        status_of(&srv, &a, m)["status"],
        "active",
        "no rule, no halt"
    );
    let r = srv
        .post(&a, &path, json!({"halt": {"after": "2", "min": 2}}))
        .expect(200)
        .json();
    assert_eq!(r["status"], "halted", "{r}");

    // Bad rules name the problem; changing one takes PermManifestStatus.
    for (rule, want) in [
        (json!({"after": "0"}), "like 3 or 5%"),
        (json!({"after": "150%"}), "like 3 or 5%"),
        (json!({"after": "3", "min": 2_000_000_000u64}), "above"),
    ] {
        let r = srv.post(&a, &path, json!({ "halt": rule })).expect(400);
        assert!(r.text().contains(want), "{rule}: {}", r.text());
    }
    srv.post(&a, "manifests/999/halt", json!({"halt": null}))
        .expect(404);
    let reader = srv.dev_admin(3, "PermManifestLoaders");
    srv.post(&reader, &path, json!({"halt": null})).expect(403);
}

/// issue 31 item 1: a report is about a manifest the API gave that loader. Two loaders that were
/// never offered a canary cannot halt it, nor report a serial that does not exist; their forged
/// reports reach no history, no rollout count and no halt rule.
#[test]
fn a_loader_reports_only_about_what_it_was_given() {
    let srv = Server::start();
    let (a, b) = two_admins(&srv);
    let stable = active_manifest(&srv, &[&a, &b], "stable", "true");
    let (archive, _) = standard_archive("canary");
    let body = json!({"name": "canary", "target": "tags#>>'{ring}'='canary'",
        "platform": host_platform(), "archive": b64(&archive), "halt": {"after": "1"}});
    let canary = srv.post(&a, "manifests", body).expect(201).json()["id"]
        .as_u64()
        .unwrap();
    for s in [&a, &b] {
        srv.sign_manifest(s, canary).expect(200);
    }
    let fleet = fleet_on(&srv, &a, "plain", 2);
    for l in &fleet {
        assert_eq!(poll(&srv, l), stable, "the canary targets none of them");
        for serial in [canary, 999_999] {
            let r = srv
                .loader(
                    &l.key,
                    "POST",
                    "loader/report",
                    Some(json!({"serial": serial, "result": "failed", "message": "forged"})),
                )
                .expect(403);
            assert!(
                r.message().contains(&format!(
                    "reported about manifest {serial}, which it was not given"
                )),
                "{}",
                r.text()
            );
        }
    }
    let m = status_of(&srv, &a, canary);
    assert_eq!(m["status"], "active", "forged reports halt nothing: {m}");
    let r = srv
        .get(&a, &format!("manifests/{canary}/rollout"))
        .expect(200)
        .json();
    assert_eq!(counts(&r), [0; 7], "{r}");
    for l in &fleet {
        let h = srv
            .get(&a, &format!("loaders/{}/reports", l.id))
            .expect(200)
            .json();
        assert_eq!(h, json!([]), "nothing reached {}'s history", l.name);
    }
    // Serial 0 `rejected` is about no manifest (a statement whose signatures failed): admitted,
    // counted for none.
    report(&srv, &fleet[1], 0, "rejected", "got 1, need 2");
    assert_eq!(
        counts(
            &srv.get(&a, &format!("manifests/{stable}/rollout"))
                .expect(200)
                .json()
        )[5],
        0
    );
    // What it was given, it may report; then what it last reported on, even once it is given
    // another manifest.
    report(&srv, &fleet[0], stable, "installed", "");
    let newer = active_manifest(&srv, &[&a, &b], "newer", "true");
    assert_eq!(poll(&srv, &fleet[0]), newer);
    report(&srv, &fleet[0], stable, "unchanged", "");
    report(&srv, &fleet[0], newer, "failed", "disk full");
    let text = srv.get(&a, "metrics").expect(200).text();
    assert!(
        text.contains("mig_api_failures_total{reason=\"report_not_given\"} 4"),
        "{text}"
    );
}

/// issue 31 item 1: one key flooding reports is refused with 429 past a burst, before any
/// database work, and its flood reaches the history only as often as it was admitted.
#[test]
fn a_flood_of_reports_from_one_loader_is_refused_past_a_burst() {
    let srv = Server::start();
    let (a, b) = two_admins(&srv);
    let m = active_manifest(&srv, &[&a, &b], "m", "true");
    let fleet = fleet_on(&srv, &a, "flood", 2);
    for l in &fleet {
        assert_eq!(poll(&srv, l), m);
    }
    let (mut admitted, mut refused) = (0u64, 0u64);
    for _ in 0..40 {
        let r = srv.loader(
            &fleet[0].key,
            "POST",
            "loader/report",
            Some(json!({"serial": m, "result": "installed", "message": ""})),
        );
        match r.status {
            200 => admitted += 1,
            429 => {
                refused += 1;
                let wait: u64 = r
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("429 without Retry-After: {}", r.text()));
                assert!((1..=60).contains(&wait), "{wait}");
                assert!(r.message().contains("reports in a row"), "{}", r.text());
            }
            other => panic!("{other}: {}", r.text()),
        }
    }
    // 20 in a row, then one a minute: a slow machine may see one more minute pass.
    assert!((20..=21).contains(&admitted), "{admitted} admitted");
    assert_eq!(admitted + refused, 40);
    let h = srv
        .get(&a, &format!("loaders/{}/reports?limit=100", fleet[0].id))
        .expect(200)
        .json();
    assert_eq!(h.as_array().map(Vec::len), Some(admitted as usize));
    // Another loader is not slowed down by the first one's flood.
    report(&srv, &fleet[1], m, "installed", "");
}
