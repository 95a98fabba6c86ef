//! Administrator authentication: a request's token or API key to the investigator it names,
//! by the rules auth.rs states (docs/design.md §3.8).

use crate::app::App;
use crate::auth::{all_permissions, Caller};
use crate::error::{Error, Result};
use crate::investigators;
use mig_protocol::admin::AuthToken;
use mig_protocol::error::Error as ProtocolError;
use mig_protocol::signature;
use mig_protocol::time::Timestamp;

/// The credential headers of a request.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    pub token: Option<String>,
    pub apikey: Option<String>,
}

/// Authenticates an administrator request.
pub fn authenticate(app: &App, creds: &Credentials) -> Result<Caller> {
    if !app.cfg.auth_enabled {
        return Ok(Caller {
            id: 0,
            name: "authdisabled".into(),
            perms: all_permissions(),
        });
    }
    if let Some(token) = &creds.token {
        return authenticate_token(app, token, Timestamp::now());
    }
    if let Some(key) = &creds.apikey {
        return authenticate_apikey(app, key);
    }
    Err(Error::unauthorized(
        "missing_credentials",
        "authentication required: X-PGPAUTHORIZATION or X-MIGAPIKEY",
        "no credential header",
    ))
}

fn authenticate_token(app: &App, header: &str, now: Timestamp) -> Result<Caller> {
    let malformed = |e: String| Error::unauthorized("malformed_token", e.clone(), e);
    let token = AuthToken::parse(header).map_err(|e| match e {
        // MIG's version 1, which names no API (docs/design.md §3.8).
        ProtocolError::Value(m) => Error::unauthorized("token_version_refused", m.clone(), m),
        e => malformed(e.to_string()),
    })?;
    let window = app.cfg.token_duration;
    let skew = now.0.abs_diff(token.timestamp.0);
    if skew > window {
        let msg = format!(
            "token expired: its timestamp {} is {skew} s away from the server's clock (window {window} s)",
            token.timestamp
        );
        return Err(Error::unauthorized("token_expired", msg.clone(), msg));
    }
    // Before the signature: a token made for another API is refused whoever signed it.
    let ours = app.audience()?;
    if token.audience != ours {
        let msg = format!(
            "token made for another API: its audience is {} but this API is {ours} \
             (mig-console's [api] url and mig-api's [authentication] audience must name the same URL)",
            token.audience
        );
        return Err(Error::unauthorized(
            "token_audience_mismatch",
            msg.clone(),
            msg,
        ));
    }
    let armored = signature::rearmor(&token.signature).map_err(|e| malformed(e.to_string()))?;
    let active = app.db.with(investigators::active_fingerprints)?;
    let ring = app.keyrings.get(&app.db, &active)?;
    let verdict = signature::verify(&ring, token.signed_data().as_bytes(), &[armored]);
    let Some(fingerprint) = verdict.valid.first() else {
        return Err(Error::unauthorized(
            "bad_token_signature",
            "token signature does not verify against any active investigator's key",
            verdict.ignored.join("; "),
        ));
    };
    let inv = app
        .db
        .with(|c| investigators::active_by_fingerprint(c, fingerprint))?
        .ok_or_else(|| {
            Error::unauthorized(
                "investigator_disabled",
                "token signature does not verify against any active investigator's key",
                format!("{fingerprint} is no longer active"),
            )
        })?;
    // Only after the signature verified, so unauthenticated traffic cannot fill the cache, and
    // once the investigator is known, so its own bound and the reserve apply (docs/design.md §3.8).
    app.nonces
        .check_and_insert(&app.db, fingerprint, &inv, &token.nonce, now.0)?;
    Ok(Caller {
        id: inv.id,
        name: inv.name,
        perms: inv.perms,
    })
}

fn authenticate_apikey(app: &App, key: &str) -> Result<Caller> {
    let generic = "invalid API key";
    let (prefix, secret) = crate::keys::split(key).ok_or_else(|| {
        Error::unauthorized("malformed_apikey", generic, "not 40 ASCII alphanumerics")
    })?;
    let row = app
        .db
        .with(|c| investigators::by_apikey_prefix(c, prefix))?
        .ok_or_else(|| {
            Error::unauthorized(
                "unknown_apikey",
                generic,
                format!("no API key with prefix {prefix}"),
            )
        })?;
    let check = app
        .api_keys
        .verify(prefix, secret, &row.apikey_salt, &row.apikey_hash);
    if check.pbkdf2 {
        app.metrics.pbkdf2("apikey");
    }
    if !check.ok {
        return Err(Error::unauthorized(
            "wrong_apikey",
            generic,
            format!("wrong secret for API key prefix {prefix}"),
        ));
    }
    if !row.active {
        return Err(Error::unauthorized(
            "investigator_disabled",
            generic,
            format!("investigator {} is disabled", row.id),
        ));
    }
    Ok(Caller {
        id: row.id,
        name: row.name,
        perms: row.perms,
    })
}
