//! Administrator-side wire types shared by mig-api and mig-console (docs/api.md lists the routes).

use crate::dictionary::DictName;
use crate::error::{Error, Result};
pub use crate::halt::{HaltAfter, HaltChange, HaltRule, Halted};
use crate::loader::Environment;
use crate::statement::{Entry, Platform};
use crate::status::{InvestigatorStatus, ManifestStatus};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// MIG's signed-token header.
pub const PGP_AUTH_HEADER: &str = "X-PGPAUTHORIZATION";
/// Per-investigator API key header.
pub const API_KEY_HEADER: &str = "X-MIGAPIKEY";

/// A parsed `X-PGPAUTHORIZATION` value: `1;<ts>;<nonce>;<de-armored signature>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthToken {
    pub timestamp: Timestamp,
    pub nonce: String,
    /// The de-armored signature (empty before signing).
    pub signature: String,
}

impl AuthToken {
    /// A fresh unsigned token; `nonce` must be unpredictable (the console uses a CSPRNG).
    pub fn new(timestamp: Timestamp, nonce: String) -> Self {
        AuthToken {
            timestamp,
            nonce,
            signature: String::new(),
        }
    }

    /// The bytes the investigator signs: `1;<ts>;<nonce>\n`.
    pub fn signed_data(&self) -> String {
        format!("1;{};{}\n", self.timestamp, self.nonce)
    }

    /// The header value.
    pub fn header_value(&self) -> String {
        format!("1;{};{};{}", self.timestamp, self.nonce, self.signature)
    }

    /// Parses a header value; every part is checked, nothing is trusted.
    pub fn parse(value: &str) -> Result<Self> {
        let bad = |m: &str| Error::Config(format!("{PGP_AUTH_HEADER}: {m}"));
        if value.len() > 8192 {
            return Err(bad("too long"));
        }
        let mut parts = value.splitn(4, ';');
        let (Some(v), Some(ts), Some(nonce), Some(sig)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected 1;<timestamp>;<nonce>;<signature>"));
        };
        if v != "1" {
            return Err(bad("unsupported token version"));
        }
        if nonce.is_empty()
            || nonce.len() > 128
            || !nonce.bytes().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(bad("nonce must be 1 to 128 ASCII letters and digits"));
        }
        let timestamp = Timestamp::parse(ts).map_err(|e| bad(&e.to_string()))?;
        Ok(AuthToken {
            timestamp,
            nonce: nonce.to_string(),
            signature: sig.to_string(),
        })
    }
}

pub use crate::permission::{parse_permissions, permission_names, Permission, PERMISSION_SETS};

/// `POST manifests`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewManifest {
    pub name: String,
    pub target: String,
    pub platform: Platform,
    /// How long the statement stays valid; the API's default when absent.
    #[serde(default)]
    pub valid_days: Option<u32>,
    /// Halts the rollout when enough of it fails (docs/design.md §6.4).
    #[serde(default)]
    pub halt: Option<HaltRule>,
    /// Also for MIG's Go loaders: the API makes the text they verify (crate::mig_v1) beside the
    /// statement, to be signed too (docs/design.md §8.3).
    #[serde(default)]
    pub v1: bool,
    /// The tar.gz, standard base64.
    pub archive: String,
}

/// A manifest as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestRecord {
    pub id: u64,
    pub name: String,
    pub target: String,
    pub status: ManifestStatus,
    pub platform: Platform,
    pub created: Timestamp,
    pub issued: Timestamp,
    pub expires: Timestamp,
    /// Names of the investigators whose signatures verified.
    pub signers: Vec<String>,
    pub entries: Vec<Entry>,
    #[serde(default)]
    pub halt: Option<HaltRule>,
    /// Set while the status is `halted`.
    #[serde(default)]
    pub halted: Option<Halted>,
    /// The exact signed statement text.
    pub statement: String,
    /// The text MIG's Go loaders verify, for a manifest made for them (crate::mig_v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1_text: Option<String>,
    /// Names of the investigators whose signatures over `v1_text` verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub v1_signers: Vec<String>,
}

/// `POST manifests/<id>/signatures`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewSignature {
    /// An armored detached signature over the statement bytes.
    pub signature: String,
    /// The same investigator's armored signature over the manifest's `v1_text`, for a manifest
    /// made for MIG's Go loaders (RSA, DSA or ECDSA keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1_signature: Option<String>,
}

/// `POST manifests/<id>/status` and `POST loaders/<id>/status`, `investigators/<id>/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: String,
}

/// The last report a loader sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastReport {
    pub serial: u64,
    pub result: String,
    pub message: String,
    pub time: Timestamp,
}

/// One report of a loader's history (`GET loaders/<id>/reports`), newest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReportRecord {
    pub serial: u64,
    pub result: String,
    pub message: String,
    pub time: Timestamp,
}

/// A failure message and how many loaders last reported it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailureCount {
    pub result: String,
    pub message: String,
    pub loaders: u64,
}

/// How far one manifest has reached the fleet (`GET rollout`, `GET manifests/<id>/rollout`),
/// from each loader's latest state: what it was last given and what it last reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rollout {
    pub manifest: u64,
    pub name: String,
    pub status: ManifestStatus,
    pub platform: Platform,
    /// Loaders whose last manifest request was answered with this manifest.
    pub given: u64,
    /// Loaders whose last report says this serial is installed (`installed`, `unchanged`).
    pub on_it: u64,
    /// Loaders given it whose last report is about an older serial, or who never reported.
    pub older: u64,
    /// Loaders whose last report about this serial is `failed`, `rolled_back`, `rejected`.
    pub failed: u64,
    pub rolled_back: u64,
    pub rejected: u64,
    /// Loaders given it and not heard from for more than `stale_after` seconds.
    pub stale: u64,
    pub stale_after: u64,
    /// The most common failure messages about this serial, most loaders first.
    pub failures: Vec<FailureCount>,
    #[serde(default)]
    pub halt: Option<HaltRule>,
    #[serde(default)]
    pub halted: Option<Halted>,
    /// When its statement expires: no loader installs it after that, and selection passes it
    /// over.
    #[serde(default)]
    pub expires: Option<Timestamp>,
}

/// `GET adoption`: how many loaders were on each recent serial over time, from the report
/// history (a loader is on a serial when its latest report then was `installed` or `unchanged`
/// for it, as in [`Rollout::on_it`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Adoption {
    /// The instants counted, oldest first; the last is the time of the answer.
    pub times: Vec<Timestamp>,
    /// The newest serials any loader was on in that time, newest first.
    pub series: Vec<AdoptionSeries>,
}

/// One serial's line of an [`Adoption`]: `loaders[i]` were on it at `times[i]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdoptionSeries {
    pub serial: u64,
    pub loaders: Vec<u64>,
}

/// A loader as the API shows it (never its key).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoaderRecord {
    pub id: u64,
    pub name: String,
    pub prefix: String,
    pub agentname: Option<String>,
    pub enabled: bool,
    pub expectenv: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub lastseen: Option<Timestamp>,
    pub environment: Option<Environment>,
    pub tags: BTreeMap<String, String>,
    pub last_report: Option<LastReport>,
    /// The loader protocol of its last manifest request: `v1` (MIG's Go loader) or `v2`.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// `POST loaders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewLoader {
    pub name: String,
    #[serde(default)]
    pub expectenv: Option<String>,
}

/// The answer to creating a loader or rotating its key: the key is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoaderKeyIssued {
    pub loader: LoaderRecord,
    pub key: String,
}

/// `POST loaders/<id>/expectenv`; empty or absent clears it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpectEnv {
    #[serde(default)]
    pub expectenv: Option<String>,
}

/// `POST loaders/<id>/attributes`: replaces the administrator-owned attributes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attributes {
    pub attributes: BTreeMap<String, String>,
}

/// An investigator as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InvestigatorRecord {
    pub id: u64,
    pub name: String,
    pub fingerprint: String,
    pub status: InvestigatorStatus,
    pub permissions: Vec<String>,
    pub created: Timestamp,
    pub has_apikey: bool,
}

/// `POST investigators`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewInvestigator {
    pub name: String,
    /// Armored OpenPGP public key.
    pub publickey: String,
    /// Set or bit names; `Default` is always added.
    pub permissions: Vec<String>,
}

/// `POST investigators/<id>/permissions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermissionChange {
    pub permissions: Vec<String>,
}

/// `POST investigators/<id>/apikey` answer, shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyIssued {
    pub apikey: String,
}

/// A targeting plugin as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PluginRecord {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub functions: Vec<String>,
    pub builtin: bool,
    pub created: Timestamp,
}

/// `POST plugins`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewPlugin {
    pub name: String,
    /// The `.wasm` module, standard base64.
    pub wasm: String,
}

/// True when every entry of a manifest names a dictionary file (the API refuses other names).
pub fn entries_are_dictionary_names(entries: &[Entry]) -> bool {
    entries.iter().all(|e| DictName::parse(&e.name).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_rejects_junk() {
        let mut t = AuthToken::new(Timestamp(1_796_013_216), "abc123".into());
        assert_eq!(t.signed_data(), "1;2026-11-30T04:33:36Z;abc123\n");
        t.signature = "AAAA==ab12".into();
        assert_eq!(AuthToken::parse(&t.header_value()).unwrap(), t);
        for bad in [
            "2;2026-11-30T04:33:36Z;abc;sig",
            "1;yesterday;abc;sig",
            "1;2026-11-30T04:33:36Z;a b;sig",
            "1;2026-11-30T04:33:36Z",
        ] {
            assert!(AuthToken::parse(bad).is_err(), "{bad}");
        }
    }
}
