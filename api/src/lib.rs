//! mig-api: manifests, signatures, loaders, investigators and WASM targeting for the MIG loader
//! system (docs/design.md §3, §5, §6; docs/api.md is the HTTP contract). `main.rs` is only the CLI.
//!
//! The modules are layers, each using only those above it in this list (docs/design.md §6.8 is
//! the map; `api/tests/layers.rs` fails on an arrow that points up). Public are only those that
//! `main.rs` and the benches use.
#![forbid(unsafe_code)]

// Foundations: the error type, the log, keys (the freshness key too), PEM files, the database,
// the targeting engine.
mod clock;
pub mod db;
pub mod error;
pub mod freshness;
mod keys;
mod logging;
mod pem;
pub mod targeting;

// What the running API holds: configuration (plain data), stores, caches, counters, and the
// queries the services share.
mod archive;
mod auth;
mod blobs;
pub mod config;
mod expiry;
mod filecache;
mod halt;
pub mod investigators;
mod metrics;
mod poll;
mod reports;

// The application state: data only.
pub mod app;

// Services: what an administrator's or a loader's request does.
mod admin_auth;
mod loaders;
mod manifests;
mod plugins;
mod replicas;
mod roots;
mod tasks;

// The loader-facing protocol, and MIG's database read into ours.
pub mod import_mig;
mod serve;

// HTTP: the public socket, and Rocket's routes, guards and fairings.
mod front;
mod routes;

// Start-up and the order things stop in.
pub mod server;

pub use error::{Error, Result};
