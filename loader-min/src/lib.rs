//! mig-loader's engine: one module per state of a run, and [`run`] which strings them together in
//! the order of that list:
//!
//! lock → recover → key → discover → roots → statement → verify → compare → stage → swap → triggers →
//! health → commit | revert → report → cleanup.
//!
//! Everything is blocking and single-threaded. Every path comes from [`layout::Layout`] (the
//! dictionary under `--root`), never from the network. The built-in configuration is a parameter
//! ([`config::BuildConfig`]), so the engine itself holds no keys; `src/main.rs` passes the one
//! build.rs generated.
// The exceptions: the Win32 declarations of `windows::sys`, the sysctlbyname call of darwin.rs
// and the getaddrinfo call of fqdn.rs (`#[allow(unsafe_code)]` on each `sys` module); everywhere
// else `unsafe` is refused.
#![deny(unsafe_code)]

// The states of a run, in order (run.rs strings them together).
pub mod cleanup;
pub mod commit;
pub mod compare;
pub mod discover;
pub mod health;
pub mod key;
pub mod lock;
pub mod recover;
pub mod report;
pub mod revert;
pub mod roots;
pub mod stage;
pub mod statement;
pub mod swap;
pub mod triggers;
pub mod verify;

// The run, its outcome, its bounds and its configuration.
pub mod config;
pub mod deadlines;
pub mod error;
pub mod limits;
pub mod outcome;
pub mod run;

// Helpers the states share.
pub mod child;
pub mod crash;
pub mod fetch;
pub mod fqdn;
pub mod fsutil;
pub mod journal;
pub mod known;
pub mod layout;
pub mod log;
pub mod state;

// What macOS does differently (docs/design.md §2.7): compiled on every Unix, so that its logic's
// tests run on Linux.
#[cfg(unix)]
pub mod darwin;

// What Windows does differently (docs/design.md §2.8).
#[cfg(windows)]
pub mod windows;

pub use error::{Error, Result};
