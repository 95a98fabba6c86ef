//! Loader ↔ API wire types (docs/design.md §3). Defined once here; mig-api and mig-console use these.

use crate::error::{Error, Result};
use crate::statement::Serial;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Header carrying the loader key.
pub const LOADER_KEY_HEADER: &str = "X-LOADERKEY";
/// Route of the manifest request, relative to the API base (`…/api/v2/`).
pub const MANIFEST_PATH: &str = "loader/manifest";
/// Route prefix of file bodies: `loader/files/<sha256>`.
pub const FILES_PATH: &str = "loader/files/";
/// Route of the outcome report.
pub const REPORT_PATH: &str = "loader/report";
/// The largest manifest response a loader reads.
pub const MAX_MANIFEST_RESPONSE: u64 = 256 * 1024;
/// The most signatures a manifest response may carry.
pub const MAX_SIGNATURES: usize = 32;
/// The largest armored signature accepted.
pub const MAX_SIGNATURE_BYTES: usize = 16 * 1024;

/// AWS instance metadata, as MIG reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aws {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instanceid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub localipv4: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub amiid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instancetype: String,
}

/// The environment a loader reports (MIG's `environment` field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub ident: String,
    #[serde(default)]
    pub init: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub publicip: String,
    #[serde(default)]
    pub aws: Aws,
}

/// The agent part of a manifest request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    #[serde(default)]
    pub queueloc: String,
    #[serde(default)]
    pub environment: Environment,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// What the loader has installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Have {
    pub serial: Serial,
}

/// `POST loader/manifest` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRequest {
    pub agent: Agent,
    #[serde(default)]
    pub have: Have,
}

/// `POST loader/manifest` answer: the statement text exactly as signed and the armored signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestResponse {
    pub statement: String,
    pub signatures: Vec<String>,
    /// The API's freshness signature over this statement (docs/design.md §4.20). Optional on the
    /// wire: loaders built without a freshness key ignore it, an API without one sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<crate::freshness::Freshness>,
    /// The newest root of trust the API has accepted (docs/design.md §4.21): a loader whose root
    /// is older walks the chain up to it before it verifies the statement, so a run with nothing
    /// new makes one request. Absent from an API without roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<u64>,
}

impl ManifestResponse {
    /// Parses and bounds a response body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let r: ManifestResponse = serde_json::from_slice(body).map_err(|e| Error::Json {
            what: "manifest response".into(),
            reason: e.to_string(),
        })?;
        if r.signatures.len() > MAX_SIGNATURES {
            return Err(Error::Json {
                what: "manifest response".into(),
                reason: format!(
                    "{} signatures, at most {MAX_SIGNATURES}",
                    r.signatures.len()
                ),
            });
        }
        if let Some(i) = r
            .signatures
            .iter()
            .position(|s| s.len() > MAX_SIGNATURE_BYTES)
        {
            return Err(Error::TooLarge {
                what: format!("signature #{}", i + 1),
                limit: MAX_SIGNATURE_BYTES as u64,
            });
        }
        Ok(r)
    }
}

/// The outcome of a run, as reported to the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportResult {
    Installed,
    Unchanged,
    Failed,
    RolledBack,
    Rejected,
}

impl ReportResult {
    /// Every result, in the order the console shows them.
    pub const ALL: [ReportResult; 5] = [
        ReportResult::Installed,
        ReportResult::Unchanged,
        ReportResult::Failed,
        ReportResult::RolledBack,
        ReportResult::Rejected,
    ];

    /// The result spelled `s` (`rolled_back`), if any.
    pub fn parse(s: &str) -> Option<ReportResult> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A run that did not leave the offered serial running.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            ReportResult::Failed | ReportResult::RolledBack | ReportResult::Rejected
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportResult::Installed => "installed",
            ReportResult::Unchanged => "unchanged",
            ReportResult::Failed => "failed",
            ReportResult::RolledBack => "rolled_back",
            ReportResult::Rejected => "rejected",
        }
    }
}

/// `POST loader/report` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub serial: Serial,
    pub result: ReportResult,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// The error body every API error carries: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Code and message of an API error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: u16,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

/// Length of the public prefix of a loader key.
pub const LOADER_PREFIX_LEN: usize = 8;
/// Length of a whole loader key.
pub const LOADER_KEY_LEN: usize = 40;

/// A loader key: exactly 40 ASCII alphanumerics, an 8-character prefix then a 32-character secret.
#[derive(Clone, PartialEq, Eq)]
pub struct LoaderKey(String);

impl LoaderKey {
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() != LOADER_KEY_LEN {
            return Err(Error::LoaderKey(format!(
                "{} characters, expected exactly {LOADER_KEY_LEN}",
                s.len()
            )));
        }
        if !s.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::LoaderKey(
                "only ASCII letters and digits are allowed".into(),
            ));
        }
        Ok(LoaderKey(s.to_string()))
    }

    /// Reads the key from the first line of a key file's content.
    pub fn from_file_content(content: &str) -> Result<Self> {
        let first = content.lines().next().unwrap_or("").trim_matches(' ');
        Self::parse(first)
    }

    pub fn prefix(&self) -> &str {
        &self.0[..LOADER_PREFIX_LEN]
    }

    pub fn secret(&self) -> &str {
        &self.0[LOADER_PREFIX_LEN..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for LoaderKey {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoaderKey({}…)", self.prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_key_must_be_forty_alphanumerics() {
        let k = LoaderKey::from_file_content("AbCdEfGh0123456789abcdefghijklmnopqrstuv\r\nignored")
            .unwrap();
        assert_eq!(k.prefix(), "AbCdEfGh");
        assert_eq!(k.secret().len(), 32);
        assert!(!format!("{k:?}").contains("0123456789"));
        for bad in [
            "short",
            "AbCdEfGh0123456789abcdefghijklmnopqrstu!",
            "AbCdEfGh0123456789abcdefghijklmnopqrstuvw",
            "",
        ] {
            assert!(LoaderKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_request_uses_mig_field_names() {
        let mut r = ManifestRequest::default();
        r.agent.name = "host.example".into();
        r.agent.environment.os = "linux".into();
        r.agent.tags.insert("operator".into(), "myorg".into());
        r.have.serial = Serial::new(4);
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["agent"]["environment"]["os"], "linux");
        assert_eq!(v["agent"]["tags"]["operator"], "myorg");
        assert_eq!(v["have"]["serial"], 4);
    }

    #[test]
    fn oversized_manifest_responses_are_refused() {
        let many =
            serde_json::json!({"statement": "{}", "signatures": vec!["x"; MAX_SIGNATURES + 1]});
        assert!(ManifestResponse::parse(many.to_string().as_bytes()).is_err());
        let big = serde_json::json!({"statement": "{}", "signatures": ["x".repeat(MAX_SIGNATURE_BYTES + 1)]});
        assert!(ManifestResponse::parse(big.to_string().as_bytes()).is_err());
        assert!(ManifestResponse::parse(b"<html>proxy</html>")
            .unwrap_err()
            .to_string()
            .contains("manifest response"));
    }
}
