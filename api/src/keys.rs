//! Loader keys and investigator API keys: 40 ASCII alphanumerics, an 8-character lookup prefix
//! and a 32-character secret (docs/design.md §3.7).
//!
//! - Generation: `OsRng`, rejection sampling over the 62-letter alphabet (no modulo bias, no
//!   missing `G`).
//! - Storage: only a salted slow hash, PBKDF2-HMAC-SHA256 with 4096 iterations, a 16-byte salt
//!   and a 32-byte output: exactly MIG's parameters (docs/design.md §8.1), so rows imported from a
//!   Go deployment keep working. More iterations buy nothing here: the secret is 190 random bits,
//!   not a password, while every loader of a large fleet authenticates on every run.
//! - Comparison: constant time (`subtle`).
//! - A loader's row also keeps a fast verifier ([`fast_verifier`], one SHA-256 of the secret under
//!   the row's salt and hash and a domain tag): written when the key is issued, or after the
//!   first PBKDF2 check that passes for a row without one (a row imported from MIG), and from
//!   then on the only check of that key ([`check_row`]), so PBKDF2 runs at most once per loader
//!   and key, at any fleet size and across restarts. The secret is 190 random bits, not a
//!   password: one hash protects it at rest as well as 4096 do.
//! - [`VerifiedKeys`] remembers the SHA-256 of investigator API keys that passed PBKDF2 against
//!   the stored hash they passed against, so the next request costs one SHA-256 instead of 4096
//!   HMACs. Rotating or changing the stored hash makes the entry useless at once.

use crate::clock::{Clock, Stats};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::{Mutex, PoisonError};
use subtle::ConstantTimeEq;

pub const PREFIX_LEN: usize = mig_protocol::loader::LOADER_PREFIX_LEN;
pub const SECRET_LEN: usize = mig_protocol::loader::LOADER_KEY_LEN - PREFIX_LEN;
pub const ITERATIONS: u32 = 4096;
pub const SALT_LEN: usize = 16;
pub const HASH_LEN: usize = 32;
const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// What one entry of [`VerifiedKeys`] costs in memory: the prefix twice (slot and index), the
/// two digests, the slot ([`VerifiedKeys::new`] divides its bytes by it).
pub const VERIFIED_ENTRY_BYTES: usize = 200;

/// `n` letters and digits from the operating system's CSPRNG.
pub fn random_alnum(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rand::rngs::OsRng.fill_bytes(&mut buf);
        for &b in &buf {
            // 248 = 4 × 62: bytes at or above it are dropped, so every letter is equally likely.
            if b < 248 && out.len() < n {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// A freshly issued key: shown once (`key`), stored as prefix + salt + hash (+ the fast
/// verifier, for a loader's key).
pub struct Issued {
    pub key: String,
    pub prefix: String,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    /// [`fast_verifier`] of the secret under `salt` and `hash`.
    pub fast: Vec<u8>,
}

/// Issues a key; a rotation keeps the existing prefix (MIG does the same).
pub fn issue(prefix: Option<&str>) -> Issued {
    let prefix = prefix
        .map(str::to_string)
        .unwrap_or_else(|| random_alnum(PREFIX_LEN));
    let secret = random_alnum(SECRET_LEN);
    let mut salt = vec![0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let hash = hash_secret(&secret, &salt).to_vec();
    let fast = fast_verifier(&secret, &salt, &hash).to_vec();
    Issued {
        key: format!("{prefix}{secret}"),
        prefix,
        salt,
        hash,
        fast,
    }
}

/// Separates the fast verifier from any other SHA-256 of a secret (`VerifiedKeys` keeps one).
const FAST_TAG: &[u8] = b"mig-api loader key fast verifier 1\0";

/// SHA-256 over the domain tag, the row's salt and PBKDF2 hash (each length-prefixed) and the
/// secret. Bound to the salt and hash, so a verifier left beside a rotated key matches nothing.
pub fn fast_verifier(secret: &str, salt: &[u8], hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(FAST_TAG);
    h.update((salt.len() as u64).to_be_bytes());
    h.update(salt);
    h.update((hash.len() as u64).to_be_bytes());
    h.update(hash);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// What checking a secret against a loader's row found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The secret is the row's.
    pub ok: bool,
    /// PBKDF2 ran (the row had no usable fast verifier).
    pub pbkdf2: bool,
    /// The fast verifier to store with the row: PBKDF2 passed for a row without one.
    pub learned: Option<[u8; 32]>,
}

/// Checks `secret` against a loader's stored `salt`, PBKDF2 `hash` and fast verifier `fast`, in
/// constant time. A fast verifier of 32 bytes decides alone, a wrong secret included (so
/// guessing at a known prefix costs one SHA-256, not 4096 HMACs); without one (MIG's rows, or a
/// damaged value from the database) PBKDF2 decides and, when it passes, says what to store.
pub fn check_row(secret: &str, salt: &[u8], hash: &[u8], fast: Option<&[u8]>) -> Check {
    if hash.len() != HASH_LEN || salt.is_empty() {
        return Check {
            ok: false,
            pbkdf2: false,
            learned: None,
        };
    }
    let quick = fast_verifier(secret, salt, hash);
    if let Some(f) = fast.filter(|f| f.len() == quick.len()) {
        return Check {
            ok: bool::from(f.ct_eq(&quick)),
            pbkdf2: false,
            learned: None,
        };
    }
    let ok = bool::from(hash_secret(secret, salt).ct_eq(hash));
    Check {
        ok,
        pbkdf2: true,
        learned: ok.then_some(quick),
    }
}

/// PBKDF2-HMAC-SHA256(secret, salt, 4096) → 32 bytes.
pub fn hash_secret(secret: &str, salt: &[u8]) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(secret.as_bytes(), salt, ITERATIONS, &mut out);
    out
}

/// Splits a presented key into (prefix, secret), or None when it is not 40 alphanumerics.
pub fn split(key: &str) -> Option<(&str, &str)> {
    mig_protocol::loader::LoaderKey::parse(key).ok()?;
    // `parse` checked the length and that every byte is ASCII, so the split is in bounds.
    Some(key.split_at(PREFIX_LEN))
}

/// For one prefix: the stored PBKDF2 hash a secret passed against, and that secret's SHA-256.
type Verified = ([u8; HASH_LEN], [u8; 32]);

/// Investigator API keys that already passed PBKDF2, keyed by prefix, bounded in bytes: when
/// full, the coldest key's entry goes (clock.rs), and its next request runs PBKDF2 again.
pub struct VerifiedKeys {
    map: Mutex<Clock<String, Verified>>,
}

impl VerifiedKeys {
    /// An empty cache of at most `bytes` (`[limits] apikeycache`).
    pub fn new(bytes: u64) -> VerifiedKeys {
        VerifiedKeys {
            map: Mutex::new(Clock::new(usize::try_from(bytes).unwrap_or(usize::MAX))),
        }
    }

    /// Hits, misses and evictions since start, and what it holds.
    pub fn stats(&self) -> Stats {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats()
    }

    /// Whether `secret` matches the stored `salt`/`hash`, in constant time (`learned` is never
    /// set: this cache is the fast path of investigator API keys, whose rows keep no verifier).
    pub fn verify(&self, prefix: &str, secret: &str, salt: &[u8], hash: &[u8]) -> Check {
        if hash.len() != HASH_LEN || salt.is_empty() {
            return Check {
                ok: false,
                pbkdf2: false,
                learned: None,
            };
        }
        let quick: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            let key = prefix.to_string();
            let known = map.get(&key).map(|(stored, seen)| {
                bool::from(stored.ct_eq(hash)) && bool::from(seen.ct_eq(&quick))
            });
            match known {
                Some(true) => {
                    return Check {
                        ok: true,
                        pbkdf2: false,
                        learned: None,
                    }
                }
                Some(false) => map.stale(),
                None => {}
            }
        }
        let computed = hash_secret(secret, salt);
        let ok = bool::from(computed.ct_eq(hash));
        if ok {
            self.map
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(prefix.to_string(), (computed, quick), VERIFIED_ENTRY_BYTES);
        }
        Check {
            ok,
            pbkdf2: true,
            learned: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_forty_alphanumerics_and_verify() {
        let k = issue(None);
        assert_eq!(k.key.len(), 40);
        assert!(k.key.bytes().all(|c| c.is_ascii_alphanumeric()));
        let (p, s) = split(&k.key).unwrap();
        assert_eq!(p, k.prefix);
        let v = VerifiedKeys::new(1 << 20);
        let first = v.verify(p, s, &k.salt, &k.hash);
        assert!(first.ok && first.pbkdf2);
        let again = v.verify(p, s, &k.salt, &k.hash);
        assert!(again.ok && !again.pbkdf2, "second time from the cache");
        // Another last character, whatever the random one was.
        let last = if s.ends_with('x') { 'y' } else { 'x' };
        let wrong = format!("{}{last}", &s[..31]);
        assert!(!v.verify(p, &wrong, &k.salt, &k.hash).ok);
        let rotated = issue(Some(p));
        assert_eq!(rotated.prefix, p);
        assert!(
            !v.verify(p, s, &rotated.salt, &rotated.hash).ok,
            "the old secret fails after rotation"
        );
    }

    #[test]
    fn a_row_with_a_fast_verifier_never_runs_pbkdf2_and_a_row_without_learns_one() {
        let k = issue(None);
        let (_, s) = split(&k.key).unwrap();
        let last = if s.ends_with('x') { 'y' } else { 'x' };
        let wrong = format!("{}{last}", &s[..31]);
        // Issued with its verifier: right and wrong secrets are decided without PBKDF2.
        let fast = Some(k.fast.as_slice());
        let c = check_row(s, &k.salt, &k.hash, fast);
        assert_eq!((c.ok, c.pbkdf2, c.learned), (true, false, None));
        let c = check_row(&wrong, &k.salt, &k.hash, fast);
        assert_eq!((c.ok, c.pbkdf2), (false, false));
        // A row as MIG wrote it: PBKDF2 once, and the verifier it yields is the issued one.
        let c = check_row(s, &k.salt, &k.hash, None);
        assert_eq!((c.ok, c.pbkdf2), (true, true));
        assert_eq!(c.learned.map(|l| l.to_vec()), Some(k.fast.clone()));
        let c = check_row(&wrong, &k.salt, &k.hash, None);
        assert_eq!((c.ok, c.pbkdf2, c.learned), (false, true, None));
        // A damaged verifier is no verifier: PBKDF2 decides and a new one is learned.
        let c = check_row(s, &k.salt, &k.hash, Some(&[0u8; 7]));
        assert!(c.ok && c.pbkdf2 && c.learned.is_some());
        // Bound to the salt and hash: after a rotation the old verifier matches nothing.
        let rotated = issue(Some(&k.prefix));
        let c = check_row(s, &rotated.salt, &rotated.hash, fast);
        assert!(!c.ok);
        assert_ne!(
            fast_verifier(s, &rotated.salt, &rotated.hash).to_vec(),
            k.fast
        );
    }

    #[test]
    fn matches_migs_pbkdf2_parameters() {
        // PBKDF2-HMAC-SHA256("password", "salt", 4096, 32), RFC 7914 style test vector.
        let h = hash_secret("password", b"salt");
        let hex = mig_protocol::sha256::hex(&h);
        assert_eq!(
            hex,
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn every_letter_of_the_alphabet_appears() {
        let s = random_alnum(20_000);
        for &c in ALPHABET {
            assert!(s.as_bytes().contains(&c), "{}", c as char);
        }
        assert!(split("short").is_none());
        assert!(split(&"!".repeat(40)).is_none());
    }
}
