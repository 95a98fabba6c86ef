//! The console on a real pseudo-terminal: the line editor's completion and history, ctrl+d, the
//! passphrase of a protected key file asked without echo (or taken from MIG_PASSPHRASE), and the
//! progress bar of a large upload (on a terminal only).

mod support;

use pgp::composed::{KeyType, SecretKeyParamsBuilder};
use pgp::types::KeyVersion;
use support::{key_file_admin, manifest_archive, Admin, Pty};

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

#[test]
fn a_large_upload_draws_a_progress_bar_on_a_terminal_and_nothing_when_piped_or_json() {
    use rand::RngCore;
    let api = e2e::ApiServer::start(e2e::ApiOptions::default());
    api.add_investigator(
        "admin1",
        &e2e::dev_key("admin1.pub.asc"),
        "PermAdmin,PermManifest,PermLoader",
    )
    .ok();
    let a = key_file_admin(&api.base_url, "admin1");
    let work = tempfile::tempdir().unwrap();
    // Incompressible, so the upload is well past the bar's threshold.
    let mut agent = vec![0u8; 768 * 1024];
    rand::thread_rng().fill_bytes(&mut agent);
    let archive = manifest_archive(work.path(), "mig-manifest-big", &agent);
    let create = |name: &str| -> Vec<String> {
        [
            "create",
            "manifest",
            "--name",
            name,
            "--target",
            "true",
            "--content",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([archive.display().to_string(), "--yes".into()])
        .collect()
    };
    let words = create("big.one");
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut t = Pty::spawn(&a.command(&words));
    t.expect("uploading the manifest [");
    t.expect("] 100%");
    t.expect("Manifest successfully created with ID 1");
    let (status, screen) = t.wait();
    assert!(status.success(), "{screen}");

    // Piped (a script): the same upload prints nothing extra.
    let words = create("big.two");
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let o = a.run(&words);
    assert!(
        o.ok()
            .stdout
            .contains("Manifest successfully created with ID 2"),
        "{o}"
    );
    assert!(
        !o.stderr.contains("uploading") && !o.stdout.contains("uploading"),
        "{o}"
    );

    // --json on a terminal: the JSON only.
    let mut words = create("big.three");
    words.insert(0, "--json".into());
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let t = Pty::spawn(&a.command(&words));
    let (status, screen) = t.wait();
    assert!(status.success(), "{screen}");
    assert!(screen.contains("\"id\": 3"), "{screen}");
    assert!(!screen.contains("uploading"), "{screen}");
}
