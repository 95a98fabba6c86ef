//! The deadlines a build gets when its TOML sets none, in seconds: build.rs bakes them into the
//! built-in configuration and [`crate::limits::Limits::DEFAULT`] carries them. build.rs includes
//! this file too (`#[path]`), so it holds plain constants and nothing else.

/// `[api] connect_timeout_secs`.
pub const CONNECT_SECS: u64 = 10;
/// `[api] request_timeout_secs`.
pub const REQUEST_SECS: u64 = 300;
/// `[api] run_timeout_secs`.
pub const RUN_SECS: u64 = 1800;
/// `[agent] trigger_timeout_secs`.
pub const TRIGGER_SECS: u64 = 60;
/// `[agent] health_timeout_secs`.
pub const HEALTH_SECS: u64 = 30;
