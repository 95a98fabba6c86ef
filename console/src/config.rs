//! `~/.migrc`: where the API is, which CA to pin, and who signs (a GnuPG key id or a key file).

use crate::error::{Error, Result};
use mig_protocol::ini::Ini;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// `[api] timeout` when the file sets none: a request, its whole body included, may take this long.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;
/// The range `[api] timeout` accepts.
const TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=3600;

/// Environment variable that supplies an API key (overrides `[api] apikey`).
pub const ENV_APIKEY: &str = "MIG_APIKEY";

/// Keys each known section accepts; a misspelled key is an error, not a silent default.
/// Other sections (MIG's `[targets]`, `[browser]`) are ignored so an old `.migrc` still loads.
const KNOWN: &[(&str, &[&str])] = &[
    (
        "api",
        &[
            "url",
            "audience",
            "cacert",
            "apikey",
            "skipverifycert",
            "timeout",
        ],
    ),
    ("gpg", &["keyid", "home", "program"]),
    ("signing", &["keyfile"]),
];

/// Who signs authentication tokens and manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The local `gpg` signs with this key (so gpg-agent, pinentry and smartcards work).
    Gpg {
        keyid: String,
        /// `[gpg] home`: passed as `--homedir` (otherwise GNUPGHOME or gpg's default).
        home: Option<PathBuf>,
        /// `[gpg] program`, default `gpg`.
        program: String,
    },
    /// An armored secret key file, signed in-process.
    KeyFile { path: PathBuf },
}

/// The console's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// Base URL of the API, ending in `/`.
    pub api_url: String,
    /// What every token names as the API it is for (docs/design.md §3.8): `[api] audience`, else
    /// `api_url`, as `mig_protocol::admin::audience` writes it. Never learnt from a server: a
    /// hostile one would name the API it wants to replay the token to.
    pub audience: String,
    /// PEM CA to pin; `None` uses the system roots.
    pub cacert: Option<PathBuf>,
    /// `X-MIGAPIKEY` credential, used instead of signed tokens when set.
    pub apikey: Option<String>,
    /// The signing identity, if any.
    pub identity: Option<Identity>,
    /// `[api] timeout`: the most one request may take, its whole answer included, in seconds.
    pub timeout_secs: u64,
}

/// `~/.migrc`.
pub fn default_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".migrc"))
}

/// Expands a leading `~/` with `$HOME`.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if !home.is_empty() => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

impl Config {
    /// Reads and checks the configuration at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let mut text = String::new();
        let f = std::fs::File::open(path).map_err(|e| Error::Config {
            path: path.display().to_string(),
            reason: format!("{e} (copy conf/migrc.example there, or choose a file with --config)"),
        })?;
        f.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::io("read", path, e))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(Error::TooLarge {
                what: path.display().to_string(),
                limit: MAX_CONFIG_BYTES,
            });
        }
        Self::from_text(path, &text, std::env::var(ENV_APIKEY).ok())
    }

    /// Builds the configuration from the file's text; `env_apikey` is `MIG_APIKEY`.
    pub fn from_text(path: &Path, text: &str, env_apikey: Option<String>) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.display().to_string(),
            reason,
        };
        let ini = Ini::parse(text).map_err(|e| bad(e.to_string()))?;
        // Sections of MIG's client file that the console does not use are allowed; a misspelt
        // key in one it uses is not.
        for e in ini.entries() {
            let Some((section, keys)) = KNOWN.iter().find(|(s, _)| *s == e.section) else {
                continue;
            };
            if !keys.contains(&e.key.as_str()) {
                return Err(bad(format!(
                    "line {}: unknown key {:?} in [{section}] (known: {})",
                    e.line,
                    e.key,
                    keys.join(", ")
                )));
            }
        }
        if ini
            .get("api", "skipverifycert")
            .is_some_and(|v| v != "off" && v != "false")
        {
            return Err(bad(
                "[api] skipverifycert is not supported: pin the API's CA with [api] cacert".into(),
            ));
        }
        let url = ini
            .get("api", "url")
            .ok_or_else(|| bad("[api] url is required".into()))?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(bad(format!("[api] url {url:?} must start with https://")));
        }
        let api_url = if url.ends_with('/') {
            url.to_string()
        } else {
            format!("{url}/")
        };
        // `[api] audience` is for an API reached by another URL than its own (an SSH tunnel);
        // behind a load balancer the API names the balancer's URL instead.
        let audience = match ini.get("api", "audience") {
            Some(a) => mig_protocol::admin::audience(a).map_err(|e| bad(format!("[api] {e}")))?,
            None => mig_protocol::admin::audience(&api_url)
                .map_err(|e| bad(format!("[api] url: {e}")))?,
        };
        let apikey = env_apikey
            .filter(|k| !k.is_empty())
            .or_else(|| ini.get("api", "apikey").map(str::to_string));
        if let Some(k) = &apikey {
            if !k.bytes().all(|c| c.is_ascii_graphic()) {
                return Err(bad(
                    "the API key holds characters outside printable ASCII".into()
                ));
            }
        }
        let gpg = ini.get("gpg", "keyid").map(|keyid| {
            let keyid: String = keyid.split_whitespace().collect();
            Identity::Gpg {
                keyid,
                home: ini.get("gpg", "home").map(expand_home),
                program: ini.get("gpg", "program").unwrap_or("gpg").to_string(),
            }
        });
        let keyfile = ini.get("signing", "keyfile").map(|p| Identity::KeyFile {
            path: expand_home(p),
        });
        let identity = match (gpg, keyfile) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "both [gpg] keyid and [signing] keyfile are set: keep one".into(),
                ))
            }
            (g, k) => g.or(k),
        };
        if let Some(Identity::Gpg { keyid, .. }) = &identity {
            // The key id goes on gpg's command line: it must not read as an option.
            if keyid.starts_with('-') || keyid.chars().any(char::is_control) {
                return Err(bad(format!("[gpg] keyid {keyid:?} is not a key id")));
            }
        }
        let timeout_secs = match ini.get("api", "timeout") {
            None => DEFAULT_TIMEOUT_SECS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| TIMEOUT_SECS.contains(n))
                .ok_or_else(|| {
                    bad(format!(
                        "[api] timeout {v:?} is not a number of seconds from {} to {}",
                        TIMEOUT_SECS.start(),
                        TIMEOUT_SECS.end()
                    ))
                })?,
        };
        Ok(Config {
            path: path.to_path_buf(),
            api_url,
            audience,
            cacert: ini.get("api", "cacert").map(expand_home),
            apikey,
            identity,
            timeout_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config> {
        Config::from_text(Path::new("/x/migrc"), text, None)
    }

    #[test]
    fn gpg_identity_and_url_with_trailing_slash() {
        let c = load(
            "[api]\nurl = http://127.0.0.1:1664/api/v2\n[gpg]\nkeyid = 3705 0AE0 8CB3 3351 018A  809E FD57 5A3E 1CEB 348D\nhome = /tmp/gh\n",
        )
        .unwrap();
        assert_eq!(c.api_url, "http://127.0.0.1:1664/api/v2/");
        assert_eq!(c.audience, "http://127.0.0.1:1664/api/v2/");
        assert_eq!(
            c.identity,
            Some(Identity::Gpg {
                keyid: "37050AE08CB33351018A809EFD575A3E1CEB348D".into(),
                home: Some("/tmp/gh".into()),
                program: "gpg".into()
            })
        );
        assert_eq!(c.apikey, None);
        assert_eq!(c.timeout_secs, DEFAULT_TIMEOUT_SECS);
        let c = load("[api]\nurl = https://x/\ntimeout = 20\n").unwrap();
        assert_eq!(c.timeout_secs, 20);
    }

    #[test]
    fn the_audience_comes_from_the_url_or_is_given_for_a_tunnel() {
        let c = load("[api]\nurl = https://MIG.example.net/api/v2\n").unwrap();
        assert_eq!(c.audience, "https://mig.example.net:443/api/v2/");
        let c = load(
            "[api]\nurl = http://127.0.0.1:8443/api/v2/\naudience = https://mig.example.net/api/v2/\n",
        )
        .unwrap();
        assert_eq!(c.api_url, "http://127.0.0.1:8443/api/v2/");
        assert_eq!(c.audience, "https://mig.example.net:443/api/v2/");
    }

    #[test]
    fn key_file_identity_and_api_key_from_the_environment() {
        let c = Config::from_text(
            Path::new("m"),
            "[api]\nurl = https://api/\napikey = fromfile\n[signing]\nkeyfile = /k/admin2.sec.asc\n",
            Some("fromenv".into()),
        )
        .unwrap();
        assert_eq!(
            c.identity,
            Some(Identity::KeyFile {
                path: "/k/admin2.sec.asc".into()
            })
        );
        assert_eq!(c.apikey.as_deref(), Some("fromenv"));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("[gpg]\nkeyid = A\n", "[api] url is required"),
            ("[api]\nurl = ftp://x/\n", "must start with https://"),
            (
                "[api]\nurl = https://x/\nurll = y\n",
                "unknown key \"urll\" in [api]",
            ),
            (
                "[api]\nurl = https://x/\n[gpg]\nkeyid = A\n[signing]\nkeyfile = k\n",
                "keep one",
            ),
            (
                "[api]\nurl = https://x/\n[gpg]\nkeyid = --homedir\n",
                "is not a key id",
            ),
            (
                "[api]\nurl = https://x/\nskipverifycert = on\n",
                "pin the API's CA",
            ),
            (
                "[api]\nurl = https://x/\ntimeout = 0\n",
                "[api] timeout \"0\" is not a number of seconds from 1 to 3600",
            ),
            (
                "[api]\nurl = https://x/\ntimeout = 5m\n",
                "[api] timeout \"5m\"",
            ),
            (
                "[api]\nurl = https://admin@x/\n",
                "[api] url: audience \"https://admin@x/\": a user name",
            ),
            (
                "[api]\nurl = https://x/\naudience = x;y\n",
                "[api] audience \"x;y\"",
            ),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.contains("/x/migrc"), "{e}");
        }
    }

    #[test]
    fn old_mig_sections_are_ignored() {
        let c = load("[api]\nurl = https://x/\n[targets]\nmacro = linux:os='linux'\n").unwrap();
        assert_eq!(c.identity, None);
    }

    #[test]
    fn a_missing_file_points_at_the_example() {
        let e = Config::load(Path::new("/nonexistent/migrc"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("conf/migrc.example"), "{e}");
    }
}
