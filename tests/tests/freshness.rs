//! The online freshness key end to end (docs/design.md §4.20): the real mig-api signing with the
//! development freshness key, the development mig-loader (built with its public half) verifying,
//! a man in the middle (mig-test-support's fault proxy) replaying an answer it recorded, and the
//! clocks moved with libfaketime, never by sleeping.

use e2e::fault::{Fault, FaultProxy};
use e2e::world::{bundle, World};
use e2e::{faketime_library, ApiOptions, Output};

/// Runs the loader with its wall clock moved by `offset` (libfaketime's `+2d`).
fn run_loader_at(w: &World, offset: &str) -> Output {
    let mut c = w.host.command(&w.loader, &[]);
    c.env("LD_PRELOAD", faketime_library())
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    e2e::run(c, None, e2e::host::RUN_TIMEOUT)
}

/// The run refused the manifest naming `reason`, and left the agent and every file as they were.
#[track_caller]
fn refused(
    w: &World,
    out: &Output,
    before: &std::collections::BTreeMap<std::path::PathBuf, (String, u32)>,
    reason: &str,
) {
    out.failed();
    assert!(
        out.stdout.contains(reason) || out.stderr.contains(reason),
        "reason {reason:?} not shown:\n{out}"
    );
    assert_eq!(&w.installed_state(), before, "a refused run changed files");
    assert_eq!(w.host.running_agent().as_deref(), Some("v1"));
}

/// The loader's latest report as the API stored it (serial, result, message), read from its
/// database: the administrators' tokens would not match an API whose clock was moved.
fn latest_report(w: &World) -> (String, String, String) {
    let rows = w.d.api.sql(&format!(
        "SELECT serial, result, message FROM loader_reports WHERE loader_id = {}",
        w.loader_id
    ));
    let r = rows.first().expect("a report");
    (r[0].clone(), r[1].clone(), r[2].clone())
}

/// The last manifest answer the proxy relayed from the API.
fn recorded_answer(proxy: &FaultProxy) -> Vec<u8> {
    let answer = proxy
        .exchanges_to("loader/manifest")
        .pop()
        .expect("a manifest request went through the proxy")
        .answer;
    let v: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON answer");
    assert!(v["freshness"]["signature"].is_string(), "{v}");
    answer
}

/// The answer a loader installed with, replayed to it unchanged: accepted while its freshness
/// holds (it is the same statement), refused two days later, when its freshness lapsed a day
/// ago, although the statement itself is good for 90 days.
#[test]
fn the_same_answer_replayed_two_days_later_is_refused() {
    let w = World::new(ApiOptions::default());
    let proxy = FaultProxy::start(w.d.api.addr);
    w.host.point_at(&proxy.base_url());
    let (id1, _) = w.installed_v1();
    let answer = recorded_answer(&proxy);

    proxy.inject(
        "loader/manifest",
        Fault::Replace {
            body: answer.clone(),
        },
        1,
    );
    let out = w.run_loader();
    out.ok();
    assert!(out.stdout.contains("all files are current"), "{out}");

    let before = w.installed_state();
    proxy.inject("loader/manifest", Fault::Replace { body: answer }, 1);
    let out = run_loader_at(&w, "+2d");
    refused(&w, &out, &before, "freshness expired");
    assert!(out.stderr.contains(" h ago"), "{out}");
    let report = w.last_report();
    assert_eq!(report["result"], "rejected", "{report}");
    assert_eq!(report["serial"], id1, "{report}");
    assert!(
        report["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("freshness expired"),
        "{report}"
    );

    // The fleet view counts the host that gets only stale answers (docs/design.md §4.20).
    let rollouts = w.d.admin1.json(&["status"]);
    let r = rollouts
        .as_array()
        .and_then(|a| a.iter().find(|r| r["manifest"] == id1))
        .unwrap_or_else(|| panic!("{rollouts}"));
    assert_eq!(
        (&r["rejected"], &r["freshness_expired"]),
        (&1.into(), &1.into()),
        "{r}"
    );
    let status = w.d.admin1.run(&["status"]);
    assert!(
        status.ok().stdout.contains(&format!(
            "Manifest {id1}: 1 host(s) refuse it, freshness expired:"
        )),
        "{status}"
    );
}

/// A freeze: a newer manifest is active, but a man in the middle keeps answering with the old
/// one it recorded. Within the freshness lifetime the host stays on the old manifest (the bound
/// is that lifetime); once it lapsed the old answer is refused with the reason, and the API,
/// its own clock two days on too, signs afresh and the host moves to the newer manifest.
#[test]
fn a_frozen_answer_is_refused_once_its_freshness_lapsed_and_the_api_signs_afresh() {
    let clock = tempfile::tempdir().unwrap();
    let clock_file = clock.path().join("offset");
    std::fs::write(&clock_file, "+0").unwrap();
    let w = World::new(ApiOptions {
        clock_file: Some(clock_file.clone()),
        ..ApiOptions::default()
    });
    let proxy = FaultProxy::start(w.d.api.addr);
    w.host.point_at(&proxy.base_url());
    let (id1, _) = w.installed_v1();
    let old = recorded_answer(&proxy);
    let v2 = bundle(&w.host, "v2", "[agent]\nrelay = \"amqp://relay2:5671/\"\n");
    let id2 = w.publish("agent v2", &v2, ("linux", "amd64"), 2);

    proxy.inject("loader/manifest", Fault::Replace { body: old.clone() }, 1);
    w.run_loader().ok();
    assert_eq!(w.host.running_agent().as_deref(), Some("v1"), "frozen");
    assert_eq!(w.last_report()["serial"], id1);

    std::fs::write(&clock_file, "+2d").unwrap();
    let before = w.installed_state();
    proxy.inject("loader/manifest", Fault::Replace { body: old }, 1);
    let out = run_loader_at(&w, "+2d");
    refused(&w, &out, &before, "freshness expired");
    let (serial, result, message) = latest_report(&w);
    assert_eq!((serial, result), (id1.to_string(), "rejected".to_string()));
    assert!(message.starts_with("freshness expired"), "{message}");

    proxy.heal();
    let out = run_loader_at(&w, "+2d");
    out.ok();
    assert_eq!(w.host.running_agent().as_deref(), Some("v2"), "{out}");
    let (serial, result, _) = latest_report(&w);
    assert_eq!((serial, result), (id2.to_string(), "installed".to_string()));
    let fresh: serde_json::Value = serde_json::from_slice(&recorded_answer(&proxy)).unwrap();
    assert!(
        fresh["freshness"]["document"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("\"serial\":{id2}"))),
        "{fresh}"
    );
}

/// An API without a freshness key answers without one: the loader built with a key refuses it,
/// installs nothing and says why.
#[test]
fn an_api_without_a_freshness_key_is_refused_by_a_loader_built_with_one() {
    let w = World::new(ApiOptions {
        freshness: false,
        ..ApiOptions::default()
    });
    let files = bundle(&w.host, "v1", "[agent]\n");
    let id = w.publish("no freshness", &files, ("linux", "amd64"), 2);
    let out = w.run_loader();
    out.failed();
    assert!(out.stderr.contains("freshness signature missing"), "{out}");
    assert!(!w.host.root.join("sbin/mig-agent").exists());
    assert_eq!(w.host.running_agent(), None);
    let report = w.last_report();
    assert_eq!(
        (&report["result"], &report["serial"]),
        (&"rejected".into(), &id.into())
    );
}
