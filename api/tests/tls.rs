//! HTTPS with `[server] tlscert`/`tlskey`: the loader's own client, pinning the CA, talks to
//! mig-api; a certificate from another CA and plain HTTP are refused.

mod common;

use common::*;
use mig_http::{Client, HttpConfig, Method};
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is installed (Debian: ca-certificates depends on it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`.
fn make_ca_and_cert(dir: &Path, prefix: &str) {
    let ca_key = format!("{prefix}ca.key");
    let ca_crt = format!("{prefix}ca.crt");
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &ca_key,
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &ca_key,
            "-out",
            &ca_crt,
            "-days",
            "2",
            "-subj",
            "/CN=mig test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.key",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "ec.key",
            "-out",
            &format!("{prefix}api.key"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "ec.key",
            "-out",
            "api.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "api.csr",
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &format!("{prefix}api.crt"),
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn https_serves_loaders_that_pin_the_ca_and_refuses_other_cas_and_plain_http() {
    let certs = tempfile::tempdir().unwrap();
    make_ca_and_cert(certs.path(), "");
    make_ca_and_cert(certs.path(), "other-");
    let srv = Server::with(Settings {
        extra_server: format!(
            "tlscert = {}\ntlskey = {}\n",
            certs.path().join("api.crt").display(),
            certs.path().join("api.key").display()
        ),
        ..Settings::default()
    });
    assert!(
        srv.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        srv.base_url
    );
    let admin = srv.dev_admin(1, "PermAdmin,PermLoader");
    let client = |ca: &str| {
        let cfg = HttpConfig {
            ca_pem: Some(std::fs::read(certs.path().join(ca)).unwrap()),
            ..HttpConfig::default()
        };
        Client::new(&cfg, &srv.base_url).unwrap()
    };
    let pinned = client("ca.crt");
    let r = pinned.request(Method::Get, "health", &[], None).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.read_capped(1024).unwrap(), br#"{"status":"ok"}"#);
    // An administrator and a loader over HTTPS.
    let token = admin.token(&srv.audience());
    let auth = [("X-PGPAUTHORIZATION", token.as_str())];
    let r = pinned
        .post_json("loaders", &auth, &serde_json::json!({"name": "tls"}))
        .unwrap();
    assert_eq!(r.status, 201);
    let issued: serde_json::Value = serde_json::from_slice(&r.read_capped(65536).unwrap()).unwrap();
    let (id, key) = (
        issued["loader"]["id"].as_u64().unwrap(),
        issued["key"].as_str().unwrap(),
    );
    let token = admin.token(&srv.audience());
    let r = pinned
        .post_json(
            &format!("loaders/{id}/status"),
            &[("X-PGPAUTHORIZATION", token.as_str())],
            &serde_json::json!({"status": "enabled"}),
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let r = pinned
        .post_json(
            "loader/manifest",
            &[("X-LOADERKEY", key)],
            &manifest_request("h", &[]),
        )
        .unwrap();
    assert_eq!(r.status, 404, "authenticated, and no manifest yet");
    let e = client("other-ca.crt")
        .request(Method::Get, "health", &[], None)
        .err()
        .expect("a certificate from another CA is refused");
    assert!(e.to_string().contains("health"), "{e}");
    let plain = srv.base_url.replacen("https://", "http://", 1);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    assert!(agent.get(format!("{plain}health")).call().is_err());
}
