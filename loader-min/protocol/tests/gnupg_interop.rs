//! Interoperability with real GnuPG: keys and signatures made by `gpg` verify with our code, and
//! signatures made by our code verify with `gpg --verify`.
#![cfg(feature = "sign")]

use mig_protocol::signature::{self, Keyring, Verdict};
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
            .expect("gpg is installed (.ci/setup installs gnupg)");
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
        self.sign_with(signer, &[], data)
    }

    /// A signature made with extra options (`--digest-algo SHA1`, `--faked-system-time T`).
    fn sign_with(&self, signer: &str, extra: &[&str], data: &[u8]) -> String {
        let mut args = extra.to_vec();
        args.extend(["--armor", "--detach-sign", "--local-user", signer]);
        String::from_utf8(self.ok(&args, Some(data))).unwrap()
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

/// `--faked-system-time` for `days` days before now: keys and signatures made in the past.
fn days_ago(days: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now - days * 86_400).to_string()
}

/// One signature verified alone: it does not count, and the reason says `why`.
#[track_caller]
fn ignored_for(ring: &Keyring, sig: &str, why: &str) {
    let v = signature::verify(ring, STATEMENT, &[sig.to_string()]);
    assert_eq!(v.valid, Vec::<String>::new(), "{:?}", v.ignored);
    assert_eq!(v.ignored.len(), 1);
    assert!(v.ignored[0].contains(why), "{:?} lacks {why:?}", v.ignored);
}

#[test]
fn sha1_signatures_never_count() {
    let gpg = Gpg::new();
    let (a, b) = ("alice <alice@mig.test>", "bob <bob@mig.test>");
    let fa = gpg.gen(a, "rsa2048", "sign");
    let fb = gpg.gen(b, "ed25519", "sign");
    let ring = ring_of(&gpg, &[a, b]);
    let weak = gpg.sign_with(&fa, &["--digest-algo", "SHA1"], STATEMENT);
    let good = gpg.sign_with(&fb, &["--digest-algo", "SHA256"], STATEMENT);
    let v = signature::verify(&ring, STATEMENT, &[weak.clone(), good.clone()]);
    assert_eq!(v.valid, vec![fb.clone()]);
    assert_eq!(
        v.ignored,
        vec![format!(
            "signature #1 by {fa} uses SHA1; only SHA-256 or stronger counts"
        )]
    );
    let e = v.require(2).unwrap_err().to_string();
    assert!(e.contains("got 1, need 2") && e.contains("SHA1"), "{e}");
    // Ed25519 over SHA-1 too; SHA-512 counts.
    ignored_for(
        &ring,
        &gpg.sign_with(&fb, &["--digest-algo", "SHA1"], STATEMENT),
        "uses SHA1",
    );
    let strong = gpg.sign_with(&fa, &["--digest-algo", "SHA512"], STATEMENT);
    let v: Verdict = signature::verify(&ring, STATEMENT, &[strong.clone(), good]);
    assert_eq!(v.require(2).unwrap().valid, vec![fa, fb]);
    // The console's check, over the same rule.
    let e = signature::check_strength(&weak).unwrap_err().to_string();
    assert!(
        e.contains("uses SHA1; only SHA-256 or stronger counts"),
        "{e}"
    );
    signature::check_strength(&strong).unwrap();
}

#[test]
fn an_encryption_only_subkey_does_not_count() {
    // Whoever holds an encryption subkey (a mail server, say) must not sign for its primary.
    let gpg = Gpg::new();
    let uid = "enc <enc@mig.test>";
    let primary = gpg.gen(uid, "ed25519", "sign");
    gpg.ok(
        &["--quick-add-key", &primary, "rsa2048", "encr", "never"],
        None,
    );
    let sub = gpg.subkey_fingerprints(uid).remove(0);
    let ring = ring_of(&gpg, &[uid]);
    // gpg refuses to sign with it; a stolen copy signs with any other tool.
    let exported =
        String::from_utf8(gpg.ok(&["--armor", "--export-secret-keys", &primary], None)).unwrap();
    let secret = signature::parse_secret_key("exported", &exported).unwrap();
    let by_sub = pgp::composed::DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        &secret.secret_subkeys[0].key,
        &pgp::types::Password::empty(),
        pgp::crypto::hash::HashAlgorithm::Sha256,
        STATEMENT,
    )
    .unwrap()
    .to_armored_string(pgp::composed::ArmorOptions::default())
    .unwrap();
    ignored_for(
        &ring,
        &by_sub,
        &format!(
            "signature #1 by {primary} was made by subkey {sub}, which is not allowed to sign \
             (no signing flag)"
        ),
    );
    // The primary itself still counts.
    let v = signature::verify(&ring, STATEMENT, &[gpg.sign(&primary, STATEMENT)]);
    assert_eq!(v.valid, vec![primary]);
}

#[test]
fn a_revoked_subkey_does_not_count_even_for_a_signature_made_before_the_revocation() {
    let gpg = Gpg::new();
    let uid = "rev <rev@mig.test>";
    let t = days_ago(10);
    gpg.ok(
        &[
            "--faked-system-time",
            &t,
            "--quick-gen-key",
            uid,
            "ed25519",
            "cert",
            "never",
        ],
        None,
    );
    let primary = gpg.fingerprint(uid);
    gpg.ok(
        &[
            "--faked-system-time",
            &t,
            "--quick-add-key",
            &primary,
            "ed25519",
            "sign",
            "never",
        ],
        None,
    );
    let sub = gpg.subkey_fingerprints(uid).remove(0);
    let before = gpg.sign_with(
        &format!("{sub}!"),
        &["--faked-system-time", &days_ago(5)],
        STATEMENT,
    );
    // Counts while the subkey stands.
    assert_eq!(
        signature::verify(
            &ring_of(&gpg, &[uid]),
            STATEMENT,
            std::slice::from_ref(&before)
        )
        .valid,
        vec![primary.clone()]
    );
    // gpg --edit-key: select subkey 1, revkey, confirm, reason 0 (none), empty text, confirm.
    gpg.ok(
        &["--command-fd", "0", "--edit-key", &primary],
        Some(b"key 1\nrevkey\ny\n0\n\ny\nsave\n"),
    );
    let ring = ring_of(&gpg, &[uid]);
    ignored_for(
        &ring,
        &before,
        &format!(
            "signature #1 by {primary} was made by subkey {sub}, which is revoked; a revocation \
             counts for every signature"
        ),
    );
}

#[test]
fn an_expired_key_counts_only_for_signatures_made_before_it_expired() {
    let gpg = Gpg::new();
    let uid = "exp <exp@mig.test>";
    gpg.ok(
        &[
            "--faked-system-time",
            &days_ago(10),
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ],
        None,
    );
    let fp = gpg.fingerprint(uid);
    let early = gpg.sign_with(&fp, &["--faked-system-time", &days_ago(9)], STATEMENT);
    let late = gpg.sign(&fp, STATEMENT);
    // Eight days ago the key was set to expire a day later: the signature of today comes after.
    gpg.ok(
        &[
            "--faked-system-time",
            &days_ago(8),
            "--quick-set-expire",
            &fp,
            "1d",
        ],
        None,
    );
    let ring = ring_of(&gpg, &[uid]);
    assert_eq!(
        signature::verify(&ring, STATEMENT, &[early]).valid,
        vec![fp.clone()]
    );
    ignored_for(&ring, &late, &format!("signature #1 by {fp} was made at "));
    ignored_for(&ring, &late, "by the key, which expired at ");
}

#[test]
fn rsa_1024_keys_are_refused_when_loaded_and_rsa_1024_subkeys_do_not_count() {
    let gpg = Gpg::new();
    let weak = "weak <weak@mig.test>";
    gpg.gen(weak, "rsa1024", "sign");
    let e = Keyring::from_armored([("weak.asc", gpg.export(weak).as_str())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("weak.asc")
            && e.contains("1024-bit RSA key; only RSA keys of at least 2048 bits are accepted"),
        "{e}"
    );
    let uid = "mixed <mixed@mig.test>";
    let primary = gpg.gen(uid, "ed25519", "cert");
    gpg.ok(
        &["--quick-add-key", &primary, "rsa1024", "sign", "never"],
        None,
    );
    let sub = gpg.subkey_fingerprints(uid).remove(0);
    let ring = ring_of(&gpg, &[uid]);
    ignored_for(
        &ring,
        &gpg.sign(&format!("{sub}!"), STATEMENT),
        &format!(
            "signature #1 by {primary} was made by subkey {sub}, a 1024-bit RSA key; only RSA \
             keys of at least 2048 bits count"
        ),
    );
}
