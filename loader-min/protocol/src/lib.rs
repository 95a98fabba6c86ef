//! mig-protocol: what mig-loader, mig-api and mig-console must agree on, in one place: the signed
//! statement and its M-of-N verification, the dictionary of managed files, timestamps, the loader's
//! and the administrators' wire types, and the types that carry a rule once.
#![forbid(unsafe_code)]

pub mod admin;
pub mod dictionary;
pub mod error;
pub mod freshness;
pub mod halt;
pub mod ini;
pub mod loader;
pub mod mig_v1;
pub mod permission;
pub mod plugin_name;
pub mod root;
pub mod serial;
pub mod sha256;
pub mod signature;
pub mod statement;
pub mod status;
pub mod time;

pub use error::{Error, Result};
pub use permission::Permission;
pub use plugin_name::PluginName;
pub use serial::Serial;
pub use sha256::Sha256;
pub use status::{InvestigatorStatus, LoaderStatus, ManifestStatus};
