//! The one error type of mig-http: every message names the request or file that failed.

use std::fmt;

/// Everything that can go wrong setting up the client or in one exchange with the API.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An HTTP exchange failed: `url` names the request.
    Http { url: String, reason: String },
    /// The server answered with an error status.
    Status {
        url: String,
        status: u16,
        message: String,
    },
    /// A body was larger than allowed.
    TooLarge { what: String, limit: u64 },
    /// The request's absolute deadline passed.
    Deadline(String),
    /// The client's configuration (CA, proxy, URL) is invalid.
    Config(String),
    /// A request body could not be encoded, or a response body did not parse.
    Json { what: String, reason: String },
    /// Reading a file (the CA bundle) failed.
    Io {
        path: String,
        op: &'static str,
        source: std::io::Error,
    },
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Http { url, reason } => write!(f, "request to {url} failed: {reason}"),
            Error::Status {
                url,
                status,
                message,
            } => {
                write!(f, "{url} answered HTTP {status}: {message}")
            }
            Error::TooLarge { what, limit } => write!(f, "{what} is larger than {limit} bytes"),
            Error::Deadline(m) => write!(f, "run deadline exceeded: {m}"),
            Error::Config(m) => write!(f, "configuration error: {m}"),
            Error::Json { what, reason } => write!(f, "malformed JSON in {what}: {reason}"),
            Error::Io { path, op, source } => write!(f, "{op} {path}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The result type of mig-http.
pub type Result<T, E = Error> = std::result::Result<T, E>;
