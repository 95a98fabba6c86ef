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

/// The token version this protocol signs and accepts (docs/design.md §3.8).
pub const TOKEN_VERSION: &str = "2";

/// Longest audience accepted: an API's base URL.
pub const MAX_AUDIENCE: usize = 512;

/// A parsed `X-PGPAUTHORIZATION` value: `2;<ts>;<nonce>;<audience>;<de-armored signature>`, the
/// signature over `2;<ts>;<nonce>;<audience>\n`. The audience names the API the token was made
/// for, so one API cannot replay it to another. MIG's version 1 (`1;<ts>;<nonce>;<signature>`)
/// names none and is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthToken {
    pub timestamp: Timestamp,
    pub nonce: String,
    /// The API the token is for, as [`audience`] writes its base URL.
    pub audience: String,
    /// The de-armored signature (empty before signing).
    pub signature: String,
}

impl AuthToken {
    /// A fresh unsigned token for the API of `audience` (from [`audience`]); `nonce` must be
    /// unpredictable (the console uses a CSPRNG).
    pub fn new(timestamp: Timestamp, nonce: String, audience: String) -> Self {
        AuthToken {
            timestamp,
            nonce,
            audience,
            signature: String::new(),
        }
    }

    /// The bytes the investigator signs: `2;<ts>;<nonce>;<audience>\n`.
    pub fn signed_data(&self) -> String {
        format!(
            "{TOKEN_VERSION};{};{};{}\n",
            self.timestamp, self.nonce, self.audience
        )
    }

    /// The header value.
    pub fn header_value(&self) -> String {
        format!(
            "{TOKEN_VERSION};{};{};{};{}",
            self.timestamp, self.nonce, self.audience, self.signature
        )
    }

    /// Parses a header value; every part is checked, nothing is trusted. A version 1 token is
    /// refused with [`Error::Value`] saying why; anything else malformed with [`Error::Config`].
    pub fn parse(value: &str) -> Result<Self> {
        let bad = |m: &str| Error::Config(format!("{PGP_AUTH_HEADER}: {m}"));
        if value.len() > 8192 {
            return Err(bad("too long"));
        }
        let mut parts = value.splitn(5, ';');
        let version = parts.next().unwrap_or_default();
        if version == "1" {
            return Err(Error::Value(format!(
                "{PGP_AUTH_HEADER}: version 1 tokens (MIG's 1;<timestamp>;<nonce>;<signature>) are \
                 refused: they name no API, so one sent to another MIG or mig-api server could be \
                 replayed here; mig-console signs version {TOKEN_VERSION} tokens, bound to this \
                 API's URL"
            )));
        }
        if version != TOKEN_VERSION {
            return Err(bad(&format!(
                "unsupported token version {:?} (expected {TOKEN_VERSION})",
                version.chars().take(16).collect::<String>()
            )));
        }
        let (Some(ts), Some(nonce), Some(aud), Some(sig)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected 2;<timestamp>;<nonce>;<audience>;<signature>"));
        };
        if nonce.is_empty()
            || nonce.len() > 128
            || !nonce.bytes().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(bad("nonce must be 1 to 128 ASCII letters and digits"));
        }
        match audience(aud) {
            Ok(normal) if normal == aud => {}
            Ok(normal) => {
                return Err(bad(&format!(
                    "audience {aud:?} is not written as the console writes it ({normal:?})"
                )))
            }
            Err(e) => return Err(bad(&e.to_string())),
        }
        let timestamp = Timestamp::parse(ts).map_err(|e| bad(&e.to_string()))?;
        Ok(AuthToken {
            timestamp,
            nonce: nonce.to_string(),
            audience: aud.to_string(),
            signature: sig.to_string(),
        })
    }
}

/// The audience of an API base URL, as the console signs it (from its `[api] url`) and the API
/// expects it (`[authentication] audience`, or where it listens), written one way so that equal
/// URLs give equal text: `scheme://host:port/path/`, scheme and host in lower case, the port
/// written even when it is the scheme's default, the path ending in `/`. Only http and https; a
/// user name, query or fragment is refused, and so is `;` (it separates the token's fields).
pub fn audience(url: &str) -> Result<String> {
    let bad = |m: &str| {
        let shown: String = url.chars().take(80).collect();
        Error::Value(format!("audience {shown:?}: {m}"))
    };
    if url.len() > MAX_AUDIENCE {
        return Err(bad("longer than 512 characters"));
    }
    if !url.bytes().all(|c| c.is_ascii_graphic()) || url.contains(';') {
        return Err(bad("only printable ASCII without spaces or `;`"));
    }
    if url.contains(['?', '#']) {
        return Err(bad("a query or fragment is not part of an API's base URL"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected https://HOST[:PORT]/PATH"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(bad("the scheme must be http or https")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(bad("a user name is not part of an API's base URL"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("the host's [ is not closed"))?;
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
            {
                return Err(bad("the host between [ ] is not an IPv6 address"));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected :PORT after the host"))?,
                ),
            };
            (format!("[{}]", h.to_ascii_lowercase()), port)
        }
        None => {
            let (h, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._".contains(&c))
            {
                return Err(bad("the host must be a name or an address"));
            }
            (h.to_ascii_lowercase(), port)
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0 && p.bytes().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
    };
    let slash = if path.ends_with('/') { "" } else { "/" };
    let written = format!("{scheme}://{host}:{port}{path}{slash}");
    // Written out it may grow (the port, the slash): the bound holds for what is signed.
    if written.len() > MAX_AUDIENCE {
        return Err(bad("longer than 512 characters once written out"));
    }
    Ok(written)
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
    /// The manifest this one renews (`POST manifests/<id>/renew`): the same entries, target,
    /// platform and halt rule under a new serial and expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews: Option<u64>,
}

/// How long before a manifest's expiry the API's log, `mig-console status` and its HTML report
/// call it out (seconds): time to renew it (`POST manifests/<id>/renew`).
pub const EXPIRY_WARNING: u64 = 14 * 86_400;

/// `POST manifests/<id>/renew`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RenewManifest {
    /// How long the new statement stays valid; the API's default when absent.
    #[serde(default)]
    pub valid_days: Option<u32>,
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

/// `GET freshness`: the API's online freshness key (docs/design.md §4.20) as the replica that
/// answers holds it, and the freshness signatures it hands out with its answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FreshnessState {
    /// The key's primary fingerprint (upper-case hex); none: no `[freshness] key`, so answers
    /// carry no freshness signature and a loader built with a freshness key refuses them.
    pub fingerprint: Option<String>,
    /// `[freshness] lifetime` in seconds: how long each signature is good for (0 without a key).
    pub lifetime: u64,
    /// The signature in each manifest's answer this replica keeps (made once per manifest and
    /// generation, again past half its lifetime), by manifest.
    pub signatures: Vec<FreshnessSignature>,
}

/// The freshness signature in one manifest's kept answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FreshnessSignature {
    pub manifest: u64,
    /// When it was made (the document's `issued`).
    pub issued: Timestamp,
    /// When a loader stops believing it (the document's `expires`).
    pub expires: Timestamp,
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
    /// Of `rejected`: loaders whose last report refused this serial because the freshness
    /// signature they were given had lapsed ([`crate::freshness::EXPIRED`]): every answer reaching
    /// them is stale (a freeze, a replay, or an API without its freshness key). They keep their
    /// running agent.
    #[serde(default)]
    pub freshness_expired: u64,
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
        let aud = "https://mig-api.example.net:1664/api/v2/";
        let mut t = AuthToken::new(Timestamp(1_796_013_216), "abc123".into(), aud.into());
        assert_eq!(
            t.signed_data(),
            "2;2026-11-30T04:33:36Z;abc123;https://mig-api.example.net:1664/api/v2/\n"
        );
        t.signature = "AAAA==ab12".into();
        assert_eq!(AuthToken::parse(&t.header_value()).unwrap(), t);
        for bad in [
            "3;2026-11-30T04:33:36Z;abc;https://h:443/;sig",
            "2;yesterday;abc;https://h:443/;sig",
            "2;2026-11-30T04:33:36Z;a b;https://h:443/;sig",
            "2;2026-11-30T04:33:36Z;abc;sig",
            "2;2026-11-30T04:33:36Z;abc;https://H/;sig",
            "2;2026-11-30T04:33:36Z;abc;ftp://h:21/;sig",
            "2;2026-11-30T04:33:36Z",
        ] {
            assert!(
                matches!(AuthToken::parse(bad), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_mig_version_1_token_is_refused_saying_it_names_no_api() {
        let e = AuthToken::parse("1;2026-11-30T04:33:36Z;abc123;AAAA==ab12").unwrap_err();
        assert!(matches!(e, Error::Value(_)), "{e:?}");
        assert!(e.to_string().contains("name no API"), "{e}");
    }

    #[test]
    fn an_audience_is_written_one_way() {
        for (url, want) in [
            (
                "https://mig-api.example.net/api/v2",
                "https://mig-api.example.net:443/api/v2/",
            ),
            (
                "HTTPS://MIG-API.Example.NET:443/api/v2/",
                "https://mig-api.example.net:443/api/v2/",
            ),
            (
                "http://127.0.0.1:1664/api/v2/",
                "http://127.0.0.1:1664/api/v2/",
            ),
            ("http://localhost", "http://localhost:80/"),
            ("http://[::1]:1664/api/v2/", "http://[::1]:1664/api/v2/"),
            ("https://[FE80::1]/x", "https://[fe80::1]:443/x/"),
        ] {
            assert_eq!(audience(url).unwrap(), want, "{url}");
            assert_eq!(audience(want).unwrap(), want, "{want} is a fixed point");
        }
        for (url, why) in [
            ("mig-api.example.net/api/v2/", "expected https://"),
            ("ftp://h/", "http or https"),
            ("https://admin@h/", "user name"),
            ("https://h/api?x=1", "query"),
            ("https://h:0/", "port"),
            ("https://h:99999/", "port"),
            ("https://h:+1/", "port"),
            ("https://h;x/", "`;`"),
            ("https://h x/", "printable"),
            ("https:///api/", "host"),
            ("https://[::1/", "not closed"),
            ("https://[::1]x/", ":PORT"),
        ] {
            let e = audience(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
        assert!(audience(&format!("https://h/{}", "a".repeat(600))).is_err());
        let e = audience(&format!("https://h/{}", "a".repeat(500))).unwrap_err();
        assert!(e.to_string().contains("once written out"), "{e}");
    }
}
