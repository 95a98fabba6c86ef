//! Ask for the statement and decide whether to believe it. docs/design.md §4.2–§4.6: count distinct primary-key
//! fingerprints from the built-in keyring over the exact bytes; verify first, parse second; then
//! refuse an expired statement, another platform, or a serial below the installed one.

use crate::error::{Error, Result};
use crate::log;
use mig_http::Client;
use mig_protocol::loader::{
    LoaderKey, ManifestRequest, ManifestResponse, LOADER_KEY_HEADER, MANIFEST_PATH,
    MAX_MANIFEST_RESPONSE,
};
use mig_protocol::signature::{self, Keyring};
use mig_protocol::statement::{Expectations, Serial, Statement};
use mig_protocol::Error as ProtocolError;

/// The largest error body read from the API.
pub const MAX_ERROR_BODY: u64 = 16 * 1024;

/// `POST loader/manifest`.
pub fn request(api: &Client, key: &LoaderKey, req: &ManifestRequest) -> Result<ManifestResponse> {
    log::step(format!(
        "requesting manifest from {}",
        api.url(MANIFEST_PATH)
    ));
    let resp = api
        .post_json(MANIFEST_PATH, &[(LOADER_KEY_HEADER, key.as_str())], req)?
        .error_for_status(MAX_ERROR_BODY)?;
    let url = resp.url().to_string();
    let body = resp.read_capped(MAX_MANIFEST_RESPONSE)?;
    ManifestResponse::parse(&body).map_err(|e| match e {
        ProtocolError::Json { reason, .. } => ProtocolError::Json {
            what: format!("manifest response from {url}"),
            reason,
        }
        .into(),
        other => other.into(),
    })
}

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
