//! M-of-N verification of detached OpenPGP signatures over the exact statement bytes.
//! docs/design.md §4.2: count distinct primary-key fingerprints from the built-in keyring that made a valid
//! signature; ignore and report unknown, bad or weak signatures; accept only at or above the threshold.

use crate::error::{Error, Result};
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, PublicParams};

/// The smallest RSA modulus, in bits, whose signatures count (docs/design.md §4.2).
pub const MIN_RSA_BITS: usize = 2048;

/// A set of administrator public keys whose bindings verified when they were loaded.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// Upper-case hex fingerprint, as GnuPG prints it.
pub fn fingerprint_hex(key: &impl KeyDetails) -> String {
    let mut hex = crate::sha256::hex(key.fingerprint().as_bytes());
    hex.make_ascii_uppercase();
    hex
}

/// Parses one armored public key; `what` names it in errors. An RSA primary below
/// [`MIN_RSA_BITS`] is refused (docs/design.md §4.2).
pub fn parse_public_key(what: &str, armored: &str) -> Result<SignedPublicKey> {
    let (key, _) = SignedPublicKey::from_string(armored).map_err(|e| Error::Key {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    check_public_key(what, key)
}

/// The rules of [`parse_public_key`] once the key is read: its bindings verify, and its RSA
/// primary is strong.
fn check_public_key(what: &str, key: SignedPublicKey) -> Result<SignedPublicKey> {
    let key = check_bindings(what, key)?;
    // A weak primary can be made to bind any subkey: nothing of such a key can ever count, so it
    // is refused here, where an administrator adds it, rather than ignored at every statement.
    if let Some(bits) = rsa_bits(key.primary_key.public_params()) {
        if bits < MIN_RSA_BITS {
            return Err(Error::Key {
                what: what.to_string(),
                reason: format!(
                    "its primary is a {bits}-bit RSA key; only RSA keys of at least \
                     {MIN_RSA_BITS} bits are accepted"
                ),
            });
        }
    }
    Ok(key)
}

/// [`parse_public_key`] without refusing a weak RSA primary: for keys a database stored before
/// that rule, so that one such key does not stop every other from loading. Its signatures are
/// ignored with the reason ([`verify`]).
pub fn parse_stored_public_key(what: &str, armored: &str) -> Result<SignedPublicKey> {
    let (key, _) = SignedPublicKey::from_string(armored).map_err(|e| Error::Key {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    check_bindings(what, key)
}

fn check_bindings(what: &str, key: SignedPublicKey) -> Result<SignedPublicKey> {
    // A subkey counts for its primary only when the primary really bound it.
    key.verify_bindings().map_err(|e| Error::Key {
        what: what.to_string(),
        reason: format!("self-signatures do not verify: {e}"),
    })?;
    Ok(key)
}

/// Which part of a key made a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Primary,
    Subkey(usize),
}

/// The hash rule of docs/design.md §4.2: only SHA-256 or stronger counts (chosen-prefix
/// collisions on SHA-1 are practical). The error names the algorithm.
fn check_hash(hash: Option<HashAlgorithm>) -> std::result::Result<(), String> {
    match hash {
        Some(
            HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Sha3_512,
        ) => Ok(()),
        Some(h) => Err(format!("uses {h}; only SHA-256 or stronger counts")),
        None => Err("has an unknown format; only SHA-256 or stronger counts".into()),
    }
}

/// Refuses an armored signature whose hash would not count ([`check_hash`]): the console checks
/// what it made before sending it.
pub fn check_strength(armored: &str) -> Result<()> {
    let (sig, _) = DetachedSignature::from_string(armored)
        .map_err(|e| Error::Sign(format!("not an armored OpenPGP signature: {e}")))?;
    check_hash(sig.signature.hash_alg()).map_err(|e| Error::Sign(format!("the signature {e}")))
}

/// The key rule of docs/design.md §4.2, for a signature `sig` that `part` of `key` made: a part
/// allowed to sign (the signing flag on its newest self-signature; a subkey's back-signature
/// verifies), neither it nor the primary revoked (whenever: the signer writes the signature's
/// date), neither expired when the signature was made, and RSA of at least [`MIN_RSA_BITS`].
/// The error says what is wrong, naming the subkey.
fn check_signer(
    key: &SignedPublicKey,
    part: Part,
    sig: &Signature,
) -> std::result::Result<(), String> {
    let made = sig.created().ok_or("carries no creation time")?.as_secs();
    let primary = &key.primary_key;
    if !key.details.revocation_signatures.is_empty() {
        return Err("was made by a revoked key; a revocation counts for every signature".into());
    }
    let self_sig = newest(
        key.details
            .direct_signatures
            .iter()
            .chain(key.details.users.iter().flat_map(|u| u.signatures.iter()))
            .filter(|s| {
                matches!(
                    s.typ(),
                    Some(
                        SignatureType::Key
                            | SignatureType::CertGeneric
                            | SignatureType::CertPersona
                            | SignatureType::CertCasual
                            | SignatureType::CertPositive
                    )
                )
            }),
    )
    .ok_or("was made by a key without a self-signature")?;
    expired("the key", primary.created_at().as_secs(), self_sig, made)?;
    // A weak primary can bind any subkey: it spoils its subkeys' signatures too.
    strong_rsa("the primary key", primary.public_params())?;
    match part {
        Part::Primary => {
            if !self_sig.key_flags().sign() {
                return Err("was made by a primary key without the signing flag".into());
            }
            Ok(())
        }
        Part::Subkey(i) => {
            let sub = key.public_subkeys.get(i).ok_or("names no subkey")?;
            let fp = fingerprint_hex(&sub.key);
            if sub
                .signatures
                .iter()
                .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
            {
                return Err(format!(
                    "was made by subkey {fp}, which is revoked; a revocation counts for every \
                     signature"
                ));
            }
            let binding = newest(
                sub.signatures
                    .iter()
                    .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)),
            )
            .ok_or_else(|| format!("was made by subkey {fp}, which is not bound"))?;
            if !binding.key_flags().sign() {
                return Err(format!(
                    "was made by subkey {fp}, which is not allowed to sign (no signing flag)"
                ));
            }
            let backsig = binding
                .embedded_signature()
                .and_then(|b| b.verify_primary_key_binding(&sub.key, primary).ok());
            if backsig.is_none() {
                return Err(format!(
                    "was made by subkey {fp}, which has no valid back-signature"
                ));
            }
            expired(
                &format!("subkey {fp}"),
                sub.key.created_at().as_secs(),
                binding,
                made,
            )?;
            strong_rsa(&format!("subkey {fp}"), sub.key.public_params())
        }
    }
}

/// The newest of some self-signatures: the one in force (each verified when the key was loaded).
fn newest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    sigs.max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
}

/// Whether `self_sig` lets `what`, created at `created`, sign at `made` (Unix seconds).
fn expired(
    what: &str,
    created: u32,
    self_sig: &Signature,
    made: u32,
) -> std::result::Result<(), String> {
    let Some(valid_for) = self_sig.key_expiration_time().map(|d| d.as_secs()) else {
        return Ok(());
    };
    let ends = u64::from(created) + u64::from(valid_for);
    if valid_for != 0 && u64::from(made) >= ends {
        return Err(format!(
            "was made at {} by {what}, which expired at {}",
            crate::time::Timestamp(u64::from(made)),
            crate::time::Timestamp(ends)
        ));
    }
    Ok(())
}

fn strong_rsa(what: &str, params: &PublicParams) -> std::result::Result<(), String> {
    match rsa_bits(params) {
        Some(bits) if bits < MIN_RSA_BITS => Err(format!(
            "was made by {what}, a {bits}-bit RSA key; only RSA keys of at least {MIN_RSA_BITS} \
             bits count"
        )),
        _ => Ok(()),
    }
}

/// The bit length of an RSA modulus; `None` for any other algorithm.
fn rsa_bits(params: &PublicParams) -> Option<usize> {
    use pgp::ser::Serialize as _;
    match params {
        // The serialized parameters start with the modulus as an MPI: its bit count first.
        p @ PublicParams::RSA(_) => {
            let b = p.to_bytes().ok()?;
            Some(usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?])))
        }
        _ => None,
    }
}

impl Keyring {
    /// Loads armored public keys; each is named (file name, investigator) for error messages.
    pub fn from_armored<'a>(keys: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut out: Vec<SignedPublicKey> = Vec::new();
        for (what, armored) in keys {
            let key = parse_public_key(what, armored)?;
            if out.iter().any(|k| k.fingerprint() == key.fingerprint()) {
                return Err(Error::Key {
                    what: what.to_string(),
                    reason: "the same key is listed twice".into(),
                });
            }
            out.push(key);
        }
        Ok(Keyring { keys: out })
    }

    /// A keyring of already parsed keys.
    pub fn from_keys(keys: Vec<SignedPublicKey>) -> Self {
        Keyring { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The primary fingerprints, upper-case hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| fingerprint_hex(&k.primary_key))
            .collect()
    }

    /// The fingerprints of every primary and subkey, upper-case hex: two keyrings that share
    /// none share no key that could sign.
    pub fn all_fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .flat_map(|k| {
                std::iter::once(fingerprint_hex(&k.primary_key))
                    .chain(k.public_subkeys.iter().map(|s| fingerprint_hex(&s.key)))
            })
            .collect()
    }

    /// The key whose primary fingerprint is `fp` (upper-case hex).
    pub fn key(&self, fp: &str) -> Option<&SignedPublicKey> {
        self.keys
            .iter()
            .find(|k| fingerprint_hex(&k.primary_key) == fp)
    }

    /// Which primary key (by index), and which part of it, made `sig` over `data`, trying the
    /// primary and its subkeys.
    fn signer_of(&self, sig: &DetachedSignature, data: &[u8]) -> Option<(usize, Part)> {
        self.keys.iter().enumerate().find_map(|(i, k)| {
            if sig.verify(&k.primary_key, data).is_ok() {
                return Some((i, Part::Primary));
            }
            k.public_subkeys
                .iter()
                .position(|s| sig.verify(&s.key, data).is_ok())
                .map(|s| (i, Part::Subkey(s)))
        })
    }

    /// Whether any key (primary or subkey) of the ring matches an issuer the signature names.
    fn knows_issuer(&self, sig: &DetachedSignature) -> Option<String> {
        let ids = sig.signature.issuer_key_id();
        let fps = sig.signature.issuer_fingerprint();
        for k in &self.keys {
            let mut candidates: Vec<(pgp::types::KeyId, pgp::types::Fingerprint)> =
                vec![(k.primary_key.legacy_key_id(), k.primary_key.fingerprint())];
            candidates.extend(
                k.public_subkeys
                    .iter()
                    .map(|s| (s.key.legacy_key_id(), s.key.fingerprint())),
            );
            if candidates
                .iter()
                .any(|(id, fp)| ids.contains(&id) || fps.contains(&fp))
            {
                return Some(fingerprint_hex(&k.primary_key));
            }
        }
        None
    }
}

/// The outcome of verifying a set of signatures: who counted, and why every other one did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Distinct primary fingerprints that made a valid signature, in the order first seen.
    pub valid: Vec<String>,
    /// One line per signature that did not count.
    pub ignored: Vec<String>,
}

impl Verdict {
    /// Accepts when at least `threshold` distinct keys signed; a threshold below 1 is refused.
    pub fn require(self, threshold: usize) -> Result<Self> {
        if threshold == 0 {
            return Err(Error::Config(
                "the signature threshold must be at least 1".into(),
            ));
        }
        if self.valid.len() >= threshold {
            Ok(self)
        } else {
            Err(Error::NotEnoughSignatures {
                got: self.valid.len(),
                need: threshold,
                ignored: self.ignored,
            })
        }
    }
}

/// Verifies every armored detached signature over `data` against `keyring`.
pub fn verify(keyring: &Keyring, data: &[u8], signatures: &[String]) -> Verdict {
    let mut v = Verdict::default();
    for (i, armored) in signatures.iter().enumerate() {
        let n = i + 1;
        let sig = match DetachedSignature::from_string(armored) {
            Ok((sig, _)) => sig,
            Err(e) => {
                v.ignored.push(format!(
                    "signature #{n} is not an armored OpenPGP signature: {e}"
                ));
                continue;
            }
        };
        match keyring.signer_of(&sig, data) {
            Some((k, part)) => {
                let key = &keyring.keys[k];
                let fp = fingerprint_hex(&key.primary_key);
                let rule = check_hash(sig.signature.hash_alg())
                    .and_then(|()| check_signer(key, part, &sig.signature));
                if let Err(why) = rule {
                    v.ignored.push(format!("signature #{n} by {fp} {why}"));
                } else if v.valid.contains(&fp) {
                    v.ignored.push(format!(
                        "signature #{n} is another signature by {fp}, counted once"
                    ));
                } else {
                    v.valid.push(fp);
                }
            }
            None => match keyring.knows_issuer(&sig) {
                // rpgp refuses some weak hashes itself (Ed25519 over SHA-1): the reason is the
                // hash then, not the bytes.
                Some(fp) => v.ignored.push(match check_hash(sig.signature.hash_alg()) {
                    Err(why) => format!("signature #{n} by {fp} {why}"),
                    Ok(()) => format!("signature #{n} by {fp} does not verify over the statement"),
                }),
                None => {
                    let who: Vec<String> = sig
                        .signature
                        .issuer_key_id()
                        .iter()
                        .map(|id| crate::sha256::hex(id.as_ref()).to_ascii_uppercase())
                        .collect();
                    let who = if who.is_empty() {
                        "an unnamed key".to_string()
                    } else {
                        format!("key id {}", who.join(","))
                    };
                    v.ignored.push(format!(
                        "signature #{n} is by {who}, which is not in the keyring"
                    ));
                }
            },
        }
    }
    v
}

/// The MIG "de-armored" form used in `X-PGPAUTHORIZATION`: base64 body and `=CRC` on one line.
pub fn dearmor(armored: &str) -> Result<String> {
    let text = armored.replace("\r\n", "\n");
    let start = text
        .find("\n\n")
        .ok_or_else(|| Error::Sign("armor has no blank line after its header".into()))?;
    let end = text
        .find("\n-----END")
        .ok_or_else(|| Error::Sign("armor has no END line".into()))?;
    // The END line may start at the blank line's own second newline: no body at all (found by
    // tests/fuzz, target signature).
    if end < start + 2 {
        return Err(Error::Sign("armor has no body before its END line".into()));
    }
    Ok(text[start + 2..end].lines().map(str::trim).collect())
}

/// The inverse of [`dearmor`]: 64-column lines, the `=CRC` line when present, BEGIN/END lines.
pub fn rearmor(flat: &str) -> Result<String> {
    if flat.is_empty()
        || !flat
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=')
    {
        return Err(Error::Sign(
            "de-armored signature holds characters outside base64".into(),
        ));
    }
    let (body, crc) = match flat.rfind('=') {
        Some(p) if p + 5 == flat.len() && p > 0 => (&flat[..p], Some(&flat[p..])),
        _ => (flat, None),
    };
    let mut out = String::from("-----BEGIN PGP SIGNATURE-----\n\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).map_err(|e| Error::Sign(e.to_string()))?);
        out.push('\n');
    }
    if let Some(crc) = crc {
        out.push_str(crc);
        out.push('\n');
    }
    out.push_str("-----END PGP SIGNATURE-----\n");
    Ok(out)
}

/// MIG's one-line form of a signature for a Go `mig-loader`: base64 of the signature packet,
/// `=` and its CRC24, always with the CRC, which Go's armor reader needs (an armor from rpgp may
/// omit it). Refuses what [`go_signature`] refuses.
pub fn go_flat(armored: &str) -> Result<String> {
    use base64::Engine as _;
    use pgp::ser::Serialize as _;
    let sig = go_signature(armored)?;
    let bytes = sig.to_bytes().map_err(|e| Error::Sign(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let crc = crc24(&bytes).to_be_bytes();
    Ok(format!("{}={}", b64.encode(&bytes), b64.encode(&crc[1..])))
}

/// A signature MIG's Go loaders (`x/crypto/openpgp` of 2017) can verify at all: a v4 RSA, DSA
/// or ECDSA one (no Ed25519); the error names the algorithm.
pub fn go_signature(armored: &str) -> Result<DetachedSignature> {
    use pgp::crypto::public_key::PublicKeyAlgorithm as Alg;
    let (sig, _) = DetachedSignature::from_string(armored)
        .map_err(|e| Error::Sign(format!("not an armored OpenPGP signature: {e}")))?;
    let config = sig
        .signature
        .config()
        .ok_or_else(|| Error::Sign("a signature of an unknown format".into()))?;
    if !matches!(
        config.pub_alg,
        Alg::RSA | Alg::RSASign | Alg::DSA | Alg::ECDSA
    ) {
        return Err(Error::Sign(format!(
            "{:?} signatures: MIG's Go loaders verify only RSA, DSA and ECDSA keys",
            config.pub_alg
        )));
    }
    if sig.signature.version() != pgp::packet::SignatureVersion::V4 {
        return Err(Error::Sign(format!(
            "{:?} signatures: MIG's Go loaders verify only v4 signatures",
            sig.signature.version()
        )));
    }
    Ok(sig)
}

/// [`go_signature`], and for RSA an integer exactly as long as `signer`'s modulus: Go's
/// `rsa.VerifyPKCS1v15` (Go 1.x, unpadded by that openpgp) refuses the one signature in 256
/// whose leading byte is zero, which OpenPGP packs one byte shorter. Signing again a second
/// later gives another signature.
pub fn go_check(armored: &str, signer: &SignedPublicKey) -> Result<()> {
    let sig = go_signature(armored)?;
    if let (Some(len), Some(modulus)) = (rsa_len(&sig), rsa_modulus_len(signer)) {
        if len != modulus {
            return Err(Error::Sign(format!(
                "an RSA signature of {len} bytes for a {modulus}-byte key, which MIG's Go \
                 loaders refuse (one signature in 256 is this short): sign again"
            )));
        }
    }
    Ok(())
}

/// The bytes of an RSA signature's integer as packed (leading zeros dropped); `None` for any
/// other algorithm. The console signs the v1 text again while it is shorter than the
/// statement's signature by the same key ([`go_check`]).
pub fn rsa_signature_len(armored: &str) -> Option<usize> {
    let (sig, _) = DetachedSignature::from_string(armored).ok()?;
    rsa_len(&sig)
}

fn rsa_len(sig: &DetachedSignature) -> Option<usize> {
    use pgp::crypto::public_key::PublicKeyAlgorithm as Alg;
    let config = sig.signature.config()?;
    if !matches!(config.pub_alg, Alg::RSA | Alg::RSASign) {
        return None;
    }
    match sig.signature.signature()? {
        pgp::types::SignatureBytes::Mpis(m) => m.first().map(|m| m.as_ref().len()),
        _ => None,
    }
}

fn rsa_modulus_len(key: &SignedPublicKey) -> Option<usize> {
    rsa_bits(key.primary_key.public_params()).map(|bits| bits.div_ceil(8))
}

/// The armor checksum of RFC 4880 §6.1.
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

#[cfg(feature = "sign")]
pub use self::signing::*;

#[cfg(feature = "sign")]
mod signing {
    use super::*;
    use pgp::composed::{ArmorOptions, KeyType, SecretKeyParamsBuilder, SignedSecretKey};
    use pgp::types::{KeyVersion, Password};

    /// Reads an armored secret key.
    pub fn parse_secret_key(what: &str, armored: &str) -> Result<SignedSecretKey> {
        SignedSecretKey::from_string(armored)
            .map(|(k, _)| k)
            .map_err(|e| Error::Key {
                what: what.to_string(),
                reason: e.to_string(),
            })
    }

    /// An armored detached signature over `data`, made with the secret primary key.
    pub fn sign_detached(key: &SignedSecretKey, passphrase: &str, data: &[u8]) -> Result<String> {
        let pw = Password::from(passphrase);
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &key.primary_key,
            &pw,
            HashAlgorithm::Sha256,
            data,
        )
        .map_err(|e| Error::Sign(e.to_string()))?;
        sig.to_armored_string(ArmorOptions::default())
            .map_err(|e| Error::Sign(e.to_string()))
    }

    /// A new v4 Ed25519 (legacy EdDSA) signing key that GnuPG 2.2 also reads; returns the secret
    /// key and its armored public half.
    pub fn generate_key(user_id: &str) -> Result<(SignedSecretKey, String)> {
        let mut b = SecretKeyParamsBuilder::default();
        b.version(KeyVersion::V4)
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(user_id.to_string());
        let params = b.build().map_err(|e| Error::Sign(e.to_string()))?;
        let sec = params
            .generate(rand::thread_rng())
            .map_err(|e| Error::Sign(e.to_string()))?;
        let public = sec
            .to_public_key()
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| Error::Sign(e.to_string()))?;
        Ok((sec, public))
    }

    /// The armored secret key, for writing a key file.
    pub fn armor_secret_key(key: &SignedSecretKey) -> Result<String> {
        key.to_armored_string(ArmorOptions::default())
            .map_err(|e| Error::Sign(e.to_string()))
    }
}

#[cfg(all(test, feature = "sign"))]
mod tests {
    use super::*;

    #[test]
    fn armor_without_a_body_is_refused_not_a_panic() {
        for text in [
            "-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n",
            "\n\n-----END",
            "-----END PGP SIGNATURE-----\n\nbody",
        ] {
            let e = dearmor(text).unwrap_err().to_string();
            assert!(e.contains("body") || e.contains("END"), "{text:?}: {e}");
        }
        let crash = std::fs::read("tests/fuzz-regressions/signature-empty-armor-body.bin").unwrap();
        let text = String::from_utf8_lossy(&crash);
        for part in text.split('\0') {
            let _ = dearmor(part);
        }
    }

    fn ring(keys: &[&str]) -> Keyring {
        Keyring::from_armored(
            keys.iter()
                .enumerate()
                .map(|(i, k)| (if i == 0 { "a" } else { "b" }, *k)),
        )
        .unwrap()
    }

    struct Admins {
        secret: Vec<pgp::composed::SignedSecretKey>,
        public: Vec<String>,
    }

    fn admins(n: usize) -> Admins {
        let (secret, public) = (0..n)
            .map(|i| generate_key(&format!("admin{i} <a{i}@example.org>")).unwrap())
            .unzip();
        Admins { secret, public }
    }

    const DATA: &[u8] = br#"{"format":1,"serial":3}"#;

    fn sigs(a: &Admins, who: &[usize], data: &[u8]) -> Vec<String> {
        who.iter()
            .map(|&i| sign_detached(&a.secret[i], "", data).unwrap())
            .collect()
    }

    fn keyring_of(a: &Admins, who: &[usize]) -> Keyring {
        Keyring::from_armored(who.iter().map(|&i| ("admin", a.public[i].as_str()))).unwrap()
    }

    #[test]
    fn two_of_three_is_accepted() {
        let a = admins(3);
        let v = verify(&keyring_of(&a, &[0, 1, 2]), DATA, &sigs(&a, &[0, 2], DATA))
            .require(2)
            .unwrap();
        assert_eq!(v.valid.len(), 2);
        assert!(v.ignored.is_empty());
    }

    #[test]
    fn one_of_two_is_refused() {
        let a = admins(2);
        let e = verify(&keyring_of(&a, &[0, 1]), DATA, &sigs(&a, &[1], DATA))
            .require(2)
            .unwrap_err();
        assert!(e.to_string().contains("got 1, need 2"), "{e}");
    }

    #[test]
    fn same_key_signing_twice_counts_once() {
        let a = admins(2);
        let v = verify(&keyring_of(&a, &[0, 1]), DATA, &sigs(&a, &[0, 0], DATA));
        assert_eq!(v.valid.len(), 1);
        assert!(v.ignored[0].contains("counted once"), "{:?}", v.ignored);
        assert!(v.require(2).is_err());
    }

    #[test]
    fn unknown_signer_plus_enough_known_ones_is_accepted() {
        let a = admins(3);
        let v = verify(&keyring_of(&a, &[0, 1]), DATA, &sigs(&a, &[2, 0, 1], DATA))
            .require(2)
            .unwrap();
        assert_eq!(v.valid.len(), 2);
        assert_eq!(v.ignored.len(), 1);
        assert!(
            v.ignored[0].contains("not in the keyring"),
            "{:?}",
            v.ignored
        );
    }

    #[test]
    fn one_byte_changed_fails_every_signature() {
        let a = admins(2);
        let s = sigs(&a, &[0, 1], DATA);
        let mut tampered = DATA.to_vec();
        tampered[5] ^= 1;
        let v = verify(&keyring_of(&a, &[0, 1]), &tampered, &s);
        assert!(v.valid.is_empty());
        assert_eq!(v.ignored.len(), 2);
        assert!(
            v.ignored.iter().all(|m| m.contains("does not verify")),
            "{:?}",
            v.ignored
        );
    }

    #[test]
    fn garbage_signatures_are_reported_not_fatal() {
        let a = admins(1);
        let mut s = sigs(&a, &[0], DATA);
        s.push("not a signature".into());
        let v = verify(&keyring_of(&a, &[0]), DATA, &s).require(1).unwrap();
        assert_eq!(v.ignored.len(), 1);
        assert!(v.ignored[0].contains("#2"));
    }

    #[test]
    fn zero_threshold_is_refused() {
        assert!(Verdict::default().require(0).is_err());
    }

    #[test]
    fn duplicate_keys_and_bad_armor_are_refused_when_loading() {
        let a = admins(1);
        assert!(
            Keyring::from_armored([("x", a.public[0].as_str()), ("y", a.public[0].as_str())])
                .is_err()
        );
        let e = Keyring::from_armored([("admin1.asc", "garbage")]).unwrap_err();
        assert!(e.to_string().contains("admin1.asc"), "{e}");
        let _ = ring(&[a.public[0].as_str()]);
    }

    #[test]
    fn dearmor_round_trips() {
        let a = admins(1);
        let s = sigs(&a, &[0], DATA).remove(0);
        let flat = dearmor(&s).unwrap();
        assert!(!flat.contains('\n'));
        let back = rearmor(&flat).unwrap();
        assert!(verify(&keyring_of(&a, &[0]), DATA, &[back])
            .require(1)
            .is_ok());
        assert!(rearmor("abc;def").is_err());
    }

    fn dev_key(name: &str, part: &str) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/dev-keys");
        std::fs::read_to_string(dir.join(format!("{name}.{part}.asc"))).unwrap()
    }

    #[test]
    fn go_loaders_get_rsa_signatures_with_their_crc_and_never_short_or_ed25519_ones() {
        let secret = parse_secret_key("rsa1", &dev_key("rsa1", "sec")).unwrap();
        let public = parse_public_key("rsa1", &dev_key("rsa1", "pub")).unwrap();
        let ring = Keyring::from_keys(vec![public.clone()]);
        // Signatures over counted data until one whose integer packs a byte short (1 in 256).
        let (mut full, mut short) = (None, None);
        for n in 0..4000u32 {
            let data = format!("v1 text {n}");
            let sig = sign_detached(&secret, "", data.as_bytes()).unwrap();
            match (rsa_signature_len(&sig), &full, &short) {
                (Some(256), None, _) => full = Some((data, sig)),
                (Some(255), _, None) => short = Some((data, sig)),
                _ => {}
            }
            if full.is_some() && short.is_some() {
                break;
            }
        }
        let (data, sig) = full.expect("a full-length signature");
        go_check(&sig, &public).unwrap();
        let flat = go_flat(&sig).unwrap();
        let crc = flat.rsplit('=').next().unwrap();
        assert_eq!(crc.len(), 4, "MIG's one-line form ends with =CRC24: {flat}");
        let back = rearmor(&flat).unwrap();
        assert_eq!(verify(&ring, data.as_bytes(), &[back]).valid.len(), 1);
        let (data, sig) = short.expect("a short signature within 4000");
        assert_eq!(
            verify(&ring, data.as_bytes(), std::slice::from_ref(&sig))
                .valid
                .len(),
            1
        );
        let e = go_check(&sig, &public).unwrap_err().to_string();
        assert!(
            e.contains("255 bytes for a 256-byte key") && e.contains("sign again"),
            "{e}"
        );

        let ed = admins(1);
        let ed_sig = sigs(&ed, &[0], DATA).remove(0);
        let e = go_flat(&ed_sig).unwrap_err().to_string();
        assert!(e.contains("verify only RSA, DSA and ECDSA"), "{e}");
        assert_eq!(rsa_signature_len(&ed_sig), None);
    }
}
