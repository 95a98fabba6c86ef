//! A full disk on the endpoint: the loader's root is a small tmpfs of its own (mounted by the
//! test, which needs root, as CI has), and the new manifest's files do not all fit. Staging
//! fails naming the file and the disk, the staged files are removed, the running agent and every
//! installed file are as they were, and once the disk is larger the next run installs.
//! Needs the workspace binaries: `cargo build --workspace --bins --all-features` first.

use e2e::world::{bundle, check_installed, World};
use e2e::ApiOptions;

const MIB: u64 = 1024 * 1024;

#[test]
fn a_disk_that_fills_while_staging_leaves_the_agent_and_every_file_as_they_were() {
    let w = World::on_small_disk(ApiOptions::default(), 2 * MIB);
    w.installed_v1();
    let disk = w.host.disk().expect("the root's own tmpfs");
    let free = disk.free();
    // Two new files, each two thirds of the free space: whichever is staged first fits, the
    // second cannot, so a staged file is there to be cleaned up when the disk fills.
    let part = (free * 2 / 3) as usize;
    let mut v2 = bundle(&w.host, "v2", "[agent]\nrelay = \"amqp://relay2:5671/\"\n");
    for (name, body) in v2.iter_mut() {
        if *name == "agentcert" || *name == "cacert" {
            *body = (0..part)
                .map(|i| (i * 13 % 251) as u8 ^ name.len() as u8)
                .collect();
        }
    }
    w.publish("the second manifest", &v2, ("linux", "amd64"), 2);

    // World::refused checks that every file under the root, staged ones included, is as it was.
    let out = w.refused("No space left on device");
    let shown = format!("{}\n{}", out.stdout, out.stderr);
    assert!(
        shown.contains(".mig-new"),
        "the staged file is named:\n{out}"
    );
    assert!(
        disk.free() + 64 * 1024 >= free,
        "staged bytes were left behind: {} free before, {} after",
        free,
        disk.free()
    );
    let report = w.last_report();
    assert_eq!(report["result"], "failed", "{report}");
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.contains("No space left on device")),
        "{report}"
    );

    disk.resize(8 * MIB);
    w.run_loader().ok();
    check_installed(&w.host.root, &v2);
    assert_eq!(w.host.running_agent().as_deref(), Some("v2"));
}
