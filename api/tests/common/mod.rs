//! The test harness: the real `mig-api` binary on a free loopback port with a temporary SQLite
//! file, investigators bootstrapped with `mig-api investigator add`, signed tokens made with
//! loader-min (the committed GnuPG development keys, or keys generated per test), a small HTTP
//! client (ureq), and archive builders.
#![allow(dead_code)]

use base64::Engine as _;
use mig_protocol::admin::AuthToken;
use mig_protocol::signature::{dearmor, generate_key, parse_secret_key, sign_detached};
use mig_protocol::time::Timestamp;
use mig_test_support::ApiServer;
use pgp::composed::SignedSecretKey;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_mig-api");

#[allow(unused_imports)]
pub use mig_test_support::sha256_hex;

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Settings rendered into the server's api.cfg (mig-test-support's options).
pub use mig_test_support::ApiOptions as Settings;

/// A running mig-api (mig-test-support's, on port 0) with the API's domain helpers below.
pub struct Server(ApiServer);

impl std::ops::Deref for Server {
    type Target = ApiServer;
    fn deref(&self) -> &ApiServer {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut ApiServer {
        &mut self.0
    }
}

impl Server {
    pub fn start() -> Server {
        Self::with(Settings::default())
    }

    pub fn with(s: Settings) -> Server {
        Server(ApiServer::start_binary(Path::new(BIN), &s))
    }

    /// `mig-api investigator add` against this server's database (while it runs).
    pub fn add_investigator(&self, name: &str, public: &str, perms: &str) -> u64 {
        let key = self.dir.path().join(format!("{name}.pub.asc"));
        std::fs::write(&key, public).unwrap();
        let out = self.0.add_investigator(name, &key, perms);
        let stdout = out.stdout.as_str();
        assert!(out.success(), "investigator add failed: {out}");
        stdout
            .strip_prefix("investigator ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("unexpected output {stdout:?}"))
    }

    /// Adds an investigator with a fresh key and returns it as an [`Admin`].
    pub fn admin(&self, name: &str, perms: &str) -> Admin {
        let mut a = Admin::generated(name);
        a.id = self.add_investigator(name, &a.public, perms);
        a
    }

    /// Adds a committed GnuPG development key (`conf/dev-keys/adminN`).
    pub fn dev_admin(&self, n: u32, perms: &str) -> Admin {
        self.dev_named_admin(&format!("admin{n}"), perms)
    }

    /// Adds the committed development key `conf/dev-keys/<name>` (`rsa1`, …).
    pub fn dev_named_admin(&self, name: &str, perms: &str) -> Admin {
        let mut a = Admin::dev_named(name);
        a.id = self.add_investigator(&a.name.clone(), &a.public, perms);
        a
    }

    /// Sets an investigator's permission mask directly in the database.
    pub fn set_perms_in_db(&self, id: u64, mask: u64) {
        self.sql(&format!(
            "UPDATE investigators SET permissions = {mask} WHERE id = {id}"
        ));
    }
}

impl Server {
    /// `mig_api_poll_cache_hits_total` from `/metrics`: polls answered from memory.
    pub fn poll_cache_hits(&self) -> u64 {
        let m = request("GET", &self.url("metrics"), &[], None).text();
        m.lines()
            .find_map(|l| l.strip_prefix("mig_api_poll_cache_hits_total "))
            .unwrap_or_else(|| panic!("no hit counter in\n{m}"))
            .parse()
            .unwrap()
    }

    /// The value of `series` (a metric name with its labels, as `/metrics` writes them); 0 when
    /// the counter was never bumped, but the metric itself must be exported.
    pub fn metric(&self, series: &str) -> u64 {
        let m = request("GET", &self.url("metrics"), &[], None).text();
        let name = series.split('{').next().unwrap();
        assert!(
            m.contains(&format!("# HELP {name} ")),
            "no metric {name} in\n{m}"
        );
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{series} ")))
            .map_or(0, |v| v.parse().unwrap())
    }

    /// Another mig-api on this server's database (ApiServer::replica).
    pub fn replica(&self) -> Server {
        Server(self.0.replica())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An administrator: a secret key that signs tokens and manifests.
pub struct Admin {
    pub name: String,
    pub id: u64,
    pub secret: SignedSecretKey,
    pub public: String,
    pub apikey: Option<String>,
}

static NONCE: AtomicU64 = AtomicU64::new(1);

pub fn dev_key_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conf/dev-keys")
        .join(file)
}

impl Admin {
    pub fn generated(name: &str) -> Admin {
        let (secret, public) = generate_key(&format!("{name} <{name}@mig.test>")).unwrap();
        Admin {
            name: name.to_string(),
            id: 0,
            secret,
            public,
            apikey: None,
        }
    }

    pub fn dev(n: u32) -> Admin {
        Self::dev_named(&format!("admin{n}"))
    }

    /// A committed development key by its file name (`admin1`, `rsa1`, …).
    pub fn dev_named(name: &str) -> Admin {
        let sec = std::fs::read_to_string(dev_key_path(&format!("{name}.sec.asc"))).unwrap();
        let public = std::fs::read_to_string(dev_key_path(&format!("{name}.pub.asc"))).unwrap();
        Admin {
            name: name.to_string(),
            id: 0,
            secret: parse_secret_key("dev key", &sec).unwrap(),
            public,
            apikey: None,
        }
    }

    /// A signed `X-PGPAUTHORIZATION` value for `ts` and the API of `audience`
    /// (`Server::audience`), with a fresh nonce.
    pub fn token_at(&self, ts: Timestamp, audience: &str) -> String {
        let nonce = format!(
            "n{}x{}",
            NONCE.fetch_add(1, Ordering::SeqCst),
            std::process::id()
        );
        let mut t = AuthToken::new(ts, nonce, audience.to_string());
        let sig = sign_detached(&self.secret, "", t.signed_data().as_bytes()).unwrap();
        t.signature = dearmor(&sig).unwrap();
        t.header_value()
    }

    /// A token for now and the API of `audience`.
    pub fn token(&self, audience: &str) -> String {
        self.token_at(Timestamp::now(), audience)
    }

    pub fn sign(&self, data: &[u8]) -> String {
        sign_detached(&self.secret, "", data).unwrap()
    }

    /// The credential header: the API key when one was issued, a fresh token for the API of
    /// `audience` otherwise.
    pub fn auth(&self, audience: &str) -> (&'static str, String) {
        match &self.apikey {
            Some(k) => ("X-MIGAPIKEY", k.clone()),
            None => ("X-PGPAUTHORIZATION", self.token(audience)),
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error.message` of an error answer (and checks its `code`).
    pub fn message(&self) -> String {
        let v = self.json();
        assert_eq!(v["error"]["code"], self.status, "{v}");
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "body: {}", self.text());
        self
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// One request; `body` None sends none.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Reply {
    try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// [`request`], with a failure of the connection (refused, reset) as an error.
pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Result<Reply, String> {
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    if body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        b = b.header("Content-Type", "application/json");
    }
    let res = match body {
        Some(body) => agent().run(b.body(body).unwrap()),
        None => agent().run(b.body(()).unwrap()),
    };
    let mut res = res.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res
        .body_mut()
        .with_config()
        .limit(512 << 20)
        .read_to_vec()
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

impl Server {
    /// An administrator request.
    pub fn call(&self, who: &Admin, method: &str, path: &str, body: Option<Value>) -> Reply {
        let (h, v) = who.auth(&self.audience());
        request(
            method,
            &self.url(path),
            &[(h, v)],
            body.map(|b| b.to_string().into_bytes()),
        )
    }

    pub fn get(&self, who: &Admin, path: &str) -> Reply {
        self.call(who, "GET", path, None)
    }

    pub fn post(&self, who: &Admin, path: &str, body: Value) -> Reply {
        self.call(who, "POST", path, Some(body))
    }

    /// Uploads a manifest archive and returns its record.
    pub fn create_manifest(&self, who: &Admin, name: &str, target: &str, archive: &[u8]) -> Value {
        self.post(
            who,
            "manifests",
            json!({"name": name, "target": target, "platform": host_platform(), "archive": b64(archive)}),
        )
        .expect(201)
        .json()
    }

    /// `archive` as a manifest targeting every loader, signed by each of `signers`, and given
    /// to the loader of `key` (its manifest request answered 200); returns the manifest id.
    pub fn give_archive(&self, signers: &[&Admin], key: &str, name: &str, archive: &[u8]) -> u64 {
        let id = self.create_manifest(signers[0], name, "true", archive)["id"]
            .as_u64()
            .unwrap();
        for s in signers {
            self.sign_manifest(s, id).expect(200);
        }
        self.loader(
            key,
            "POST",
            "loader/manifest",
            Some(manifest_request("h", &[])),
        )
        .expect(200);
        id
    }

    /// Signs manifest `id`'s statement as `who`.
    pub fn sign_manifest(&self, who: &Admin, id: u64) -> Reply {
        let st = self
            .get(who, &format!("manifests/{id}/statement"))
            .expect(200);
        self.post(
            who,
            &format!("manifests/{id}/signatures"),
            json!({"signature": who.sign(&st.body)}),
        )
    }

    /// Creates and enables a loader; returns (id, key).
    pub fn enabled_loader(
        &self,
        who: &Admin,
        name: &str,
        expectenv: Option<&str>,
    ) -> (u64, String) {
        let r = self
            .post(
                who,
                "loaders",
                json!({"name": name, "expectenv": expectenv}),
            )
            .expect(201)
            .json();
        let id = r["loader"]["id"].as_u64().unwrap();
        self.post(
            who,
            &format!("loaders/{id}/status"),
            json!({"status": "enabled"}),
        )
        .expect(200);
        (id, r["key"].as_str().unwrap().to_string())
    }

    /// A loader request with `X-LOADERKEY`.
    pub fn loader(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        request(
            method,
            &self.url(path),
            &[("X-LOADERKEY", key.to_string())],
            body.map(|b| b.to_string().into_bytes()),
        )
    }

    pub fn loader_get(&self, key: &str, path: &str, extra: &[(&str, String)]) -> Reply {
        let mut h = vec![("X-LOADERKEY", key.to_string())];
        h.extend(extra.iter().cloned());
        request("GET", &self.url(path), &h, None)
    }
}

pub fn host_platform() -> Value {
    let p = mig_protocol::statement::Platform::host();
    json!({"os": p.os, "arch": p.arch})
}

/// A manifest request as this host's loader would send it.
pub fn manifest_request(agent: &str, tags: &[(&str, &str)]) -> Value {
    let p = mig_protocol::statement::Platform::host();
    let tags: serde_json::Map<String, Value> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "agent": {
            "name": agent,
            "queueloc": format!("{}.{agent}", p.os),
            "environment": {"os": p.os, "arch": p.arch, "ident": "Debian 12", "init": "systemd",
                            "addresses": ["10.0.0.5/24"]},
            "tags": tags
        },
        "have": {"serial": 0}
    })
}

/// A tar.gz of regular files (path → content), built with the `tar` crate.
pub fn targz(files: &[(&str, &[u8])]) -> Vec<u8> {
    gzip(&tar_of(files))
}

pub use mig_test_support::archive::{gzip, tar_of};

/// A raw tar member whose name, type and link are written byte for byte (the `tar` crate's
/// safe setters refuse `..` and absolute names, which is what these tests need to send).
pub fn raw_member(name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_entry_type(kind);
    h.set_mtime(0);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Members followed by the end-of-archive marker.
pub fn tar_end(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = members.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A standard manifest archive: three dictionary files under a directory, as `tar -czvf` packs.
pub fn standard_archive(tag: &str) -> (Vec<u8>, Vec<(&'static str, Vec<u8>)>) {
    let files: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "mig-agent",
            format!("#!/bin/sh\n# agent {tag}\n").into_bytes(),
        ),
        (
            "configuration",
            format!("[agent]\nrelay = {tag}\n").into_bytes(),
        ),
        (
            "cacert",
            format!("-----BEGIN CERTIFICATE----- {tag}\n").into_bytes(),
        ),
    ];
    let paths: Vec<(String, &[u8])> = files
        .iter()
        .map(|(n, d)| (format!("manifest-{tag}/{n}"), d.as_slice()))
        .collect();
    let refs: Vec<(&str, &[u8])> = paths.iter().map(|(p, d)| (p.as_str(), *d)).collect();
    (targz(&refs), files)
}

/// The all-bits mask (every named permission).
pub fn all_perms() -> u64 {
    mig_protocol::Permission::all_bits()
}

pub fn bit(name: &str) -> u64 {
    mig_protocol::Permission::from_name(name).unwrap().bit()
}

/// Two administrators holding every permission set (the usual M-of-N = 2 setup).
pub fn two_admins(srv: &Server) -> (Admin, Admin) {
    let perms = "PermAdmin,PermManifest,PermLoader";
    (srv.dev_admin(1, perms), srv.dev_admin(2, perms))
}

/// Uploads a standard archive and has `signers` sign it; returns the manifest id.
pub fn active_manifest(srv: &Server, signers: &[&Admin], name: &str, target: &str) -> u64 {
    active_manifest_for(srv, signers, name, target, host_platform())
}

/// [`active_manifest`] for `platform` (`{"os", "arch"}`).
pub fn active_manifest_for(
    srv: &Server,
    signers: &[&Admin],
    name: &str,
    target: &str,
    platform: Value,
) -> u64 {
    let (archive, _) = standard_archive(name);
    let body =
        json!({"name": name, "target": target, "platform": platform, "archive": b64(&archive)});
    let id = srv.post(signers[0], "manifests", body).expect(201).json()["id"]
        .as_u64()
        .unwrap();
    for s in signers {
        srv.sign_manifest(s, id).expect(200);
    }
    id
}

/// A minimal ABI-v1 targeting plugin in WAT adding `function()`, which answers `answer`
/// (`{"ok":true}`) or spins forever when `spin` is set.
pub fn wat_plugin(function: &str, answer: bool, spin: bool) -> Vec<u8> {
    let describe = format!(r#"{{"name":"{function}","functions":["{function}"]}}"#);
    let output = format!(r#"{{"ok":{answer}}}"#);
    let invoke = if spin {
        "(loop $l (br $l)) (i64.const 0)".to_string()
    } else {
        format!("(i64.const {})", (1024i64 << 32) | output.len() as i64)
    };
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    wat::parse_str(format!(
        r#"(module
            (memory (export "memory") 2)
            (data (i32.const 0) "{d}")
            (data (i32.const 1024) "{o}")
            (func (export "mig_abi_version") (result i32) (i32.const 1))
            (func (export "mig_alloc") (param i32) (result i32) (i32.const 8192))
            (func (export "mig_describe") (result i64) (i64.const {dlen}))
            (func (export "mig_invoke") (param i32 i32) (result i64) {invoke}))"#,
        d = esc(&describe),
        o = esc(&output),
        dlen = describe.len(),
    ))
    .unwrap()
}
