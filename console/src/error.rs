//! The one error type of mig-console: every message names what failed and, for the API, why.

use std::fmt;

/// Everything that can make a console command fail.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The command line or an interactive line does not follow the grammar.
    Usage(String),
    /// A value a script must pass was not given and standard input is not a terminal.
    Missing {
        flag: &'static str,
        what: &'static str,
    },
    /// The configuration file is missing or invalid; `path` names it.
    Config { path: String, reason: String },
    /// The API answered with an error status; `reason` is the API's own message.
    Api {
        method: &'static str,
        path: String,
        status: u16,
        reason: String,
    },
    /// The exchange with the API failed before an answer (connection, TLS, deadline, size cap).
    Transport(String),
    /// The API's answer did not parse.
    BadAnswer { what: String, reason: String },
    /// Signing (gpg or a key file) failed.
    Sign(String),
    /// The local archive does not match the statement being signed, or cannot be read.
    Archive(String),
    /// A local file could not be read or written.
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// A file is larger than the console accepts.
    TooLarge { what: String, limit: u64 },
    /// The user answered no to a confirmation.
    Declined(String),
    /// A statement, signature, key or wire document was refused (mig-protocol's rules).
    Protocol(mig_protocol::Error),
    /// An exchange with the API failed.
    Http(mig_http::Error),
}

impl Error {
    /// Wraps an I/O error with the operation and the path.
    pub fn io(op: &'static str, path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}"),
            Error::Missing { flag, what } => write!(
                f,
                "missing {flag} ({what}): standard input is not a terminal, so nothing is prompted"
            ),
            Error::Config { path, reason } => write!(f, "configuration {path}: {reason}"),
            Error::Api {
                method,
                path,
                status,
                reason,
            } => write!(
                f,
                "{method} {path}: the API answered HTTP {status}: {reason}"
            ),
            Error::Transport(m) => write!(f, "{m}"),
            Error::BadAnswer { what, reason } => {
                write!(f, "unexpected answer from the API to {what}: {reason}")
            }
            Error::Sign(m) => write!(f, "signing failed: {m}"),
            Error::Archive(m) => write!(f, "{m}"),
            Error::Io { op, path, source } => write!(f, "{op} {path}: {source}"),
            Error::TooLarge { what, limit } => {
                write!(f, "{what} is larger than the {limit} bytes allowed")
            }
            Error::Declined(m) => write!(f, "{m}: not confirmed, nothing done"),
            Error::Protocol(e) => write!(f, "{e}"),
            Error::Http(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Protocol(e) => Some(e),
            Error::Http(e) => Some(e),
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

/// The result type of mig-console.
pub type Result<T, E = Error> = std::result::Result<T, E>;
