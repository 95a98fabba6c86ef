//! The console on a real pseudo-terminal: the line editor's completion and history, ctrl+d, and
//! the passphrase of a protected key file asked without echo (or taken from MIG_PASSPHRASE).

mod support;

use pgp::composed::{KeyType, SecretKeyParamsBuilder};
use pgp::types::KeyVersion;
use support::{key_file_admin, Admin, Pty};

/// The URL of a closed loopback port: what these tests check happens before any answer.
fn closed_url() -> String {
    format!("http://127.0.0.1:{}/api/v2/", e2e::free_port())
}

#[test]
fn a_terminal_session_completes_words_keeps_history_and_leaves_on_ctrl_d() {
    let a = key_file_admin(&closed_url(), "admin1");
    let mut t = Pty::spawn(&a.command(&[]));
    t.expect("type help for the commands");
    t.expect("mig> ");
    // "hel" + tab completes to "help ".
    t.send("hel\t\r");
    t.expect("% and * are wildcards in names.");
    t.expect("mig> ");
    // The search keys complete with their `=`; the request then goes to the (closed) API.
    t.send("search loader where loadern\t%corb%\r");
    t.expect("loadername=%25corb%25");
    t.expect("mig> ");
    t.send("manifest 34 sh\t\r");
    t.expect("manifests/34");
    t.expect("mig> ");
    t.send("\x04");
    let (status, screen) = t.wait();
    assert!(status.success(), "ctrl+d leaves cleanly: {screen}");
    let history = std::fs::read_to_string(a.home.path().join(".mig_history")).unwrap();
    assert!(
        history.contains("search loader where loadername=%corb%"),
        "{history}"
    );
    assert!(history.contains("manifest 34 shasum"), "{history}");
}

/// A secret key protected by `passphrase`, written to `dir`.
fn protected_key(dir: &std::path::Path, passphrase: &str) -> std::path::PathBuf {
    let mut b = SecretKeyParamsBuilder::default();
    b.version(KeyVersion::V4)
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("protected <p@example.org>".into())
        .passphrase(Some(passphrase.into()));
    let key = b.build().unwrap().generate(rand::thread_rng()).unwrap();
    assert!(key.primary_key.secret_params().is_encrypted());
    let path = dir.join("protected.sec.asc");
    std::fs::write(
        &path,
        mig_protocol::signature::armor_secret_key(&key).unwrap(),
    )
    .unwrap();
    path
}

fn admin_with_key(url: &str, key: &std::path::Path) -> Admin {
    let a = key_file_admin(url, "admin1");
    std::fs::write(
        &a.config,
        format!(
            "[api]\nurl = {url}\n[signing]\nkeyfile = {}\n",
            key.display()
        ),
    )
    .unwrap();
    a
}

const PASSPHRASE: &str = "s3cret-Passw0rd";

#[test]
fn a_protected_key_file_asks_for_its_passphrase_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let key = protected_key(dir.path(), PASSPHRASE);
    let a = admin_with_key(&closed_url(), &key);

    // Right passphrase: the token is signed and the request goes out (to a closed port).
    let mut t = Pty::spawn(&a.command(&["search", "loader", "where", "loadername=x"]));
    t.expect("passphrase for ");
    t.send(&format!("{PASSPHRASE}\r"));
    t.expect("search?type=loader");
    let (status, screen) = t.wait();
    assert!(!status.success(), "the API is not there: {screen}");
    assert!(
        !screen.contains(PASSPHRASE),
        "the passphrase was echoed: {screen}"
    );
    assert!(!screen.contains("signing failed"), "{screen}");

    // Wrong passphrase: signing fails and says why, before any request.
    let mut t = Pty::spawn(&a.command(&["search", "loader", "where", "loadername=x"]));
    t.expect("passphrase for ");
    t.send("wrong\r");
    t.expect("signing failed");
    let (status, screen) = t.wait();
    assert!(!status.success());
    assert!(
        !screen.contains("search?type=loader"),
        "nothing was sent: {screen}"
    );
}

#[test]
fn without_a_terminal_the_passphrase_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let key = protected_key(dir.path(), PASSPHRASE);
    let a = admin_with_key(&closed_url(), &key);
    let o = a.run(&["search", "loader", "where", "loadername=x"]);
    o.failed();
    assert!(
        o.stderr
            .contains("protected by a passphrase: set MIG_PASSPHRASE"),
        "{o}"
    );

    let mut c = a.command(&["search", "loader", "where", "loadername=x"]);
    c.env("MIG_PASSPHRASE", PASSPHRASE);
    let o = e2e::run(c, None, support::TIMEOUT);
    o.failed();
    assert!(
        o.stderr.contains("search?type=loader") && !o.stderr.contains("signing failed"),
        "{o}"
    );
}
