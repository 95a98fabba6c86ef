//! A shared cache in front of mig-api (real nginx with `proxy_cache`, whose key ignores
//! `X-LOADERKEY`, as a CDN's would): no request without a valid loader key ever gets a secret
//! body, and a non-secret body is served from the cache.

mod common;

use common::*;
use mig_test_support::nginx::Nginx;

fn caching_proxy(api: &std::net::SocketAddr) -> Nginx {
    Nginx::start(&format!(
        "  proxy_cache_path {{dir}}/cache levels=1:2 keys_zone=mig:1m max_size=64m;\n  \
         server {{\n    listen 127.0.0.1:{{port}};\n    location / {{\n      \
         proxy_pass http://{api};\n      proxy_cache mig;\n      \
         add_header X-Cache $upstream_cache_status always;\n    }}\n  }}\n"
    ))
    .expect("nginx starts")
}

#[test]
fn secrets_never_come_out_of_a_shared_cache_and_other_bodies_do() {
    let srv = Server::start();
    let (a1, a2) = two_admins(&srv);
    let (archive, files) = standard_archive("cached");
    let id = srv.create_manifest(&a1, "cached", "true", &archive)["id"]
        .as_u64()
        .unwrap();
    srv.sign_manifest(&a1, id).expect(200);
    srv.sign_manifest(&a2, id).expect(200);
    let (_, key) = srv.enabled_loader(&a1, "h", None);
    let proxy = caching_proxy(&srv.addr);
    let via = |path: &str| proxy.url(&format!("/api/v2/{path}"));
    let with_key = vec![("X-LOADERKEY", key.clone())];
    request(
        "POST",
        &via("loader/manifest"),
        &with_key,
        Some(manifest_request("h", &[]).to_string().into_bytes()),
    )
    .expect(200);

    let secret = &files.iter().find(|(n, _)| *n == "configuration").unwrap().1;
    let public = &files.iter().find(|(n, _)| *n == "mig-agent").unwrap().1;
    let (secret_sha, public_sha) = (sha256_hex(secret), sha256_hex(public));

    // The secret: with the key it comes from mig-api, never stored; without it, never served.
    for _ in 0..2 {
        let r = request(
            "GET",
            &via(&format!("loader/files/{secret_sha}")),
            &with_key,
            None,
        )
        .expect(200);
        assert_eq!(&r.body, secret);
        assert_eq!(
            r.header("cache-control").as_deref(),
            Some("private, no-store")
        );
        assert_ne!(
            r.header("x-cache").as_deref(),
            Some("HIT"),
            "{:?}",
            r.headers
        );
    }
    for headers in [vec![], vec![("X-LOADERKEY", "x".repeat(40))]] {
        let r = request(
            "GET",
            &via(&format!("loader/files/{secret_sha}")),
            &headers,
            None,
        );
        assert_eq!(r.status, 401, "{:?} {}", r.headers, r.text());
        assert!(!r.body.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert_ne!(r.header("x-cache").as_deref(), Some("HIT"));
    }

    // A non-secret body: fetched once with the key, then served by the cache alone.
    let r = request(
        "GET",
        &via(&format!("loader/files/{public_sha}")),
        &with_key,
        None,
    )
    .expect(200);
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("x-cache").as_deref(), Some("MISS"));
    let r = request(
        "GET",
        &via(&format!("loader/files/{public_sha}")),
        &[],
        None,
    )
    .expect(200);
    assert_eq!(&r.body, public);
    assert_eq!(
        r.header("x-cache").as_deref(),
        Some("HIT"),
        "{:?}",
        r.headers
    );
}
