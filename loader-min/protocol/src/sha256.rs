//! SHA-256 digests as the protocol writes them: exactly 64 lower-case hex digits. A [`Sha256`] can
//! only be made from bytes or from text that passed that rule, so a value of this type never
//! needs checking again (it names stored files, so it must never carry a path character).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fmt;

/// A SHA-256 digest in lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

impl Sha256 {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_digest(&sha2::Sha256::digest(bytes))
    }

    /// The hex form of a finished digest.
    pub fn from_digest(digest: &[u8]) -> Self {
        Sha256(hex(digest))
    }

    /// Accepts exactly 64 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self> {
        if is_sha256_hex(s) {
            Ok(Sha256(s.to_string()))
        } else {
            let shown: String = s.chars().take(80).collect();
            Err(Error::Statement(format!(
                "sha256 {shown:?} is not 64 lower-case hex digits"
            )))
        }
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256 {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        if is_sha256_hex(&s) {
            Ok(Sha256(s))
        } else {
            Self::parse(&s)
        }
    }
}

impl std::str::FromStr for Sha256 {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl From<Sha256> for String {
    fn from(s: Sha256) -> String {
        s.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Sha256 {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Sha256 {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// True for exactly 64 lower-case hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Lower-case hex of `bytes`: digests, fingerprints, random secrets.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lower_case_hex_of_64() {
        let empty = Sha256::of(b"");
        assert_eq!(
            empty.as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Sha256::parse(empty.as_str()).unwrap(), empty);
        for bad in [
            "",
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "../0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(Sha256::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&empty).unwrap();
        assert_eq!(serde_json::from_str::<Sha256>(&json).unwrap(), empty);
        assert!(serde_json::from_str::<Sha256>("\"abc\"").is_err());
        assert_eq!(hex(&[0, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
