//! The freshness document (docs/design.md §4.20): mig-api's online freshness key says "this
//! statement was current at `issued` and may be believed until `expires`". It binds the SHA-256
//! of the exact statement bytes and its serial to a short expiry, so a replayed or frozen answer
//! is refused once that expiry has passed, however long the statement itself stays valid.
//!
//! The freshness key is a role of its own: it is never in the administrators' keyring
//! ([`FreshnessKey::new`] refuses a key that is), and what it signs starts with [`PREFIX`], a
//! line that no statement (a JSON object) and no administrator token (`2;…`) can start with, so
//! its signature can stand for nothing but freshness and no other signature can stand for it.

use crate::error::{Error, Result};
use crate::serial::Serial;
use crate::sha256::Sha256;
use crate::signature::{self, Keyring};
use crate::time::Timestamp;
use pgp::composed::SignedPublicKey;
use serde::{Deserialize, Serialize};

/// The first line of every freshness document: the domain the freshness key signs in.
pub const PREFIX: &str = "mig-freshness 1\n";
/// The largest freshness document accepted (a real one is about 180 bytes).
pub const MAX_DOCUMENT_BYTES: usize = 1024;
/// The largest armored freshness signature accepted (an Ed25519 one is about 300 bytes, an
/// RSA-4096 one about 900).
pub const MAX_SIGNATURE_BYTES: usize = 4096;
/// How a refusal for a lapsed freshness signature starts ([`Error::FreshnessExpired`]): the loader
/// reports it as its `rejected` message, and the API counts the hosts whose last report starts so
/// (`Rollout::freshness_expired`).
pub const EXPIRED: &str = "freshness expired";
/// Clock skew tolerated between the API and the host, as for statements.
pub const CLOCK_SKEW_SECS: u64 = crate::statement::CLOCK_SKEW_SECS;

/// What the freshness key signs, after [`PREFIX`], as compact JSON in this field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// SHA-256 of the exact statement bytes given with it.
    pub statement: Sha256,
    pub serial: Serial,
    pub issued: Timestamp,
    pub expires: Timestamp,
}

/// The `freshness` field of a manifest answer: the exact signed text and its armored signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freshness {
    pub document: String,
    pub signature: String,
}

impl Document {
    /// The exact text that is signed: [`PREFIX`] and the JSON.
    pub fn to_text(&self) -> Result<String> {
        self.validate()?;
        let json = serde_json::to_string(self).map_err(|e| Error::Freshness(e.to_string()))?;
        Ok(format!("{PREFIX}{json}"))
    }

    /// Parses a document's text: at most [`MAX_DOCUMENT_BYTES`], [`PREFIX`] first, then exactly
    /// the four fields. Call only after its signature verified.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::TooLarge {
                what: "freshness document".into(),
                limit: MAX_DOCUMENT_BYTES as u64,
            });
        }
        let json = text.strip_prefix(PREFIX).ok_or_else(|| {
            Error::Freshness(format!("the document does not start with {PREFIX:?}"))
        })?;
        let doc: Document = serde_json::from_str(json)
            .map_err(|e| Error::Freshness(format!("the document does not parse: {e}")))?;
        doc.validate()?;
        Ok(doc)
    }

    fn validate(&self) -> Result<()> {
        if self.expires <= self.issued {
            return Err(Error::Freshness(format!(
                "the document expires at {}, not after it was issued at {}",
                self.expires, self.issued
            )));
        }
        Ok(())
    }
}

/// The freshness public key a loader is built with: a keyring of exactly that key, kept apart
/// from the administrators'.
#[derive(Debug, Clone)]
pub struct FreshnessKey {
    ring: Keyring,
}

impl FreshnessKey {
    /// Loads the armored public key `armored` (named `what` in errors); refuses a key that shares
    /// a primary or subkey with any of `admins`: the API holds the freshness key online, and an
    /// administrator's key there would let it sign statements.
    pub fn new(what: &str, armored: &str, admins: &Keyring) -> Result<Self> {
        Self::from_key(what, signature::parse_public_key(what, armored)?, admins)
    }

    /// [`FreshnessKey::new`] for a key already read (mig-api's, from its secret key file).
    pub fn from_key(what: &str, key: SignedPublicKey, admins: &Keyring) -> Result<Self> {
        let ring = Keyring::from_keys(vec![key]);
        let ours = ring.all_fingerprints();
        if let Some(fp) = admins
            .all_fingerprints()
            .into_iter()
            .find(|fp| ours.contains(fp))
        {
            return Err(Error::Key {
                what: what.to_string(),
                reason: format!(
                    "key {fp} is an administrator's key too; the freshness key must be a key of \
                     its own, never counted toward the administrators' threshold"
                ),
            });
        }
        Ok(FreshnessKey { ring })
    }

    /// The key's primary fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        self.ring.fingerprints().concat()
    }

    /// docs/design.md §4.20: `freshness` must be signed by this key (by the rule of
    /// [`signature::verify`]), over exactly `statement` of `serial`, and not expired at `now`.
    pub fn check(
        &self,
        freshness: Option<&Freshness>,
        statement: &[u8],
        serial: Serial,
        now: Timestamp,
    ) -> Result<Document> {
        let f = freshness.ok_or_else(|| {
            Error::Freshness(
                "freshness signature missing: this loader requires one by the API's freshness \
                 key over the statement it is given"
                    .into(),
            )
        })?;
        let invalid = |why: String| Error::Freshness(format!("freshness signature invalid: {why}"));
        if f.document.len() > MAX_DOCUMENT_BYTES || f.signature.len() > MAX_SIGNATURE_BYTES {
            return Err(invalid(format!(
                "the document or its signature is larger than {MAX_DOCUMENT_BYTES} or \
                 {MAX_SIGNATURE_BYTES} bytes"
            )));
        }
        // Verify first, parse second (docs/design.md §4.3), by the one rule for what counts.
        let verdict = signature::verify(
            &self.ring,
            f.document.as_bytes(),
            std::slice::from_ref(&f.signature),
        );
        if verdict.valid.is_empty() {
            return Err(invalid(verdict.ignored.join("; ").replace(
                "signature #1",
                &format!("the signature (freshness key {})", self.fingerprint()),
            )));
        }
        let doc = Document::parse(&f.document).map_err(|e| invalid(e.to_string()))?;
        let given = Sha256::of(statement);
        if doc.statement != given || doc.serial != serial {
            return Err(invalid(format!(
                "it is over statement {} serial {}, not the one given ({} serial {})",
                doc.statement.as_str(),
                doc.serial,
                given.as_str(),
                serial
            )));
        }
        if doc.expires.plus(CLOCK_SKEW_SECS) < now {
            return Err(Error::FreshnessExpired {
                ago: now.0.saturating_sub(doc.expires.0),
                expires: doc.expires.to_string(),
                now: now.to_string(),
            });
        }
        if doc.issued > now.plus(CLOCK_SKEW_SECS) {
            return Err(invalid(format!(
                "it was issued at {}, after now ({now})",
                doc.issued
            )));
        }
        Ok(doc)
    }
}

/// A duration in words for a refusal: `26 h`, `3 d`, `12 min`, `40 s`.
pub fn ago(secs: u64) -> String {
    match secs {
        s if s >= 3 * 86_400 => format!("{} d", s / 86_400),
        s if s >= 3600 => format!("{} h", s / 3600),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(all(test, feature = "sign"))]
mod tests {
    use super::*;
    use crate::signature::{generate_key, sign_detached};

    const STATEMENT: &[u8] = br#"{"format":1,"serial":7}"#;

    fn doc(issued: u64, expires: u64) -> Document {
        Document {
            statement: Sha256::of(STATEMENT),
            serial: Serial::new(7),
            issued: Timestamp(issued),
            expires: Timestamp(expires),
        }
    }

    struct Keys {
        fresh: pgp::composed::SignedSecretKey,
        key: FreshnessKey,
        admin: pgp::composed::SignedSecretKey,
    }

    fn keys() -> Keys {
        let (fresh, fresh_pub) = generate_key("freshness").unwrap();
        let (admin, admin_pub) = generate_key("admin").unwrap();
        let admins = Keyring::from_armored([("admin", admin_pub.as_str())]).unwrap();
        let key = FreshnessKey::new("freshness", &fresh_pub, &admins).unwrap();
        Keys { fresh, key, admin }
    }

    fn signed(by: &pgp::composed::SignedSecretKey, text: &str) -> Freshness {
        Freshness {
            document: text.to_string(),
            signature: sign_detached(by, "", text.as_bytes()).unwrap(),
        }
    }

    #[test]
    fn a_document_round_trips_and_starts_with_its_domain() {
        let text = doc(1_000, 2_000).to_text().unwrap();
        assert_eq!(
            text,
            format!(
                "mig-freshness 1\n{{\"statement\":\"{}\",\"serial\":7,\"issued\":\"1970-01-01T00:16:40Z\",\"expires\":\"1970-01-01T00:33:20Z\"}}",
                Sha256::of(STATEMENT).as_str()
            )
        );
        assert_eq!(Document::parse(&text).unwrap(), doc(1_000, 2_000));
    }

    #[test]
    fn hostile_documents_are_refused_naming_the_problem() {
        let good = doc(1_000, 2_000).to_text().unwrap();
        let json = good.strip_prefix(PREFIX).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (json.to_string(), "does not start with"),
            (format!("mig-freshness 2\n{json}"), "does not start with"),
            (
                format!("{good}{}", " ".repeat(MAX_DOCUMENT_BYTES)),
                "larger than 1024",
            ),
            (good.replace("\"serial\":7", "\"serial\":-7"), "parse"),
            (
                good.replace("\"serial\":7", "\"serial\":7,\"extra\":1"),
                "unknown field",
            ),
            (good.replace(",\"serial\":7", ""), "missing field"),
            (good.replace("1970-01-01T00:33:20Z", "1970-01-01"), "parse"),
            (
                good.replace(Sha256::of(STATEMENT).as_str(), &"A".repeat(64)),
                "64 lower-case hex",
            ),
            (
                good.replace("1970-01-01T00:33:20Z", "1970-01-01T00:16:40Z"),
                "not after it was issued",
            ),
            (format!("{good}\n{json}"), "trailing"),
        ];
        for (text, why) in cases {
            let e = Document::parse(&text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn only_the_freshness_key_over_exactly_the_given_statement_counts() {
        let k = keys();
        let now = Timestamp(1_500);
        let text = doc(1_000, 2_000).to_text().unwrap();
        let f = signed(&k.fresh, &text);
        k.key
            .check(Some(&f), STATEMENT, Serial::new(7), now)
            .unwrap();

        let e = k
            .key
            .check(None, STATEMENT, Serial::new(7), now)
            .unwrap_err();
        assert!(e.to_string().contains("freshness signature missing"), "{e}");
        // An administrator's signature cannot stand in for the freshness key's.
        let e = k
            .key
            .check(
                Some(&signed(&k.admin, &text)),
                STATEMENT,
                Serial::new(7),
                now,
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("freshness signature invalid") && e.contains("not in the keyring"),
            "{e}"
        );
        // Another statement, another serial, a changed document.
        let e = k
            .key
            .check(Some(&f), b"{}", Serial::new(7), now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the one given"), "{e}");
        let e = k
            .key
            .check(Some(&f), STATEMENT, Serial::new(8), now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the one given"), "{e}");
        let mut changed = f.clone();
        changed.document = changed.document.replace("00:33:20", "00:33:21");
        let e = k
            .key
            .check(Some(&changed), STATEMENT, Serial::new(7), now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not verify"), "{e}");
        // The freshness key signing something without the domain line counts for nothing.
        let bare = signed(&k.fresh, text.strip_prefix(PREFIX).unwrap());
        let e = k
            .key
            .check(Some(&bare), STATEMENT, Serial::new(7), now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not start with"), "{e}");
        let mut huge = f.clone();
        huge.signature = "x".repeat(MAX_SIGNATURE_BYTES + 1);
        let e = k
            .key
            .check(Some(&huge), STATEMENT, Serial::new(7), now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn an_expired_document_is_refused_with_its_age() {
        let k = keys();
        let f = signed(&k.fresh, &doc(1_000, 100_000).to_text().unwrap());
        let late = Timestamp(100_000 + 26 * 3600);
        let e = k
            .key
            .check(Some(&f), STATEMENT, Serial::new(7), late)
            .unwrap_err();
        assert!(matches!(e, Error::FreshnessExpired { .. }), "{e}");
        assert!(
            e.to_string().starts_with("freshness expired 26 h ago"),
            "{e}"
        );
        // Within the skew it still counts; a document from the future does not.
        k.key
            .check(
                Some(&f),
                STATEMENT,
                Serial::new(7),
                Timestamp(100_000 + CLOCK_SKEW_SECS),
            )
            .unwrap();
        let e = k
            .key
            .check(Some(&f), STATEMENT, Serial::new(7), Timestamp(10))
            .unwrap_err()
            .to_string();
        assert!(e.contains("after now"), "{e}");
    }

    #[test]
    fn an_administrator_key_cannot_be_the_freshness_key() {
        let (_, admin_pub) = generate_key("admin").unwrap();
        let admins = Keyring::from_armored([("admin", admin_pub.as_str())]).unwrap();
        let e = FreshnessKey::new("freshness.asc", &admin_pub, &admins)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("freshness.asc") && e.contains("administrator's key too"),
            "{e}"
        );
    }

    #[test]
    fn ages_read_as_a_person_would_say_them() {
        assert_eq!(ago(40), "40 s");
        assert_eq!(ago(12 * 60), "12 min");
        assert_eq!(ago(26 * 3600), "26 h");
        assert_eq!(ago(71 * 3600), "71 h");
        assert_eq!(ago(10 * 86_400), "10 d");
    }
}
