//! A faulty network between the real binaries: the fault proxy of mig-test-support sits between
//! the development `mig-loader` and the real `mig-api`, and between `mig-console` and `mig-api`,
//! and spoils chosen answers: a stall mid-body, a drop and a reset after N bytes, a 1 byte per
//! second drip, a flipped bit, a body longer than promised, a missing or lying `Content-Length`,
//! a gzip bomb, a huge and an endless header, a redirect elsewhere, an upload cut on its way.
//! Each case: the run ends by itself with an error naming what happened, nothing is installed
//! or stored in part, the running agent is untouched, and the next clean run succeeds; a broken
//! download is resumed with `Range` where it can be.
//! Needs the workspace binaries: `cargo build --workspace --bins --all-features` first.

use e2e::admin::Admin;
use e2e::fault::{Fault, FaultProxy};
use e2e::world::{bundle, check_installed, World};
use e2e::{ApiOptions, Output};
use mig_protocol::loader::{FILES_PATH, MANIFEST_PATH};
use std::net::TcpListener;
use std::time::Duration;

/// The size of the big file of the second manifest, so that a body can be cut in its middle.
const BIG: usize = 300_000;

/// A world whose loader talks through the proxy, with v1 installed through it and a v2 whose
/// `agentcert` is [`BIG`] bytes waiting.
struct Faulty {
    w: World,
    proxy: FaultProxy,
    v2: Vec<(&'static str, Vec<u8>)>,
}

impl Faulty {
    fn new() -> Faulty {
        let w = World::new(ApiOptions::default());
        let proxy = FaultProxy::start(w.d.api.addr);
        w.host.point_at(&proxy.base_url());
        w.installed_v1();
        let mut v2 = bundle(&w.host, "v2", "[agent]\nrelay = \"amqp://relay2:5671/\"\n");
        let big: Vec<u8> = (0..BIG as u32).map(|i| (i * 7 % 251) as u8).collect();
        if let Some(cert) = v2.iter_mut().find(|(n, _)| *n == "agentcert") {
            cert.1 = big;
        }
        w.publish("the second manifest", &v2, ("linux", "amd64"), 2);
        Faulty { w, proxy, v2 }
    }

    /// With `fault` on the next `times` requests to `path`, the run is refused naming `reason`
    /// and changes nothing ([`World::refused`]); then, healed, the next run installs v2.
    #[track_caller]
    fn refused_then_healed(&self, path: &str, fault: Fault, times: usize, reason: &str) -> Output {
        self.proxy.inject(path, fault, times);
        let out = self.w.refused(reason);
        self.proxy.heal();
        self.installs_v2();
        out
    }

    /// A clean run (or one whose faults it overcomes) installs v2.
    #[track_caller]
    fn installs_v2(&self) -> Output {
        let out = self.w.run_loader();
        out.ok();
        check_installed(&self.w.host.root, &self.v2);
        assert_eq!(self.w.host.running_agent().as_deref(), Some("v2"));
        out
    }

    /// The request path of the big file.
    fn big(&self) -> String {
        let body = &self.v2.iter().find(|(n, _)| *n == "agentcert").unwrap().1;
        format!("{FILES_PATH}{}", e2e::sha256_hex(body))
    }

    /// The `Range` headers of the requests for the big file, in order.
    fn big_file_ranges(&self) -> Vec<Option<String>> {
        self.proxy
            .exchanges_to(&self.big())
            .into_iter()
            .map(|e| e.range)
            .collect()
    }
}

fn all(out: &Output) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

#[test]
fn a_stall_mid_body_hits_the_request_deadline_and_a_passing_one_is_resumed() {
    let f = Faulty::new();
    // The server stops sending halfway, every time: no byte moves on the next attempt either.
    let out = f.refused_then_healed(FILES_PATH, Fault::Stall { after: 0 }, 100, "timeout");
    assert!(all(&out).contains("/api/v2/loader/files/"), "{out}");

    let f = Faulty::new();
    f.proxy.inject(&f.big(), Fault::Stall { after: 100_000 }, 1);
    let out = f.installs_v2();
    assert!(all(&out).contains("resuming at byte 100000"), "{out}");
    assert_eq!(
        f.big_file_ranges(),
        [None, Some("bytes=100000-".to_string())]
    );
}

#[test]
fn a_dropped_connection_is_resumed_and_one_that_never_delivers_is_given_up() {
    let f = Faulty::new();
    f.proxy.inject(&f.big(), Fault::Drop { after: 120_000 }, 1);
    let out = f.installs_v2();
    assert!(all(&out).contains("resuming at byte 120000"), "{out}");
    assert_eq!(
        f.big_file_ranges(),
        [None, Some("bytes=120000-".to_string())]
    );

    let f = Faulty::new();
    f.refused_then_healed(
        FILES_PATH,
        Fault::Drop { after: 0 },
        100,
        "connection broken after 0 bytes",
    );
}

#[test]
fn a_reset_connection_is_resumed_and_one_reset_every_time_is_given_up() {
    let f = Faulty::new();
    f.proxy.inject(&f.big(), Fault::Reset { after: 150_000 }, 1);
    let out = f.installs_v2();
    let ranges = f.big_file_ranges();
    assert_eq!(ranges.len(), 2, "{out}");
    assert!(
        ranges[1].as_deref().is_some_and(|r| r != "bytes=0-"),
        "{ranges:?}"
    );

    let f = Faulty::new();
    f.refused_then_healed(
        FILES_PATH,
        Fault::Reset { after: 0 },
        100,
        "/api/v2/loader/files/",
    );
}

#[test]
fn a_one_byte_per_second_drip_hits_the_request_deadline() {
    let f = Faulty::new();
    f.refused_then_healed(
        FILES_PATH,
        Fault::Drip {
            every: Duration::from_secs(1),
        },
        100,
        "timeout",
    );
    // The manifest request too: the loader does not wait for its 5 s deadline to pass twice.
    let f = Faulty::new();
    f.refused_then_healed(
        MANIFEST_PATH,
        Fault::Drip {
            every: Duration::from_secs(1),
        },
        1,
        "timeout",
    );
}

#[test]
fn a_flipped_bit_in_a_file_or_in_the_statement_is_refused() {
    let f = Faulty::new();
    f.refused_then_healed(
        FILES_PATH,
        Fault::FlipBit { at: 1000 },
        1,
        "tampered or corrupted body",
    );
    // `{"statement":"` is 14 bytes: byte 40 is inside the signed text.
    let f = Faulty::new();
    f.refused_then_healed(MANIFEST_PATH, Fault::FlipBit { at: 40 }, 1, "got 0, need 2");
}

#[test]
fn bodies_longer_than_signed_or_promised_are_aborted() {
    let f = Faulty::new();
    f.refused_then_healed(
        FILES_PATH,
        Fault::Longer { extra: 1000 },
        1,
        "longer than its signed size",
    );
    let f = Faulty::new();
    f.refused_then_healed(
        FILES_PATH,
        Fault::LengthTooLong { by: 1 },
        1,
        "Content-Length",
    );
}

#[test]
fn a_short_content_length_is_resumed_and_a_missing_one_reads_to_the_close() {
    let f = Faulty::new();
    // Every answer for a file says 100,000 bytes fewer than it holds: the loader takes what the
    // length promised, asks for the rest, and gives up only once no byte comes.
    let out = f.refused_then_healed(
        &f.big(),
        Fault::LengthTooShort { by: 100_000 },
        100,
        &format!("connection closed after 200000 of {BIG} bytes"),
    );
    assert!(all(&out).contains("resuming at byte 200000"), "{out}");

    let f = Faulty::new();
    let seen = f.proxy.exchanges().len();
    f.proxy.inject("/", Fault::NoLength, 1000);
    f.installs_v2();
    let run = &f.proxy.exchanges()[seen..];
    assert!(run.len() >= 5, "{run:?}");
    assert!(run.iter().all(|e| e.fault == Some("no-length")), "{run:?}");
}

#[test]
fn a_gzip_bomb_is_never_inflated() {
    let f = Faulty::new();
    let bomb = Fault::GzipBomb {
        inflated: 64 * 1024 * 1024,
    };
    // Taken as the bytes it is (nothing asked for gzip): more than the file's signed size.
    f.refused_then_healed(&f.big(), bomb.clone(), 1, "longer than its signed size");
    let f = Faulty::new();
    f.refused_then_healed(MANIFEST_PATH, bomb, 1, "/api/v2/loader/manifest");
}

#[test]
fn huge_and_endless_headers_are_cut_at_the_clients_cap() {
    let f = Faulty::new();
    f.refused_then_healed(
        MANIFEST_PATH,
        Fault::HugeHeader { size: 1024 * 1024 },
        1,
        "response header is too big",
    );
    let f = Faulty::new();
    f.refused_then_healed(
        FILES_PATH,
        Fault::EndlessHeader,
        100,
        "response header is too big",
    );
}

#[test]
fn a_redirect_elsewhere_is_not_followed() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let location = format!("http://{}/api/v2/", elsewhere.local_addr().unwrap());
    let f = Faulty::new();
    f.refused_then_healed(
        MANIFEST_PATH,
        Fault::Redirect {
            location: format!("{location}loader/manifest"),
        },
        1,
        "answered HTTP 302",
    );
    let f2 = Faulty::new();
    f2.refused_then_healed(
        FILES_PATH,
        Fault::Redirect {
            location: format!("{location}loader/files/x"),
        },
        1,
        "answered HTTP 302",
    );
    assert!(
        elsewhere.accept().is_err(),
        "a client followed the redirect"
    );
}

/// An administrator through the proxy to `api`, with a 5 s request timeout; its tokens name
/// `api`, the API they are for, not the proxy.
fn admin_through(proxy: &FaultProxy, api: &e2e::ApiServer) -> Admin {
    Admin::with_gpg(&proxy.base_url(), "admin1")
        .with_timeout(5)
        .with_audience(&api.audience())
}

#[track_caller]
fn console_fails(admin: &Admin, args: &[&str], reason: &str) -> Output {
    let out = admin.run(args);
    out.failed();
    assert!(all(&out).contains(reason), "{reason:?} not shown:\n{out}");
    out
}

#[test]
fn the_console_names_each_fault_and_works_again_once_the_network_heals() {
    let w = World::new(ApiOptions::default());
    let proxy = FaultProxy::start(w.d.api.addr);
    let admin = admin_through(&proxy, &w.d.api);
    // One manifest, so that the answers faulted below have a body to cut.
    let files = bundle(&w.host, "v1", "[agent]\n");
    w.publish("a manifest", &files, ("linux", "amd64"), 2);
    let list = ["search", "manifest"];
    let direct = |args: &[&str]| w.d.admin1.json(args);
    let before = direct(&list);
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    for (fault, reason) in [
        (Fault::Stall { after: 10 }, "timeout"),
        (
            Fault::Drip {
                every: Duration::from_secs(1),
            },
            "timeout",
        ),
        (Fault::Drop { after: 5 }, "search"),
        (Fault::Reset { after: 0 }, "search"),
        (Fault::LengthTooLong { by: 10 }, "search"),
        (Fault::Longer { extra: 3 }, "search"),
        (
            Fault::GzipBomb {
                inflated: 64 * 1024 * 1024,
            },
            "search",
        ),
        (
            Fault::HugeHeader { size: 1024 * 1024 },
            "response header is too big",
        ),
        (Fault::EndlessHeader, "response header is too big"),
        (
            Fault::Redirect {
                location: format!("http://{}/", elsewhere.local_addr().unwrap()),
            },
            "302",
        ),
    ] {
        let name = fault.name();
        proxy.inject("search", fault, 1);
        let out = console_fails(&admin, &list, reason);
        assert!(
            proxy
                .exchanges()
                .last()
                .is_some_and(|e| e.fault == Some(name)),
            "{name}: {out}"
        );
        proxy.heal();
        admin.run(&list).ok();
    }
    assert!(
        elsewhere.accept().is_err(),
        "the console followed the redirect"
    );
    assert_eq!(direct(&list), before);
}

#[test]
fn an_upload_cut_on_its_way_stores_nothing_and_a_flipped_statement_is_not_signed() {
    let w = World::new(ApiOptions::default());
    let proxy = FaultProxy::start(w.d.api.addr);
    let admin = admin_through(&proxy, &w.d.api);
    let files = bundle(&w.host, "v1", "[agent]\n");
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let archive = w.d.archive("cut", &borrowed);
    let content = archive.to_str().unwrap();
    let create = [
        "create",
        "manifest",
        "--name",
        "cut",
        "--target",
        "true",
        "--content",
        content,
        "--os",
        "linux",
        "--arch",
        "amd64",
    ];
    let count = || {
        w.d.admin1
            .json(&["search", "manifest"])
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = count();
    proxy.inject("manifests", Fault::CutRequest { after: 300 }, 1);
    console_fails(&admin, &create, "manifests");
    assert_eq!(count(), before, "a cut upload left a manifest behind");
    proxy.heal();
    let out = admin.run(&create);
    out.ok();
    assert_eq!(count(), before + 1);

    // The statement the console is asked to sign comes back with one bit flipped: it differs
    // from the manifest's record (and from the local archive), so nothing is signed.
    let id =
        w.d.admin1
            .json(&["search", "manifest"])
            .as_array()
            .and_then(|a| a.iter().filter_map(|m| m["id"].as_u64()).max())
            .unwrap();
    let id = id.to_string();
    proxy.inject("/statement", Fault::FlipBit { at: 40 }, 1);
    console_fails(
        &admin,
        &["manifest", &id, "sign", "--content", content],
        "not signing",
    );
    let signatures = |m: &serde_json::Value| m["signers"].as_array().map_or(0, Vec::len);
    assert_eq!(signatures(&w.d.admin1.json(&["manifest", &id, "json"])), 0);
    admin
        .run(&["manifest", &id, "sign", "--content", content])
        .ok();
    assert_eq!(signatures(&w.d.admin1.json(&["manifest", &id, "json"])), 1);
}
