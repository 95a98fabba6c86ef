//! Verify: decide whether to believe the statement (docs/design.md §4.2–§4.6). Count distinct
//! primary-key fingerprints from the built-in keyring over the exact bytes; verify first, parse
//! second; then refuse an expired statement, another platform, or a serial below the installed one.

use crate::error::Error;
use crate::log;
use mig_protocol::loader::ManifestResponse;
use mig_protocol::signature::{self, Keyring};
use mig_protocol::statement::{Expectations, Serial, Statement};

/// A statement that was refused, with the serial it carried when it could be read.
#[derive(Debug)]
pub struct Rejected {
    pub serial: Serial,
    pub error: Error,
}

/// Verifies the signatures, then parses and checks the statement.
pub fn verify(
    keyring: &Keyring,
    required: usize,
    resp: &ManifestResponse,
    expect: &Expectations,
) -> std::result::Result<Statement, Rejected> {
    let bytes = resp.statement.as_bytes();
    let verdict = signature::verify(keyring, bytes, &resp.signatures);
    for why in &verdict.ignored {
        log::step(format!("ignoring {why}"));
    }
    let verdict = verdict.require(required).map_err(|error| Rejected {
        serial: Serial::NONE,
        error: error.into(),
    })?;
    log::step(format!(
        "{} valid signatures in manifest ({})",
        verdict.valid.len(),
        verdict.valid.join(", ")
    ));
    let statement = Statement::parse(bytes).map_err(|error| Rejected {
        serial: Serial::NONE,
        error: error.into(),
    })?;
    statement.check(expect).map_err(|error| Rejected {
        serial: statement.serial,
        error: error.into(),
    })?;
    log::step(format!(
        "manifest {:?} serial {} for {} expires {}",
        statement.name,
        statement.serial.get(),
        statement.platform,
        statement.expires
    ));
    Ok(statement)
}
