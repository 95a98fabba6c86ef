//! The API client: loader-min's pinned-CA HTTP client, a fresh signed token (or the API key) on
//! every request, capped answers, and errors that carry the API's reason.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::progress;
use crate::signer::Signer;
use mig_http::{Client, HttpConfig, Method};
use mig_protocol::admin::{AuthToken, API_KEY_HEADER, PGP_AUTH_HEADER};
use mig_protocol::time::Timestamp;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

/// The largest JSON answer read.
const MAX_JSON: u64 = 32 * 1024 * 1024;
/// The largest error body read.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// The largest CA file read.
const MAX_CA_FILE: u64 = 1024 * 1024;
/// Length of the token nonce (alphanumerics from the OS CSPRNG).
const NONCE_LEN: usize = 32;

/// How the console proves who it is.
pub enum Credential {
    /// `X-MIGAPIKEY`.
    ApiKey(String),
    /// `X-PGPAUTHORIZATION`, a new token signed for every request.
    Token(Rc<Signer>),
}

/// A request body.
enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    /// With a progress bar of this label when it is large.
    Shown(&'a [u8], &'a str),
}

/// A connection to mig-api.
pub struct Api {
    client: Client,
    credential: Credential,
    /// What tokens name as the API they are for (Config::audience).
    audience: String,
}

/// The host part of `url` (brackets removed from IPv6).
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

/// Plain http is only for an API on this machine (tests, an SSH tunnel).
pub fn is_loopback_url(url: &str) -> bool {
    matches!(url_host(url), "127.0.0.1" | "localhost" | "::1")
}

/// A fresh `X-PGPAUTHORIZATION` value signed by `signer`, for the API of `audience`
/// (`Config::audience`, never an answer of the server's).
pub fn make_token(signer: &Signer, audience: &str) -> Result<String> {
    let nonce: String = rand::rngs::OsRng
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(NONCE_LEN)
        .map(char::from)
        .collect();
    let mut token = AuthToken::new(Timestamp::now(), nonce, audience.to_string());
    let armored = signer.sign(token.signed_data().as_bytes())?;
    token.signature = mig_protocol::signature::dearmor(&armored)?;
    Ok(token.header_value())
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Delete => "DELETE",
    }
}

impl Api {
    /// Connects to the configured API. Plain http is accepted for a loopback URL only, with a
    /// warning on `warn`.
    pub fn new(cfg: &Config, credential: Credential, warn: &mut dyn Write) -> Result<Self> {
        let plain = cfg.api_url.starts_with("http://");
        if plain && !is_loopback_url(&cfg.api_url) {
            return Err(Error::Config {
                path: cfg.path.display().to_string(),
                reason: format!(
                    "[api] url {} is plain http to a remote host: use https://",
                    cfg.api_url
                ),
            });
        }
        if plain {
            let _ = writeln!(
                warn,
                "warning: talking to {} over plain http (allowed for loopback only)",
                cfg.api_url
            );
        }
        let ca_pem = cfg
            .cacert
            .as_ref()
            .map(|p| {
                let mut buf = Vec::new();
                std::fs::File::open(p)
                    .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut buf))
                    .map_err(|e| Error::io("read [api] cacert", p, e))?;
                if buf.len() as u64 > MAX_CA_FILE {
                    return Err(Error::TooLarge {
                        what: p.display().to_string(),
                        limit: MAX_CA_FILE,
                    });
                }
                Ok(buf)
            })
            .transpose()?;
        let http = HttpConfig {
            ca_pem,
            allow_plain_http: plain,
            connect_timeout: Duration::from_secs(cfg.timeout_secs.min(10)),
            request_timeout: Duration::from_secs(cfg.timeout_secs),
            proxy: None,
            user_agent: concat!("mig-console/", env!("CARGO_PKG_VERSION")).to_string(),
        };
        let client = Client::new(&http, &cfg.api_url)?;
        Ok(Api {
            client,
            credential,
            audience: cfg.audience.clone(),
        })
    }

    fn send(&self, method: Method, path: &str, body: Body<'_>) -> Result<mig_http::Response> {
        let (name, value) = match &self.credential {
            Credential::ApiKey(k) => (API_KEY_HEADER, k.clone()),
            Credential::Token(s) => (PGP_AUTH_HEADER, make_token(s, &self.audience)?),
        };
        let headers = [(name, value.as_str())];
        let resp = match body {
            Body::Shown(bytes, label) if bytes.len() as u64 >= progress::MIN_BYTES => {
                let len = bytes.len() as u64;
                let mut bar = progress::Bar::new(label, len, Box::new(std::io::stderr()));
                let mut reader = progress::Reader {
                    inner: bytes,
                    bar: &mut bar,
                };
                let sent =
                    self.client
                        .request_from_reader(method, path, &headers, &mut reader, len);
                bar.finish();
                sent
            }
            Body::Shown(bytes, _) | Body::Bytes(bytes) => {
                self.client.request(method, path, &headers, Some(bytes))
            }
            Body::None => self.client.request(method, path, &headers, None),
        }
        .map_err(|e| Error::Transport(e.to_string()))?;
        if (200..300).contains(&resp.status) {
            return Ok(resp);
        }
        let status = resp.status;
        let body = resp.read_capped(MAX_ERROR_BODY).unwrap_or_default();
        let reason = serde_json::from_slice::<mig_protocol::loader::ErrorBody>(&body)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)])
                    .trim()
                    .to_string();
                if text.is_empty() {
                    "no reason given".to_string()
                } else {
                    text
                }
            });
        Err(Error::Api {
            method: method_name(method),
            path: path.to_string(),
            status,
            reason: crate::table::clean(&reason),
        })
    }

    fn json_answer(&self, method: Method, path: &str, body: Body<'_>) -> Result<Value> {
        let resp = self.send(method, path, body)?;
        let bytes = resp
            .read_capped(MAX_JSON)
            .map_err(|e| Error::Transport(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::BadAnswer {
            what: format!("{} {path}", method_name(method)),
            reason: e.to_string(),
        })
    }

    /// `GET path` → JSON.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.json_answer(Method::Get, path, Body::None)
    }

    /// `POST path` with a JSON body → JSON.
    pub fn post<T: Serialize>(&self, path: &str, body: &T) -> Result<Value> {
        self.upload(path, body, None)
    }

    /// [`Api::post`], with a progress bar labelled `progress` on stderr while a large body is
    /// sent (`None`: never; the caller asks `Ui::shows_progress`).
    pub fn upload<T: Serialize>(
        &self,
        path: &str,
        body: &T,
        progress: Option<&str>,
    ) -> Result<Value> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::BadAnswer {
            what: format!("the body for POST {path}"),
            reason: e.to_string(),
        })?;
        let body = match progress {
            Some(label) => Body::Shown(&bytes, label),
            None => Body::Bytes(&bytes),
        };
        self.json_answer(Method::Post, path, body)
    }

    /// `DELETE path` → JSON.
    pub fn delete(&self, path: &str) -> Result<Value> {
        self.json_answer(Method::Delete, path, Body::None)
    }

    /// `GET path` → raw bytes, at most `cap`.
    pub fn get_bytes(&self, path: &str, cap: u64) -> Result<Vec<u8>> {
        self.send(Method::Get, path, Body::None)?
            .read_capped(cap)
            .map_err(|e| Error::Transport(e.to_string()))
    }

    /// `GET path` streamed into `out`, at most `cap` bytes; returns the byte count.
    pub fn download(&self, path: &str, cap: u64, out: &mut dyn Write) -> Result<u64> {
        let mut reader = self.send(Method::Get, path, Body::None)?.into_reader(cap);
        std::io::copy(&mut reader, out).map_err(|e| Error::Transport(format!("GET {path}: {e}")))
    }
}

/// Reads a typed value out of an API answer.
pub fn typed<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T> {
    T::deserialize(v).map_err(|e| Error::BadAnswer {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// Percent-encodes a query value or a path segment (everything but unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_may_use_plain_http() {
        for u in [
            "http://127.0.0.1:1664/api/v2/",
            "http://localhost/api/v2/",
            "http://[::1]:8080/",
        ] {
            assert!(is_loopback_url(u), "{u}");
        }
        for u in [
            "http://127.0.0.1.evil.org/",
            "http://api.example.org/",
            "http://localhost@evil.org/",
            "http://10.0.0.1/",
        ] {
            assert!(!is_loopback_url(u), "{u}");
        }
    }

    #[test]
    fn remote_plain_http_is_refused_and_loopback_warns() {
        let cfg = |url: &str| Config {
            path: "m".into(),
            api_url: url.into(),
            audience: mig_protocol::admin::audience(url).unwrap(),
            cacert: None,
            apikey: None,
            identity: None,
            timeout_secs: crate::config::DEFAULT_TIMEOUT_SECS,
        };
        let mut warn = Vec::new();
        let e = Api::new(
            &cfg("http://api.example.org/"),
            Credential::ApiKey("k".into()),
            &mut warn,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("use https://"), "{e}");
        assert!(Api::new(
            &cfg("http://127.0.0.1:9/"),
            Credential::ApiKey("k".into()),
            &mut warn
        )
        .is_ok());
        assert!(String::from_utf8(warn).unwrap().contains("plain http"));
    }

    #[test]
    fn a_token_carries_a_fresh_nonce_and_a_signature_over_its_data() {
        use mig_protocol::signature::{armor_secret_key, generate_key, rearmor, verify, Keyring};
        let dir = tempfile::tempdir().unwrap();
        let (sec, public) = generate_key("t <t@example.org>").unwrap();
        let path = dir.path().join("k.asc");
        std::fs::write(&path, armor_secret_key(&sec).unwrap()).unwrap();
        let signer = Signer::new(&crate::config::Identity::KeyFile { path }, &|_| None).unwrap();
        let aud = "https://mig-api.example.net:443/api/v2/";
        let a = AuthToken::parse(&make_token(&signer, aud).unwrap()).unwrap();
        let b = AuthToken::parse(&make_token(&signer, aud).unwrap()).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.audience, aud);
        assert_eq!(a.nonce.len(), NONCE_LEN);
        let ring = Keyring::from_armored([("t", public.as_str())]).unwrap();
        let sig = rearmor(&a.signature).unwrap();
        assert_eq!(
            verify(&ring, a.signed_data().as_bytes(), &[sig])
                .valid
                .len(),
            1
        );
    }

    #[test]
    fn encoding_keeps_wildcards_literal() {
        assert_eq!(encode("%corb%"), "%25corb%25");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("Ok-1.2_~"), "Ok-1.2_~");
    }
}
