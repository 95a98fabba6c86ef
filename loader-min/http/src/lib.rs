//! The blocking HTTPS client of mig-loader and mig-console: ureq on rustls + ring, the API's CA
//! pinned (or the system roots), absolute deadlines, capped bodies, HTTPS_PROXY and NO_PROXY.

#![forbid(unsafe_code)]

mod error;

pub use error::{Error, Result};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// Where system root certificates are looked for when no CA is pinned.
const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];
/// The largest CA bundle read from disk.
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// How a [`Client`] reaches the API.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// PEM of the CA the API's certificate must chain to; `None` trusts the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Allow `http://` URLs (only for tests; the build configuration decides).
    pub allow_plain_http: bool,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Absolute time allowed for any single request, body included.
    pub request_timeout: Duration,
    /// A proxy from the build configuration; otherwise `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`
    /// are used unless `NO_PROXY` names the API host.
    pub proxy: Option<String>,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            ca_pem: None,
            allow_plain_http: false,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            proxy: None,
            user_agent: concat!("mig-loader/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Whether a client with `cfg` may talk to `base_url`: `https://`, or `http://` when allowed.
pub fn check_url(cfg: &HttpConfig, base_url: &str) -> Result<()> {
    let plain = base_url.starts_with("http://");
    if !(base_url.starts_with("https://") || plain) {
        return Err(Error::Config(format!(
            "API URL {base_url:?} is neither https:// nor http://"
        )));
    }
    if plain && !cfg.allow_plain_http {
        return Err(Error::Config(format!(
            "API URL {base_url} is plain http://, which this build does not allow"
        )));
    }
    Ok(())
}

/// An HTTP client bound to one API base URL.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    request_timeout: Duration,
    deadline: Option<Instant>,
}

/// A response whose body has not been read yet.
pub struct Response {
    pub status: u16,
    url: String,
    inner: ureq::http::Response<ureq::Body>,
}

/// An HTTP method the protocol uses.
#[derive(Debug, Clone, Copy)]
pub enum Method {
    Get,
    Post,
    Delete,
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

/// Whether `NO_PROXY` (comma-separated hosts, `.suffix`, or `*`) exempts `host`.
pub fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    no_proxy
        .split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .any(|e| {
            let e = e.split(':').next().unwrap_or("").to_string();
            e == "*"
                || host == e.trim_start_matches('.')
                || host.ends_with(&format!(".{}", e.trim_start_matches('.')))
        })
}

fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

fn proxy_for(cfg: &HttpConfig, base: &str) -> Result<Option<ureq::Proxy>> {
    let explicit = cfg.proxy.clone().filter(|p| !p.is_empty());
    let chosen = match explicit {
        Some(p) => Some(p),
        None => {
            let https = base.starts_with("https://");
            let from_env = if https {
                env_any(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"])
            } else {
                env_any(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
            };
            let exempt = env_any(&["NO_PROXY", "no_proxy"])
                .is_some_and(|np| no_proxy_matches(&np, host_of(base)));
            from_env.filter(|_| !exempt)
        }
    };
    chosen
        .map(|p| ureq::Proxy::new(&p).map_err(|e| Error::Config(format!("proxy {p:?}: {e}"))))
        .transpose()
}

fn root_certs(cfg: &HttpConfig) -> Result<Vec<Certificate<'static>>> {
    let (pem, what) = match &cfg.ca_pem {
        Some(p) => (p.clone(), "the pinned CA".to_string()),
        None => {
            let path = SYSTEM_CA_FILES
                .iter()
                .find(|p| std::path::Path::new(p).is_file())
                .ok_or_else(|| {
                    Error::Config("no CA is pinned and no system CA bundle was found".into())
                })?;
            let mut buf = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_CA_FILE).read_to_end(&mut buf))
                .map_err(|e| Error::io("read", path, e))?;
            (buf, path.to_string())
        }
    };
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(Error::Config(format!("{what}: {e}")))),
        })
        .collect::<Result<_>>()?;
    if certs.is_empty() {
        return Err(Error::Config(format!("{what} holds no certificate")));
    }
    Ok(certs)
}

/// The TLS algorithms the loader and the console offer: *ring*'s, with the cipher suites limited to
/// AES-GCM and no private keys. Every TLS 1.3 server implements TLS_AES_128_GCM_SHA256 (RFC 8446
/// §9.1 makes it mandatory) and every TLS 1.2 server of the last decade an ECDHE AES-GCM suite, so
/// ChaCha20-Poly1305 is never needed; neither is a client certificate (the loader authenticates
/// with its loader key, docs/api.md). Naming only these keeps *ring*'s ChaCha20-Poly1305 and its
/// signing code out of mig-loader (BENCHMARKS.md, mig-loader size). Certificate signature algorithms,
/// key exchange groups and randomness are *ring*'s defaults.
pub fn tls_provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as cs, kx_group};
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        signature_verification_algorithms: SIGNATURE_ALGORITHMS,
        secure_random: &SystemRandom,
        key_provider: &NoPrivateKeys,
    }
}

/// *ring*'s default certificate signature algorithms, named here because calling
/// `rustls::crypto::ring::default_provider()` for them would link every default cipher suite
/// (a test checks that this is exactly the default's table).
static SIGNATURE_ALGORITHMS: rustls::crypto::WebPkiSupportedAlgorithms = {
    use rustls::SignatureScheme as S;
    use webpki::ring as a;
    rustls::crypto::WebPkiSupportedAlgorithms {
        all: &[
            a::ECDSA_P256_SHA256,
            a::ECDSA_P256_SHA384,
            a::ECDSA_P384_SHA256,
            a::ECDSA_P384_SHA384,
            a::ED25519,
            a::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            a::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            a::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            a::RSA_PKCS1_2048_8192_SHA256,
            a::RSA_PKCS1_2048_8192_SHA384,
            a::RSA_PKCS1_2048_8192_SHA512,
            a::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
            a::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
            a::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
        ],
        mapping: &[
            // TLS 1.2 does not fix the curve by the scheme; TLS 1.3 does.
            (
                S::ECDSA_NISTP384_SHA384,
                &[a::ECDSA_P384_SHA384, a::ECDSA_P256_SHA384],
            ),
            (
                S::ECDSA_NISTP256_SHA256,
                &[a::ECDSA_P256_SHA256, a::ECDSA_P384_SHA256],
            ),
            (S::ED25519, &[a::ED25519]),
            (S::RSA_PSS_SHA512, &[a::RSA_PSS_2048_8192_SHA512_LEGACY_KEY]),
            (S::RSA_PSS_SHA384, &[a::RSA_PSS_2048_8192_SHA384_LEGACY_KEY]),
            (S::RSA_PSS_SHA256, &[a::RSA_PSS_2048_8192_SHA256_LEGACY_KEY]),
            (S::RSA_PKCS1_SHA512, &[a::RSA_PKCS1_2048_8192_SHA512]),
            (S::RSA_PKCS1_SHA384, &[a::RSA_PKCS1_2048_8192_SHA384]),
            (S::RSA_PKCS1_SHA256, &[a::RSA_PKCS1_2048_8192_SHA256]),
        ],
    }
};

/// The operating system's random numbers through *ring*, as *ring*'s default provider draws them.
#[derive(Debug)]
struct SystemRandom;

impl rustls::crypto::SecureRandom for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> std::result::Result<(), rustls::crypto::GetRandomFailed> {
        use ring::rand::SecureRandom;
        ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| rustls::crypto::GetRandomFailed)
    }
}

/// Loads no private key: neither mig-loader nor mig-console presents a client certificate.
#[derive(Debug)]
struct NoPrivateKeys;

impl rustls::crypto::KeyProvider for NoPrivateKeys {
    fn load_private_key(
        &self,
        _key: rustls_pki_types::PrivateKeyDer<'static>,
    ) -> std::result::Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        Err(rustls::Error::General(
            "mig-http presents no client certificate, so it loads no private key".into(),
        ))
    }
}

impl Client {
    /// A client for `base_url` (which ends in `/`). Refuses `http://` unless allowed.
    pub fn new(cfg: &HttpConfig, base_url: &str) -> Result<Self> {
        check_url(cfg, base_url)?;
        let plain = base_url.starts_with("http://");
        let base = if base_url.ends_with('/') {
            base_url.to_string()
        } else {
            format!("{base_url}/")
        };
        let mut tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(tls_provider()));
        if !plain {
            tls = tls.root_certs(RootCerts::Specific(Arc::new(root_certs(cfg)?)));
        } else {
            // Never used for plain http, but ureq refuses an agent without roots.
            tls = tls.root_certs(RootCerts::Specific(Arc::new(Vec::new())));
        }
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .proxy(proxy_for(cfg, &base)?)
            .http_status_as_error(false)
            .https_only(!cfg.allow_plain_http)
            .max_redirects(0)
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_global(Some(cfg.request_timeout))
            .user_agent(cfg.user_agent.as_str())
            .max_response_header_size(16 * 1024)
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            base,
            request_timeout: cfg.request_timeout,
            deadline: None,
        })
    }

    /// Sets an absolute deadline (the run's) that no request may pass.
    pub fn with_deadline(mut self, at: Instant) -> Self {
        self.deadline = Some(at);
        self
    }

    /// The absolute URL of `path` under the base.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    /// The time this request may take: its own cap, cut by the run's deadline.
    fn budget(&self, url: &str) -> Result<Duration> {
        match self.deadline {
            None => Ok(self.request_timeout),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Deadline(format!("no time left for {url}")));
                }
                Ok(left.min(self.request_timeout))
            }
        }
    }

    /// Sends one request. The body of the answer is read by the caller, capped.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response> {
        let (url, b) = self.builder(method, path, headers, body.is_some());
        let req = b
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|e| http_error(&url, &e))?;
        self.run(url, req)
    }

    /// Sends one request whose JSON body of `len` bytes is read from `body` as it is sent (the
    /// console's upload progress). `len` must be its exact length: a longer body is refused.
    pub fn request_from_reader(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &mut dyn std::io::Read,
        len: u64,
    ) -> Result<Response> {
        let (url, b) = self.builder(method, path, headers, true);
        let req = b
            .header("Content-Length", len)
            .body(ureq::SendBody::from_reader(body))
            .map_err(|e| http_error(&url, &e))?;
        self.run(url, req)
    }

    /// The URL and a request with its method and headers.
    fn builder(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        json_body: bool,
    ) -> (String, ureq::http::request::Builder) {
        let url = self.url(path);
        let m = match method {
            Method::Get => ureq::http::Method::GET,
            Method::Post => ureq::http::Method::POST,
            Method::Delete => ureq::http::Method::DELETE,
        };
        let mut b = ureq::http::Request::builder().method(m).uri(&url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if json_body {
            b = b.header("Content-Type", "application/json");
        }
        (url, b)
    }

    fn run<B: ureq::AsSendBody>(
        &self,
        url: String,
        req: ureq::http::Request<B>,
    ) -> Result<Response> {
        let budget = self.budget(&url)?;
        let req = self
            .agent
            .configure_request(req)
            .timeout_global(Some(budget))
            .build();
        let inner = self.agent.run(req).map_err(|e| http_error(&url, &e))?;
        Ok(Response {
            status: inner.status().as_u16(),
            url,
            inner,
        })
    }

    /// POSTs a JSON value.
    pub fn post_json<T: serde::Serialize>(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        value: &T,
    ) -> Result<Response> {
        let body = serde_json::to_vec(value).map_err(|e| Error::Json {
            what: path.to_string(),
            reason: e.to_string(),
        })?;
        self.request(Method::Post, path, headers, Some(&body))
    }
}

fn http_error(url: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Http {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

impl Response {
    /// The URL this answered.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A header's value, if present and ASCII.
    pub fn header(&self, name: &str) -> Option<String> {
        self.inner
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Reads the whole body, refusing more than `cap` bytes.
    pub fn read_capped(self, cap: u64) -> Result<Vec<u8>> {
        let url = self.url;
        let mut body = self.inner.into_body();
        body.with_config()
            .limit(cap)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::TooLarge {
                    what: format!("response from {url}"),
                    limit: cap,
                },
                other => Error::Http {
                    url: url.clone(),
                    reason: other.to_string(),
                },
            })
    }

    /// The body as a stream, refusing more than `cap` bytes.
    pub fn into_reader(self, cap: u64) -> impl Read {
        self.inner
            .into_body()
            .into_with_config()
            .limit(cap)
            .reader()
    }

    /// Turns a non-2xx status into an error that carries the API's message.
    pub fn error_for_status(self, cap: u64) -> Result<Self> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let (url, status) = (self.url.clone(), self.status);
        let body = self.read_capped(cap).unwrap_or_default();
        let message = serde_json::from_slice::<mig_protocol::loader::ErrorBody>(&body)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        Err(Error::Status {
            url,
            status,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only AES-GCM suites are offered (TLS 1.3 and 1.2, both certificate key types), every
    /// key exchange group of *ring*'s default stays, and no private key can be loaded.
    #[test]
    fn the_tls_provider_offers_aes_gcm_only_and_loads_no_key() {
        let p = tls_provider();
        let names: Vec<String> = p
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(names.len(), 6, "{names:?}");
        assert!(names.iter().all(|n| n.contains("_GCM_")), "{names:?}");
        assert!(
            names.iter().any(|n| n == "TLS13_AES_128_GCM_SHA256"),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.starts_with("TLS_ECDHE_RSA_")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.starts_with("TLS_ECDHE_ECDSA_")),
            "{names:?}"
        );
        let groups = |p: &rustls::crypto::CryptoProvider| {
            p.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>()
        };
        let default = rustls::crypto::ring::default_provider();
        assert_eq!(groups(&p), groups(&default));
        let algorithms = |p: &rustls::crypto::CryptoProvider| {
            let a = &p.signature_verification_algorithms;
            format!("{:?} {:?}", a.all, a.mapping)
        };
        assert_eq!(algorithms(&p), algorithms(&default));
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(vec![0x30, 0].into());
        let e = p.key_provider.load_private_key(key).err().unwrap();
        assert!(e.to_string().contains("no client certificate"), "{e}");
        let mut r = [0u8; 32];
        p.secure_random.fill(&mut r).unwrap();
        assert_ne!(r, [0u8; 32]);
    }

    #[test]
    fn no_proxy_rules() {
        assert!(no_proxy_matches(
            "localhost,.example.org",
            "api.example.org"
        ));
        assert!(no_proxy_matches("example.org", "example.org"));
        assert!(no_proxy_matches("*", "anything"));
        assert!(no_proxy_matches("127.0.0.1:1664", "127.0.0.1"));
        assert!(!no_proxy_matches("example.org", "badexample.org"));
        assert!(!no_proxy_matches("", "example.org"));
    }

    #[test]
    fn host_is_extracted_from_urls() {
        assert_eq!(
            host_of("https://user@api.example.org:1664/api/v2/"),
            "api.example.org"
        );
        assert_eq!(host_of("http://[::1]:8080/x"), "::1");
        assert_eq!(host_of("https://127.0.0.1/"), "127.0.0.1");
    }

    #[test]
    fn plain_http_is_refused_unless_allowed() {
        let cfg = HttpConfig::default();
        let e = Client::new(&cfg, "http://127.0.0.1:1/api/v2/")
            .err()
            .unwrap();
        assert!(e.to_string().contains("plain http"), "{e}");
        let cfg = HttpConfig {
            allow_plain_http: true,
            ..HttpConfig::default()
        };
        assert!(Client::new(&cfg, "http://127.0.0.1:1/api/v2/").is_ok());
        assert!(Client::new(&cfg, "ftp://x/").is_err());
    }
}
