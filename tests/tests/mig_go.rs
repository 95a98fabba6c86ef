//! A deployed fleet of MIG's Go `mig-loader`s moves to mig-api (docs/design.md §8.3): the real
//! Go loader, built by `../shared/mig-go/build.sh` with two RSA administrators and threshold 2,
//! run by `run.sh` as root in a private mount namespace against mig-api on loopback. It installs,
//! reruns, upgrades, is refused, never gets a manifest it could not verify, and finally installs
//! our `mig-loader` in its own place, whose next run speaks v2 with the same key file. And a MIG
//! database (MIG's own schema.sql on a real PostgreSQL) is imported, once, and its Go loaders
//! keep their keys.

use e2e::admin::Admin;
use e2e::deployment::Deployment;
use e2e::mig_go::{GoHost, GoLoader, GoRun};
use e2e::postgres::{sqlite_rows, PgCluster};
use e2e::world::EXPECTENV;
use e2e::{binary, dev_key, fingerprint, run, sha256_hex, ApiOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LINUX_AMD64: (&str, &str) = ("linux", "amd64");
const TARGET: &str = "env#>>'{os}'='linux'";

/// The stand-in agent the Go loader's run.sh convention expects: it records every call.
fn agent(version: &str) -> Vec<u8> {
    format!("#!/bin/sh\n# stand-in mig-agent {version}\necho \"$0 $*\" >> \"${{AGENT_LOG:-/dev/null}}\"\nexit 0\n")
        .into_bytes()
}

/// MIG's six bundle entries, `configuration` varying.
fn bundle(configuration: &str, loader: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("mig-agent", agent("1")),
        ("mig-loader", loader.to_vec()),
        ("configuration", configuration.as_bytes().to_vec()),
        (
            "cacert",
            b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        (
            "agentcert",
            b"-----BEGIN CERTIFICATE-----\nAGENT\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        (
            "agentkey",
            b"-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n".to_vec(),
        ),
    ]
}

/// Where MIG's Go loader installs each entry, and the mode it gives it (mig-reference §2.10).
const MIG_PATHS: &[(&str, &str, &str)] = &[
    ("mig-agent", "/sbin/mig-agent", "700"),
    ("mig-loader", "/sbin/mig-loader", "700"),
    ("configuration", "/etc/mig/mig-agent.cfg", "600"),
    ("cacert", "/etc/mig/ca.crt", "644"),
    ("agentcert", "/etc/mig/agent.crt", "644"),
    ("agentkey", "/etc/mig/agent.key", "600"),
    ("loaderconfig", "/etc/mig/mig-loader.cfg", "600"),
];

struct Fleet {
    d: Deployment,
    rsa1: Admin,
    rsa2: Admin,
    go: GoLoader,
    host: GoHost,
    loader_id: u64,
    v1_url: String,
}

impl Fleet {
    fn start() -> Fleet {
        let keys = [dev_key("rsa1.pub.asc"), dev_key("rsa2.pub.asc")];
        let fps: Vec<String> = keys.iter().map(|k| fingerprint(k)).collect();
        let d = Deployment::start(ApiOptions {
            required_signatures: 2,
            extra: format!(
                "[v1]\nfingerprints = {}\nrequiredsignatures = 2\n",
                fps.join(", ")
            ),
            ..ApiOptions::default()
        });
        for (name, key) in [("rsa1", &keys[0]), ("rsa2", &keys[1])] {
            d.admin1
                .run(&[
                    "create",
                    "investigator",
                    "--name",
                    name,
                    "--pubkey",
                    key.to_str().expect("utf-8 path"),
                    "--perms",
                    "PermManifest",
                ])
                .ok();
        }
        // One signs through GnuPG, one in-process (rpgp): both reach the Go loader's openpgp.
        let rsa1 = Admin::with_gpg(&d.api.base_url, "rsa1");
        let rsa2 = Admin::with_key_file(&d.api.base_url, "rsa2");
        let v1_url = d.api.base_url.replace("/api/v2/", "/api/v1/");
        let go = GoLoader::build(&v1_url, 2, &keys);
        let (loader_id, key) = d.enrol_loader("gofleet-1.internal", Some(EXPECTENV));
        Fleet {
            d,
            rsa1,
            rsa2,
            go,
            host: GoHost::new(&key),
            loader_id,
            v1_url,
        }
    }

    /// A v1 manifest of `files`, signed (statement and v1 text) by `signers`.
    fn publish(&self, name: &str, files: &[(&str, Vec<u8>)], signers: &[&Admin]) -> u64 {
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let archive = self.d.archive(name, &refs);
        let id = self
            .d
            .create_manifest_with(name, TARGET, &archive, LINUX_AMD64, &["--v1"]);
        self.d.sign(id, &archive, signers);
        id
    }

    fn manifest(&self, id: u64) -> serde_json::Value {
        self.d.admin1.json(&["manifest", &id.to_string(), "json"])
    }

    fn loader(&self) -> serde_json::Value {
        self.d.loader(self.loader_id)
    }

    fn run_go(&self) -> GoRun {
        self.host.run(&self.go.path())
    }
}

#[track_caller]
fn succeeded(r: &GoRun) {
    assert_eq!(r.rc, 0, "the loader failed:\n{}\n{}", r.log, r.output);
}

#[track_caller]
fn check_installed(r: &GoRun, files: &[(&str, Vec<u8>)]) {
    for (name, bytes) in files {
        let (_, path, mode) = MIG_PATHS
            .iter()
            .find(|(n, _, _)| n == name)
            .expect("a bundle entry");
        let got = r
            .installed
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not installed: {:?}", r.installed));
        assert_eq!(
            got,
            &(mode.to_string(), sha256_hex(bytes)),
            "{path}: mode and sha256"
        );
    }
}

/// Our loader, as an operator ships it: built with the same administrator keys, stripped.
fn our_loader(dir: &Path) -> Vec<u8> {
    let out = dir.join("mig-loader.stripped");
    let mut c = Command::new("strip");
    c.arg("-o").arg(&out).arg(binary("mig-loader"));
    run(c, None, Duration::from_secs(120)).ok();
    std::fs::read(out).expect("the stripped loader")
}

#[test]
fn a_go_loader_fleet_installs_upgrades_is_refused_and_moves_itself_to_our_loader() {
    let f = Fleet::start();
    let old_loader = b"#!/bin/sh\necho 'MIG Go loader stand-in'\n".to_vec();

    // 1. First install: all six entries with MIG's modes, the agent restarted.
    let v1 = bundle("[agent]\nversion = 1\n", &old_loader);
    let m1 = f.publish("fleet-1", &v1, &[&f.rsa1, &f.rsa2]);
    let rec = f.manifest(m1);
    assert_eq!(rec["status"], "active", "{rec}");
    assert_eq!(
        rec["v1_signers"],
        serde_json::json!(["rsa1", "rsa2"]),
        "{rec}"
    );
    let r = f.run_go();
    succeeded(&r);
    check_installed(&r, &v1);
    assert!(
        r.agent_calls.iter().any(|c| c.ends_with("-u")),
        "the agent was restarted: {:?}",
        r.agent_calls
    );
    let l = f.loader();
    assert_eq!(l["protocol"], "v1", "{l}");
    assert_eq!(
        l["agentname"].as_str().map(str::is_empty),
        Some(false),
        "{l}"
    );
    // The Go loader asked <base>//ip for its public address, and reported the answer.
    assert_eq!(l["environment"]["publicip"], "127.0.0.1", "{l}");
    let log = f.d.api.log();
    assert!(
        log.lines()
            .any(|l| l.contains("path=/api/v1/manifest/agent/") && l.contains("protocol=v1")),
        "every v1 request is logged with its protocol:\n{log}"
    );

    // 2. Nothing changed: nothing fetched, only the liveness check.
    let r = f.run_go();
    succeeded(&r);
    assert!(!r.log.contains("refreshing"), "{}", r.log);
    assert_eq!(r.agent_calls, vec!["/sbin/mig-agent -q pid"], "{}", r.log);

    // 3. An upgrade: one entry changed, one entry fetched.
    let v2 = bundle("[agent]\nversion = 2\n", &old_loader);
    let m2 = f.publish("fleet-2", &v2, &[&f.rsa1, &f.rsa2]);
    let r = f.run_go();
    succeeded(&r);
    check_installed(&r, &v2);
    assert_eq!(r.log.matches("refreshing").count(), 1, "{}", r.log);
    assert!(r.log.contains("refreshing configuration"), "{}", r.log);

    // 4. Active for our loaders (two statement signatures), but one v1 signature of the two the
    // Go loaders need: admin1's Ed25519 key cannot sign for them, and the console says so. It
    // is never served to them; they keep the manifest they can verify.
    let v3 = bundle("[agent]\nversion = 3\n", &old_loader);
    let refs: Vec<(&str, &[u8])> = v3.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let archive = f.d.archive("fleet-3", &refs);
    let m3 =
        f.d.create_manifest_with("fleet-3", TARGET, &archive, LINUX_AMD64, &["--v1"]);
    let id = m3.to_string();
    let content = archive.to_str().expect("utf-8 path");
    let out =
        f.d.admin1
            .run(&["manifest", &id, "sign", "--content", content]);
    out.ok();
    assert!(
        out.stderr
            .contains("MIG's Go loaders, but they cannot verify this key's signatures")
            && out.stderr.contains("EdDSALegacy signatures"),
        "{out}"
    );
    f.rsa1
        .run(&["manifest", &id, "sign", "--content", content])
        .ok();
    let rec = f.manifest(m3);
    assert_eq!(rec["status"], "active", "{rec}");
    assert_eq!(rec["v1_signers"], serde_json::json!(["rsa1"]), "{rec}");
    let r = f.run_go();
    succeeded(&r);
    check_installed(&r, &v2);
    assert!(!r.log.contains("refreshing"), "{}", r.log);
    f.d.admin1.run(&["manifest", &id, "disable"]).ok();

    // 5. expectenv: an environment the administrators do not expect is refused, nothing changes.
    let lid = f.loader_id.to_string();
    f.d.admin1
        .run(&[
            "loader",
            &lid,
            "expectenv",
            "tags#>>'{operator}'='otherorg'",
        ])
        .ok();
    let r = f.run_go();
    assert_eq!(r.rc, 1, "{}", r.log);
    assert!(r.log.contains("expectenv"), "{}", r.log);
    check_installed(&r, &v2);
    f.d.admin1
        .run(&["loader", &lid, "expectenv", EXPECTENV])
        .ok();

    // 6. A disabled loader is refused.
    f.d.admin1.run(&["loader", &lid, "disable"]).ok();
    let r = f.run_go();
    assert_eq!(r.rc, 1, "{}", r.log);
    assert!(r.log.contains("loader authentication failed"), "{}", r.log);
    check_installed(&r, &v2);
    f.d.admin1.run(&["loader", &lid, "enable"]).ok();

    // 7. The migration: our loader replaces the Go one at /sbin/mig-loader. The fleet's
    // mig-loader.cfg (here delivered with it) names the v1 base, where mig-api serves our
    // routes too.
    let work = tempfile::tempdir().expect("a work directory");
    let ours = our_loader(work.path());
    let mut v4 = bundle("[agent]\nversion = 2\n", &ours);
    let cfg = format!("[loader]\napi = \"{}\"\n", f.v1_url);
    v4.push(("loaderconfig", cfg.into_bytes()));
    let m4 = f.publish("migrate-to-v2", &v4, &[&f.rsa1, &f.rsa2]);
    assert!(m4 > m2);
    let r = f.run_go();
    succeeded(&r);
    check_installed(&r, &v4);
    assert!(r.log.contains("refreshing mig-loader"), "{}", r.log);
    assert_eq!(f.loader()["protocol"], "v1");

    // Its next run is ours: the same key file, v2, the serial checked and reported.
    let installed: PathBuf = f.host.installed_file("/sbin/mig-loader");
    let r = f.host.run(&installed);
    succeeded(&r);
    check_installed(&r, &v4);
    let l = f.loader();
    assert_eq!(l["protocol"], "v2", "{l}");
    assert_eq!(l["last_report"]["serial"], m4, "{l}");
    assert!(
        matches!(
            l["last_report"]["result"].as_str(),
            Some("installed" | "unchanged")
        ),
        "{l}"
    );
    let listing =
        f.d.admin1
            .run(&["search", "loader", "where", "loadername=gofleet-1.internal"]);
    assert!(
        listing.ok().stdout.contains(" v2 "),
        "search loader shows the protocol: {listing}"
    );
}

/// PBKDF2-HMAC-SHA256 with 4096 iterations, as MIG hashes a loader key (mig-reference §3.3),
/// computed by OpenSSL rather than by our own code.
fn mig_key_hash(secret: &str, salt_hex: &str) -> String {
    let mut c = Command::new("openssl");
    c.args([
        "kdf",
        "-keylen",
        "32",
        "-kdfopt",
        "digest:SHA256",
        "-kdfopt",
    ])
    .arg(format!("pass:{secret}"))
    .arg("-kdfopt")
    .arg(format!("hexsalt:{salt_hex}"))
    .args(["-kdfopt", "iter:4096", "PBKDF2"]);
    let out = run(c, None, Duration::from_secs(30));
    out.ok().stdout.trim().replace(':', "").to_ascii_lowercase()
}

/// MIG's manifest content: standard base64 of the tar.gz, and the text MIG's console signed
/// for it (the entries in archive order, Go's JSON).
fn mig_content(work: &Path, bundle: &str, files: &[(&str, Vec<u8>)]) -> (String, String) {
    use base64::Engine as _;
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let archive = e2e::tar_gz(work, bundle, &refs);
    let mut c = Command::new("tar");
    c.arg("-tzf").arg(&archive);
    let listing = run(c, None, Duration::from_secs(30)).ok().stdout.clone();
    let order: Vec<(String, String)> = listing
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(|l| {
            let name = l.rsplit('/').next().unwrap_or(l).to_string();
            let bytes = &files
                .iter()
                .find(|(n, _)| *n == name)
                .expect("a bundle file")
                .1;
            (name, sha256_hex(bytes))
        })
        .collect();
    let text =
        mig_protocol::mig_v1::signed_text(order.iter().map(|(n, s)| (n.as_str(), s.as_str())))
            .expect("a v1 text");
    let bytes = std::fs::read(&archive).expect("the archive");
    (
        base64::engine::general_purpose::STANDARD.encode(bytes),
        text,
    )
}

/// A detached signature by `admin` through GnuPG, de-armored as MIG's console stored it.
fn mig_signature(gpg: &e2e::GnupgHome, admin: &str, text: &str, work: &Path) -> String {
    let data = work.join(format!("{admin}.txt"));
    std::fs::write(&data, text).expect("write the signed text");
    let out = work.join(format!("{admin}.asc"));
    let public = std::fs::read_to_string(dev_key(&format!("{admin}.pub.asc"))).expect("a key");
    let public = mig_protocol::signature::parse_public_key(admin, &public).expect("a key");
    loop {
        let mut c = gpg.batch();
        c.arg("--local-user")
            .arg(fingerprint(&dev_key(&format!("{admin}.pub.asc"))))
            .args(["--armor", "--detach-sign", "--output"])
            .arg(&out)
            .arg(&data);
        run(c, None, Duration::from_secs(60)).ok();
        let armored = std::fs::read_to_string(&out).expect("the signature");
        // One RSA signature in 256 is one byte short, and Go loaders refuse it (MIG's console
        // made such ones too): this test's MIG signs again, a second later.
        if mig_protocol::signature::go_check(&armored, &public).is_ok() {
            return mig_protocol::signature::dearmor(&armored).expect("an armored signature");
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
}

/// Database `mig` on `pg` with MIG's own schema.sql and the roles it names.
fn mig_schema(pg: &PgCluster) {
    pg.psql(
        "postgres",
        "CREATE DATABASE mig; CREATE ROLE migadmin; CREATE ROLE migapi; CREATE ROLE migscheduler;",
    )
    .ok();
    let schema = e2e::mig_go::source_dir().join("src/github.com/mozilla/mig/database/schema.sql");
    pg.psql_file("mig", &schema).ok();
}

#[test]
fn a_mig_database_is_imported_once_and_its_go_loaders_keep_their_keys() {
    let pg = PgCluster::start();
    mig_schema(&pg);

    // MIG's rows, as MIG's API wrote them.
    let work = tempfile::tempdir().expect("a work directory");
    let gpg = e2e::GnupgHome::with_keys(&[dev_key("rsa1.sec.asc"), dev_key("rsa2.sec.asc")]);
    let current = bundle(
        "[agent]\nversion = 7\n",
        b"#!/bin/sh\necho 'MIG Go loader'\n",
    );
    let later = bundle(
        "[agent]\nversion = 8\n",
        b"#!/bin/sh\necho 'MIG Go loader'\n",
    );
    let (content, text) = mig_content(work.path(), "current", &current);
    let (later_content, later_text) = mig_content(work.path(), "later", &later);
    let sig1 = mig_signature(&gpg, "rsa1", &text, work.path());
    let sig2 = mig_signature(&gpg, "rsa2", &text, work.path());
    let later_sig1 = mig_signature(&gpg, "rsa1", &later_text, work.path());
    let key_file = |f: &str| std::fs::read_to_string(dev_key(f)).expect("a dev key");
    let (prefix, secret, salt) = (
        "MigFleet",
        "0123456789abcdefghijABCDEFGHIJkl",
        "00112233445566778899aabbccddeeff",
    );
    let hash = mig_key_hash(secret, salt);
    let hash2 = mig_key_hash("zyxwvutsrqponmlkjihgfedcba987654", salt);
    let linux = "env#>>''{os}''=''linux''";
    let sql = format!(
        "INSERT INTO investigators (id, name, pgpfingerprint, publickey, privatekey, status,
           createdat, lastmodified, permissions) VALUES
         (1, 'migscheduler', 'SCHED', convert_to($k${rsa2pub}$k$, 'UTF8'), convert_to('x', 'UTF8'),
          'active', now(), now(), 0),
         (2, 'rsa1', '{fp1}', convert_to($k${rsa1pub}$k$, 'UTF8'), NULL, 'active', now(), now(), 14336),
         (3, 'rsa2', '{fp2}', convert_to($k${rsa2pub}$k$, 'UTF8'), NULL, 'active', now(), now(), 14336),
         (4, 'broken', 'BROKEN', convert_to('not a key', 'UTF8'), NULL, 'active', now(), now(), 0);
         INSERT INTO loaders (id, loadername, keyprefix, loaderkey, salt, name, env, tags, lastseen,
           enabled, expectenv, queueloc) VALUES
         (1, 'migfleet-1', '{prefix}', '\\x{hash}'::bytea, '\\x{salt}'::bytea, 'host1.example',
          '{{\"os\":\"linux\",\"arch\":\"amd64\"}}', '{{\"operator\":\"myorg\"}}', now(), true,
          'tags#>>''{{operator}}''=''myorg''', 'linux.abc'),
         (2, 'migfleet-2', 'MigFlee2', '\\x{hash2}'::bytea, '\\x{salt}'::bytea, NULL, NULL, NULL, now(),
          true, 'id IN (SELECT 1)', NULL),
         (3, 'migfleet-3', 'MigFlee3', '\\x00'::bytea, '\\x{salt}'::bytea, NULL, NULL, NULL, now(),
          true, NULL, NULL);
         INSERT INTO manifests (id, name, content, timestamp, status, target) VALUES
         (1, 'old', '{content}', now() - interval '2 days', 'disabled', '{linux}'),
         (2, 'current', '{content}', now() - interval '1 day', 'active', '{linux}'),
         (3, 'raw-sql', '{content}', now(), 'active',
          'id IN (SELECT id FROM loaders WHERE lastseen > now() - interval ''1 day'')'),
         (4, 'half-signed', '{later_content}', now(), 'active', '{linux}');
         INSERT INTO manifestsig (manifestid, investigatorid, pgpsignature) VALUES
         (2, 2, '{sig1}'), (2, 3, '{sig2}'), (2, 1, '{sig1}'), (3, 2, '{sig1}'), (3, 3, '{sig2}'),
         (4, 2, '{later_sig1}');",
        rsa1pub = key_file("rsa1.pub.asc"),
        rsa2pub = key_file("rsa2.pub.asc"),
        fp1 = fingerprint(&dev_key("rsa1.pub.asc")),
        fp2 = fingerprint(&dev_key("rsa2.pub.asc")),
    );
    pg.psql("mig", &sql).ok();

    // The import, into the database a mig-api then serves.
    let opts = ApiOptions {
        extra: format!(
            "[v1]\nfingerprints = {}, {}\nrequiredsignatures = 2\n",
            fingerprint(&dev_key("rsa1.pub.asc")),
            fingerprint(&dev_key("rsa2.pub.asc"))
        ),
        ..ApiOptions::default()
    };
    let dir = tempfile::tempdir().expect("the server's directory");
    let config = dir.path().join("api.cfg");
    std::fs::write(&config, opts.config_text(dir.path())).expect("api.cfg");
    let import = || {
        let mut c = Command::new(binary("mig-api"));
        c.arg("--config")
            .arg(&config)
            .args(["import-mig", "--yes", "--from", &pg.url("mig")]);
        run(c, None, Duration::from_secs(300))
    };
    let first = import();
    let out = &first.ok().stdout;
    for line in [
        "investigator 1 \"migscheduler\": not imported: MIG's database holds its private key",
        "investigator 4 \"broken\": not imported:",
        "loader 2 \"migfleet-2\": imported disabled: expectenv \"id IN (SELECT 1)\"",
        "loader 3 \"migfleet-3\": not imported: a 1-byte key hash",
        "manifest 2 \"current\": the signature of MIG investigator 1, who was not imported, is left out",
        "manifest 3 \"raw-sql\": imported disabled: target",
        "manifest 4 \"half-signed\": imported staged: active in MIG, but 1 of the 2",
        "imported from MIG: 2 investigators, 2 loaders, 4 manifests; 0 already here",
    ] {
        assert!(out.contains(line), "no line {line:?} in:\n{out}");
    }
    let again = import();
    assert!(
        again
            .ok()
            .stdout
            .contains("imported from MIG: 0 investigators, 0 loaders, 0 manifests; 8 already here"),
        "{again}"
    );
    // MIG's password never travels on a command line.
    let mut c = Command::new(binary("mig-api"));
    c.arg("--config").arg(&config).args([
        "import-mig",
        "--from",
        &pg.url("mig").replace("mig@", "mig:hunter2@"),
    ]);
    let refused = run(c, None, Duration::from_secs(60));
    assert!(
        !refused.success() && refused.stderr.contains("PGPASSWORD"),
        "{refused}"
    );

    let api = e2e::ApiServer::start_with_config(&binary("mig-api"), dir, config);
    let v1_url = api.base_url.replace("/api/v2/", "/api/v1/");
    let go = GoLoader::build(
        &v1_url,
        2,
        &[dev_key("rsa1.pub.asc"), dev_key("rsa2.pub.asc")],
    );
    let host = GoHost::new(&format!("{prefix}{secret}"));
    let r = host.run(&go.path());
    succeeded(&r);
    check_installed(&r, &current);
}

/// A server's configuration in a new directory, for `import-mig` to import into.
fn import_target(extra: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let opts = ApiOptions {
        extra: extra.to_string(),
        ..ApiOptions::default()
    };
    let dir = tempfile::tempdir().expect("the server's directory");
    let config = dir.path().join("api.cfg");
    std::fs::write(&config, opts.config_text(dir.path())).expect("api.cfg");
    let db = opts.db_path(dir.path());
    (dir, config, db)
}

/// `mig-api --config CONFIG import-mig ARGS…`, its stdin not a terminal.
fn import_mig(config: &Path, args: &[&str]) -> e2e::Output {
    let mut c = Command::new(binary("mig-api"));
    c.arg("--config").arg(config).arg("import-mig").args(args);
    run(c, None, Duration::from_secs(300))
}

/// What the import wrote to the server's SQLite file (none of it if it never opened it).
fn imported_rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    if db.exists() {
        sqlite_rows(db, sql)
    } else {
        Vec::new()
    }
}

/// MIG investigator 2, `rsa1`, with `permissions`.
fn mig_investigator(pg: &PgCluster, permissions: i64) {
    let key = std::fs::read_to_string(dev_key("rsa1.pub.asc")).expect("a dev key");
    pg.psql(
        "mig",
        &format!(
            "INSERT INTO investigators (id, name, pgpfingerprint, publickey, status, createdat,
               lastmodified, permissions)
             VALUES (2, 'rsa1', 'FP1', convert_to($k${key}$k$, 'UTF8'), 'active', now(), now(),
               {permissions});"
        ),
    )
    .ok();
}

/// MIG loader `id`, with a well-formed key and `env`.
fn mig_loader(pg: &PgCluster, id: u32, env: &str) {
    pg.psql(
        "mig",
        &format!(
            "INSERT INTO loaders (id, loadername, keyprefix, loaderkey, salt, env, lastseen,
               enabled)
             VALUES ({id}, 'host-{id}', 'Prefix{id:02}', decode(lpad('{id}', 64, 'a'), 'hex'),
               decode(repeat('cd', 16), 'hex'), $e${env}$e$, now(), true);"
        ),
    )
    .ok();
}

#[test]
fn import_mig_shows_the_investigators_it_will_create_and_never_grants_a_bit_mig_never_had() {
    let pg = PgCluster::start();
    mig_schema(&pg);
    // PermManifest's three bits as MIG's console set them, plus PermPlugin (1 << 19), which MIG
    // never had, and a bit nobody has.
    mig_investigator(&pg, 14336 | (1 << 19) | (1 << 40));
    mig_loader(&pg, 1, "{\"os\":\"linux\"}");
    let (_dir, config, db) = import_target("");
    let url = pg.url("mig");

    // No --yes and no terminal: shown, nothing written.
    let shown = import_mig(&config, &["--from", &url]);
    assert!(!shown.success(), "{shown}");
    let line = format!(
        "MIG investigator 2 \"rsa1\" (active), fingerprint {}: \
         PermManifest,PermManifestSign,PermManifestNew\n",
        fingerprint(&dev_key("rsa1.pub.asc"))
    );
    assert!(
        shown
            .stdout
            .to_ascii_lowercase()
            .contains(&line.to_ascii_lowercase()),
        "no {line:?} in {shown}"
    );
    assert!(!shown.stdout.contains("PermPlugin"), "{shown}");
    assert!(shown.stderr.contains("give --yes"), "{shown}");
    assert_eq!(
        imported_rows(&db, "SELECT name FROM investigators"),
        Vec::<Vec<String>>::new()
    );
    assert_eq!(
        imported_rows(&db, "SELECT name FROM loaders"),
        Vec::<Vec<String>>::new()
    );

    // With --yes: imported, with MIG's bits only.
    let done = import_mig(&config, &["--yes", "--from", &url]);
    assert!(
        done.ok()
            .stdout
            .contains("imported from MIG: 1 investigators, 1 loaders, 0 manifests"),
        "{done}"
    );
    assert_eq!(
        sqlite_rows(
            &db,
            "SELECT name, permissions FROM investigators WHERE name = 'rsa1'"
        ),
        vec![vec!["rsa1".to_string(), "14336".to_string()]]
    );
}

#[test]
fn import_mig_refuses_an_oversized_column_or_too_many_rows_and_imports_nothing() {
    let pg = PgCluster::start();
    mig_schema(&pg);
    mig_investigator(&pg, 14336);
    mig_loader(&pg, 1, "{\"os\":\"linux\"}");
    // A 2 MiB environment: MIG's json column takes it; no loader could have reported it here.
    let big = format!("{{\"os\":\"linux\",\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    mig_loader(&pg, 2, &big);
    let (_dir, config, db) = import_target("");
    let url = pg.url("mig");
    let nothing = |what: &str| {
        for table in ["investigators", "loaders", "mig_imports"] {
            assert_eq!(
                imported_rows(&db, &format!("SELECT count(*) FROM {table}"))
                    .first()
                    .map(|r| r[0].clone())
                    .unwrap_or_else(|| "0".into()),
                "0",
                "{what}: {table} is empty"
            );
        }
    };

    let refused = import_mig(&config, &["--yes", "--from", &url]);
    assert!(!refused.success(), "{refused}");
    assert!(
        refused
            .stderr
            .contains("MIG's loaders, row id 2, column env: 2097"),
        "{refused}"
    );
    nothing("a 2 MiB environment");

    // A 2 MiB public key, once the environment is fixed.
    pg.psql(
        "mig",
        &format!(
            "UPDATE loaders SET env = '{{\"os\":\"linux\"}}' WHERE id = 2;
             UPDATE investigators SET publickey = convert_to(repeat('k', {}), 'UTF8') WHERE id = 2;",
            2 << 20
        ),
    )
    .ok();
    let refused = import_mig(&config, &["--yes", "--from", &url]);
    assert!(
        !refused.success()
            && refused
                .stderr
                .contains("MIG's investigators, row id 2, column publickey: 2097152 bytes"),
        "{refused}"
    );
    nothing("a 2 MiB public key");

    // Two loaders are more than --max-rows 1.
    let key = std::fs::read_to_string(dev_key("rsa1.pub.asc")).expect("a dev key");
    pg.psql(
        "mig",
        &format!(
            "UPDATE investigators SET publickey = convert_to($k${key}$k$, 'UTF8') WHERE id = 2;"
        ),
    )
    .ok();
    let refused = import_mig(&config, &["--yes", "--max-rows", "1", "--from", &url]);
    assert!(
        !refused.success()
            && refused
                .stderr
                .contains("MIG's loaders: more than 1 rows (--max-rows)"),
        "{refused}"
    );
    nothing("two loaders over --max-rows 1");

    // Within every cap, all of it comes in.
    let done = import_mig(&config, &["--yes", "--max-rows", "2", "--from", &url]);
    assert!(
        done.ok()
            .stdout
            .contains("imported from MIG: 1 investigators, 2 loaders, 0 manifests"),
        "{done}"
    );
}

#[test]
fn import_mig_reaches_a_database_off_this_machine_only_over_tls_verified_against_its_ca() {
    let (_dir, config, db) = import_target("");
    // Not on this machine and no CA: refused before connecting, whatever answers there.
    for host in ["db.internal", "10.0.0.5:5432", "localhost,db.internal"] {
        let refused = import_mig(
            &config,
            &["--yes", "--from", &format!("postgresql://mig@{host}/mig")],
        );
        assert!(
            !refused.success()
                && refused.stderr.contains("not on this machine")
                && refused.stderr.contains("--cafile"),
            "{host}: {refused}"
        );
    }

    // A cluster that takes TLS only: verified against --cafile, the import goes through.
    let pg = PgCluster::start_tls();
    mig_schema(&pg);
    // psql reaches it over TLS too (libpq's sslmode=prefer).
    mig_investigator(&pg, 14336);
    let url = pg.url("mig");
    let ca = pg.ca.clone().expect("the cluster's CA");
    let other = tempfile::tempdir().expect("a directory");
    let wrong = e2e::postgres::make_ca(other.path(), "other");
    let refused = import_mig(
        &config,
        &[
            "--yes",
            "--cafile",
            wrong.to_str().expect("utf-8"),
            "--from",
            &url,
        ],
    );
    assert!(
        !refused.success() && refused.stderr.contains("connecting to MIG's database"),
        "a CA that did not sign the server's certificate: {refused}"
    );
    assert_eq!(
        imported_rows(&db, "SELECT name FROM investigators"),
        Vec::<Vec<String>>::new()
    );
    let done = import_mig(
        &config,
        &[
            "--yes",
            "--cafile",
            ca.to_str().expect("utf-8"),
            "--from",
            &url,
        ],
    );
    assert!(
        done.ok()
            .stdout
            .contains("imported from MIG: 1 investigators, 0 loaders, 0 manifests"),
        "{done}"
    );

    // Without --cafile, `[database] cafile` verifies it: here a server whose own database is on
    // the same cluster.
    let pg = std::sync::Arc::new(pg);
    let opts = ApiOptions {
        postgres: Some(e2e::postgres::PgDatabase::create(pg.clone())),
        ..ApiOptions::default()
    };
    let dir = tempfile::tempdir().expect("the server's directory");
    let config = dir.path().join("api.cfg");
    std::fs::write(&config, opts.config_text(dir.path())).expect("api.cfg");
    let done = import_mig(&config, &["--yes", "--from", &url]);
    assert!(
        done.ok()
            .stdout
            .contains("imported from MIG: 1 investigators, 0 loaders, 0 manifests"),
        "{done}"
    );
}
