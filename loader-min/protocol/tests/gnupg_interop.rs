//! Interoperability with real GnuPG: keys and signatures made by `gpg` verify with our code, and
//! signatures made by our code verify with `gpg --verify`.
#![cfg(feature = "sign")]

use mig_protocol::signature::{self, Keyring};
use mig_test_support::GnupgHome;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const STATEMENT: &[u8] = br#"{"format":1,"serial":9,"name":"interop","platform":{"os":"linux","arch":"amd64"},"issued":"2026-11-30T00:00:00Z","expires":"2027-02-28T00:00:00Z","entries":[]}"#;

/// A throw-away GnuPG home (mig-test-support's: its agent is stopped on drop).
struct Gpg {
    home: GnupgHome,
}

impl Gpg {
    fn new() -> Self {
        Gpg {
            home: GnupgHome::new(),
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
        let mut child = self
            .home
            .batch()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gpg is installed (.ci/run installs gnupg)");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Generates a key with `gpg --quick-gen-key UID ALGO USAGE never` and returns its fingerprint.
    fn gen(&self, uid: &str, algo: &str, usage: &str) -> String {
        self.ok(&["--quick-gen-key", uid, algo, usage, "never"], None);
        self.fingerprint(uid)
    }

    fn fingerprint(&self, uid: &str) -> String {
        let out = String::from_utf8(self.ok(&["--with-colons", "--list-keys", uid], None)).unwrap();
        out.lines()
            .find(|l| l.starts_with("fpr:"))
            .unwrap()
            .split(':')
            .nth(9)
            .unwrap()
            .to_string()
    }

    fn subkey_fingerprints(&self, uid: &str) -> Vec<String> {
        let out = String::from_utf8(self.ok(&["--with-colons", "--list-keys", uid], None)).unwrap();
        let mut in_sub = false;
        let mut fps = Vec::new();
        for l in out.lines() {
            if l.starts_with("sub:") {
                in_sub = true;
            } else if l.starts_with("fpr:") && in_sub {
                fps.push(l.split(':').nth(9).unwrap().to_string());
                in_sub = false;
            }
        }
        fps
    }

    fn export(&self, uid: &str) -> String {
        String::from_utf8(self.ok(&["--armor", "--export", uid], None)).unwrap()
    }

    fn sign(&self, signer: &str, data: &[u8]) -> String {
        String::from_utf8(self.ok(
            &["--armor", "--detach-sign", "--local-user", signer],
            Some(data),
        ))
        .unwrap()
    }

    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.home.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn verify(&self, sig: &Path, data: &Path) -> std::process::Output {
        self.run(
            &["--verify", sig.to_str().unwrap(), data.to_str().unwrap()],
            None,
        )
    }
}

fn ring_of(gpg: &Gpg, uids: &[&str]) -> Keyring {
    let keys: Vec<(String, String)> = uids
        .iter()
        .map(|u| (u.to_string(), gpg.export(u)))
        .collect();
    Keyring::from_armored(keys.iter().map(|(n, k)| (n.as_str(), k.as_str()))).unwrap()
}

fn gpg_keys_sign_and_we_verify(algo: &str) {
    let gpg = Gpg::new();
    let a = format!("a-{algo} <a@mig.test>");
    let b = format!("b-{algo} <b@mig.test>");
    let fa = gpg.gen(&a, algo, "sign");
    let fb = gpg.gen(&b, algo, "sign");
    let ring = ring_of(&gpg, &[&a, &b]);
    let sigs = vec![gpg.sign(&fa, STATEMENT), gpg.sign(&fb, STATEMENT)];
    let v = signature::verify(&ring, STATEMENT, &sigs)
        .require(2)
        .unwrap();
    assert_eq!(
        v.valid,
        vec![fa, fb],
        "{algo}: both primary fingerprints count"
    );
    let mut tampered = STATEMENT.to_vec();
    *tampered.last_mut().unwrap() = b' ';
    assert!(
        signature::verify(&ring, &tampered, &sigs).valid.is_empty(),
        "{algo}: tampered bytes must fail"
    );
}

#[test]
fn gnupg_rsa2048_signatures_verify() {
    gpg_keys_sign_and_we_verify("rsa2048");
}

#[test]
fn gnupg_rsa4096_signatures_verify() {
    gpg_keys_sign_and_we_verify("rsa4096");
}

#[test]
fn gnupg_ed25519_signatures_verify() {
    gpg_keys_sign_and_we_verify("ed25519");
}

#[test]
fn gnupg_ecdsa_p256_signatures_verify() {
    gpg_keys_sign_and_we_verify("nistp256");
}

#[test]
fn subkey_signatures_count_once_for_their_primary() {
    let gpg = Gpg::new();
    let uid = "split <split@mig.test>";
    let primary = gpg.gen(uid, "ed25519", "cert");
    gpg.ok(
        &["--quick-add-key", &primary, "ed25519", "sign", "never"],
        None,
    );
    gpg.ok(
        &["--quick-add-key", &primary, "rsa2048", "sign", "never"],
        None,
    );
    let subs = gpg.subkey_fingerprints(uid);
    assert_eq!(subs.len(), 2);
    let other = "other <other@mig.test>";
    let other_fp = gpg.gen(other, "ed25519", "sign");
    let ring = ring_of(&gpg, &[uid, other]);
    // The trailing "!" makes gpg use exactly that subkey.
    let by_sub1 = gpg.sign(&format!("{}!", subs[0]), STATEMENT);
    let by_sub2 = gpg.sign(&format!("{}!", subs[1]), STATEMENT);
    let v = signature::verify(&ring, STATEMENT, &[by_sub1.clone(), by_sub2]);
    assert_eq!(
        v.valid,
        vec![primary.clone()],
        "two subkeys of one primary count once"
    );
    assert_eq!(v.ignored.len(), 1);
    assert!(v.clone().require(2).is_err());
    let v = signature::verify(&ring, STATEMENT, &[by_sub1, gpg.sign(&other_fp, STATEMENT)])
        .require(2)
        .unwrap();
    assert_eq!(v.valid, vec![primary, other_fp]);
}

#[test]
fn our_signatures_verify_in_gnupg() {
    let gpg = Gpg::new();
    // A key made by our code …
    let (secret, public) = signature::generate_key("ours <ours@mig.test>").unwrap();
    gpg.ok(&["--import"], Some(public.as_bytes()));
    let data = gpg.file("statement.json", STATEMENT);
    let sig = gpg.file(
        "ours.asc",
        signature::sign_detached(&secret, "", STATEMENT)
            .unwrap()
            .as_bytes(),
    );
    let out = gpg.verify(&sig, &data);
    assert!(
        out.status.success(),
        "gpg --verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Good signature"));
    // … and a secret key GnuPG generated and exported, used by our code.
    let fp = gpg.gen("theirs <theirs@mig.test>", "ed25519", "sign");
    let exported =
        String::from_utf8(gpg.ok(&["--armor", "--export-secret-keys", &fp], None)).unwrap();
    let theirs = signature::parse_secret_key("exported", &exported).unwrap();
    let sig2 = gpg.file(
        "theirs.asc",
        signature::sign_detached(&theirs, "", STATEMENT)
            .unwrap()
            .as_bytes(),
    );
    assert!(gpg.verify(&sig2, &data).status.success());
    // One changed byte: gpg refuses too.
    let bad = gpg.file("bad.json", &[STATEMENT, b" "].concat());
    assert!(!gpg.verify(&sig2, &bad).status.success());
}

#[test]
fn committed_dev_keys_parse_and_sign() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/dev-keys");
    let public: Vec<String> = (1..=2)
        .map(|i| std::fs::read_to_string(root.join(format!("admin{i}.pub.asc"))).unwrap())
        .collect();
    let ring = Keyring::from_armored(public.iter().map(|k| ("dev", k.as_str()))).unwrap();
    let sigs: Vec<String> = (1..=3)
        .map(|i| {
            let sec = std::fs::read_to_string(root.join(format!("admin{i}.sec.asc"))).unwrap();
            signature::sign_detached(
                &signature::parse_secret_key("dev", &sec).unwrap(),
                "",
                STATEMENT,
            )
            .unwrap()
        })
        .collect();
    let v = signature::verify(&ring, STATEMENT, &sigs)
        .require(2)
        .unwrap();
    assert_eq!(v.valid.len(), 2);
    assert!(
        v.ignored[0].contains("not in the keyring"),
        "admin3 is the unknown key: {:?}",
        v.ignored
    );
}
