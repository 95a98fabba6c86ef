//! loader-min: the protocol, the signed statement and its verification, shared by `mig-loader`,
//! `mig-api` and `mig-console`; and the loader's own engine (behind the `client` feature).
#![forbid(unsafe_code)]

pub mod admin;
pub mod dictionary;
#[cfg(feature = "client")]
pub mod engine;
pub mod error;
#[cfg(feature = "client")]
pub mod http;
pub mod protocol;
pub mod signature;
pub mod statement;
pub mod time;

pub use error::{Error, Result};
