//! mig-api's online freshness key (docs/design.md §4.20, §6.6): a secret key file of its own,
//! readable by mig-api alone, that signs nothing but freshness documents. Every replica reads
//! the same file from its own disk; the key never enters the database.

use crate::error::{Error, Result};
use mig_protocol::freshness::{Document, Freshness, FreshnessKey};
use mig_protocol::signature::{self, Keyring};
use mig_protocol::time::Timestamp;
use mig_protocol::{Serial, Sha256};
use pgp::composed::SignedSecretKey;
use std::path::{Path, PathBuf};

/// The largest key file read (an armored Ed25519 secret key is under 1 KiB).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// `[freshness]` of api.cfg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The armored secret key file (mode 0600).
    pub key: PathBuf,
    /// How long a freshness signature is good for, in seconds (`lifetime`, default 1 day).
    pub lifetime: u64,
}

/// `[freshness] lifetime` when the file does not set it.
pub const DEFAULT_LIFETIME: u64 = 86_400;

/// A freshness signature made for an answer, and when the answer should be signed again.
#[derive(Debug, Clone)]
pub struct Signed {
    pub freshness: Freshness,
    /// The document's `issued` and `expires` (`GET freshness`, `/metrics`).
    pub issued: Timestamp,
    pub expires: Timestamp,
    /// Half the lifetime after signing: an answer kept past it is signed again, so a loader
    /// is never handed a signature with less than half its lifetime left.
    pub refresh_at: Timestamp,
}

/// The loaded freshness key: it can only sign a [`Document`].
pub struct Signer {
    key: SignedSecretKey,
    lifetime: u64,
    fingerprint: String,
}

impl std::fmt::Debug for Signer {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.fingerprint)
    }
}

impl Signer {
    /// Reads the key file: refused when others may read or write it, when it is larger than
    /// [`MAX_KEY_FILE`], not an armored secret key, or when a signature it makes would not count
    /// on a loader (the rule of `mig_protocol::signature`, checked by signing a probe).
    pub fn load(s: &Settings) -> Result<Signer> {
        let path = &s.key;
        let what = || format!("[freshness] key {}", path.display());
        let meta = std::fs::metadata(path).map_err(Error::io("reading the freshness key", path))?;
        check_private(&meta, &what())?;
        if meta.len() > MAX_KEY_FILE {
            return Err(Error::Config(format!(
                "{}: larger than {MAX_KEY_FILE} bytes",
                what()
            )));
        }
        let armored =
            std::fs::read_to_string(path).map_err(Error::io("reading the freshness key", path))?;
        let key = signature::parse_secret_key(&what(), &armored)
            .map_err(|e| Error::Config(e.to_string()))?;
        let public =
            FreshnessKey::from_key(&what(), key.to_public_key(), &Keyring::from_keys(vec![]))
                .map_err(|e| Error::Config(e.to_string()))?;
        let signer = Signer {
            fingerprint: public.fingerprint(),
            key,
            lifetime: s.lifetime,
        };
        let now = Timestamp::now();
        let probe = signer.sign(b"probe", Serial::NONE, now)?;
        public
            .check(Some(&probe.freshness), b"probe", Serial::NONE, now)
            .map_err(|e| {
                Error::Config(format!(
                    "{}: loaders would not count its signatures: {e}",
                    what()
                ))
            })?;
        Ok(signer)
    }

    /// The key's primary fingerprint, upper-case hex (logged at start).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `[freshness] lifetime`, seconds.
    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    /// Signs that `statement` (of `serial`) is current at `now`, until now + the lifetime.
    pub fn sign(&self, statement: &[u8], serial: Serial, now: Timestamp) -> Result<Signed> {
        let doc = Document {
            statement: Sha256::of(statement),
            serial,
            issued: now,
            expires: now.plus(self.lifetime),
        };
        let text = doc
            .to_text()
            .map_err(|e| Error::Internal(format!("a freshness document: {e}")))?;
        let signature = signature::sign_detached(&self.key, "", text.as_bytes()).map_err(|e| {
            Error::Internal(format!("signing freshness with {}: {e}", self.fingerprint))
        })?;
        Ok(Signed {
            freshness: Freshness {
                document: text,
                signature,
            },
            issued: doc.issued,
            expires: doc.expires,
            refresh_at: now.plus(self.lifetime / 2),
        })
    }
}

/// Refuses a secret file others may read or write (docs/design.md §6.6).
#[cfg(unix)]
fn check_private(meta: &std::fs::Metadata, what: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Config(format!(
            "{what} has mode {mode:04o}: a secret key others can read could sign freshness for \
             any statement; chmod 600 it (owned by the user mig-api runs as)"
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &std::fs::Metadata, _: &str) -> Result<()> {
    Ok(())
}

/// `mig-api freshness-key new --out FILE`: a new Ed25519 key from the OS CSPRNG, its secret half
/// written to `out` with mode 0600 (never over an existing file); returns the armored public
/// half, which the loaders' `[freshness] key` names.
pub fn generate(out: &Path) -> Result<String> {
    let (secret, public) = signature::generate_key("mig-api freshness key")
        .map_err(|e| Error::Internal(format!("generating a freshness key: {e}")))?;
    let armored = signature::armor_secret_key(&secret)
        .map_err(|e| Error::Internal(format!("writing a freshness key: {e}")))?;
    write_private(out, armored.as_bytes())?;
    Ok(public)
}

#[cfg(unix)]
fn write_private(out: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(Error::io("creating the freshness key", out))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(Error::io("writing the freshness key", out))
}

#[cfg(not(unix))]
fn write_private(out: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(Error::io("creating the freshness key", out))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(Error::io("writing the freshness key", out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_key_is_private_signs_freshness_and_is_refused_once_others_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("freshness.key");
        let public = generate(&out).unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            generate(&out).is_err(),
            "an existing key is never overwritten"
        );
        let s = Settings {
            key: out.clone(),
            lifetime: DEFAULT_LIFETIME,
        };
        let signer = Signer::load(&s).unwrap();
        let now = Timestamp(1_800_000_000);
        let signed = signer.sign(b"statement", Serial::new(3), now).unwrap();
        assert_eq!(signed.refresh_at, now.plus(DEFAULT_LIFETIME / 2));
        let key = FreshnessKey::new("pub", &public, &Keyring::from_keys(vec![])).unwrap();
        let doc = key
            .check(Some(&signed.freshness), b"statement", Serial::new(3), now)
            .unwrap();
        assert_eq!(doc.expires, now.plus(DEFAULT_LIFETIME));

        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Signer::load(&s).unwrap_err().to_string();
        assert!(e.contains("mode 0640") && e.contains("chmod 600"), "{e}");
        std::fs::write(dir.path().join("public.asc"), &public).unwrap();
        std::fs::set_permissions(
            dir.path().join("public.asc"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let e = Signer::load(&Settings {
            key: dir.path().join("public.asc"),
            lifetime: DEFAULT_LIFETIME,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("[freshness] key"), "{e}");
    }
}
