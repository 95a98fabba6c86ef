//! The loader's configuration: the built-in part (made by build.rs, holds everything that decides
//! trust) and the optional run-time INI file `<root>/etc/mig/mig-loader.cfg` (MIG's format, the
//! dictionary's `loaderconfig` entry), which may only move the API URL, add tags and switch
//! discovery. docs/design.md §4.1: nothing read at run time can lower the threshold or add keys.

use crate::error::{Error, Result};
use crate::limits::Limits;
use mig_http::HttpConfig;
use mig_protocol::ini::Ini;
use std::collections::BTreeMap;
use std::path::Path;

/// The version of the root of trust that the built-in keys and threshold are (docs/design.md
/// §4.1): `-V` prints it and every run names it beside the signatures it counted.
pub const BUILT_IN_ROOT_VERSION: u64 = mig_protocol::root::BUILT_IN_VERSION;

/// The configuration baked into the binary by build.rs from the TOML named by `LOADERCONF`.
#[derive(Debug, Clone, Copy)]
pub struct BuildConfig {
    /// The TOML the binary was built from (for messages).
    pub source: &'static str,
    /// Built from the development configuration (publicly known keys): warn on every run.
    pub development: bool,
    pub api_url: &'static str,
    /// (file name, PEM) of the CA pinned for the API; `None` trusts the system roots.
    pub ca_pem: Option<(&'static str, &'static str)>,
    pub allow_plain_http: bool,
    pub proxy: Option<&'static str>,
    pub connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub run_timeout_secs: u64,
    /// REQUIREDSIGNATURES: at least 1 (build.rs refuses less).
    pub required_signatures: u64,
    /// (file name, armored public key) of each administrator.
    pub keys: &'static [(&'static str, &'static str)],
    /// (file name, armored public key) of the API's freshness key: when set, every statement
    /// needs its unexpired signature (docs/design.md §4.20).
    pub freshness_key: Option<(&'static str, &'static str)>,
    pub tags: &'static [(&'static str, &'static str)],
    pub discover_public_ip: bool,
    pub discover_aws_metadata: bool,
    pub trigger_timeout_secs: u64,
    pub health_timeout_secs: u64,
}

impl BuildConfig {
    /// The HTTP client settings for the API: only the built-in configuration decides them.
    pub fn http(&self) -> HttpConfig {
        let limits = Limits::new(self);
        HttpConfig {
            ca_pem: self.ca_pem.map(|(_, pem)| pem.as_bytes().to_vec()),
            allow_plain_http: self.allow_plain_http,
            connect_timeout: limits.connect,
            request_timeout: limits.request,
            proxy: self.proxy.map(str::to_string),
            user_agent: concat!("mig-loader/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// What the run-time file may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub api: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub discover_public_ip: Option<bool>,
    pub discover_aws_metadata: Option<bool>,
    /// Lines that were read but have no effect (said once in the log).
    pub ignored: Vec<String>,
}

/// The effective settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub build: BuildConfig,
    pub limits: Limits,
    pub api_url: String,
    pub tags: BTreeMap<String, String>,
    pub discover_public_ip: bool,
    pub discover_aws_metadata: bool,
}

impl Settings {
    /// The built-in configuration with the run-time file's allowed changes applied.
    pub fn new(build: BuildConfig, rt: &RuntimeConfig) -> Self {
        let mut tags: BTreeMap<String, String> = build
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tags.extend(rt.tags.clone());
        Settings {
            build,
            limits: Limits::new(&build),
            api_url: rt.api.clone().unwrap_or_else(|| build.api_url.to_string()),
            tags,
            discover_public_ip: rt.discover_public_ip.unwrap_or(build.discover_public_ip),
            discover_aws_metadata: rt
                .discover_aws_metadata
                .unwrap_or(build.discover_aws_metadata),
        }
    }
}

impl RuntimeConfig {
    /// Whether a run under `build` with this file could still reach its API: a signed file that
    /// names an API this build may not use would stop every later run before it could fetch a
    /// fix, so it is refused while the old one is still in place.
    pub fn check_usable(&self, build: &BuildConfig) -> Result<()> {
        let settings = Settings::new(*build, self);
        mig_http::check_url(&build.http(), &settings.api_url).map_err(Error::from)
    }

    /// Reads `path` if it exists, at most `cap` bytes; a missing file is the empty configuration.
    pub fn load(path: &Path, cap: u64) -> Result<Self> {
        let Some(text) = crate::fsutil::read_small(path, cap)? else {
            return Ok(Self::default());
        };
        Self::parse(&text).map_err(|m| Error::Config(format!("{}: {m}", path.display())))
    }

    /// Parses MIG's gcfg INI subset: `[loader]` with `api`, `tags = key:value` (repeatable),
    /// `discoverpublicip`/`discoverawsmeta` on|off; keys are case-insensitive.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut cfg = RuntimeConfig::default();
        let ini = Ini::parse(text).map_err(|e| e.to_string())?;
        for (line, name) in ini.sections_at() {
            if !matches!(name, "loader" | "logging") {
                return Err(format!("line {line}: unknown section [{name}]"));
            }
        }
        for e in ini.entries() {
            let (n, key, value) = (e.line, e.key.as_str(), e.value.as_str());
            match (e.section.as_str(), key) {
                ("logging", _) => {
                    cfg.ignored.push(format!(
                        "[logging] {key}: mig-loader logs to stdout and stderr"
                    ));
                }
                ("loader", "api") => {
                    if !(value.starts_with("https://") || value.starts_with("http://"))
                        || value.chars().any(char::is_whitespace)
                    {
                        return Err(format!("line {n}: api must be an http(s) URL"));
                    }
                    cfg.api = Some(value.to_string());
                }
                ("loader", "tags") => {
                    // MIG: "key:value", spaces trimmed; unlike MIG a value may contain ':'.
                    let (k, v) = value
                        .split_once(':')
                        .ok_or_else(|| format!("line {n}: tags must be key:value"))?;
                    let (k, v) = (k.trim(), v.trim());
                    if k.is_empty() {
                        return Err(format!("line {n}: tag with an empty name"));
                    }
                    cfg.tags.insert(k.to_string(), v.to_string());
                }
                ("loader", "discoverpublicip") => {
                    cfg.discover_public_ip =
                        Some(on_off(value).ok_or_else(|| {
                            format!("line {n}: discoverpublicip must be on or off")
                        })?)
                }
                ("loader", "discoverawsmeta") => {
                    cfg.discover_aws_metadata =
                        Some(on_off(value).ok_or_else(|| {
                            format!("line {n}: discoverawsmeta must be on or off")
                        })?)
                }
                // docs/design.md §4.17: the threshold and the keys are built in, never read here.
                ("loader", "requiredsignatures" | "proxies") => cfg.ignored.push(format!(
                    "[loader] {key}: ignored, the built-in configuration decides it"
                )),
                ("loader", other) => return Err(format!("line {n}: unknown key `{other}`")),
                _ => return Err(format!("line {n}: unknown section [{}]", e.section)),
            }
        }
        Ok(cfg)
    }
}

fn on_off(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: BuildConfig = BuildConfig {
        source: "test.toml",
        development: true,
        api_url: "https://api.example.org/api/v2/",
        ca_pem: None,
        allow_plain_http: false,
        proxy: None,
        connect_timeout_secs: 1,
        request_timeout_secs: 2,
        run_timeout_secs: 3,
        required_signatures: 2,
        keys: &[],
        freshness_key: None,
        tags: &[("operator", "myorg")],
        discover_public_ip: true,
        discover_aws_metadata: false,
        trigger_timeout_secs: 4,
        health_timeout_secs: 5,
    };

    #[test]
    fn mig_style_file_moves_url_and_tags_only() {
        let rt = RuntimeConfig::parse(
            "# comment\n[Loader]\n  API = \"http://127.0.0.1:9/api/v2/\"\n tags = env:prod\n tags = team : sec:ops\n discoverpublicip = off\n requiredsignatures = 0\n[logging]\nmode = stdout\n",
        )
        .unwrap();
        assert_eq!(rt.api.as_deref(), Some("http://127.0.0.1:9/api/v2/"));
        assert_eq!(rt.tags["team"], "sec:ops");
        assert_eq!(rt.ignored.len(), 2, "{:?}", rt.ignored);
        let s = Settings::new(SAMPLE, &rt);
        assert_eq!(s.api_url, "http://127.0.0.1:9/api/v2/");
        assert_eq!(s.tags["operator"], "myorg");
        assert_eq!(s.tags["env"], "prod");
        assert!(!s.discover_public_ip);
        assert_eq!(s.build.required_signatures, 2);
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        for (text, want) in [
            ("[loader]\napi\n", "line 2"),
            ("[keys]\n", "unknown section"),
            ("api = x\n", "outside of any [section]"),
            ("[loader]\ntags = nocolon\n", "key:value"),
            ("[loader]\ndiscoverawsmeta = maybe\n", "on or off"),
            ("[loader]\nkeys = /tmp/evil.asc\n", "unknown key"),
            ("[loader]\napi = ftp://x/\n", "http(s)"),
        ] {
            let e = RuntimeConfig::parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_file_naming_an_api_this_build_cannot_use_is_unusable() {
        let plain = RuntimeConfig::parse("[loader]\napi = http://10.0.0.1/api/v2/\n").unwrap();
        let e = plain.check_usable(&SAMPLE).unwrap_err().to_string();
        assert!(e.contains("plain http://"), "{e}");
        let tls = RuntimeConfig::parse("[loader]\napi = https://10.0.0.1/api/v2/\n").unwrap();
        tls.check_usable(&SAMPLE).unwrap();
        RuntimeConfig::default().check_usable(&SAMPLE).unwrap();
    }

    #[test]
    fn missing_file_is_empty_and_oversized_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mig-loader.cfg");
        let cap = Limits::new(&SAMPLE).runtime_config;
        assert_eq!(
            RuntimeConfig::load(&p, cap).unwrap(),
            RuntimeConfig::default()
        );
        std::fs::write(&p, "#".repeat(cap as usize + 1)).unwrap();
        let e = RuntimeConfig::load(&p, cap).unwrap_err().to_string();
        assert!(e.contains("mig-loader.cfg"), "{e}");
        std::fs::write(&p, "[loader]\nbogus = 1\n").unwrap();
        let e = RuntimeConfig::load(&p, cap).unwrap_err().to_string();
        assert!(e.contains("mig-loader.cfg") && e.contains("bogus"), "{e}");
    }
}
