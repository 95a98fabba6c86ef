//! What the loader's, the API's, the console's and the end-to-end tests share, in one place:
//!
//! - [`api::ApiServer`]: the real `mig-api` on port 0 with a temporary SQLite file; the address is
//!   the one it announces, so no port is raced for; stopped on drop.
//! - [`gnupg::GnupgHome`]: a temporary `GNUPGHOME` whose gpg-agent is stopped on drop.
//! - [`fault::FaultProxy`]: a loopback proxy that spoils chosen answers (stall, drop, reset,
//!   drip, flipped bit, lying lengths, gzip bomb, huge headers, redirect, cut upload).
//! - [`targets`]: mig-loader's targets (triple, GOARCH, Debian name, qemu-user runner) and the
//!   build a loader test runs (`MIG_TEST_LOADER_TARGET`).
//! - [`tmpfs::Tmpfs`]: a small tmpfs mounted for a test (root only), unmounted on drop.
//! - [`postgres::PgCluster`]: a throwaway PostgreSQL cluster on a loopback port (initdb, pg_ctl).
//! - [`agent::agent_script`]: the stand-in `mig-agent` that records its calls.
//! - [`process::run`]: a child process with stdin, captured output and a deadline.
//! - [`dev_key`], [`fingerprint`], [`sha256_hex`], [`archive::tar_gz`]: keys, digests, archives.
//! - [`binary`]: the workspace's binaries, built in the profile of the running test.
#![forbid(unsafe_code)]

pub mod agent;
pub mod api;
pub mod archive;
pub mod fault;
pub mod gnupg;
pub mod nginx;
pub mod postgres;
pub mod process;
pub mod targets;
pub mod tmpfs;

pub use api::{faketime_library, ApiOptions, ApiServer, BASEROUTE};
pub use archive::tar_gz;
pub use gnupg::GnupgHome;
pub use process::{free_port, http_get, listening_ports, run, Output};

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/support sits two levels below the workspace root")
        .to_path_buf()
}

/// A file of `conf/dev-keys` (`admin1.pub.asc`, `admin2.sec.asc`, …).
pub fn dev_key(file: &str) -> PathBuf {
    workspace_root().join("conf/dev-keys").join(file)
}

/// The primary-key fingerprint (upper-case hex) of an armored public key file.
pub fn fingerprint(public_key_file: &Path) -> String {
    let armored = std::fs::read_to_string(public_key_file)
        .unwrap_or_else(|e| panic!("read {}: {e}", public_key_file.display()));
    let key = mig_protocol::signature::parse_public_key("key", &armored).expect("a public key");
    mig_protocol::signature::fingerprint_hex(&key).to_ascii_uppercase()
}

/// sha256 as lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    mig_protocol::Sha256::of(data).into()
}

/// `target/<profile>/`: the directory of the running test executable's parent (`deps/..`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut dir = exe
        .parent()
        .expect("the executable's directory")
        .to_path_buf();
    // Test binaries sit in `deps`, examples in `examples`, below the profile's directory.
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir
}

/// A workspace binary built in the same profile as this test.
pub fn binary(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Incompressible bytes (xorshift64*), so that archives and transfers are really that large.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_keys_are_found_and_read() {
        assert_eq!(
            fingerprint(&dev_key("admin1.pub.asc")),
            "37050AE08CB33351018A809EFD575A3E1CEB348D"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
