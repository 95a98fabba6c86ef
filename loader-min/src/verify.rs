//! Verify: decide whether to believe the statement (docs/design.md §4.2–§4.6). Count distinct
//! primary-key fingerprints from the built-in keyring over the exact bytes; verify first, parse
//! second; then refuse an expired statement, another platform, or a serial below the installed one;
//! then, for a loader built with a freshness key, refuse a statement the API's freshness key has
//! not vouched for recently (§4.20).

use crate::error::Error;
use crate::log;
use mig_protocol::freshness::FreshnessKey;
use mig_protocol::loader::ManifestResponse;
use mig_protocol::signature::{self, Keyring};
use mig_protocol::statement::{Expectations, Serial, Statement};

/// A statement that was refused, with the serial it carried when it could be read.
#[derive(Debug)]
pub struct Rejected {
    pub serial: Serial,
    pub error: Error,
}

/// Verifies the signatures (logging the root version and threshold they were counted with), then parses and checks the statement, then its freshness when this
/// loader was built with a freshness key.
pub fn verify(
    keyring: &Keyring,
    required: usize,
    root_version: u64,
    freshness: Option<&FreshnessKey>,
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
        "{} valid signatures in manifest ({}), verified with root version {root_version}: \
         threshold {required} of {} keys",
        verdict.valid.len(),
        verdict.valid.join(", "),
        keyring.len()
    ));
    let statement = Statement::parse(bytes).map_err(|error| Rejected {
        serial: Serial::NONE,
        error: error.into(),
    })?;
    statement.check(expect).map_err(|error| Rejected {
        serial: statement.serial,
        error: error.into(),
    })?;
    if let Some(key) = freshness {
        let doc = key
            .check(resp.freshness.as_ref(), bytes, statement.serial, expect.now)
            .map_err(|error| Rejected {
                serial: statement.serial,
                error: error.into(),
            })?;
        log::step(format!(
            "freshness signed by {} at {}, valid until {}",
            key.fingerprint(),
            doc.issued,
            doc.expires
        ));
    }
    log::step(format!(
        "manifest {:?} serial {} for {} expires {}",
        statement.name,
        statement.serial.get(),
        statement.platform,
        statement.expires
    ));
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig_protocol::freshness::{Document, Freshness};
    use mig_protocol::signature::{generate_key, sign_detached};
    use mig_protocol::statement::{Platform, FORMAT};
    use mig_protocol::time::Timestamp;
    use mig_protocol::Sha256;

    /// A loader built without a freshness key (`[freshness]` absent from its TOML) believes an
    /// answer on the administrators' signatures alone, with or without a freshness signature
    /// in it; the same answer without one is refused by a loader built with a key.
    #[test]
    fn a_loader_without_a_freshness_key_accepts_an_answer_with_or_without_one() {
        let (a1, p1) = generate_key("a1").unwrap();
        let (a2, p2) = generate_key("a2").unwrap();
        let (fresh, fresh_pub) = generate_key("freshness").unwrap();
        let ring = Keyring::from_armored([("a1", p1.as_str()), ("a2", p2.as_str())]).unwrap();
        let key = FreshnessKey::new("freshness", &fresh_pub, &ring).unwrap();
        let now = Timestamp::now();
        let st = Statement {
            format: FORMAT,
            serial: Serial::new(4),
            name: "m".into(),
            platform: Platform::host(),
            issued: Timestamp(now.0 - 60),
            expires: now.plus(86_400),
            entries: vec![],
        };
        let bytes = st.to_bytes().unwrap();
        let doc = Document {
            statement: Sha256::of(&bytes),
            serial: st.serial,
            issued: now,
            expires: now.plus(3600),
        }
        .to_text()
        .unwrap();
        let signed = ManifestResponse {
            statement: String::from_utf8(bytes.clone()).unwrap(),
            signatures: vec![
                sign_detached(&a1, "", &bytes).unwrap(),
                sign_detached(&a2, "", &bytes).unwrap(),
            ],
            freshness: Some(Freshness {
                signature: sign_detached(&fresh, "", doc.as_bytes()).unwrap(),
                document: doc,
            }),
            root: None,
        };
        let bare = ManifestResponse {
            freshness: None,
            ..signed.clone()
        };
        let expect = Expectations {
            now,
            platform: Platform::host(),
            installed: Serial::NONE,
        };
        for resp in [&signed, &bare] {
            assert_eq!(verify(&ring, 2, 1, None, resp, &expect).unwrap(), st);
        }
        assert_eq!(
            verify(&ring, 2, 1, Some(&key), &signed, &expect).unwrap(),
            st
        );
        let refused = verify(&ring, 2, 1, Some(&key), &bare, &expect).unwrap_err();
        assert_eq!(refused.serial, Serial::new(4));
        assert!(
            refused
                .error
                .to_string()
                .contains("freshness signature missing"),
            "{}",
            refused.error
        );
    }
}
