//! Statement: ask the API for the statement this loader should have (docs/design.md §3.2). What
//! comes back is only bytes until [`crate::verify`] has counted its signatures.

use crate::error::Result;
use crate::limits::Limits;
use crate::log;
use mig_http::Client;
use mig_protocol::loader::{
    LoaderKey, ManifestRequest, ManifestResponse, LOADER_KEY_HEADER, MANIFEST_PATH,
};
use mig_protocol::Error as ProtocolError;

/// `POST loader/manifest`: the statement and its signatures, not yet believed.
pub fn request(
    api: &Client,
    key: &LoaderKey,
    req: &ManifestRequest,
    limits: &Limits,
) -> Result<ManifestResponse> {
    log::step(format!(
        "requesting manifest from {}",
        api.url(MANIFEST_PATH)
    ));
    let resp = api
        .post_json(MANIFEST_PATH, &[(LOADER_KEY_HEADER, key.as_str())], req)?
        .error_for_status(limits.error_body)?;
    let url = resp.url().to_string();
    let body = resp.read_capped(limits.manifest_response)?;
    ManifestResponse::parse(&body).map_err(|e| match e {
        ProtocolError::Json { reason, .. } => ProtocolError::Json {
            what: format!("manifest response from {url}"),
            reason,
        }
        .into(),
        other => other.into(),
    })
}
