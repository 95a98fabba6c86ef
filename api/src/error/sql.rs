//! The database's error, below the crate's [`Error`](super::Error) that wraps it: a failure of
//! SQLite or PostgreSQL, or of reading a column back (re-exported as `db::SqlError`).

/// A failure of either database, or of reading a column back.
#[derive(Debug)]
pub enum SqlError {
    Sqlite(rusqlite::Error),
    Pg(::postgres::Error),
    /// `query_row` found no row.
    NoRows,
    /// A column could not be read as the type asked for.
    Column {
        index: usize,
        problem: String,
    },
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::Sqlite(e) => write!(f, "{e}"),
            SqlError::Pg(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                // "error connecting to server" keeps the reason (refused, timed out,
                // authentication) in its sources.
                None => {
                    write!(f, "{e}")?;
                    let mut cause = std::error::Error::source(e);
                    while let Some(c) = cause {
                        write!(f, ": {c}")?;
                        cause = c.source();
                    }
                    Ok(())
                }
            },
            SqlError::NoRows => f.write_str("no row"),
            SqlError::Column { index, problem } => write!(f, "column {index}: {problem}"),
        }
    }
}

impl std::error::Error for SqlError {}

impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => SqlError::NoRows,
            e => SqlError::Sqlite(e),
        }
    }
}

/// The result of a database call.
pub type SqlResult<T> = std::result::Result<T, SqlError>;

impl SqlError {
    /// A UNIQUE, PRIMARY KEY, CHECK or foreign key constraint refused the write.
    pub fn is_constraint(&self) -> bool {
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            SqlError::Pg(e) => e.code().is_some_and(|c| c.code().starts_with("23")),
            _ => false,
        }
    }

    /// Which column(s) or constraint a refused write named, as each database says it
    /// (`loaders.name` on SQLite, `loaders_name_key` on PostgreSQL).
    pub fn constraint_detail(&self) -> String {
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(_, Some(msg))) => msg.clone(),
            SqlError::Pg(e) => e
                .as_db_error()
                .and_then(|d| d.constraint())
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        }
    }

    /// The disk under the database is full.
    pub fn is_storage_full(&self) -> bool {
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            SqlError::Pg(e) => e.code().is_some_and(|c| c.code() == "53100"),
            _ => false,
        }
    }

    /// Another writer held the database past the busy timeout (SQLite only).
    pub fn is_busy(&self) -> bool {
        matches!(self, SqlError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy)
    }

    /// The database server cannot be reached now: a replica answers 503 and tries again on
    /// the next request.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SqlError::Pg(e) if pg_unreachable(e))
    }
}

/// Whether a PostgreSQL error means the server cannot be reached (down, restarting, the
/// connection lost) rather than that the request was wrong: such a request answers 503.
fn pg_unreachable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Class 08 (connection exception), 57P01–57P03 (shut down, starting), 53300 (too many
        // connections).
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c.starts_with("57P") || c == "53300"
        }
        // No SQLSTATE: the error never reached the server (refused, timed out, reset).
        None => e.as_db_error().is_none(),
    }
}
