//! Hostile manifest archives, each refused with a message naming the member; archives made by
//! GNU tar load.

mod common;

use common::*;
use serde_json::json;
use std::process::Command;
use tar::EntryType;

/// entries 4, a member at most 2 MiB, 3 MiB decompressed in all, uploads up to 8 MiB.
fn server() -> (Server, Admin) {
    let srv = Server::with(Settings {
        limits: vec![
            ("entries", 4),
            ("filesize", 2 << 20),
            ("totalsize", 3 << 20),
            ("uploadsize", 8 << 20),
        ],
        ..Settings::default()
    });
    let a = srv.dev_admin(1, "PermManifest");
    (srv, a)
}

fn upload(srv: &Server, a: &Admin, archive: &[u8]) -> Reply {
    srv.post(
        a,
        "manifests",
        json!({"name": "hostile", "target": "true", "platform": host_platform(), "archive": b64(archive)}),
    )
}

#[track_caller]
fn refused(srv: &Server, a: &Admin, archive: &[u8], status: u16, needles: &[&str]) {
    let r = upload(srv, a, archive).expect(status);
    let msg = r.message();
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in {msg:?}");
    }
}

#[test]
fn path_traversal_and_absolute_names_are_refused() {
    let (srv, a) = server();
    let ok = raw_member(b"m/cacert", EntryType::Regular, b"", b"ca");
    let up = raw_member(b"m/../../etc/mig-agent", EntryType::Regular, b"", b"x");
    refused(
        &srv,
        &a,
        &gzip(&tar_end(&[ok.clone(), up])),
        400,
        &["\"m/../../etc/mig-agent\"", "traversal"],
    );
    let abs = raw_member(b"/sbin/mig-agent", EntryType::Regular, b"", b"x");
    refused(
        &srv,
        &a,
        &gzip(&tar_end(&[abs])),
        400,
        &["\"/sbin/mig-agent\"", "absolute"],
    );
    let dotdot_dir = raw_member(b"../m/", EntryType::Directory, b"", b"");
    refused(
        &srv,
        &a,
        &gzip(&tar_end(&[dotdot_dir, ok])),
        400,
        &["\"../m/\"", "traversal"],
    );
}

#[test]
fn links_devices_and_fifos_are_refused() {
    let (srv, a) = server();
    for (kind, link, needle) in [
        (EntryType::Symlink, &b"/etc/shadow"[..], "symbolic link"),
        (EntryType::Link, &b"m/cacert"[..], "hard link"),
        (EntryType::Char, &b""[..], "device file"),
        (EntryType::Block, &b""[..], "device file"),
        (EntryType::Fifo, &b""[..], "fifo"),
    ] {
        let m = raw_member(b"m/mig-agent", kind, link, b"");
        refused(
            &srv,
            &a,
            &gzip(&tar_end(&[m])),
            400,
            &["\"m/mig-agent\"", needle],
        );
    }
    // A symbolic link written by GNU tar itself.
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(m.join("cacert"), b"ca").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", m.join("configuration")).unwrap();
    let out = dir.path().join("m.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(dir.path())
        .arg("m")
        .status()
        .unwrap();
    assert!(st.success());
    refused(
        &srv,
        &a,
        &std::fs::read(&out).unwrap(),
        400,
        &["\"m/configuration\"", "symbolic link"],
    );
}

#[test]
fn duplicates_strangers_and_too_many_entries_are_refused() {
    let (srv, a) = server();
    let dup = targz(&[("a/mig-agent", b"1"), ("b/mig-agent", b"2")]);
    refused(
        &srv,
        &a,
        &dup,
        400,
        &["\"b/mig-agent\"", "second file named \"mig-agent\""],
    );
    let stranger = targz(&[("m/mig-agent", b"1"), ("m/install.sh", b"rm -rf /")]);
    refused(
        &srv,
        &a,
        &stranger,
        400,
        &["\"m/install.sh\"", "not a dictionary name"],
    );
    let five = targz(&[
        ("m/mig-agent", b"1"),
        ("m/mig-loader", b"2"),
        ("m/configuration", b"3"),
        ("m/cacert", b"4"),
        ("m/agentcert", b"5"),
    ]);
    refused(
        &srv,
        &a,
        &five,
        400,
        &["\"m/agentcert\"", "more than 4 files"],
    );
    let only_dir = raw_member(b"m/", EntryType::Directory, b"", b"");
    refused(
        &srv,
        &a,
        &gzip(&tar_end(&[only_dir])),
        400,
        &["no regular file"],
    );
}

#[test]
fn oversized_members_and_gzip_bombs_stop_at_their_caps() {
    let (srv, a) = server();
    let big = vec![7u8; (2 << 20) + 1];
    let r = upload(&srv, &a, &targz(&[("m/mig-agent", &big)])).expect(413);
    let msg = r.message();
    assert!(
        msg.contains("\"m/mig-agent\"") && msg.contains("2097152"),
        "{msg}"
    );
    // Two members each within their own cap, 4 MiB of zeros in all from a small upload.
    let two = vec![0u8; 2 << 20];
    let bomb = targz(&[("m/mig-agent", &two), ("m/mig-loader", &two)]);
    assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
    let r = upload(&srv, &a, &bomb).expect(413);
    let msg = r.message();
    assert!(
        msg.contains("\"m/mig-loader\"") && msg.contains("gzip bomb"),
        "{msg}"
    );
    // A pile of empty directories is refused before it costs much.
    let dirs: Vec<Vec<u8>> = (0..200)
        .map(|i| raw_member(format!("d{i}/").as_bytes(), EntryType::Directory, b"", b""))
        .collect();
    refused(
        &srv,
        &a,
        &gzip(&tar_end(&dirs)),
        400,
        &["more than 64 members"],
    );
}

#[test]
fn not_gzip_not_tar_and_truncated_archives_are_refused() {
    let (srv, a) = server();
    refused(&srv, &a, b"PK\x03\x04 a zip file", 400, &["archive"]);
    refused(&srv, &a, &gzip(&[0x55u8; 2048]), 400, &["archive"]);
    let full = targz(&[("m/mig-agent", &vec![1u8; 100_000])]);
    refused(&srv, &a, &full[..full.len() / 2], 400, &["\"m/mig-agent\""]);
}

#[test]
fn archives_made_by_gnu_tar_load_with_basenames_in_archive_order() {
    let (srv, a) = server();
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("mig-manifest-linux");
    std::fs::create_dir(&m).unwrap();
    let files: [(&str, &[u8]); 3] = [
        ("mig-agent", b"\x7fELF agent"),
        ("cacert", b"ca"),
        ("agentkey", b"secret"),
    ];
    for (n, d) in files {
        std::fs::write(m.join(n), d).unwrap();
    }
    let out = dir.path().join("m.tar.gz");
    let st = Command::new("tar")
        .arg("-czvf")
        .arg(&out)
        .arg("-C")
        .arg(dir.path())
        .arg("mig-manifest-linux/mig-agent")
        .arg("mig-manifest-linux/cacert")
        .arg("mig-manifest-linux/agentkey")
        .output()
        .unwrap();
    assert!(st.status.success());
    let rec = upload(&srv, &a, &std::fs::read(&out).unwrap())
        .expect(201)
        .json();
    let entries = rec["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for (e, (n, d)) in entries.iter().zip(files) {
        assert_eq!(e["name"], n);
        assert_eq!(e["sha256"], sha256_hex(d));
        assert_eq!(e["size"], d.len());
    }
}
