//! The root of trust (docs/design.md §4.21): which administrator keys count, and how many of them
//! must sign. Version 1 is the keys and threshold built into the loader (or named by the API's
//! configuration); every later version is a signed document, and root N+1 counts only when the
//! threshold of root N **and** the threshold of root N+1 signed its exact bytes, so the old keys
//! approve the change and the new keys prove they can sign.
//!
//! The document is line-based and canonical: exactly one text for one root, so that what
//! administrators sign is what every loader reads back.
//!
//! ```text
//! mig-root 1
//! version 2
//! expires 2027-12-07T00:00:00Z
//! threshold 2
//! key <FINGERPRINT> <BASE64>
//! key <FINGERPRINT> <BASE64>
//! ```
//!
//! Each `key` line carries the primary fingerprint (upper-case hex, as GnuPG prints it) and the
//! key's transferable public key packets in standard base64 on one line: the body of its armor
//! without the armor's optional headers, line breaks and checksum, which would give one key many
//! texts. Keys are in ascending fingerprint order, each once. The first line is a domain no
//! statement (a JSON object), freshness document (`mig-freshness 1`) or administrator token
//! (`2;…`) starts with, so a signature over a root can stand for nothing else.

use crate::error::{Error, Result};
use crate::signature::{self, Keyring, Verdict};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The first line of every root document.
pub const PREFIX: &str = "mig-root 1\n";
/// The largest root document accepted (a root of 32 RSA-4096 keys is about 40 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The most keys a root may list.
pub const MAX_KEYS: usize = 32;
/// The largest answer to `GET loader/root/<version>`: the document and its signatures.
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024;
/// The most roots one loader run walks (docs/design.md §4.21).
pub const MAX_STEPS_PER_RUN: u64 = 256;
/// Route prefix of the chain: `loader/root/<version>`.
pub const PATH: &str = "loader/root/";
/// The version of the built-in root.
pub const BUILT_IN_VERSION: u64 = 1;

/// One key of a root: its primary fingerprint and its binary transferable public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKey {
    pub fingerprint: String,
    pub packets: Vec<u8>,
}

/// A root document's content (version 2 and later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub version: u64,
    pub expires: Timestamp,
    pub threshold: usize,
    /// In ascending fingerprint order.
    pub keys: Vec<RootKey>,
}

/// A root document with its detached signatures: the answer to `GET loader/root/<version>`,
/// and what a loader keeps in its state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub document: String,
    pub signatures: Vec<String>,
}

/// `POST roots` body: a proposed root document (docs/api.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRoot {
    pub document: String,
}

/// `POST roots/<version>/signatures` body: one armored detached signature over the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRootSignature {
    pub signature: String,
}

/// One signature on a stored root: the primary fingerprint that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootSigner {
    pub fingerprint: String,
    pub signature: String,
}

/// A stored root as administrators see it (docs/api.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRecord {
    pub version: u64,
    pub document: String,
    pub signers: Vec<RootSigner>,
    /// Whether the thresholds of the previous root and of this one signed it: only then do
    /// loaders get it.
    pub accepted: bool,
}

/// A root that is trusted: the built-in one, or one reached through [`Root::accept_next`].
#[derive(Debug, Clone)]
pub struct Root {
    pub version: u64,
    pub threshold: usize,
    pub keyring: Keyring,
    /// `None` for the built-in root, which lives as long as the binary.
    pub expires: Option<Timestamp>,
}

fn refuse(m: impl Into<String>) -> Error {
    Error::Root(m.into())
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl RootKey {
    /// A key line's content from an armored public key, which must pass
    /// [`signature::parse_public_key`]; `what` names it in errors.
    pub fn from_armored(what: &str, armored: &str) -> Result<Self> {
        use pgp::ser::Serialize as _;
        let key = signature::parse_public_key(what, armored)?;
        let packets = key.to_bytes().map_err(|e| Error::Key {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
        Ok(RootKey {
            fingerprint: signature::fingerprint_hex(&key.primary_key),
            packets,
        })
    }
}

impl Document {
    /// The exact text that is signed.
    pub fn to_text(&self) -> Result<String> {
        use base64::Engine as _;
        self.validate()?;
        let mut out = format!(
            "{PREFIX}version {}\nexpires {}\nthreshold {}\n",
            self.version, self.expires, self.threshold
        );
        for k in &self.keys {
            out.push_str(&format!(
                "key {} {}\n",
                k.fingerprint,
                b64().encode(&k.packets)
            ));
        }
        if out.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::TooLarge {
                what: format!("root {} document", self.version),
                limit: MAX_DOCUMENT_BYTES as u64,
            });
        }
        Ok(out)
    }

    /// The rules that do not need the keys parsed: version, threshold, key count and order.
    fn validate(&self) -> Result<()> {
        if self.version <= BUILT_IN_VERSION {
            return Err(refuse(format!(
                "root document version {} refused: version {BUILT_IN_VERSION} is the built-in \
                 root, documents start at {}",
                self.version,
                BUILT_IN_VERSION + 1
            )));
        }
        let n = self.keys.len();
        if n == 0 || n > MAX_KEYS {
            return Err(refuse(format!(
                "root {} lists {n} keys; a root lists 1 to {MAX_KEYS}",
                self.version
            )));
        }
        if self.threshold == 0 || self.threshold > n {
            return Err(refuse(format!(
                "root {} has threshold {} with {n} keys; it must be 1 to {n}",
                self.version, self.threshold
            )));
        }
        for pair in self.keys.windows(2) {
            if pair[0].fingerprint >= pair[1].fingerprint {
                return Err(refuse(format!(
                    "root {}: key {} is listed after {}; keys are listed once each, in \
                     ascending fingerprint order",
                    self.version, pair[1].fingerprint, pair[0].fingerprint
                )));
            }
        }
        Ok(())
    }

    /// Parses a document's text strictly: at most [`MAX_DOCUMENT_BYTES`], [`PREFIX`] first,
    /// then exactly the lines of [`Document::to_text`], each key parsed and checked
    /// ([`signature::parse_public_key`]) and matching its fingerprint, and the text equal to
    /// the one [`Document::to_text`] makes of the result. Returns the document and its keyring.
    pub fn parse(text: &str) -> Result<(Self, Keyring)> {
        use base64::Engine as _;
        use pgp::ser::Serialize as _;
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::TooLarge {
                what: "root document".into(),
                limit: MAX_DOCUMENT_BYTES as u64,
            });
        }
        let body = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| refuse(format!("the root document does not start with {PREFIX:?}")))?;
        let body = body
            .strip_suffix('\n')
            .ok_or_else(|| refuse("the root document does not end with a newline"))?;
        let mut lines = body.split('\n').enumerate().map(|(i, l)| (i + 2, l));
        let mut field = |name: &str| -> Result<(usize, String)> {
            let (n, line) = lines
                .next()
                .ok_or_else(|| refuse(format!("the root document has no {name} line")))?;
            let value = line
                .strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .ok_or_else(|| {
                    refuse(format!(
                        "root document line {n}: expected `{name} …`, found {:?}",
                        truncate(line)
                    ))
                })?;
            Ok((n, value.to_string()))
        };
        let (n, v) = field("version")?;
        let version = number(n, "version", &v)?;
        let (n, v) = field("expires")?;
        let expires = Timestamp::parse(&v)
            .map_err(|e| refuse(format!("root document line {n}: expires: {e}")))?;
        let (n, v) = field("threshold")?;
        let threshold = usize::try_from(number(n, "threshold", &v)?)
            .map_err(|_| refuse(format!("root document line {n}: threshold too large")))?;
        let mut keys = Vec::new();
        let mut parsed = Vec::new();
        for (n, line) in lines {
            if keys.len() == MAX_KEYS {
                return Err(refuse(format!(
                    "root document line {n}: more than {MAX_KEYS} keys"
                )));
            }
            let rest = line.strip_prefix("key ").ok_or_else(|| {
                refuse(format!(
                    "root document line {n}: expected `key <fingerprint> <base64>`, found {:?}",
                    truncate(line)
                ))
            })?;
            let (fp, encoded) = rest.split_once(' ').ok_or_else(|| {
                refuse(format!(
                    "root document line {n}: expected `key <fingerprint> <base64>`"
                ))
            })?;
            let what = format!("root document line {n} (key {})", truncate(fp));
            let packets = b64()
                .decode(encoded)
                .map_err(|e| refuse(format!("{what}: not standard base64: {e}")))?;
            // Read through the armor, as every other key is: a second reader type would make
            // the loader carry a second copy of rpgp's whole packet parser (about 150 KB).
            let key = signature::parse_public_key(&what, &armor(encoded))?;
            let real = signature::fingerprint_hex(&key.primary_key);
            if real != fp {
                return Err(refuse(format!(
                    "{what}: the key's fingerprint is {real}, not the one written"
                )));
            }
            let again = key.to_bytes().map_err(|e| Error::Key {
                what: what.clone(),
                reason: e.to_string(),
            })?;
            if again != packets {
                return Err(refuse(format!(
                    "{what}: the key's packets are not in canonical form (they do not \
                     serialize back to the same bytes)"
                )));
            }
            keys.push(RootKey {
                fingerprint: real,
                packets,
            });
            parsed.push(key);
        }
        let doc = Document {
            version,
            expires,
            threshold,
            keys,
        };
        doc.validate()?;
        if doc.to_text()? != text {
            return Err(refuse(format!(
                "root {} document is not in canonical form",
                doc.version
            )));
        }
        Ok((doc, Keyring::from_keys(parsed)))
    }
}

/// A public key armor around `base64` (already checked to be standard base64), in the 64-column
/// lines of RFC 4880 §6.3.
fn armor(base64: &str) -> String {
    let mut out = String::from("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n");
    for line in base64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PGP PUBLIC KEY BLOCK-----\n");
    out
}

/// A decimal without sign, leading zeros or spaces.
fn number(line: usize, name: &str, v: &str) -> Result<u64> {
    let canonical =
        !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
    canonical
        .then(|| v.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| {
            refuse(format!(
                "root document line {line}: {name} {:?} is not a plain decimal number",
                truncate(v)
            ))
        })
}

/// At most 80 characters of hostile text for an error message.
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl Signed {
    /// Parses a root answer or state file: JSON with exactly `document` and `signatures`, at
    /// most [`MAX_RESPONSE_BYTES`], the document at most [`MAX_DOCUMENT_BYTES`], at most
    /// [`crate::loader::MAX_SIGNATURES`] signatures of at most
    /// [`crate::loader::MAX_SIGNATURE_BYTES`] each. `what` names the source in errors.
    pub fn parse(what: &str, body: &[u8]) -> Result<Self> {
        use crate::loader::{MAX_SIGNATURES, MAX_SIGNATURE_BYTES};
        if body.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(Error::TooLarge {
                what: what.to_string(),
                limit: MAX_RESPONSE_BYTES,
            });
        }
        let s: Signed = serde_json::from_slice(body).map_err(|e| Error::Json {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
        if s.document.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::TooLarge {
                what: format!("root document in {what}"),
                limit: MAX_DOCUMENT_BYTES as u64,
            });
        }
        if s.signatures.len() > MAX_SIGNATURES {
            return Err(refuse(format!(
                "{what}: {} signatures, at most {MAX_SIGNATURES}",
                s.signatures.len()
            )));
        }
        if let Some(i) = s
            .signatures
            .iter()
            .position(|x| x.len() > MAX_SIGNATURE_BYTES)
        {
            return Err(Error::TooLarge {
                what: format!("signature #{} in {what}", i + 1),
                limit: MAX_SIGNATURE_BYTES as u64,
            });
        }
        Ok(s)
    }
}

/// Who counted for root N+1: the verdict under root N's keys and under its own.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub root: Root,
    pub document: Document,
    pub by_previous: Verdict,
    pub by_itself: Verdict,
}

impl Root {
    /// The built-in root: version 1, the loader's (or the API's configured) keys and threshold.
    pub fn built_in(keyring: Keyring, threshold: usize) -> Result<Self> {
        if threshold == 0 || threshold > keyring.len() {
            return Err(refuse(format!(
                "the built-in root has threshold {threshold} with {} keys; it must be 1 to {}",
                keyring.len(),
                keyring.len()
            )));
        }
        Ok(Root {
            version: BUILT_IN_VERSION,
            threshold,
            keyring,
            expires: None,
        })
    }

    /// docs/design.md §4.21: `signed` becomes the trusted root only when the threshold of this
    /// root signed its exact bytes (verified before anything is parsed), its version is this
    /// root's plus one, and the threshold of the keys it lists signed it too. Its expiry is not
    /// checked here: a host offline for longer than a root lived must still walk past it; only
    /// the root a walk ends on must be current ([`Root::check_current`]).
    pub fn accept_next(&self, signed: &Signed) -> Result<Accepted> {
        let next = self.version.saturating_add(1);
        let bytes = signed.document.as_bytes();
        let by_previous = signature::verify(&self.keyring, bytes, &signed.signatures)
            .require(self.threshold)
            .map_err(|e| {
                refuse(format!(
                    "root {next} refused: it is not signed by the threshold of root {} ({} of \
                     its {} keys): {e}",
                    self.version,
                    self.threshold,
                    self.keyring.len()
                ))
            })?;
        let (document, keyring) = Document::parse(&signed.document)
            .map_err(|e| refuse(format!("root {next} refused: {e}")))?;
        if document.version != next {
            return Err(refuse(format!(
                "root {next} refused: the document is version {}, not {next}; a root counts \
                 only as the next version of the one trusted",
                document.version
            )));
        }
        let by_itself = signature::verify(&keyring, bytes, &signed.signatures)
            .require(document.threshold)
            .map_err(|e| {
                refuse(format!(
                    "root {next} refused: it is not signed by its own threshold ({} of its {} \
                     keys), so its new keys have not proven they can sign: {e}",
                    document.threshold,
                    keyring.len()
                ))
            })?;
        Ok(Accepted {
            root: Root {
                version: next,
                threshold: document.threshold,
                keyring,
                expires: Some(document.expires),
            },
            document,
            by_previous,
            by_itself,
        })
    }

    /// Refuses a root that expired before `now` (with the statements' clock skew): statements
    /// are then refused until the administrators publish the next root, which this one can
    /// still verify.
    pub fn check_current(&self, now: Timestamp) -> Result<()> {
        match self.expires {
            Some(t) if t.plus(crate::statement::CLOCK_SKEW_SECS) < now => Err(refuse(format!(
                "root {} expired at {t} (now {now}): no statement is believed until the \
                 administrators publish root {}, signed by the threshold of root {} and its own",
                self.version,
                self.version + 1,
                self.version
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(all(test, feature = "sign"))]
mod tests {
    use super::*;
    use crate::signature::{generate_key, sign_detached};
    use pgp::composed::SignedSecretKey;

    struct Admin {
        secret: SignedSecretKey,
        public: String,
    }

    fn admins(n: usize) -> Vec<Admin> {
        (0..n)
            .map(|i| {
                let (secret, public) = generate_key(&format!("admin{i}")).unwrap();
                Admin { secret, public }
            })
            .collect()
    }

    fn ring(a: &[Admin], who: &[usize]) -> Keyring {
        Keyring::from_armored(who.iter().map(|&i| ("admin", a[i].public.as_str()))).unwrap()
    }

    fn doc(a: &[Admin], version: u64, who: &[usize], threshold: usize) -> Document {
        let mut keys: Vec<RootKey> = who
            .iter()
            .map(|&i| RootKey::from_armored("admin", &a[i].public).unwrap())
            .collect();
        keys.sort_by(|x, y| x.fingerprint.cmp(&y.fingerprint));
        Document {
            version,
            expires: Timestamp(2_000_000_000),
            threshold,
            keys,
        }
    }

    fn signed(a: &[Admin], text: &str, by: &[usize]) -> Signed {
        Signed {
            document: text.to_string(),
            signatures: by
                .iter()
                .map(|&i| sign_detached(&a[i].secret, "", text.as_bytes()).unwrap())
                .collect(),
        }
    }

    #[test]
    fn a_document_round_trips_and_its_text_is_line_based() {
        let a = admins(2);
        let d = doc(&a, 2, &[0, 1], 2);
        let text = d.to_text().unwrap();
        assert!(text
            .starts_with("mig-root 1\nversion 2\nexpires 2033-05-18T03:33:20Z\nthreshold 2\nkey "));
        assert_eq!(text.lines().count(), 6);
        let (back, keyring) = Document::parse(&text).unwrap();
        assert_eq!(back, d);
        assert_eq!(keyring.len(), 2);
    }

    #[test]
    fn non_canonical_or_hostile_documents_are_refused_naming_the_problem() {
        let a = admins(3);
        let good = doc(&a, 2, &[0, 1], 2).to_text().unwrap();
        let lines: Vec<&str> = good.lines().collect();
        let (k1, k2) = (lines[4], lines[5]);
        let other = doc(&a, 2, &[2], 1).to_text().unwrap();
        let k3 = other.lines().nth(4).unwrap();
        let fp1 = k1.split(' ').nth(1).unwrap();
        let fp3 = k3.split(' ').nth(1).unwrap();
        let head = "mig-root 1\nversion 2\nexpires 2033-05-18T03:33:20Z\n";
        let cases: Vec<(String, &str)> = vec![
            (good.replacen("mig-root 1\n", "", 1), "does not start with"),
            (
                good.replacen("mig-root 1", "mig-root 2", 1),
                "does not start with",
            ),
            (good.trim_end().to_string(), "end with a newline"),
            (good.replace("version 2", "version 02"), "plain decimal"),
            (good.replace("version 2", "version +2"), "plain decimal"),
            (good.replace("version 2", "version  2"), "plain decimal"),
            (good.replace("version 2", "version 1"), "built-in root"),
            (good.replace("version 2\n", ""), "expected `version"),
            (
                good.replace("threshold 2", "threshold 3"),
                "threshold 3 with 2 keys",
            ),
            (good.replace("threshold 2", "threshold 0"), "threshold 0"),
            (
                good.replace("2033-05-18T03:33:20Z", "2033-05-18 03:33:20"),
                "expires",
            ),
            (format!("{head}threshold 1\n"), "0 keys"),
            (format!("{head}threshold 2\n{k2}\n{k1}\n"), "ascending"),
            (format!("{head}threshold 2\n{k1}\n{k1}\n"), "ascending"),
            (format!("{good}\n"), "expected `key"),
            (format!("{good}trailing\n"), "expected `key"),
            (good.replacen(fp1, fp3, 1), "fingerprint is"),
            (
                good.replacen(&format!("{fp1} "), &format!("{fp1}  "), 1),
                "base64",
            ),
            (good.replacen("key ", "key\t", 1), "expected `key"),
            (
                good.replace("\n", "\r\n").replacen("\r\n", "\n", 1),
                "plain decimal",
            ),
            (
                format!("{good}{}", " ".repeat(MAX_DOCUMENT_BYTES)),
                "larger than 65536",
            ),
        ];
        for (text, why) in cases {
            let e = Document::parse(&text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        // A key whose packets carry a trailing extra packet parses but is not canonical.
        let mut d = doc(&a, 2, &[0], 1);
        let extra = d.keys[0].packets.clone();
        d.keys[0].packets.extend_from_slice(&extra);
        let e = Document::parse(&d.to_text().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("canonical") || e.contains("cannot read"), "{e}");
    }

    /// Keys GnuPG exported (conf/dev-keys, RSA and Ed25519) keep their bytes through a root.
    #[test]
    fn gnupg_exported_keys_round_trip_through_a_document() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/dev-keys");
        let mut keys: Vec<RootKey> = ["admin1", "admin2", "rsa1", "rsa2"]
            .iter()
            .map(|n| {
                let armored = std::fs::read_to_string(dir.join(format!("{n}.pub.asc"))).unwrap();
                RootKey::from_armored(n, &armored).unwrap()
            })
            .collect();
        keys.sort_by(|x, y| x.fingerprint.cmp(&y.fingerprint));
        let d = Document {
            version: 2,
            expires: Timestamp(2_000_000_000),
            threshold: 3,
            keys,
        };
        let (back, ring) = Document::parse(&d.to_text().unwrap()).unwrap();
        assert_eq!(back, d);
        assert_eq!(ring.len(), 4);
    }

    #[test]
    fn too_many_keys_are_refused() {
        let a = admins(1);
        let key = RootKey::from_armored("admin", &a[0].public).unwrap();
        let d = Document {
            version: 2,
            expires: Timestamp(2_000_000_000),
            threshold: 1,
            keys: vec![key; MAX_KEYS + 1],
        };
        let e = d.to_text().unwrap_err().to_string();
        assert!(e.contains("33 keys"), "{e}");
        let line = doc(&a, 2, &[0], 1).to_text().unwrap();
        let k = line.lines().nth(4).unwrap();
        let text = format!(
            "mig-root 1\nversion 2\nexpires 2033-05-18T03:33:20Z\nthreshold 1\n{}",
            format!("{k}\n").repeat(MAX_KEYS + 1)
        );
        let e = Document::parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("more than 32 keys") || e.contains("larger than"),
            "{e}"
        );
    }

    /// Root 1: keys 0, 1, 2, threshold 2. Root 2: key 2 removed, key 3 added, threshold 2.
    fn rotation() -> (Vec<Admin>, Root, String) {
        let a = admins(4);
        let root1 = Root::built_in(ring(&a, &[0, 1, 2]), 2).unwrap();
        let text = doc(&a, 2, &[0, 1, 3], 2).to_text().unwrap();
        (a, root1, text)
    }

    #[test]
    fn the_next_root_signed_by_both_thresholds_is_accepted_and_replaces_the_keys() {
        let (a, root1, text) = rotation();
        // Keys 1 and 2 of root 1; keys 0 and 3 of root 2 (0 counts for both).
        let ok = root1.accept_next(&signed(&a, &text, &[2, 0, 3])).unwrap();
        assert_eq!(ok.root.version, 2);
        assert_eq!(ok.root.threshold, 2);
        assert_eq!(ok.by_previous.valid.len(), 2);
        assert_eq!(ok.by_itself.valid.len(), 2);
        let fps = ok.root.keyring.fingerprints();
        assert!(!fps.contains(&root1.keyring.fingerprints()[2]));
        // A statement by the removed key and a remaining one no longer reaches the threshold.
        let st = b"{}";
        let sigs: Vec<String> = [2, 0]
            .iter()
            .map(|&i| sign_detached(&a[i].secret, "", st).unwrap())
            .collect();
        signature::verify(&root1.keyring, st, &sigs)
            .require(root1.threshold)
            .unwrap();
        let e = signature::verify(&ok.root.keyring, st, &sigs)
            .require(ok.root.threshold)
            .unwrap_err();
        assert!(e.to_string().contains("got 1, need 2"), "{e}");
    }

    #[test]
    fn a_root_signed_only_by_the_old_keys_is_refused_naming_its_own_threshold() {
        let (a, root1, text) = rotation();
        let e = root1
            .accept_next(&signed(&a, &text, &[1, 2]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("root 2 refused")
                && e.contains("not signed by its own threshold (2 of its 3 keys)"),
            "{e}"
        );
    }

    #[test]
    fn a_root_signed_only_by_the_new_keys_is_refused_naming_the_previous_threshold() {
        let (a, root1, text) = rotation();
        let e = root1
            .accept_next(&signed(&a, &text, &[3, 0]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("root 2 refused")
                && e.contains("not signed by the threshold of root 1 (2 of its 3 keys)")
                && e.contains("got 1, need 2"),
            "{e}"
        );
    }

    #[test]
    fn a_root_of_another_version_is_refused() {
        let a = admins(2);
        let root1 = Root::built_in(ring(&a, &[0, 1]), 1).unwrap();
        let text = doc(&a, 3, &[0, 1], 1).to_text().unwrap();
        let e = root1
            .accept_next(&signed(&a, &text, &[0]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is version 3, not 2"), "{e}");
        let two = root1
            .accept_next(&signed(
                &a,
                &doc(&a, 2, &[0, 1], 1).to_text().unwrap(),
                &[0],
            ))
            .unwrap()
            .root;
        // The same document again (a replay of root 2 to root 2) is not root 3.
        let again = doc(&a, 2, &[0, 1], 1).to_text().unwrap();
        let e = two
            .accept_next(&signed(&a, &again, &[0, 1]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is version 2, not 3"), "{e}");
    }

    #[test]
    fn a_changed_byte_or_a_non_root_text_signed_by_everyone_is_refused() {
        let (a, root1, text) = rotation();
        let mut s = signed(&a, &text, &[0, 1, 3]);
        s.document = s.document.replacen("threshold 2", "threshold 1", 1);
        let e = root1.accept_next(&s).unwrap_err().to_string();
        assert!(e.contains("does not verify"), "{e}");
        let s = signed(&a, "{\"format\":1}", &[0, 1, 3]);
        let e = root1.accept_next(&s).unwrap_err().to_string();
        assert!(e.contains("does not start with"), "{e}");
    }

    #[test]
    fn an_expired_root_is_walked_past_but_not_used() {
        let a = admins(1);
        let root1 = Root::built_in(ring(&a, &[0]), 1).unwrap();
        let mut d = doc(&a, 2, &[0], 1);
        d.expires = Timestamp(1_000);
        let two = root1
            .accept_next(&signed(&a, &d.to_text().unwrap(), &[0]))
            .unwrap()
            .root;
        let e = two
            .check_current(Timestamp(1_000_000))
            .unwrap_err()
            .to_string();
        assert!(e.contains("root 2 expired at 1970-01-01T00:16:40Z"), "{e}");
        two.check_current(Timestamp(1_000)).unwrap();
        root1.check_current(Timestamp(u64::MAX / 2)).unwrap();
        let mut d3 = doc(&a, 3, &[0], 1);
        d3.expires = Timestamp(2_000_000);
        let three = two
            .accept_next(&signed(&a, &d3.to_text().unwrap(), &[0]))
            .unwrap()
            .root;
        three.check_current(Timestamp(1_000_000)).unwrap();
    }

    #[test]
    fn oversized_answers_and_bad_built_in_thresholds_are_refused() {
        let e = Signed::parse(
            "root 2 from x",
            &vec![b' '; MAX_RESPONSE_BYTES as usize + 1],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("root 2 from x is larger than"), "{e}");
        let body = serde_json::to_vec(&Signed {
            document: "x".into(),
            signatures: vec!["s".into(); crate::loader::MAX_SIGNATURES + 1],
        })
        .unwrap();
        let e = Signed::parse("root 2", &body).unwrap_err().to_string();
        assert!(e.contains("33 signatures"), "{e}");
        let e = Signed::parse("root 2", br#"{"document":"x","signatures":[],"more":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
        let a = admins(1);
        assert!(Root::built_in(ring(&a, &[0]), 2).is_err());
        assert!(Root::built_in(ring(&a, &[0]), 0).is_err());
    }
}
