//! The root of trust, end to end (docs/design.md §4.21): the real mig-api keeps the chain and
//! serves it, the development mig-loader (root 1: admin1, admin2, rsa1, rsa2, threshold 2, keys
//! GnuPG made) walks it, and a rotation revokes a key for every statement, signed before it or
//! after. Roots are proposed and signed over HTTP with administrator tokens (mig-console has no
//! root commands); manifests go through mig-console as in the walk-through. A compromised API is
//! played by writing its database directly.
//! Needs the workspace binaries: `cargo build --workspace --bins --all-features` first.

use e2e::world::{bundle, World};
use e2e::ApiOptions;
use mig_http::{Client, HttpConfig, Method};
use mig_protocol::admin::AuthToken;
use mig_protocol::root::{Document, RootKey, Signed};
use mig_protocol::signature::{dearmor, parse_secret_key, sign_detached};
use mig_protocol::time::Timestamp;
use mig_test_support::dev_key;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The keys built into the development loader: root 1.
const ROOT1: [&str; 4] = ["admin1", "admin2", "rsa1", "rsa2"];

fn options() -> ApiOptions {
    let keys: Vec<String> = ROOT1
        .iter()
        .map(|k| dev_key(&format!("{k}.pub.asc")).display().to_string())
        .collect();
    ApiOptions {
        extra: format!("[root]\nkeys = {}\nthreshold = 2\n", keys.join(", ")),
        ..ApiOptions::default()
    }
}

fn secret(name: &str) -> pgp::composed::SignedSecretKey {
    let text = std::fs::read_to_string(dev_key(&format!("{name}.sec.asc"))).unwrap();
    parse_secret_key(name, &text).unwrap()
}

/// A root document of `keys` (development key names), threshold 2, valid for a year.
fn root_doc(version: u64, keys: &[&str], threshold: usize) -> String {
    let mut keys: Vec<RootKey> = keys
        .iter()
        .map(|k| {
            let text = std::fs::read_to_string(dev_key(&format!("{k}.pub.asc"))).unwrap();
            RootKey::from_armored(k, &text).unwrap()
        })
        .collect();
    keys.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    Document {
        version,
        expires: Timestamp::now().plus(365 * 86_400),
        threshold,
        keys,
    }
    .to_text()
    .unwrap()
}

/// An armored detached signature by GnuPG with the development key `name`.
fn gpg_sign(name: &str, text: &str) -> String {
    let home =
        mig_test_support::gnupg::GnupgHome::with_keys(&[dev_key(&format!("{name}.sec.asc"))]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("root.txt");
    std::fs::write(&data, text).unwrap();
    let mut c = home.batch();
    c.args([
        "--armor",
        "--digest-algo",
        "SHA256",
        "--detach-sign",
        "--output",
        "-",
    ])
    .arg(&data);
    let out = mig_test_support::process::run(c, None, Duration::from_secs(60));
    out.ok().stdout.clone()
}

static NONCE: AtomicU64 = AtomicU64::new(1);

/// Administrator requests as admin1, with a fresh token each.
struct AdminHttp {
    client: Client,
    audience: String,
    key: pgp::composed::SignedSecretKey,
}

impl AdminHttp {
    fn new(w: &World) -> AdminHttp {
        let cfg = HttpConfig {
            allow_plain_http: true,
            ..HttpConfig::default()
        };
        AdminHttp {
            client: Client::new(&cfg, &w.d.api.base_url).unwrap(),
            audience: w.d.api.audience(),
            key: secret("admin1"),
        }
    }

    fn call(&self, method: Method, path: &str, body: Option<serde_json::Value>) -> (u16, String) {
        let nonce = format!(
            "r{}x{}",
            NONCE.fetch_add(1, Ordering::SeqCst),
            std::process::id()
        );
        let mut t = AuthToken::new(Timestamp::now(), nonce, self.audience.clone());
        let sig = sign_detached(&self.key, "", t.signed_data().as_bytes()).unwrap();
        t.signature = dearmor(&sig).unwrap();
        let token = t.header_value();
        let body = body.map(|b| b.to_string().into_bytes());
        let resp = self
            .client
            .request(
                method,
                path,
                &[
                    ("X-PGPAUTHORIZATION", token.as_str()),
                    ("Content-Type", "application/json"),
                ],
                body.as_deref(),
            )
            .unwrap();
        let status = resp.status;
        let text = String::from_utf8(resp.read_capped(1 << 20).unwrap()).unwrap();
        (status, text)
    }

    fn propose(&self, document: &str) -> (u16, String) {
        self.call(
            Method::Post,
            "roots",
            Some(serde_json::json!({ "document": document })),
        )
    }

    fn sign(&self, version: u64, signature: &str) -> (u16, String) {
        self.call(
            Method::Post,
            &format!("roots/{version}/signatures"),
            Some(serde_json::json!({ "signature": signature })),
        )
    }
}

#[track_caller]
fn assert_status(got: (u16, String), status: u16, needle: &str) -> serde_json::Value {
    assert_eq!(got.0, status, "{}", got.1);
    assert!(got.1.contains(needle), "{needle:?} not in {}", got.1);
    serde_json::from_str(&got.1).unwrap_or_default()
}

/// Publishes `files` signed through mig-console by `signers`; returns the manifest id.
fn publish_signed_by(
    w: &World,
    name: &str,
    files: &[(&'static str, Vec<u8>)],
    signers: &[&e2e::admin::Admin],
) -> u64 {
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let archive = w.d.archive(&name.replace(' ', "-"), &borrowed);
    let id =
        w.d.create_manifest(name, e2e::world::LINUX_TARGET, &archive, ("linux", "amd64"));
    w.d.sign(id, &archive, signers);
    id
}

#[test]
fn a_rotation_revokes_the_removed_key_and_admits_the_new_one_and_forged_roots_are_refused() {
    let w = World::new(options());
    let api = AdminHttp::new(&w);
    // Before any rotation a manifest by admin2 (removed below) and admin1 installs.
    w.installed_v1();
    assert!(!w.host.root.join("var/lib/mig/mig-loader.roots/2").exists());

    // Root 2: admin2 removed, admin3 added, threshold 2.
    let root2 = root_doc(2, &["admin1", "admin3", "rsa1", "rsa2"], 2);
    // The API refuses what does not chain or does not count.
    assert_status(
        api.propose(&root_doc(3, &["admin1"], 1)),
        409,
        "does not chain",
    );
    assert_status(
        api.propose(&root2.replacen("threshold 2", "threshold 02", 1)),
        400,
        "plain decimal",
    );
    assert_status(api.propose(&root2), 201, "\"accepted\":false");
    let fresh = gpg_sign("freshness", &root2);
    assert_status(api.sign(2, &fresh), 400, "by no key of root 1 or root 2");
    let stale = gpg_sign("admin1", &root2.replacen("version 2", "version 2\n", 1));
    assert_status(api.sign(2, &stale), 400, "does not count for root 2");
    assert_status(
        api.propose(&root_doc(3, &["admin1"], 1)),
        409,
        "newest accepted root is 1",
    );

    // Forged root 2, signed only by keys of root 1 (admin2, rsa1: one of root 2's keys), which
    // a compromised API serves anyway: refused, naming root 2's own threshold.
    let by_old = [gpg_sign("admin2", &root2), gpg_sign("rsa1", &root2)];
    for s in &by_old {
        assert_status(api.sign(2, s), 200, "\"accepted\":false");
    }
    w.d.api
        .sql("UPDATE roots SET accepted = 1 WHERE version = 2");
    let out = w.refused("not signed by its own threshold (2 of its 4 keys)");
    assert!(
        out.stdout.contains("root 2 refused") || out.stderr.contains("root 2 refused"),
        "{out}"
    );
    assert!(!w.host.root.join("var/lib/mig/mig-loader.roots/2").exists());

    // Forged root 2, signed only by keys of root 2 (admin3, rsa1): refused, naming root 1's.
    w.d.api.sql("DELETE FROM root_signatures WHERE version = 2");
    let by_new = [gpg_sign("admin3", &root2), gpg_sign("rsa1", &root2)];
    for s in &by_new {
        assert_status(api.sign(2, s), 200, "\"signers\"");
    }
    let out = w.refused("not signed by the threshold of root 1 (2 of its 4 keys)");
    assert!(
        out.stdout.contains("got 1, need 2") || out.stderr.contains("got 1, need 2"),
        "{out}"
    );

    // The real root 2: admin2 signs too (root 1: admin2, rsa1; root 2: admin3, rsa1).
    w.d.api
        .sql("UPDATE roots SET accepted = 0 WHERE version = 2");
    let rec = assert_status(
        api.sign(2, &gpg_sign("admin2", &root2)),
        200,
        "\"accepted\":true",
    );
    assert_eq!(rec["signers"].as_array().unwrap().len(), 3, "{rec}");

    // The loader walks to root 2 and keeps it. Revocation: the installed manifest, signed by
    // admin1 and admin2 before the rotation, now reaches only one of root 2's keys.
    let out = w.refused("not enough valid signatures (got 1, need 2)");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("accepted root of trust 2: signed by 2 of root 1"),
        "{out}"
    );
    assert!(all.contains("root of trust is now version 2"), "{out}");
    let kept = std::fs::read(w.host.root.join("var/lib/mig/mig-loader.roots/2")).unwrap();
    let kept = Signed::parse("kept root", &kept).unwrap();
    assert_eq!(kept.document, root2);
    // So is one signed by the same two after the rotation; root 2 is kept, not fetched again.
    let v2 = bundle(&w.host, "v2", "[agent]\nrelay = \"amqp://relay2:5671/\"\n");
    publish_signed_by(&w, "by a removed key", &v2, &[&w.d.admin1, &w.d.admin2]);
    let out = w.refused("not enough valid signatures (got 1, need 2)");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        !all.contains("accepted root of trust"),
        "root 2 is kept, not fetched again:\n{out}"
    );

    // The new key counts: admin3 becomes an investigator and signs with admin1.
    let pubkey = dev_key("admin3.pub.asc");
    w.d.admin1
        .run(&[
            "create",
            "investigator",
            "--name",
            "admin3",
            "--pubkey",
            pubkey.to_str().unwrap(),
            "--perms",
            "PermManifest",
        ])
        .ok();
    let admin3 = e2e::admin::Admin::with_key_file(&w.d.api.base_url, "admin3");
    let v3 = bundle(&w.host, "v3", "[agent]\nrelay = \"amqp://relay3:5671/\"\n");
    let id3 = publish_signed_by(&w, "by the new key", &v3, &[&w.d.admin1, &admin3]);
    let out = w.run_loader();
    out.ok();
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("verified with root version 2: threshold 2 of 4 keys"),
        "{out}"
    );
    assert_eq!(w.host.running_agent().as_deref(), Some("v3"));
    assert_eq!(w.last_report()["serial"], id3);

    // A root file changed on disk is refused and the loader falls back to the last root that
    // verifies from the built-in one (here root 1), then fetches root 2 again.
    let path = w.host.root.join("var/lib/mig/mig-loader.roots/2");
    let mut forged = kept.clone();
    forged.document = forged.document.replacen("threshold 2", "threshold 1", 1);
    std::fs::write(&path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let out = w.run_loader();
    out.ok();
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("refusing the root of trust kept in"), "{out}");
    assert!(all.contains("accepted root of trust 2"), "{out}");
    assert_eq!(
        Signed::parse("kept root", &std::fs::read(&path).unwrap()).unwrap(),
        kept
    );
}

/// Roots 2 to 301 (root 2 signed by admin1 and admin2, then each of admin1 alone, threshold
/// 1), stored by a compromised API or a long history: one run walks 256 and stops saying so, the
/// next finishes the chain.
#[test]
fn a_chain_longer_than_one_run_walks_stops_at_the_bound_and_the_next_run_finishes_it() {
    let w = World::new(options());
    w.installed_v1();
    let admin1 = secret("admin1");
    let admin2 = secret("admin2");
    for version in 2..=301u64 {
        let doc = root_doc(version, &["admin1"], 1);
        let mut sigs = vec![sign_detached(&admin1, "", doc.as_bytes()).unwrap()];
        if version == 2 {
            sigs.push(sign_detached(&admin2, "", doc.as_bytes()).unwrap());
        }
        w.d.api.sql(&format!(
            "INSERT INTO roots (version, document, accepted, created) VALUES ({version}, '{doc}', 1, 0)"
        ));
        for (i, s) in sigs.iter().enumerate() {
            w.d.api.sql(&format!(
                "INSERT INTO root_signatures (version, fingerprint, signature, created) \
                 VALUES ({version}, 'F{i}', '{s}', 0)"
            ));
        }
    }
    // Roots are accepted through an administrator's write, after which every kept answer is
    // made again and names the newest root (docs/design.md §4.21); rows written behind the API's
    // back are named once such a write happens (a refused proposal is one).
    let api = AdminHttp::new(&w);
    let announce = || {
        assert_status(api.propose(&root_doc(2, &["admin1"], 1)), 409, "root");
    };
    announce();
    let out = w.refused("the root of trust chain goes on past root 257: walked 256 roots this run");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("the next run continues from root 257"),
        "{out}"
    );
    let report = w.last_report();
    assert_eq!(report["result"], "rejected", "{report}");
    let dir = w.host.root.join("var/lib/mig/mig-loader.roots");
    assert!(dir.join("257").exists() && !dir.join("258").exists());
    // A chain that ends below the root the answer names (root 300 withdrawn, 301 still named):
    // nothing is verified with the root reached.
    w.d.api
        .sql("UPDATE roots SET accepted = 0 WHERE version = 300");
    announce();
    w.refused("the API named root of trust 301 but its chain ends at root 299");
    assert!(dir.join("299").exists() && !dir.join("300").exists());
    // With root 300 back, the next run verifies the 298 kept roots again, walks the last two
    // and uses root 301.
    w.d.api
        .sql("UPDATE roots SET accepted = 1 WHERE version = 300");
    announce();
    let out = w.run_loader();
    out.ok();
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("root of trust is now version 301"), "{out}");
    assert!(dir.join("301").exists());
}
