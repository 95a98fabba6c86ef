//! The one error type of mig-api. Every variant maps to one HTTP status and answers
//! `{"error": {"code", "message"}}` (docs/api.md); the message names what failed.

pub mod sql;

use rocket::http::Status;
use sql::SqlError;
use std::fmt;

/// Everything a request or the start-up can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// 400: the request is malformed (JSON, parameter, archive, signature). `reason` is a
    /// metrics label (`mig_api_failures_total{reason}`).
    Invalid {
        reason: &'static str,
        message: String,
    },
    /// 401: no valid credential. The client sees `public` only; `detail` goes to the log, so a
    /// caller cannot tell an unknown key prefix from a wrong secret.
    Unauthorized {
        reason: &'static str,
        public: String,
        detail: String,
    },
    /// 403: authenticated, but not allowed (missing permission bit, expectenv, foreign file).
    Forbidden {
        reason: &'static str,
        message: String,
    },
    /// 404: no such object.
    NotFound(String),
    /// 409: the object's state forbids the change (duplicate, disabled, last administrator).
    Conflict(String),
    /// 413: a body or archive member is larger than its limit.
    TooLarge(String),
    /// 408: a request body did not arrive within its deadline.
    Timeout(String),
    /// 416: a `Range` that cannot be served for a body of `size` bytes.
    RangeNotSatisfiable { size: u64, message: String },
    /// 429: one client sent more than its share; `retry_after` seconds until it may again.
    TooMany {
        reason: &'static str,
        message: String,
        retry_after: u64,
    },
    /// 503: a bounded resource is exhausted (e.g. the token nonce cache).
    Unavailable(String),
    /// 500: the database failed; `what` names the operation (507 when its disk is full, 503
    /// when PostgreSQL cannot be reached).
    Database { what: String, source: SqlError },
    /// 500: a file operation failed on `path` (507 when the disk is full).
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// Start-up: the configuration is invalid; the message names file and line.
    Config(String),
    /// `import-mig`: MIG's database could not be read; the message names the query.
    Import(String),
    /// 500: a broken invariant; the message says which.
    Internal(String),
}

/// The result type of mig-api.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            reason,
            message: message.into(),
        }
    }

    pub fn forbidden(reason: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden {
            reason,
            message: message.into(),
        }
    }

    /// A 401 whose public message is `public` and whose precise cause is only logged.
    pub fn unauthorized(
        reason: &'static str,
        public: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Error::Unauthorized {
            reason,
            public: public.into(),
            detail: detail.into(),
        }
    }

    /// Wraps a database error with the operation that failed.
    pub fn db<E: Into<SqlError>>(what: impl Into<String>) -> impl FnOnce(E) -> Error {
        let what = what.into();
        move |source| Error::Database {
            what,
            source: source.into(),
        }
    }

    /// The database server cannot be reached (PostgreSQL down, restarting, or the connection
    /// lost): 503, and the replica tries again on the next request.
    pub fn is_database_unreachable(&self) -> bool {
        matches!(self, Error::Database { source, .. } if source.is_unreachable())
    }

    /// Wraps an I/O error with the operation and the path.
    pub fn io(
        op: &'static str,
        path: impl AsRef<std::path::Path>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.as_ref().display().to_string();
        move |source| Error::Io { op, path, source }
    }

    pub fn status(&self) -> Status {
        if self.is_storage_full() {
            return Status::InsufficientStorage;
        }
        if self.is_database_unreachable() {
            return Status::ServiceUnavailable;
        }
        match self {
            Error::Invalid { .. } => Status::BadRequest,
            Error::Unauthorized { .. } => Status::Unauthorized,
            Error::Forbidden { .. } => Status::Forbidden,
            Error::NotFound(_) => Status::NotFound,
            Error::Conflict(_) => Status::Conflict,
            Error::TooLarge(_) => Status::PayloadTooLarge,
            Error::Timeout(_) => Status::RequestTimeout,
            Error::RangeNotSatisfiable { .. } => Status::RangeNotSatisfiable,
            Error::TooMany { .. } => Status::TooManyRequests,
            Error::Unavailable(_) => Status::ServiceUnavailable,
            Error::Database { .. }
            | Error::Io { .. }
            | Error::Config(_)
            | Error::Import(_)
            | Error::Internal(_) => Status::InternalServerError,
        }
    }

    /// Whether the disk under the database or the blob store ran out of space (or quota). Such a
    /// failure is the operator's to fix, not a bug, and the client may retry: 507, whichever
    /// operation hit it. SQLite rolls the transaction back, and a blob is renamed into place only
    /// after it is whole, so nothing stored before is touched.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::QuotaExceeded
            }
            Error::Database { source, .. } => source.is_storage_full(),
            _ => false,
        }
    }

    /// The label of `mig_api_failures_total{reason}`.
    pub fn reason(&self) -> &'static str {
        if self.is_storage_full() {
            return "storage_full";
        }
        if self.is_database_unreachable() {
            return "database_unreachable";
        }
        match self {
            Error::Invalid { reason, .. }
            | Error::Unauthorized { reason, .. }
            | Error::Forbidden { reason, .. }
            | Error::TooMany { reason, .. } => reason,
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::TooLarge(_) => "too_large",
            Error::Timeout(_) => "body_timeout",
            Error::RangeNotSatisfiable { .. } => "bad_range",
            Error::Unavailable(_) => "unavailable",
            Error::Database { .. } => "database",
            Error::Io { .. } => "io",
            Error::Config(_) => "config",
            Error::Import(_) => "import",
            Error::Internal(_) => "internal",
        }
    }

    /// What the client is told. Internal failures are not described to the network; the log
    /// line of the request carries the detail.
    pub fn public_message(&self) -> String {
        if self.is_storage_full() {
            return "mig-api's storage is full: nothing of this request was stored; \
                    retry once space is freed"
                .to_string();
        }
        if self.is_database_unreachable() {
            return "mig-api cannot reach its database: nothing of this request was done; \
                    retry in a moment"
                .to_string();
        }
        match self {
            Error::Unauthorized { public, .. } => public.clone(),
            Error::Database { .. }
            | Error::Io { .. }
            | Error::Config(_)
            | Error::Import(_)
            | Error::Internal(_) => "internal error, see the mig-api log".to_string(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { message, .. }
            | Error::Forbidden { message, .. }
            | Error::TooMany { message, .. } => f.write_str(message),
            Error::Unauthorized { public, detail, .. } => write!(f, "{public} ({detail})"),
            Error::NotFound(m)
            | Error::Conflict(m)
            | Error::TooLarge(m)
            | Error::Timeout(m)
            | Error::Unavailable(m)
            | Error::Config(m)
            | Error::Import(m)
            | Error::Internal(m) => f.write_str(m),
            Error::RangeNotSatisfiable { message, .. } => f.write_str(message),
            Error::Database { what, source } => write!(f, "database: {what}: {source}"),
            Error::Io { op, path, source } => write!(f, "{op} {path}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Database { source, .. } => Some(source),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_507_whether_sqlite_or_a_file_write_hit_it() {
        let enospc = Error::io("writing", "/data/blobs/x")(std::io::Error::from_raw_os_error(28));
        let edquot = Error::io("writing", "/data/blobs/x")(std::io::Error::from_raw_os_error(122));
        let sqlite_full = Error::db("inserting a manifest")(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ));
        for e in [enospc, edquot, sqlite_full] {
            assert_eq!(e.status(), Status::InsufficientStorage, "{e}");
            assert_eq!(e.reason(), "storage_full");
            assert!(e.public_message().contains("storage is full"), "{e}");
            assert!(
                !e.public_message().contains("/data"),
                "no path reaches the client"
            );
        }
        let other = Error::io("writing", "/data/x")(std::io::Error::from_raw_os_error(5));
        assert_eq!(other.status(), Status::InternalServerError);
        let busy = Error::db("x")(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        ));
        assert_eq!(busy.status(), Status::InternalServerError);
    }
}
