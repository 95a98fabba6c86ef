//! mig-api: manifests, signatures, loaders, investigators and WASM targeting for the MIG loader
//! system (docs/design.md §3, §5, §6; docs/api.md is the HTTP contract). `main.rs` is only the CLI.
#![forbid(unsafe_code)]

pub mod app;
pub mod archive;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod db;
pub mod error;
pub mod expiry;
pub mod filecache;
pub mod front;
pub mod halt;
pub mod import_mig;
pub mod investigators;
pub mod keys;
pub mod loaders;
pub mod logging;
pub mod manifests;
pub mod metrics;
pub mod plugins;
pub mod poll;
pub mod reports;
pub mod routes;
pub mod server;
pub mod targeting;

pub use error::{Error, Result};
