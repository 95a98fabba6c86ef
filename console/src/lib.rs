//! mig-console: the administrators' console for manifests, loaders, investigators and targeting
//! plugins. One grammar (MIG's) for the interactive session and for scripts; start at
//! [`cli::main`], then [`dispatch`] (which command runs), [`session`] (what commands are given)
//! and [`grammar`] (whose [`grammar::vocab`] table the parser, the help and tab completion read).
#![forbid(unsafe_code)]

pub mod api;
pub mod archive;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod editor;
pub mod error;
pub mod grammar;
pub mod investigator;
pub mod loader;
pub mod manifest;
pub mod newfile;
pub mod plugin;
pub mod process;
pub mod progress;
pub mod report;
pub mod search;
pub mod serials;
pub mod session;
pub mod signer;
pub mod status;
pub mod table;
pub mod tty;
pub mod ui;
pub mod words;

pub use error::{Error, Result};
