//! mig-loader end to end: the real binary (development configuration) against a stand-in API on
//! 127.0.0.1, installing into a temporary root, with a stand-in agent that records its calls.

mod common;

use common::server::{FileMode, ManifestMode};
use common::{sha256_hex, Fixture, LOADER_KEY};
use loader_min::crash::CrashPoint;
use mig_protocol::time::Timestamp;

fn installed(f: &Fixture, serial: u64) -> common::Generation {
    let g = f.generation(serial);
    f.publish(&g);
    f.run(&[]).assert_ok();
    f.server.clear_requests();
    f.clear_agent_calls();
    g
}

#[test]
fn first_install_puts_every_file_in_place_and_starts_the_agent() {
    let f = Fixture::new();
    let g = f.generation(1);
    f.publish(&g);
    let run = f.run(&[]);
    run.assert_ok();
    f.assert_generation(&g);
    assert_eq!(f.installed_serial(), Some(1));
    assert_eq!(f.running_agent().as_deref(), Some("v1"));
    let out = run.stdout();
    let agent_path = if common::loader().go_os == "windows" {
        "C:\\mig\\mig-agent.exe"
    } else {
        "/sbin/mig-agent"
    };
    for line in [
        &format!("comparing mig-agent {agent_path}"),
        "we have not found",
        &format!("they have {}", sha256_hex(&g.files["mig-agent"])),
        "refreshing mig-agent",
        "2 valid signatures in manifest",
        "fetching file from http://127.0.0.1:",
        "validating staged file",
        "installing staged file",
        "running triggers due to modification",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // Windows has no file modes: the files inherit the access list of C:\mig (docs/design.md §2.7).
    if common::loader().go_os != "windows" {
        let mode = |n: &str| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(f.path(n)).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode("mig-agent"), 0o700);
        assert_eq!(mode("agentkey"), 0o600);
        assert_eq!(mode("agentcert"), 0o644);
    }
    // The manifest request carries the key and MIG's environment; a report closes the run.
    let reqs = f.server.requests();
    let manifest = reqs
        .iter()
        .find(|r| r.path.ends_with("/loader/manifest"))
        .unwrap();
    assert_eq!(manifest.header("X-LOADERKEY"), Some(LOADER_KEY));
    let body = manifest.json();
    assert_eq!(
        body["agent"]["environment"]["os"],
        common::loader_platform().os.as_str()
    );
    assert_eq!(body["agent"]["tags"]["operator"], "myorg");
    assert_eq!(body["agent"]["tags"]["suite"], "loader-tests");
    assert_eq!(body["have"]["serial"], 0);
    assert!(
        !run.all().contains(&LOADER_KEY[8..]),
        "the key's secret was logged"
    );
    let reports = f.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["result"], "installed");
    assert_eq!(reports[0]["serial"], 1);
    assert_eq!(
        reports[0]["files"]["mig-agent"],
        sha256_hex(&g.files["mig-agent"])
    );
    assert_eq!(
        f.agent_calls(),
        vec!["v1 -q shutdown", "v1 -u", "v1 -q pid"],
        "triggers then health check"
    );
    assert!(run.stderr().contains("development configuration"));
}

#[test]
fn no_change_run_makes_one_request_and_writes_nothing() {
    let f = Fixture::new();
    installed(&f, 1);
    let before = f.snapshot();
    let run = f.run(&[]);
    run.assert_ok();
    assert!(
        run.stdout().contains("all files are current"),
        "{}",
        run.all()
    );
    let reqs = f.server.requests();
    // docs/design.md §4.21: the answer names no newer root, so no root is asked for.
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/v2/loader/manifest"], "{paths:?}");
    assert_eq!(f.snapshot(), before, "a no-change run wrote to the root");
    // MIG's no-change behaviour: the agent is only asked whether it runs.
    assert_eq!(f.agent_calls(), vec!["v1 -q pid"]);
}

#[test]
fn no_change_run_restarts_a_stopped_agent() {
    let f = Fixture::new();
    installed(&f, 1);
    std::fs::remove_file(f.agent_dir.join("running")).unwrap();
    f.run(&[]).assert_ok();
    assert_eq!(
        f.agent_calls(),
        vec!["v1 -q pid", "v1 -q shutdown", "v1 -u"]
    );
    assert_eq!(f.running_agent().as_deref(), Some("v1"));
}

#[test]
fn upgrade_fetches_only_the_changed_files() {
    let f = Fixture::new();
    let g1 = installed(&f, 1);
    let mut g2 = g1.clone();
    g2.serial = 2;
    g2.files.insert("mig-agent", f.agent("v2"));
    g2.files.insert("cacert", b"new CA\n".to_vec());
    f.publish(&g2);
    let run = f.run(&[]);
    run.assert_ok();
    f.assert_generation(&g2);
    let fetched: Vec<String> = f
        .file_requests()
        .iter()
        .map(|r| r.path.rsplit('/').next().unwrap().to_string())
        .collect();
    let mut want = vec![
        sha256_hex(&g2.files["mig-agent"]),
        sha256_hex(&g2.files["cacert"]),
    ];
    want.sort();
    let mut got = fetched.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(f.installed_serial(), Some(2));
    assert_eq!(f.running_agent().as_deref(), Some("v2"));
    assert_eq!(f.reports()[0]["result"], "installed");
    assert!(run.stdout().contains("renaming existing file"));
}

#[test]
fn tampered_body_is_refused_and_nothing_changes() {
    let f = Fixture::new();
    let g1 = installed(&f, 1);
    let mut g2 = f.generation(2);
    g2.files
        .insert("configuration", b"[agent]\nv = 2\n".to_vec());
    f.publish(&g2);
    f.server
        .set_file_mode(&sha256_hex(&g2.files["configuration"]), FileMode::Tampered);
    let run = f.run(&[]);
    run.assert_failed_with("configuration from http://127.0.0.1:");
    assert!(run.stderr().contains("tampered"), "{}", run.all());
    f.assert_generation(&g1);
    assert_eq!(f.installed_serial(), Some(1));
    assert_eq!(f.running_agent().as_deref(), Some("v1"));
    assert!(!f.agent_calls().iter().any(|c| c.ends_with("-u")));
    assert_eq!(f.reports()[0]["result"], "failed");
}

#[test]
fn body_longer_than_signed_is_aborted() {
    let f = Fixture::new();
    let g1 = installed(&f, 1);
    let g2 = f.generation(2);
    f.publish(&g2);
    f.server
        .set_file_mode(&sha256_hex(&g2.files["mig-agent"]), FileMode::Longer);
    let run = f.run(&[]);
    run.assert_failed_with("longer than its signed size");
    assert!(
        run.stderr().contains("mig-agent from http://"),
        "{}",
        run.all()
    );
    f.assert_generation(&g1);
    assert_eq!(f.reports()[0]["result"], "failed");
}

#[test]
fn stalled_server_hits_the_deadline() {
    let f = Fixture::new();
    f.server
        .set_manifest(ManifestMode::Stall(String::from("{}")));
    let run = f.run(&[]);
    run.assert_failed_with("/api/v2/loader/manifest");
    assert!(
        run.stderr().to_lowercase().contains("timeout")
            || run.stderr().to_lowercase().contains("timed out"),
        "{}",
        run.all()
    );
    assert_eq!(f.installed_serial(), None);
}

#[test]
fn stalled_file_download_hits_the_deadline_and_changes_nothing() {
    let f = Fixture::new();
    let g1 = installed(&f, 1);
    let g2 = f.generation(2);
    f.publish(&g2);
    f.server
        .set_file_mode(&sha256_hex(&g2.files["agentcert"]), FileMode::Stall);
    let run = f.run(&[]);
    run.assert_failed_with("/api/v2/loader/files/");
    assert!(
        run.stderr().to_lowercase().contains("timeout"),
        "{}",
        run.all()
    );
    f.assert_generation(&g1);
}

#[test]
fn connection_dropped_mid_file_is_resumed_with_range() {
    let f = Fixture::new();
    let mut g = f.generation(1);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    g.files.insert("agentcert", big.clone());
    f.publish(&g);
    let sha = sha256_hex(&big);
    f.server.set_file_mode(&sha, FileMode::DropAfter(100_000));
    let run = f.run(&[]);
    run.assert_ok();
    f.assert_generation(&g);
    let tries: Vec<_> = f
        .file_requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&sha))
        .collect();
    assert_eq!(tries.len(), 2, "{}", run.all());
    assert_eq!(tries[0].header("Range"), None);
    assert_eq!(tries[1].header("Range"), Some("bytes=100000-"));
    assert!(
        run.stdout().contains("resuming at byte 100000"),
        "{}",
        run.all()
    );
}

#[test]
fn expired_statement_is_refused_and_agent_keeps_running() {
    let f = Fixture::new();
    let g1 = installed(&f, 1);
    let g2 = f.generation(2);
    let mut st = g2.statement();
    st.issued = Timestamp(st.issued.0 - 10 * 86_400);
    st.expires = Timestamp(st.issued.0 + 86_400);
    f.publish_signed(&g2, &st, &[1, 2]);
    let run = f.run(&[]);
    run.assert_failed_with("expired");
    f.assert_generation(&g1);
    assert_eq!(f.running_agent().as_deref(), Some("v1"));
    assert_eq!(f.agent_calls(), vec!["v1 -q pid"]);
    let r = &f.reports()[0];
    assert_eq!(r["result"], "rejected");
    assert_eq!(r["serial"], 2);
    assert!(r["message"].as_str().unwrap().contains("expired"));
    assert!(f.file_requests().is_empty());
}

/// docs/design.md §4.20: the answer a man in the middle recorded two days ago, statement,
/// signatures and freshness signature untouched, served again after a newer manifest exists (a
/// freeze): the statement is still valid for days, its freshness lapsed 26 h ago.
#[test]
fn a_frozen_answer_whose_freshness_lapsed_is_refused_and_agent_keeps_running() {
    let f = Fixture::new();
    let g1 = f.generation(1);
    let st = g1.statement();
    f.publish(&g1);
    f.run(&[]).assert_ok();
    f.server.clear_requests();
    f.clear_agent_calls();
    let now = Timestamp::now().0;
    let recorded = common::freshness(&st.to_bytes().unwrap(), 1, now - 50 * 3600, now - 26 * 3600);
    let old =
        common::response_freshness(&st, &common::admin_signatures(&st, &[1, 2]), Some(recorded));
    f.publish_response(&g1, old);
    let run = f.run(&[]);
    run.assert_failed_with("freshness expired 26 h ago");
    assert!(
        run.stdout().contains("rejecting the manifest"),
        "{}",
        run.all()
    );
    f.assert_generation(&g1);
    assert_eq!(f.running_agent().as_deref(), Some("v1"));
    assert_eq!(f.agent_calls(), vec!["v1 -q pid"]);
    let r = &f.reports()[0];
    assert_eq!(r["result"], "rejected");
    assert_eq!(r["serial"], 1);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("freshness expired 26 h ago"),
        "{r}"
    );
    assert!(f.file_requests().is_empty());
}

/// A loader built with a freshness key (the development configuration is) refuses an answer
/// that carries none, as from an API without `[freshness] key`, and installs nothing.
#[test]
fn an_answer_without_a_freshness_signature_is_refused() {
    let f = Fixture::new();
    let g = f.generation(1);
    let st = g.statement();
    let body = common::response_freshness(&st, &common::admin_signatures(&st, &[1, 2]), None);
    f.publish_response(&g, body);
    f.run(&[]).assert_failed_with("freshness signature missing");
    assert_eq!(f.read("mig-agent"), None);
    assert_eq!(f.installed_serial(), None);
    let r = &f.reports()[0];
    assert_eq!(
        (&r["result"], &r["serial"]),
        (&"rejected".into(), &1.into())
    );
    assert!(f.file_requests().is_empty());
}

/// Only the freshness key's signature, over exactly the statement given, counts: neither an
/// administrator's signature over a freshness document nor a fresh signature over another
/// statement (a newer one's, served with an old statement).
#[test]
fn a_freshness_signature_by_an_administrator_or_over_another_statement_is_refused() {
    let f = Fixture::new();
    let g1 = installed(&f, 1);
    let g2 = f.generation(2);
    let st2 = g2.statement();
    let admins = common::admin_signatures(&st2, &[1, 2]);
    let good = common::fresh_now(&st2);
    let by_admin = mig_protocol::freshness::Freshness {
        signature: mig_protocol::signature::sign_detached(
            common::admin_key(1),
            "",
            good.document.as_bytes(),
        )
        .unwrap(),
        document: good.document.clone(),
    };
    f.publish_response(
        &g2,
        common::response_freshness(&st2, &admins, Some(by_admin)),
    );
    f.run(&[])
        .assert_failed_with("freshness signature invalid")
        .assert_failed_with("not in the keyring");
    let mut other = g1.statement();
    other.serial = mig_protocol::Serial::new(3);
    f.publish_response(
        &g2,
        common::response_freshness(&st2, &admins, Some(common::fresh_now(&other))),
    );
    f.run(&[]).assert_failed_with("not the one given");
    f.assert_generation(&g1);
    assert_eq!(f.running_agent().as_deref(), Some("v1"));
    assert!(f.file_requests().is_empty());
    // The same answer with its own freshness signature installs.
    f.publish_response(&g2, common::response_freshness(&st2, &admins, Some(good)));
    f.run(&[]).assert_ok();
    f.assert_generation(&g2);
}

#[test]
fn older_serial_is_refused_and_agent_untouched() {
    let f = Fixture::new();
    let g5 = installed(&f, 5);
    let g4 = f.generation(4);
    f.publish(&g4);
    let run = f.run(&[]);
    run.assert_failed_with("older than installed serial 5");
    f.assert_generation(&g5);
    assert_eq!(f.installed_serial(), Some(5));
    assert_eq!(f.agent_calls(), vec!["v5 -q pid"]);
    assert_eq!(f.reports()[0]["result"], "rejected");
    assert_eq!(f.reports()[0]["serial"], 4);
    assert!(f.file_requests().is_empty());
}

/// docs/design.md §4.1: `-V` prints the root of trust the loader was built with (root version 1:
/// the built-in keys), its threshold and every key's fingerprint as GnuPG computes it from the key
/// files of the configuration it was built from; a run names the root version and threshold it
/// verified with.
#[test]
fn version_prints_the_root_of_trust_and_a_run_names_the_root_it_verified_with() {
    let conf = std::fs::read_to_string(
        mig_test_support::workspace_root().join("conf/mig-loader-dev.toml"),
    )
    .unwrap();
    let keys = conf
        .lines()
        .find_map(|l| l.strip_prefix("keys = "))
        .unwrap();
    let files: Vec<std::path::PathBuf> = keys
        .split('"')
        .filter(|p| p.ends_with(".asc"))
        .map(|p| mig_test_support::workspace_root().join("conf").join(p))
        .collect();
    assert_eq!(files.len(), 4, "{keys}");
    let home = mig_test_support::GnupgHome::with_keys(&files);
    let mut list = home.gpg();
    list.args(["--batch", "--with-colons", "--fingerprint", "--list-keys"]);
    let listing = mig_test_support::run(list, None, std::time::Duration::from_secs(60));
    listing.ok();
    // The first fpr line after each pub line is the primary key's.
    let mut fingerprints = Vec::new();
    let mut after_pub = false;
    for l in listing.stdout.lines() {
        let fields: Vec<&str> = l.split(':').collect();
        match fields[0] {
            "pub" => after_pub = true,
            "fpr" if after_pub => {
                fingerprints.push(fields[9].to_string());
                after_pub = false;
            }
            _ => {}
        }
    }
    assert_eq!(fingerprints.len(), 4, "{}", listing.stdout);

    let l = common::loader();
    let mut c = l.command(&l.path);
    c.arg("-V");
    let out = mig_test_support::run(c, None, std::time::Duration::from_secs(60));
    out.ok();
    assert!(
        out.stdout
            .contains("root version 1 (built in): requires 2 of 4 administrator signatures"),
        "{}",
        out.stdout
    );
    let key_lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  key "))
        .collect();
    assert_eq!(key_lines.len(), 4, "{}", out.stdout);
    for fpr in &fingerprints {
        assert!(
            key_lines
                .iter()
                .any(|l| l.starts_with(&format!("  key {fpr} "))),
            "{fpr} missing from:\n{}",
            out.stdout
        );
    }

    let f = Fixture::new();
    f.publish(&f.generation(1));
    let run = f.run(&[]);
    run.assert_ok();
    assert!(
        run.stdout()
            .contains("verified with root version 1: threshold 2 of 4 keys"),
        "{}",
        run.stdout()
    );
}

/// docs/design.md §4.6: a fresh host (no installed serial) takes a long-running API's serial as
/// it is; from then on a serial more than `MAX_SERIAL_STEP` above the installed one is refused and
/// the state stays as it was, and one exactly at the bound installs.
#[test]
fn a_serial_jump_past_the_bound_is_refused_and_a_fresh_host_takes_any_serial() {
    use mig_protocol::serial::MAX_SERIAL_STEP;
    let f = Fixture::new();
    let far = 500_000;
    let g = installed(&f, far);
    assert_eq!(f.installed_serial(), Some(far));

    let jump = far + MAX_SERIAL_STEP + 1;
    f.publish(&f.generation(jump));
    let run = f.run(&[]);
    run.assert_failed_with(&format!(
        "statement serial {jump} is more than {MAX_SERIAL_STEP} above the installed serial \
         {far}: refusing a fast-forward"
    ));
    f.assert_generation(&g);
    assert_eq!(f.installed_serial(), Some(far));
    assert_eq!(f.agent_calls(), vec![format!("v{far} -q pid")]);
    assert_eq!(f.reports()[0]["result"], "rejected");
    assert_eq!(f.reports()[0]["serial"], jump);
    assert!(f.file_requests().is_empty());

    let next = f.generation(far + MAX_SERIAL_STEP);
    f.publish(&next);
    f.run(&[]).assert_ok();
    f.assert_generation(&next);
    assert_eq!(f.installed_serial(), Some(far + MAX_SERIAL_STEP));
}

#[test]
fn wrong_platform_is_refused() {
    let f = Fixture::new();
    let g = f.generation(1);
    let mut st = g.statement();
    st.platform.os = "darwin".into();
    f.publish_signed(&g, &st, &[1, 2]);
    let run = f.run(&[]);
    run.assert_failed_with("statement is for platform darwin/");
    assert_eq!(f.read("mig-agent"), None);
    assert_eq!(f.reports()[0]["result"], "rejected");
    assert!(f.file_requests().is_empty());

    // Another architecture's manifest, signed and otherwise right, is refused too.
    let f = Fixture::new();
    let g = f.generation(1);
    let mut st = g.statement();
    let mine = st.platform.arch.clone();
    st.platform.arch = ["amd64", "arm64"]
        .into_iter()
        .find(|a| *a != mine)
        .unwrap()
        .into();
    f.publish_signed(&g, &st, &[1, 2]);
    let run = f.run(&[]);
    let os = &st.platform.os;
    run.assert_failed_with(&format!(
        "statement is for platform {os}/{}, this host is {os}/{mine}",
        st.platform.arch
    ));
    assert_eq!(f.read("mig-agent"), None);
    assert!(f.file_requests().is_empty());
}

#[test]
fn one_of_two_signatures_is_refused() {
    let f = Fixture::new();
    let g = f.generation(1);
    f.publish_signed(&g, &g.statement(), &[1]);
    let run = f.run(&[]);
    run.assert_failed_with("not enough valid signatures (got 1, need 2)");
    assert_eq!(f.read("mig-agent"), None);
    let r = &f.reports()[0];
    assert_eq!(r["result"], "rejected");
    assert_eq!(
        r["serial"], 0,
        "an unverified statement's serial is not believed"
    );
    assert!(f.file_requests().is_empty());
}

#[test]
fn a_sha1_signature_does_not_count_toward_the_threshold() {
    // Two built-in RSA keys sign with the real gpg: rsa1 over SHA-1 (collisions are practical),
    // rsa2 over SHA-256. Threshold 2: refused, the reason names SHA-1.
    let f = Fixture::new();
    let g = f.generation(1);
    let st = g.statement();
    let bytes = st.to_bytes().unwrap();
    let home = mig_test_support::GnupgHome::with_keys(&[
        mig_test_support::dev_key("rsa1.sec.asc"),
        mig_test_support::dev_key("rsa2.sec.asc"),
    ]);
    let (rsa1, rsa2) = ("2C2A590399DF0DCD", "A03A7C01FD28947A");
    let sha1 = common::gpg_signature(&home, rsa1, &["--digest-algo", "SHA1"], &bytes);
    let sha256 = common::gpg_signature(&home, rsa2, &["--digest-algo", "SHA256"], &bytes);
    f.publish_response(&g, common::response_with(&st, &[sha1, sha256.clone()]));
    let run = f.run(&[]);
    run.assert_failed_with("not enough valid signatures (got 1, need 2)");
    assert!(
        run.all().contains(
            "signature #1 by DD849759069EA9CDA347E88F2C2A590399DF0DCD uses SHA1; only SHA-256 \
             or stronger counts"
        ),
        "{}",
        run.all()
    );
    assert_eq!(f.read("mig-agent"), None);
    assert_eq!(f.reports()[0]["result"], "rejected");
    assert!(f.file_requests().is_empty());
    // rsa1's SHA-256 signature over the same statement makes two.
    let strong = common::gpg_signature(&home, rsa1, &["--digest-algo", "SHA256"], &bytes);
    f.publish_response(&g, common::response_with(&st, &[strong, sha256]));
    f.run(&[]).assert_ok();
    f.assert_generation(&g);
}

#[test]
fn unknown_key_does_not_count() {
    let f = Fixture::new();
    let g = f.generation(1);
    f.publish_signed(&g, &g.statement(), &[1, 3]);
    let run = f.run(&[]);
    run.assert_failed_with("got 1, need 2");
    assert!(run.all().contains("not in the keyring"), "{}", run.all());
    assert_eq!(f.read("mig-agent"), None);
    // Two known signatures plus the unknown one are enough.
    f.publish_signed(&g, &g.statement(), &[3, 2, 1]);
    f.run(&[]).assert_ok();
    f.assert_generation(&g);
}

#[test]
fn tampered_statement_fails_every_signature() {
    let f = Fixture::new();
    let g = f.generation(1);
    let body = common::signed_response(&g.statement(), &[1, 2]);
    let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let st = v["statement"]
        .as_str()
        .unwrap()
        .replace("\"serial\":1", "\"serial\":9");
    v["statement"] = st.into();
    f.server.set_manifest(ManifestMode::Serve(v.to_string()));
    f.run(&[]).assert_failed_with("got 0, need 2");
}

#[test]
fn unhealthy_agent_after_swap_restores_and_restarts_previous_generation() {
    let f = Fixture::new();
    let g1 = installed(&f, 1);
    let mut g2 = f.generation(2);
    g2.files.insert("mig-agent", f.unhealthy_agent("v2"));
    g2.files
        .insert("cacert", b"a CA that did not exist before\n".to_vec());
    f.publish(&g2);
    let run = f.run(&[]);
    run.assert_failed_with("agent unhealthy after install");
    f.assert_generation(&g1);
    assert_eq!(f.read("cacert"), None, "a file new in g2 must go");
    assert_eq!(f.installed_serial(), Some(1));
    assert_eq!(f.running_agent().as_deref(), Some("v1"));
    let calls = f.agent_calls();
    assert_eq!(&calls[..2], ["v2 -q shutdown", "v2 -u"], "{calls:?}");
    assert!(calls.iter().any(|c| c == "v2 -q pid"));
    assert_eq!(
        &calls[calls.len() - 2..],
        ["v1 -q shutdown", "v1 -u"],
        "{calls:?}"
    );
    assert!(run.stdout().contains("rolling back"), "{}", run.all());
    assert_eq!(f.reports()[0]["result"], "rolled_back");
    assert_eq!(
        f.reports()[0]["files"]["mig-agent"],
        sha256_hex(&g1.files["mig-agent"])
    );
}

#[test]
fn unhealthy_first_install_is_removed() {
    let f = Fixture::new();
    let mut g = f.generation(1);
    g.files.insert("mig-agent", f.unhealthy_agent("v1"));
    f.publish(&g);
    f.run(&[]).assert_failed_with("agent unhealthy");
    for name in g.files.keys() {
        assert_eq!(
            f.read(name),
            None,
            "{name} stayed after a failed first install"
        );
    }
    f.assert_no_leftovers();
    assert_eq!(f.installed_serial(), None);
}

#[test]
fn kill_at_each_install_step_leaves_old_or_new_generation() {
    for point in CrashPoint::ALL {
        let step = point.as_str();
        let f = Fixture::new();
        let g1 = installed(&f, 1);
        let mut g2 = f.generation(2);
        g2.files.insert("cacert", b"new in generation 2\n".to_vec());
        f.publish(&g2);
        let crashed = f.run_env(&[], &[("MIG_LOADER_CRASH_AT", step)]);
        assert_ne!(crashed.code(), Some(0), "{step}: {}", crashed.all());
        assert!(
            crashed
                .stdout()
                .contains(&format!("MIG_LOADER_CRASH_AT={step}")),
            "{step}: {}",
            crashed.all()
        );
        if point == CrashPoint::MidSwap {
            // The crash really left a mixed host: only the first entry (dictionary order) is new.
            assert_eq!(f.read("mig-agent").as_ref(), Some(&g2.files["mig-agent"]));
            assert_eq!(f.read("agentcert").as_ref(), Some(&g1.files["agentcert"]));
        }
        // The next run recovers before it talks to the API, even when the API is down.
        f.server
            .set_manifest(ManifestMode::Error(503, "maintenance".into()));
        let recovered = f.run(&[]);
        assert_eq!(recovered.code(), Some(1), "{step}: {}", recovered.all());
        f.assert_generation(&g1);
        assert_eq!(f.read("cacert"), None, "{step}");
        assert_eq!(f.installed_serial(), Some(1), "{step}");
        assert_eq!(f.running_agent().as_deref(), Some("v1"), "{step}");
        // And the run after that installs generation 2 in full.
        f.publish(&g2);
        f.run(&[]).assert_ok();
        f.assert_generation(&g2);
        assert_eq!(f.installed_serial(), Some(2), "{step}");
        assert_eq!(f.running_agent().as_deref(), Some("v2"), "{step}");
    }
}

#[test]
fn two_runs_at_once_the_second_exits_cleanly() {
    let f = Fixture::new();
    let g = f.generation(1);
    f.publish(&g);
    let body = common::signed_response(&g.statement(), &[1, 2]);
    f.server.set_manifest(ManifestMode::Stall(body));
    let first = f.spawn(&[]);
    f.server.wait_for("/loader/manifest");
    let second = f.run(&[]);
    second.assert_ok();
    assert!(
        second
            .stdout()
            .contains("another mig-loader run holds the lock"),
        "{}",
        second.all()
    );
    f.server.release();
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.assert_generation(&g);
    let manifests = f
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/loader/manifest"))
        .count();
    assert_eq!(manifests, 1, "the second run must not have asked");
}

#[test]
fn check_mode_restarts_a_stopped_agent_and_nothing_else() {
    let f = Fixture::new();
    installed(&f, 1);
    f.run(&["-c"]).assert_ok();
    assert_eq!(f.agent_calls(), vec!["v1 -q pid"]);
    std::fs::remove_file(f.agent_dir.join("running")).unwrap();
    f.clear_agent_calls();
    f.run(&["-c"]).assert_ok();
    assert_eq!(
        f.agent_calls(),
        vec!["v1 -q pid", "v1 -q shutdown", "v1 -u"]
    );
    assert!(
        f.server.requests().is_empty(),
        "-c must not talk to the API"
    );
}

#[test]
fn loader_replaces_itself() {
    let f = Fixture::new();
    // The loader runs from the place it manages; the new "version" is the same program with
    // bytes appended (an ELF or PE file still runs with trailing data). On Windows the running
    // image is renamed away, never overwritten.
    let me = std::fs::read(&common::loader().path).unwrap();
    std::fs::write(f.path("mig-loader"), &me).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f.path("mig-loader"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
    }
    let mut next = me.clone();
    next.extend_from_slice(b"\nnext generation\n");
    let mut g = f.generation(1);
    g.files.insert("mig-loader", next.clone());
    f.publish(&g);
    let out = common::loader()
        .command(&f.path("mig-loader"))
        .arg("--root")
        .arg(&f.root)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.read("mig-loader"), Some(next));
    let previous = format!("{}.mig-prev", f.path("mig-loader").display());
    if common::loader().go_os == "windows" {
        // Windows (and wine) refuse to delete the running image: it stays for the next run.
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("is in use, removing it on a later run"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(std::path::Path::new(&previous).exists(), "{previous}");
    } else {
        f.assert_no_leftovers();
    }
    // The new binary runs, finds nothing to do and removes what the old one could not.
    f.server.clear_requests();
    let out = common::loader()
        .command(&f.path("mig-loader"))
        .arg("--root")
        .arg(&f.root)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all files are current"));
    f.assert_no_leftovers();
}

#[test]
fn old_mig_copies_of_secrets_are_removed() {
    let f = Fixture::new();
    let g = f.generation(1);
    std::fs::write(
        format!("{}.old", f.path("agentkey").display()),
        "old secret",
    )
    .unwrap();
    std::fs::write(format!("{}.loader", f.path("mig-agent").display()), "stale").unwrap();
    f.publish(&g);
    f.run(&[]).assert_ok();
    f.assert_generation(&g);
}

#[test]
fn bad_loader_key_is_named_and_nothing_is_asked() {
    let f = Fixture::new();
    let key = f.root.join(common::rel_key_path());
    std::fs::write(&key, "short\n").unwrap();
    let shown = if common::loader().go_os == "windows" {
        "mig\\mig-loader.key"
    } else {
        "etc/mig/mig-loader.key"
    };
    f.run(&[]).assert_failed_with(shown);
    std::fs::remove_file(&key).unwrap();
    f.run(&[]).assert_failed_with("does not exist");
    assert!(f.server.requests().is_empty());
}

#[test]
fn api_errors_name_the_url_and_message() {
    let f = Fixture::new();
    f.server.set_manifest(ManifestMode::Error(
        401,
        "loader key unknown or disabled".into(),
    ));
    f.run(&[])
        .assert_failed_with("/api/v2/loader/manifest answered HTTP 401: loader key unknown");
}

#[test]
fn expectenv_refusal_is_reported_as_rejected() {
    let f = Fixture::new();
    f.server.set_manifest(ManifestMode::Error(
        403,
        "loader environment does not match its expectenv".into(),
    ));
    f.run(&[]).assert_failed_with("HTTP 403");
    let reports = f.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["result"], "rejected");
    assert!(reports[0]["message"]
        .as_str()
        .unwrap()
        .contains("expectenv"));
}

#[test]
fn malformed_runtime_configuration_is_named() {
    let f = Fixture::new();
    std::fs::write(f.path("loaderconfig"), "[loader]\nrequiredsignatures\n").unwrap();
    f.run(&[]).assert_failed_with("mig-loader.cfg: line 2");
}

#[test]
fn runtime_configuration_cannot_lower_the_threshold() {
    let f = Fixture::new();
    let mut cfg = f.runtime_config();
    cfg.extend_from_slice(b"requiredsignatures = 1\n");
    std::fs::write(f.path("loaderconfig"), cfg).unwrap();
    let g = f.generation(1);
    f.publish_signed(&g, &g.statement(), &[1]);
    let run = f.run(&[]);
    run.assert_failed_with("got 1, need 2");
    assert!(
        run.stdout().contains("requiredsignatures: ignored"),
        "{}",
        run.all()
    );
}

#[test]
fn same_serial_with_a_locally_changed_file_is_repaired() {
    let f = Fixture::new();
    let g = installed(&f, 1);
    std::fs::write(f.path("configuration"), "edited by hand").unwrap();
    f.run(&[]).assert_ok();
    f.assert_generation(&g);
    assert_eq!(f.file_requests().len(), 1);
    assert_eq!(f.installed_serial(), Some(1));
}

/// docs/design.md §4.9: a run trusts the sha256 it recorded for a file whose fingerprint did not
/// change, and an edit that restores the size and mtime still changes the ctime.
#[test]
fn a_settled_file_is_not_hashed_again_until_edited_even_with_size_and_mtime_restored() {
    let f = Fixture::new();
    let g = installed(&f, 1);
    // Only a file whose ctime is SETTLE_SECS old is recorded.
    std::thread::sleep(std::time::Duration::from_secs(
        loader_min::known::SETTLE_SECS + 1,
    ));
    f.run(&[]).assert_ok();
    let before = f.snapshot();
    let run = f.run(&[]);
    run.assert_ok();
    assert_eq!(f.snapshot(), before, "a no-change run wrote to the root");
    // Windows files have no fingerprint to trust (known.rs): every run hashes them there.
    let trusted = run
        .stdout()
        .contains("configuration is unchanged since it was hashed");
    assert_eq!(
        trusted,
        common::loader().go_os != "windows",
        "{}",
        run.all()
    );
    let path = f.path("configuration");
    let meta = std::fs::metadata(&path).unwrap();
    let mut edited = std::fs::read(&path).unwrap();
    edited[0] ^= 1;
    std::fs::write(&path, &edited).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(meta.modified().unwrap())
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), meta.len());
    let run = f.run(&[]);
    run.assert_ok();
    assert!(
        run.stdout().contains("refreshing configuration"),
        "{}",
        run.all()
    );
    f.assert_generation(&g);
    assert_eq!(f.file_requests().len(), 1);
}

#[test]
fn malformed_loaderconfig_in_a_manifest_is_not_installed() {
    let f = Fixture::new();
    let g1 = installed(&f, 1);
    let mut g2 = f.generation(2);
    g2.files
        .insert("loaderconfig", b"[loader]\nthis is not ini\n".to_vec());
    f.publish(&g2);
    let run = f.run(&[]);
    run.assert_failed_with("loaderconfig is not usable");
    f.assert_generation(&g1);
    assert_eq!(f.read("loaderconfig"), Some(f.runtime_config()));
    // A usable one is installed with the rest.
    g2.files.insert("loaderconfig", f.runtime_config());
    f.publish(&g2);
    f.run(&[]).assert_ok();
    f.assert_generation(&g2);
}

#[test]
fn proxy_from_the_environment_is_used_unless_no_proxy_names_the_api() {
    let f = Fixture::new();
    let proxy = common::server::Server::start();
    let proxy_url = proxy.base_url().replace("/api/v2/", "");
    // Through the proxy: ureq asks it for a tunnel to the API's host and port.
    let run = f.run_env(&[], &[("HTTP_PROXY", &proxy_url), ("NO_PROXY", "")]);
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let via_proxy = proxy.requests();
    assert_eq!(via_proxy.len(), 1, "{}", run.all());
    let api_host = f
        .server
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches("/api/v2/")
        .to_string();
    assert_eq!(
        (via_proxy[0].method.as_str(), via_proxy[0].path.as_str()),
        ("CONNECT", api_host.as_str())
    );
    assert!(f.server.requests().is_empty());
    // NO_PROXY names the API host: straight to it.
    let run = f.run_env(
        &[],
        &[("HTTP_PROXY", &proxy_url), ("NO_PROXY", "127.0.0.1")],
    );
    assert_eq!(run.code(), Some(1), "{}", run.all());
    assert_eq!(proxy.requests().len(), 1);
    assert_eq!(f.server.requests().len(), 1);
}
