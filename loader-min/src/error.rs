//! The one error type of mig-loader: every message names the thing that failed.

use std::fmt;

/// Everything that can go wrong in one run of `mig-loader`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A statement, signature, key or wire document was refused (mig-protocol's rules).
    Protocol(mig_protocol::Error),
    /// An exchange with the API failed.
    Http(mig_http::Error),
    /// A file's content does not match its signed hash or size.
    Mismatch { what: String, reason: String },
    /// A local file was larger than allowed.
    TooLarge { what: String, limit: u64 },
    /// A filesystem operation failed on `path`.
    Io {
        path: String,
        op: &'static str,
        source: std::io::Error,
    },
    /// Another run holds the lock.
    Locked(String),
    /// A child process (trigger, probe) failed or timed out.
    Trigger { command: String, reason: String },
    /// The built-in or run-time configuration, or a local state file, is invalid.
    Config(String),
    /// The agent did not come up after the install.
    Unhealthy(String),
}

impl Error {
    /// Wraps an I/O error with the path and the operation that failed.
    pub fn io(op: &'static str, path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            op,
            source,
        }
    }

    /// The HTTP status the API answered, when that is what failed.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http(mig_http::Error::Status { status, .. }) => Some(*status),
            _ => None,
        }
    }
}

impl From<mig_protocol::Error> for Error {
    fn from(e: mig_protocol::Error) -> Self {
        Error::Protocol(e)
    }
}

impl From<mig_http::Error> for Error {
    fn from(e: mig_http::Error) -> Self {
        Error::Http(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => e.fmt(f),
            Error::Http(e) => e.fmt(f),
            Error::Mismatch { what, reason } => write!(f, "{what}: {reason}"),
            Error::TooLarge { what, limit } => write!(f, "{what} is larger than {limit} bytes"),
            Error::Io { path, op, source } => write!(f, "{op} {path}: {source}"),
            Error::Locked(m) => write!(f, "another mig-loader run holds the lock {m}"),
            Error::Trigger { command, reason } => write!(f, "trigger `{command}` failed: {reason}"),
            Error::Config(m) => write!(f, "configuration error: {m}"),
            Error::Unhealthy(m) => write!(f, "agent unhealthy after install: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Protocol(e) => Some(e),
            Error::Http(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The result type of mig-loader.
pub type Result<T, E = Error> = std::result::Result<T, E>;
