//! What the console does before it reaches an API: signing through GnuPG and through a key file
//! (checked by the other side: our verifier and GnuPG), refusing to prompt a script, naming a
//! missing configuration, and refusing plain http to a remote host.

mod support;

use console::config::Identity;
use console::signer::Signer;
use e2e::{dev_key, run, GnupgHome};
use mig_protocol::admin::AuthToken;
use mig_protocol::signature::{rearmor, verify, Keyring};
use support::{key_file_admin, Admin, TIMEOUT};

fn keyring(admin: &str) -> Keyring {
    let public = std::fs::read_to_string(dev_key(&format!("{admin}.pub.asc"))).unwrap();
    Keyring::from_armored([(admin, public.as_str())]).unwrap()
}

fn no_prompt(_: &str) -> Option<String> {
    None
}

#[test]
fn gpg_signs_statements_and_tokens_that_our_verifier_accepts() {
    let gnupg = GnupgHome::with_keys(&[dev_key("admin1.sec.asc")]);
    let signer = Signer::new(
        &Identity::Gpg {
            keyid: e2e::fingerprint(&dev_key("admin1.pub.asc")),
            home: Some(gnupg.path().to_path_buf()),
            program: "gpg".into(),
        },
        &no_prompt,
    )
    .unwrap();
    let statement = br#"{"format":1,"serial":7,"name":"n"}"#;
    let sig = signer.sign(statement).unwrap();
    let ring = keyring("admin1");
    assert_eq!(
        verify(&ring, statement, std::slice::from_ref(&sig))
            .valid
            .len(),
        1
    );
    assert!(verify(&keyring("admin2"), statement, &[sig])
        .valid
        .is_empty());

    // The authentication token: 2;<ts>;<nonce>;<audience>;<de-armored signature over
    // "2;<ts>;<nonce>;<audience>\n">.
    let aud = "https://mig-api.example.net:1664/api/v2/";
    let token = AuthToken::parse(&console::api::make_token(&signer, aud).unwrap()).unwrap();
    assert!(token.signed_data().contains(aud));
    let sig = rearmor(&token.signature).unwrap();
    assert_eq!(
        verify(&ring, token.signed_data().as_bytes(), &[sig])
            .valid
            .len(),
        1
    );
}

#[test]
fn a_gpg_that_signs_over_sha1_is_refused_with_the_reason() {
    // A gpg.conf asking for SHA-1: the signature would count nowhere (docs/design.md §4.2).
    let gnupg = GnupgHome::with_keys(&[dev_key("admin1.sec.asc")]);
    std::fs::write(gnupg.path().join("gpg.conf"), "digest-algo SHA1\n").unwrap();
    let signer = Signer::new(
        &Identity::Gpg {
            keyid: e2e::fingerprint(&dev_key("admin1.pub.asc")),
            home: Some(gnupg.path().to_path_buf()),
            program: "gpg".into(),
        },
        &no_prompt,
    )
    .unwrap();
    let e = signer.sign(b"data").unwrap_err().to_string();
    assert!(
        e.contains("would not count")
            && e.contains("uses SHA1; only SHA-256 or stronger counts")
            && e.contains("personal-digest-preferences"),
        "{e}"
    );
    assert!(console::api::make_token(&signer, "http://127.0.0.1:1664/api/v2/").is_err());
    std::fs::write(gnupg.path().join("gpg.conf"), "digest-algo SHA256\n").unwrap();
    signer.sign(b"data").unwrap();
}

#[test]
fn gpg_errors_are_shown_with_its_stderr() {
    // admin2's key is not in this home: gpg must fail, and say so.
    let gnupg = GnupgHome::with_keys(&[dev_key("admin1.sec.asc")]);
    let signer = Signer::new(
        &Identity::Gpg {
            keyid: e2e::fingerprint(&dev_key("admin2.pub.asc")),
            home: Some(gnupg.path().to_path_buf()),
            program: "gpg".into(),
        },
        &no_prompt,
    )
    .unwrap();
    let e = signer.sign(b"data").unwrap_err().to_string();
    assert!(e.contains("failed"), "{e}");
    assert!(
        e.to_lowercase().contains("secret key"),
        "gpg's reason is shown: {e}"
    );
}

#[test]
fn key_file_signatures_verify_in_gnupg() {
    let signer = Signer::new(
        &Identity::KeyFile {
            path: dev_key("admin2.sec.asc"),
        },
        &no_prompt,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("statement");
    let sig = dir.path().join("statement.asc");
    std::fs::write(&data, br#"{"format":1,"serial":8}"#).unwrap();
    std::fs::write(&sig, signer.sign(&std::fs::read(&data).unwrap()).unwrap()).unwrap();
    let gnupg = GnupgHome::with_keys(&[dev_key("admin2.pub.asc")]);
    let mut c = gnupg.gpg();
    c.args(["--batch", "--verify"]).arg(&sig).arg(&data);
    let o = run(c, None, TIMEOUT);
    assert!(o.ok().stderr.contains("Good signature"), "{o}");

    std::fs::write(&data, br#"{"format":1,"serial":9}"#).unwrap();
    let mut c = gnupg.gpg();
    c.args(["--batch", "--verify"]).arg(&sig).arg(&data);
    run(c, None, TIMEOUT).failed();
}

/// A console whose API is never reached: a closed loopback port.
fn offline_admin() -> Admin {
    key_file_admin(
        &format!("http://127.0.0.1:{}/api/v2/", e2e::free_port()),
        "admin1",
    )
}

#[test]
fn a_script_without_a_terminal_is_told_which_flag_is_missing() {
    let a = offline_admin();
    for (args, flag) in [
        (&["create", "loader"][..], "missing --name"),
        (
            &["create", "manifest", "--name", "abc", "--target", "x"][..],
            "missing --content",
        ),
        (
            &["create", "investigator", "--name", "admin2"][..],
            "missing --pubkey",
        ),
    ] {
        let o = a.run(args);
        o.failed();
        assert!(o.stderr.contains(flag), "{args:?}: {o}");
        assert!(!o.stdout.contains("name>"), "nothing is prompted: {o}");
    }
}

#[test]
fn a_wrong_archive_is_refused_before_anything_is_sent() {
    let a = offline_admin();
    let dir = tempfile::tempdir().unwrap();
    let junk = e2e::tar_gz(
        dir.path(),
        "bundle",
        &[("mig-agent", b"a"), ("notes.txt", b"b")],
    );
    let o = a.run(&[
        "create",
        "manifest",
        "--name",
        "abc",
        "--target",
        "env#>>'{os}'='linux'",
        "--content",
        junk.to_str().unwrap(),
    ]);
    o.failed();
    assert!(
        o.stderr
            .contains("\"notes.txt\" is not a file a manifest may hold"),
        "{o}"
    );
    let not_gz = dir.path().join("plain.tar.gz");
    std::fs::write(&not_gz, "plain text").unwrap();
    let o = a.run(&[
        "create",
        "manifest",
        "--name",
        "abc",
        "--target",
        "t",
        "--content",
        not_gz.to_str().unwrap(),
    ]);
    o.failed();
    assert!(
        o.stderr.contains("plain.tar.gz") && o.stderr.contains("not a"),
        "{o}"
    );
}

#[test]
fn a_platform_not_in_go_spelling_is_refused_with_the_go_word() {
    let a = offline_admin();
    let dir = tempfile::tempdir().unwrap();
    let good = e2e::tar_gz(dir.path(), "bundle", &[("mig-agent", b"a")]);
    for (flag, word, go) in [
        ("--arch", "aarch64", "arm64"),
        ("--arch", "x86_64", "amd64"),
        ("--arch", "armhf", "arm"),
        ("--os", "macos", "darwin"),
    ] {
        let o = a.run(&[
            "create",
            "manifest",
            "--name",
            "abc",
            "--target",
            "true",
            "--content",
            good.to_str().unwrap(),
            flag,
            word,
        ]);
        o.failed();
        assert!(
            o.stderr
                .contains(&format!("{word:?} is not Go's spelling: write {go:?}")),
            "{word}: {o}"
        );
        assert!(!o.stderr.contains("127.0.0.1"), "nothing was sent: {o}");
    }
}

#[test]
fn an_unreachable_api_fails_with_the_url() {
    let a = offline_admin();
    let o = a.run(&["search", "loader", "where", "loadername=%corb%"]);
    o.failed();
    assert!(o.stderr.contains("127.0.0.1"), "{o}");
    assert!(
        o.stderr.contains("plain http"),
        "the loopback warning is printed: {o}"
    );
}

#[test]
fn a_missing_configuration_is_named_with_the_example() {
    let a = offline_admin();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mig-console"));
    c.args([
        "--config",
        "/nonexistent/migrc",
        "search",
        "manifest",
        "where",
        "status=active",
    ])
    .env("HOME", a.home.path());
    let o = run(c, None, TIMEOUT);
    o.failed();
    assert!(o.stderr.contains("/nonexistent/migrc"), "{o}");
    assert!(o.stderr.contains("conf/migrc.example"), "{o}");
}

#[test]
fn plain_http_to_a_remote_api_is_refused() {
    let a = key_file_admin("http://mig-api.example.net/api/v2/", "admin1");
    let o = a.run(&["loader", "12", "json"]);
    o.failed();
    assert!(o.stderr.contains("use https://"), "{o}");
}

#[test]
fn help_and_usage_errors() {
    let a = offline_admin();
    let o = a.run(&["--help"]);
    assert!(
        o.ok()
            .stdout
            .contains("search loader where loadername=%corb%"),
        "{o}"
    );
    let o = a.run(&["frobnicate"]);
    o.failed();
    assert!(o.stderr.contains("unknown command \"frobnicate\""), "{o}");
    let o = a.run(&["manifest", "34", "sing"]);
    o.failed();
    assert!(
        o.stderr.contains("unknown manifest command \"sing\""),
        "{o}"
    );
}
