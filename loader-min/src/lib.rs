//! mig-loader's engine: one module per state of a run, and [`run`] which strings them together in
//! the order of that list:
//!
//! lock → recover → key → discover → statement → verify → compare → stage → swap → triggers →
//! health → commit | revert → report → cleanup.
//!
//! Everything is blocking and single-threaded. Every path comes from [`layout::Layout`] (the
//! dictionary under `--root`), never from the network. The built-in configuration is a parameter
//! ([`config::BuildConfig`]), so the engine itself holds no keys; `src/main.rs` passes the one
//! build.rs generated.
#![forbid(unsafe_code)]

pub mod compare;
pub mod config;
pub mod crash;
pub mod discover;
pub mod error;
pub mod fetch;
pub mod health;
pub mod journal;
pub mod key;
pub mod layout;
pub mod lock;
pub mod log;
pub mod report;
pub mod run;
pub mod state;
pub mod swap;
pub mod triggers;
pub mod verify;

pub use error::{Error, Result};
