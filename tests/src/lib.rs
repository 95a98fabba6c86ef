//! The end-to-end harness: the real workspace binaries, started against each other on loopback.
//! What every suite shares (the API server, GnuPG homes, child processes, keys) is
//! `mig-test-support`, re-exported here; this crate adds the administrators ([`admin`]), the
//! operator's deployment ([`deployment`]) and the loader's endpoint ([`host`]).
#![forbid(unsafe_code)]

pub mod admin;
pub mod deployment;
pub mod host;
pub mod measure;
pub mod mig_go;
pub mod world;

pub use mig_test_support::*;
