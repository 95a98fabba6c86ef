//! The one error type of mig-protocol: every message names the thing that failed.

use std::fmt;

/// Everything that can go wrong reading, checking or making the protocol's documents.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An armored OpenPGP key could not be read; `what` names the key (file or index).
    Key { what: String, reason: String },
    /// Fewer distinct administrator keys signed than the threshold requires.
    NotEnoughSignatures {
        got: usize,
        need: usize,
        ignored: Vec<String>,
    },
    /// The statement bytes are not a valid statement.
    Statement(String),
    /// The statement's `expires` lies in the past (with the skew allowance).
    Expired { expires: String, now: String },
    /// The statement's `issued` lies in the future (with the skew allowance).
    NotYetValid { issued: String, now: String },
    /// The statement is for another operating system or architecture.
    WrongPlatform { statement: String, host: String },
    /// The statement's serial is lower than the one installed: a replay or a downgrade.
    OlderSerial { offered: u64, installed: u64 },
    /// The statement's serial lies more than `serial::MAX_SERIAL_STEP` above the `whose` serial
    /// `floor`: a fast-forward (docs/design.md §4.6).
    SerialJump {
        offered: u64,
        floor: u64,
        whose: &'static str,
    },
    /// A JSON document from `what` did not parse.
    Json { what: String, reason: String },
    /// A loader key is malformed.
    LoaderKey(String),
    /// A timestamp did not parse.
    Time(String),
    /// Creating a signature failed.
    Sign(String),
    /// A body was larger than allowed.
    TooLarge { what: String, limit: u64 },
    /// A configuration value, header or name is invalid.
    Config(String),
    /// A value (a status, a name) is not one the protocol allows; the message says which are.
    Value(String),
    /// A freshness signature is missing or does not hold (docs/design.md §4.20); the message
    /// says which.
    Freshness(String),
    /// A root of trust document, its signatures or its place in the chain is refused
    /// (docs/design.md §4.21); the message says which rule failed.
    Root(String),
    /// The freshness document expired `ago` seconds before now (docs/design.md §4.20).
    FreshnessExpired {
        ago: u64,
        expires: String,
        now: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Key { what, reason } => write!(f, "cannot read OpenPGP key {what}: {reason}"),
            Error::NotEnoughSignatures { got, need, ignored } => {
                write!(f, "not enough valid signatures (got {got}, need {need}), rejecting")?;
                for i in ignored {
                    write!(f, "; {i}")?;
                }
                Ok(())
            }
            Error::Statement(m) => write!(f, "invalid statement: {m}"),
            Error::Expired { expires, now } => {
                write!(f, "statement expired at {expires} (now {now}): keeping the running agent")
            }
            Error::NotYetValid { issued, now } => {
                write!(f, "statement not yet valid: issued {issued}, now {now}")
            }
            Error::WrongPlatform { statement, host } => {
                write!(f, "statement is for platform {statement}, this host is {host}")
            }
            Error::OlderSerial { offered, installed } => write!(
                f,
                "statement serial {offered} is older than installed serial {installed}: refusing a rollback"
            ),
            Error::SerialJump {
                offered,
                floor,
                whose,
            } => write!(
                f,
                "statement serial {offered} is more than {} above the {whose} serial {floor}: \
                 refusing a fast-forward (docs/design.md §4.6)",
                crate::serial::MAX_SERIAL_STEP
            ),
            Error::Json { what, reason } => write!(f, "malformed JSON in {what}: {reason}"),
            Error::LoaderKey(m) => write!(f, "invalid loader key: {m}"),
            Error::Time(m) => write!(f, "invalid timestamp: {m}"),
            Error::Sign(m) => write!(f, "signing failed: {m}"),
            Error::TooLarge { what, limit } => write!(f, "{what} is larger than {limit} bytes"),
            Error::Config(m) => write!(f, "configuration error: {m}"),
            Error::Value(m) => f.write_str(m),
            Error::Freshness(m) => f.write_str(m),
            Error::Root(m) => f.write_str(m),
            Error::FreshnessExpired { ago, expires, now } => write!(
                f,
                "{} {} ago (at {expires}, now {now}): the API has not vouched for this statement \
                 since; keeping the running agent",
                crate::freshness::EXPIRED,
                crate::freshness::ago(*ago)
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The result type of mig-protocol.
pub type Result<T, E = Error> = std::result::Result<T, E>;
