//! `api.cfg`, MIG's INI style: `[section]`, `key = value`, `#`/`;` comments (whole line, or after
//! whitespace), case-insensitive section and key names. Strict: an unknown section or key, a
//! repeated key or a bad value stops the start and names the file and line.

use crate::error::{Error, Result};
use mig_protocol::ini::{Ini, Schema};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// HTTPS certificate chain and key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Size and count limits (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest manifest or plugin upload request body (the archive travels base64 in JSON).
    pub upload: u64,
    /// Most regular files in one manifest archive.
    pub entries: usize,
    /// Largest decompressed archive member.
    pub file_size: u64,
    /// Largest total decompressed archive (headers included): the gzip-bomb stop.
    pub total_size: u64,
    /// Time a small request body may take to arrive (uploads get more, at 64 KiB/s).
    pub body_deadline: Duration,
    /// Time from awaiting a request (connection opened, last response sent) to its whole head.
    pub head_deadline: Duration,
    /// Time a connection may move no byte either way.
    pub idle_deadline: Duration,
    /// Connections open at once, and from one peer address (an IPv6 /64).
    pub connections: usize,
    pub connections_per_peer: usize,
    /// Bytes of verified file bodies the front keeps in memory (filecache.rs); 0: none.
    pub file_cache: u64,
    /// Bytes of loaders' last poll outcomes kept in memory (poll.rs, `ENTRY_BYTES` each); 0:
    /// every poll takes the full path.
    pub poll_cache: u64,
    /// Bytes of investigator API keys that passed PBKDF2 kept in memory (keys.rs).
    pub api_key_cache: u64,
}

/// MIG's v1 loader protocol for deployed Go `mig-loader`s (`[v1]`, docs/design.md §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1 {
    /// Base route of MIG's loader routes, no trailing slash (`/api/v1`).
    pub baseroute: String,
    /// Upper-case primary fingerprints of the administrators' keys built into the deployed Go
    /// loaders. A Go loader refuses a whole manifest over one signature it cannot check, so only
    /// signatures by these keys reach it. Empty: v1 is off and its routes are not mounted.
    pub fingerprints: Vec<String>,
    /// The deployed Go loaders' REQUIREDSIGNATURES: a manifest with fewer v1 signatures by
    /// `fingerprints` is never offered to them; `[manifest] requiredsignatures` when not set.
    pub required_signatures: Option<usize>,
}

impl V1 {
    pub fn enabled(&self) -> bool {
        !self.fingerprints.is_empty()
    }
}

/// How many token nonces are kept at once (`[authentication]`, docs/design.md §3.8): a nonce is
/// remembered for 2×tokenduration, and past a bound a new token is refused rather than a nonce
/// forgotten that could still be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBounds {
    /// `maxtokens`: every investigator's together.
    pub total: u64,
    /// `maxtokensperinvestigator`: one investigator's, so one cannot take the whole pool.
    pub per_investigator: u64,
    /// `reservedtokens`: the last of `total`, only for investigators who can stop something
    /// (auth::RESERVE_PERMISSIONS), so many investigators together cannot lock those out.
    pub reserved: u64,
}

/// `[limits] bodydeadline` when the file does not set it.
pub const DEFAULT_BODY_DEADLINE: Duration = Duration::from_secs(30);

/// The whole configuration, with MIG's defaults when no file is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    /// Base route, starting with `/`, no trailing slash (`/api/v2`).
    pub baseroute: String,
    pub tls: Option<TlsFiles>,
    /// The SQLite file; with `[database] url`, the directory beside it keeps the local cache
    /// of file bodies only.
    pub db_path: PathBuf,
    /// `[database] url`: PostgreSQL shared by replicas instead of the SQLite file.
    pub postgres: Option<crate::db::Location>,
    /// docs/design.md §2.3: distinct administrators who must sign before a manifest is `active` (≥ 1).
    pub required_signatures: usize,
    /// Default validity of a statement, in days.
    pub valid_days: u32,
    /// `false` only for local experiments: every request is an all-permissions investigator 0.
    pub auth_enabled: bool,
    /// Accepted clock distance of an `X-PGPAUTHORIZATION` timestamp, in seconds.
    pub token_duration: u64,
    /// How many token nonces are kept at once.
    pub tokens: TokenBounds,
    /// `[authentication] audience`: the API's public base URL as consoles sign it
    /// (`mig_protocol::admin::audience`); where it listens when not set (App::audience).
    pub audience: Option<String>,
    pub limits: Limits,
    /// How long and how much report history is kept (`[reports]`).
    pub reports: Retention,
    /// MIG's v1 loader protocol (`[v1]`).
    pub v1: V1,
    /// The online freshness key (`[freshness]`, docs/design.md §4.20); none: answers carry no
    /// freshness signature.
    pub freshness: Option<crate::freshness::Settings>,
    /// `[root] keys`: the armored public keys built into the loaders, root 1 of the root of
    /// trust (roots.rs, docs/design.md §4.21). Empty: the API keeps no root chain.
    pub root_keys: Vec<PathBuf>,
    /// `[root] threshold`: root 1's threshold; `[manifest] requiredsignatures` when not set.
    pub root_threshold: Option<usize>,
    /// The file this came from, if any (named in the start-up hints).
    pub source: Option<PathBuf>,
}

impl Config {
    /// Where the data lives: PostgreSQL when `[database] url` is set, else the SQLite file.
    pub fn database(&self) -> crate::db::Location {
        self.postgres
            .clone()
            .unwrap_or_else(|| crate::db::Location::Sqlite(self.db_path.clone()))
    }

    /// How many v1 signatures by `[v1] fingerprints` a manifest needs to reach Go loaders.
    pub fn v1_required(&self) -> usize {
        self.v1
            .required_signatures
            .unwrap_or(self.required_signatures)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 1664)),
            baseroute: "/api/v2".into(),
            tls: None,
            db_path: PathBuf::from("./mig-api.db"),
            postgres: None,
            required_signatures: 2,
            valid_days: 90,
            auth_enabled: true,
            token_duration: 600,
            tokens: TokenBounds {
                total: 200_000,
                per_investigator: 10_000,
                reserved: 20_000,
            },
            audience: None,
            limits: Limits {
                upload: 128 << 20,
                entries: 16,
                file_size: 256 << 20,
                total_size: 1 << 30,
                body_deadline: DEFAULT_BODY_DEADLINE,
                head_deadline: Duration::from_secs(10),
                idle_deadline: Duration::from_secs(60),
                connections: 8192,
                connections_per_peer: 256,
                file_cache: 256 << 20,
                poll_cache: 256 << 20,
                api_key_cache: 1 << 20,
            },
            reports: Retention::default(),
            v1: V1 {
                baseroute: "/api/v1".into(),
                fingerprints: Vec::new(),
                required_signatures: None,
            },
            freshness: None,
            root_keys: Vec::new(),
            root_threshold: None,
            source: None,
        }
    }
}

impl Config {
    /// Reads and validates a configuration file. Relative paths inside it are relative to the
    /// file's directory, so a service does not depend on its working directory.
    pub fn load(path: &Path) -> Result<Config> {
        let meta = std::fs::metadata(path).map_err(Error::io("reading configuration", path))?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(Error::Config(format!(
                "{}: larger than {MAX_CONFIG_BYTES} bytes",
                path.display()
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(Error::io("reading configuration", path))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut cfg = Config::parse(&text, &path.display().to_string(), base)?;
        cfg.source = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parses configuration text; `file` names it in errors, `base` anchors relative paths.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config> {
        let mut cfg = Config::default();
        let (mut tlscert, mut tlskey) = (None, None);
        let (mut pg_url, mut pg_password_file, mut pg_ca) = (None, None, None);
        let (mut fresh_key, mut fresh_lifetime) = (None, None);
        let ini = Ini::parse(text)
            .and_then(|ini| ini.check(SECTIONS).map(|()| ini))
            .map_err(|e| Error::Config(format!("{file}:{}: {}", e.line, e.message)))?;
        for e in ini.entries() {
            let at = |m: String| Error::Config(format!("{file}:{}: {m}", e.line));
            let (key, value) = (e.key.as_str(), e.value.as_str());
            match (e.section.as_str(), key) {
                ("server", "listen") => {
                    cfg.listen = value.parse().map_err(|_| {
                        at(format!(
                            "listen {value:?} is not ADDRESS:PORT (e.g. 127.0.0.1:1664)"
                        ))
                    })?
                }
                ("server", "baseroute") => cfg.baseroute = parse_baseroute(value).map_err(&at)?,
                ("server", "tlscert") => {
                    tlscert = Some(base.join(nonempty(key, value).map_err(&at)?))
                }
                ("server", "tlskey") => {
                    tlskey = Some(base.join(nonempty(key, value).map_err(&at)?))
                }
                ("database", "path") => cfg.db_path = base.join(nonempty(key, value).map_err(&at)?),
                ("database", "url") => pg_url = Some((nonempty(key, value).map_err(&at)?, e.line)),
                ("database", "cafile") => {
                    pg_ca = Some(base.join(nonempty(key, value).map_err(&at)?))
                }
                ("database", "passwordfile") => {
                    pg_password_file = Some(base.join(nonempty(key, value).map_err(&at)?))
                }
                ("manifest", "requiredsignatures") => {
                    // docs/design.md §6.4: at least 1, never "checking off".
                    let n = parse_number(key, value, 1, 64).map_err(&at)?;
                    cfg.required_signatures = n as usize;
                }
                ("manifest", "validdays") => {
                    cfg.valid_days = parse_number(key, value, 1, 3650).map_err(&at)? as u32
                }
                ("authentication", "enabled") => {
                    cfg.auth_enabled = parse_bool(key, value).map_err(&at)?
                }
                ("authentication", "tokenduration") => {
                    cfg.token_duration = parse_duration(key, value).map_err(&at)?
                }
                ("authentication", "audience") => {
                    cfg.audience =
                        Some(mig_protocol::admin::audience(value).map_err(|e| at(e.to_string()))?)
                }
                ("authentication", "maxtokens") => {
                    cfg.tokens.total = parse_number(key, value, 1, 100_000_000).map_err(&at)?
                }
                ("authentication", "maxtokensperinvestigator") => {
                    cfg.tokens.per_investigator =
                        parse_number(key, value, 1, 100_000_000).map_err(&at)?
                }
                ("authentication", "reservedtokens") => {
                    cfg.tokens.reserved = parse_number(key, value, 0, 100_000_000).map_err(&at)?
                }
                ("limits", "uploadsize") => {
                    cfg.limits.upload = parse_number(key, value, 1024, 4 << 30).map_err(&at)?
                }
                ("limits", "entries") => {
                    let max = mig_protocol::statement::MAX_ENTRIES as u64;
                    cfg.limits.entries = parse_number(key, value, 1, max).map_err(&at)? as usize
                }
                ("limits", "filesize") => {
                    let max = mig_protocol::statement::MAX_ENTRY_SIZE;
                    cfg.limits.file_size = parse_number(key, value, 1, max).map_err(&at)?
                }
                ("limits", "bodydeadline") => {
                    cfg.limits.body_deadline = parse_deadline(key, value).map_err(&at)?
                }
                ("limits", "headdeadline") => {
                    cfg.limits.head_deadline = parse_deadline(key, value).map_err(&at)?
                }
                ("limits", "idledeadline") => {
                    cfg.limits.idle_deadline = parse_deadline(key, value).map_err(&at)?
                }
                ("limits", "connections") => {
                    cfg.limits.connections =
                        parse_number(key, value, 1, 1 << 20).map_err(&at)? as usize
                }
                ("limits", "connectionsperpeer") => {
                    cfg.limits.connections_per_peer =
                        parse_number(key, value, 1, 1 << 20).map_err(&at)? as usize
                }
                ("limits", "filecache") => {
                    cfg.limits.file_cache = parse_number(key, value, 0, 64 << 30).map_err(&at)?
                }
                ("limits", "pollcache") => {
                    cfg.limits.poll_cache = parse_number(key, value, 0, 64 << 30).map_err(&at)?
                }
                ("limits", "apikeycache") => {
                    cfg.limits.api_key_cache = parse_number(key, value, 0, 1 << 30).map_err(&at)?
                }
                ("limits", "totalsize") => {
                    cfg.limits.total_size = parse_number(key, value, 1, 64 << 30).map_err(&at)?
                }
                ("reports", "keepdays") => {
                    cfg.reports.keep_days = parse_number(key, value, 1, 3650).map_err(&at)?
                }
                ("reports", "maxrows") => {
                    cfg.reports.max_rows =
                        parse_number(key, value, 1000, 1_000_000_000).map_err(&at)?
                }
                ("v1", "baseroute") => cfg.v1.baseroute = parse_baseroute(value).map_err(&at)?,
                ("v1", "fingerprints") => {
                    cfg.v1.fingerprints = parse_fingerprints(value).map_err(&at)?
                }
                ("v1", "requiredsignatures") => {
                    cfg.v1.required_signatures =
                        Some(parse_number(key, value, 1, 32).map_err(&at)? as usize)
                }
                ("root", "keys") => {
                    cfg.root_keys = value
                        .split(',')
                        .map(|p| nonempty(key, p.trim()).map(|p| base.join(p)))
                        .collect::<std::result::Result<_, _>>()
                        .map_err(&at)?
                }
                ("root", "threshold") => {
                    cfg.root_threshold =
                        Some(parse_number(key, value, 1, 32).map_err(&at)? as usize)
                }
                ("freshness", "key") => {
                    fresh_key = Some(base.join(nonempty(key, value).map_err(&at)?))
                }
                ("freshness", "lifetime") => {
                    fresh_lifetime = Some(
                        parse_duration_within(key, value, 60, MAX_FRESHNESS_LIFETIME)
                            .map_err(&at)?,
                    )
                }
                _ => return Err(at(format!("unhandled key {key:?}"))),
            }
        }
        if let Some((url, line)) = pg_url {
            let password = database_password(pg_password_file.as_deref())?;
            let tls = match &pg_ca {
                Some(ca) => Some(
                    crate::db::Verified::new(&crate::pem::read_pem(ca)?)
                        .map_err(|m| Error::Config(format!("{}: {m}", ca.display())))?,
                ),
                None => None,
            };
            let config = crate::db::pg_config(url, password, tls.is_some())
                .map_err(|m| Error::Config(format!("{file}:{line}: url: {m}")))?;
            cfg.postgres = Some(crate::db::Location::Postgres {
                config: Box::new(config),
                shown: url.to_string(),
                tls,
            });
        } else if pg_password_file.is_some() || pg_ca.is_some() {
            return Err(Error::Config(format!(
                "{file}: [database] passwordfile and cafile need url"
            )));
        }
        cfg.freshness = match (fresh_key, fresh_lifetime) {
            (Some(key), lifetime) => Some(crate::freshness::Settings {
                key,
                lifetime: lifetime.unwrap_or(crate::freshness::DEFAULT_LIFETIME),
            }),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Error::Config(format!(
                    "{file}: [freshness] lifetime needs key (the file `mig-api freshness-key new \
                     --out FILE` writes)"
                )))
            }
        };
        cfg.tls = match (tlscert, tlskey) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(Error::Config(format!(
                "{file}: [server] tlscert and tlskey go together: give both for HTTPS, or neither"
            )))
            }
        };
        let t = cfg.tokens;
        if t.reserved >= t.total || t.per_investigator > t.total {
            return Err(Error::Config(format!(
                "{file}: [authentication] reservedtokens = {} must be below maxtokens = {} and \
                 maxtokensperinvestigator = {} at most maxtokens",
                t.reserved, t.total, t.per_investigator
            )));
        }
        if cfg.v1.enabled() && cfg.v1.baseroute == cfg.baseroute {
            return Err(Error::Config(format!(
                "{file}: [v1] baseroute {} is [server] baseroute too: MIG's routes need their own",
                cfg.v1.baseroute
            )));
        }
        if cfg.v1.enabled() && cfg.v1_required() > cfg.v1.fingerprints.len() {
            return Err(Error::Config(format!(
                "{file}: [v1] needs {} signatures but names {} fingerprints: no manifest could \
                 ever reach the Go loaders",
                cfg.v1_required(),
                cfg.v1.fingerprints.len()
            )));
        }
        // docs/design.md §6.1: loader keys and agent private keys must not cross a network
        // in clear text. Plain HTTP only on loopback (behind a local TLS proxy, or for tests).
        if cfg.tls.is_none() && !cfg.listen.ip().is_loopback() {
            return Err(Error::Config(format!(
                "{file}: [server] listen {} is not a loopback address and no tlscert/tlskey is set: \
                 plain HTTP would send loader keys and agent keys in clear text",
                cfg.listen
            )));
        }
        // docs/design.md §3.8: a token names the API it is for. Listening on every address,
        // the API cannot know the URL consoles reach it by; a guess would refuse them all.
        if cfg.audience.is_none() && cfg.listen.ip().is_unspecified() {
            return Err(Error::Config(format!(
                "{file}: [server] listen {} is every address: set [authentication] audience to \
                 the URL administrators' consoles use (their [api] url, e.g. \
                 https://mig-api.example.net:1664/api/v2/)",
                cfg.listen
            )));
        }
        Ok(cfg)
    }

    /// The audience tokens must name when the server answers at `addr`: `[authentication]
    /// audience`, else the URL it answers on.
    pub fn audience(&self, addr: SocketAddr) -> Result<String> {
        match &self.audience {
            Some(a) => Ok(a.clone()),
            None => mig_protocol::admin::audience(&self.url(addr))
                .map_err(|e| Error::Internal(format!("the audience of {addr}: {e}"))),
        }
    }

    /// The URL the server answers on (printed at start, used by the tests).
    pub fn url(&self, addr: SocketAddr) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{addr}{}/", self.baseroute)
    }
}

const SECTIONS: Schema = &[
    ("server", &["listen", "baseroute", "tlscert", "tlskey"]),
    ("database", &["path", "url", "passwordfile", "cafile"]),
    ("manifest", &["requiredsignatures", "validdays"]),
    (
        "authentication",
        &[
            "enabled",
            "tokenduration",
            "audience",
            "maxtokens",
            "maxtokensperinvestigator",
            "reservedtokens",
        ],
    ),
    (
        "limits",
        &[
            "uploadsize",
            "entries",
            "filesize",
            "totalsize",
            "bodydeadline",
            "headdeadline",
            "idledeadline",
            "connections",
            "connectionsperpeer",
            "filecache",
            "pollcache",
            "apikeycache",
        ],
    ),
    ("reports", &["keepdays", "maxrows"]),
    ("v1", &["baseroute", "fingerprints", "requiredsignatures"]),
    ("freshness", &["key", "lifetime"]),
    ("root", &["keys", "threshold"]),
];

/// The longest `[freshness] lifetime`: the bound on freeze and replay it sets should stay short
/// (docs/design.md §7).
const MAX_FRESHNESS_LIFETIME: u64 = 30 * 86_400;

/// A comma- or space-separated list of distinct v4 primary-key fingerprints (40 hex digits;
/// GnuPG's spacing allowed inside none), kept upper-case.
/// How long and how much history is kept (`[reports]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub keep_days: u64,
    pub max_rows: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_days: 30,
            max_rows: 5_000_000,
        }
    }
}

fn parse_fingerprints(v: &str) -> std::result::Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for fp in v.split([',', ' ']).filter(|f| !f.is_empty()) {
        if fp.len() != 40 || !fp.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "fingerprints: {fp:?} is not a 40-hex-digit OpenPGP v4 fingerprint"
            ));
        }
        let fp = fp.to_ascii_uppercase();
        if out.contains(&fp) {
            return Err(format!("fingerprints: {fp} is named twice"));
        }
        out.push(fp);
    }
    if out.is_empty() {
        return Err("fingerprints is empty".into());
    }
    Ok(out)
}

/// PostgreSQL's password: the first line of `[database] passwordfile`, else
/// `MIG_API_DB_PASSWORD`, else `PGPASSWORD`; never a command-line argument or the URL.
fn database_password(file: Option<&Path>) -> Result<Option<String>> {
    if let Some(f) = file {
        let meta = std::fs::metadata(f).map_err(Error::io("reading the database password", f))?;
        if meta.len() > 4096 {
            return Err(Error::Config(format!(
                "{}: larger than 4096 bytes",
                f.display()
            )));
        }
        let text =
            std::fs::read_to_string(f).map_err(Error::io("reading the database password", f))?;
        let pw = text.lines().next().unwrap_or("").to_string();
        if pw.is_empty() {
            return Err(Error::Config(format!(
                "{}: the first line is empty",
                f.display()
            )));
        }
        return Ok(Some(pw));
    }
    Ok(["MIG_API_DB_PASSWORD", "PGPASSWORD"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty())))
}

fn nonempty<'a>(key: &str, v: &'a str) -> std::result::Result<&'a str, String> {
    if v.is_empty() {
        Err(format!("{key} is empty"))
    } else {
        Ok(v)
    }
}

fn parse_number(key: &str, v: &str, min: u64, max: u64) -> std::result::Result<u64, String> {
    let n: u64 = v
        .parse()
        .map_err(|_| format!("{key} = {v:?} is not a whole number"))?;
    if n < min || n > max {
        return Err(format!("{key} = {n} is outside {min}..={max}"));
    }
    Ok(n)
}

fn parse_bool(key: &str, v: &str) -> std::result::Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{key} = {v:?} is not on/off")),
    }
}

/// A deadline of `[limits]`: a [`parse_duration`] as a `Duration`.
fn parse_deadline(key: &str, v: &str) -> std::result::Result<Duration, String> {
    parse_duration(key, v).map(Duration::from_secs)
}

/// Go-style durations as MIG writes them: `10m`, `90s`, `1h30m`. Between 1 s and 24 h.
pub fn parse_duration(key: &str, v: &str) -> std::result::Result<u64, String> {
    parse_duration_within(key, v, 1, 86_400)
}

/// A duration in Go's spelling (`10m`, `90s`, `1h30m`), in seconds, within `min..=max`.
fn parse_duration_within(
    key: &str,
    v: &str,
    min: u64,
    max: u64,
) -> std::result::Result<u64, String> {
    let bad = || format!("{key} {v:?} is not a duration like 10m, 90s or 1h30m");
    if v.is_empty() {
        return Err(bad());
    }
    let (mut total, mut digits) = (0u64, String::new());
    for c in v.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    if !(min..=max).contains(&total) {
        return Err(format!("{key} {v:?} is outside {min}s..={max}s"));
    }
    Ok(total)
}

fn parse_baseroute(v: &str) -> std::result::Result<String, String> {
    let trimmed = v.trim_end_matches('/');
    let ok = trimmed.starts_with('/')
        && trimmed.len() > 1
        && !trimmed.contains("//")
        && !trimmed.split('/').any(|s| s == "." || s == "..")
        && trimmed
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/-_.".contains(&c));
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(format!(
            "baseroute {v:?} must look like /api/v2 (letters, digits, - _ . and /)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, "api.cfg", Path::new("/etc/mig"))
    }

    #[test]
    fn root_keys_are_paths_beside_the_file_and_a_bad_list_or_threshold_is_refused() {
        let c = parse("[root]\nkeys = admin1.asc, /abs/admin2.asc\nthreshold = 2\n").unwrap();
        assert_eq!(
            c.root_keys,
            vec![
                PathBuf::from("/etc/mig/admin1.asc"),
                PathBuf::from("/abs/admin2.asc")
            ]
        );
        assert_eq!(c.root_threshold, Some(2));
        let c = parse("[manifest]\nrequiredsignatures = 3\n").unwrap();
        assert!(c.root_keys.is_empty() && c.root_threshold.is_none());
        for (text, want) in [
            ("[root]\nkeys = a.asc, ,b.asc\n", "api.cfg:2"),
            ("[root]\nthreshold = 0\n", "outside 1..=32"),
            ("[root]\nkey = a.asc\n", "key"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn mig_style_file_parses_with_comments_and_case() {
        let c = parse(
            "; comment\n[Server]\nLISTEN = 127.0.0.1:0\nbaseroute = /api/v3/   # trailing\n\
             tlscert = api.crt ; rel\ntlskey = \"/abs/api.key\"\n[database]\npath = db/mig.db\n\
             [manifest]\nrequiredsignatures = 3\nvaliddays=30\n[authentication]\nenabled = off\n\
             tokenduration = 1h30m\n[limits]\nuploadsize = 2048\nentries = 7\nfilesize = 99\n\
             headdeadline = 5s\nidledeadline = 2m\nconnections = 100\nconnectionsperpeer = 9\n",
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.baseroute, "/api/v3");
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("/etc/mig/api.crt"));
        assert_eq!(tls.key, PathBuf::from("/abs/api.key"));
        assert_eq!(c.db_path, PathBuf::from("/etc/mig/db/mig.db"));
        assert_eq!((c.required_signatures, c.valid_days), (3, 30));
        assert!(!c.auth_enabled);
        assert_eq!(c.token_duration, 5400);
        assert_eq!((c.limits.upload, c.limits.entries), (2048, 7));
        assert_eq!(c.limits.file_size, 99);
        assert_eq!(c.limits.head_deadline, Duration::from_secs(5));
        assert_eq!(c.limits.idle_deadline, Duration::from_secs(120));
        assert_eq!(
            (c.limits.connections, c.limits.connections_per_peer),
            (100, 9)
        );
    }

    #[test]
    fn defaults_match_the_readme() {
        let c = parse("").unwrap();
        assert_eq!(c.url(c.listen), "http://127.0.0.1:1664/api/v2/");
        assert_eq!(
            c.audience(c.listen).unwrap(),
            "http://127.0.0.1:1664/api/v2/"
        );
        let behind =
            parse("[authentication]\naudience = HTTPS://Mig.Example.NET/api/v2\n").unwrap();
        assert_eq!(
            behind.audience(behind.listen).unwrap(),
            "https://mig.example.net:443/api/v2/",
            "a load balancer's public URL, written as consoles sign it"
        );
        assert_eq!(c.required_signatures, 2);
        assert!(c.auth_enabled);
        assert_eq!(c.token_duration, 600);
        assert_eq!(
            c.tokens,
            TokenBounds {
                total: 200_000,
                per_investigator: 10_000,
                reserved: 20_000
            }
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        for (text, needle) in [
            ("[server]\n\nlisten = nowhere", "api.cfg:3: listen"),
            (
                "[limits]\nheaddeadline = 0s",
                "api.cfg:2: headdeadline \"0s\" is outside",
            ),
            (
                "[limits]\nconnections = 0",
                "api.cfg:2: connections = 0 is outside",
            ),
            (
                "[manifest]\nrequiredsignatures = 0",
                "api.cfg:2: requiredsignatures = 0",
            ),
            ("[manifest]\nrequiredsignatures = -1", "api.cfg:2"),
            ("[bogus]", "api.cfg:1: unknown section [bogus]"),
            (
                "[reports]\nkeepdays = 0",
                "api.cfg:2: keepdays = 0 is outside 1..=3650",
            ),
            ("[reports]\nmaxrows = 10", "api.cfg:2: maxrows = 10"),
            (
                "[server]\ncolour = red",
                "api.cfg:2: unknown key \"colour\"",
            ),
            ("listen = 1.2.3.4:1", "api.cfg:1: key \"listen\" outside"),
            (
                "[server]\nbaseroute=/a\nbaseroute=/b",
                "api.cfg:3: [server] baseroute is set twice",
            ),
            (
                "[authentication]\ntokenduration = 10 minutes",
                "api.cfg:2: tokenduration",
            ),
            ("[authentication]\nenabled = maybe", "api.cfg:2: enabled"),
            (
                "[authentication]\nmaxtokens = 100",
                "reservedtokens = 20000 must be below maxtokens = 100",
            ),
            (
                "[authentication]\nmaxtokensperinvestigator = 0",
                "api.cfg:2: maxtokensperinvestigator = 0 is outside",
            ),
            ("[server]\nbaseroute = /../x", "api.cfg:2: baseroute"),
            (
                "[server]\ntlscert = a.crt",
                "tlscert and tlskey go together",
            ),
            ("[server]\nlisten = 0.0.0.0:1664", "not a loopback address"),
            (
                "[server]\nlisten = 0.0.0.0:1664\ntlscert = a\ntlskey = b",
                "set [authentication] audience",
            ),
            (
                "[authentication]\naudience = mig-api.example.net",
                "api.cfg:2: audience \"mig-api.example.net\": expected https://",
            ),
            ("[limits]\nentries = 65", "api.cfg:2: entries = 65"),
            ("[v1]\nfingerprints = abc", "api.cfg:2: fingerprints: \"abc\" is not"),
            (
                "[v1]\nfingerprints = 0123456789abcdef0123456789ABCDEF01234567, \
                 0123456789ABCDEF0123456789ABCDEF01234567",
                "named twice",
            ),
            (
                "[v1]\nfingerprints = 0123456789ABCDEF0123456789ABCDEF01234567",
                "needs 2 signatures but names 1 fingerprints",
            ),
            (
                "[v1]\nbaseroute = /api/v2\nfingerprints = 0123456789ABCDEF0123456789ABCDEF01234567\n\
                 requiredsignatures = 1",
                "[server] baseroute too",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_database_url_selects_postgresql_and_never_holds_the_password() {
        let c = parse("[database]\nurl = postgresql://mig@db.internal/mig\n").unwrap();
        assert_eq!(c.database().to_string(), "postgresql://mig@db.internal/mig");
        assert_eq!(
            parse("").unwrap().database(),
            crate::db::Location::Sqlite(PathBuf::from("./mig-api.db"))
        );
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\nignored\n").unwrap();
        let with_file = format!(
            "[database]\nurl = postgresql://mig@db.internal/mig\npasswordfile = {}\n",
            pw.display()
        );
        match parse(&with_file).unwrap().database() {
            crate::db::Location::Postgres { config, .. } => {
                assert_eq!(config.get_password(), Some(&b"s3cret"[..]))
            }
            other => panic!("{other}"),
        }
        for (text, needle) in [
            (
                "[database]\nurl = postgresql://mig:pw@db/mig",
                "api.cfg:2: url: the URL holds a password",
            ),
            (
                "[database]\nurl = postgresql://mig@db/mig?sslmode=require",
                "sslmode=require needs the CA",
            ),
            ("[database]\nurl = mysql://x", "not a PostgreSQL URL"),
            (
                "[database]\npasswordfile = /x",
                "passwordfile and cafile need url",
            ),
            (
                "[database]\nurl = postgresql://mig@db/mig\ncafile = /nonexistent/ca.pem",
                "/nonexistent/ca.pem",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        std::fs::write(&pw, "not a certificate").unwrap();
        let e = parse(&format!(
            "[database]\nurl = postgresql://mig@db/mig\ncafile = {}",
            pw.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("holds no CERTIFICATE"), "{e}");
    }

    #[test]
    fn v1_is_off_until_fingerprints_are_named() {
        let c = parse("").unwrap();
        assert!(!c.v1.enabled());
        assert_eq!(c.v1.baseroute, "/api/v1");
        let c = parse(
            "[v1]\nfingerprints = 0123456789abcdef0123456789abcdef01234567 \
             89ABCDEF0123456789ABCDEF0123456789ABCDEF\nrequiredsignatures = 1\nbaseroute = /mig/v1/",
        )
        .unwrap();
        assert!(c.v1.enabled());
        assert_eq!(
            c.v1.fingerprints[0],
            "0123456789ABCDEF0123456789ABCDEF01234567"
        );
        assert_eq!((c.v1_required(), c.v1.baseroute.as_str()), (1, "/mig/v1"));
    }

    #[test]
    fn the_documented_example_parses() {
        let c = parse(include_str!("../../conf/api.cfg")).unwrap();
        assert_eq!(c.listen, "0.0.0.0:1664".parse().unwrap());
        assert!(c.tls.is_some());
        assert_eq!(c.required_signatures, 2);
        assert_eq!(c.limits.file_size, 268_435_456);
        assert_eq!(
            c.audience.as_deref(),
            Some("https://mig-api.example.net:1664/api/v2/"),
            "the URL of conf/migrc.example"
        );
    }

    #[test]
    fn durations_follow_go_spelling() {
        assert_eq!(parse_duration("tokenduration", "10m"), Ok(600));
        assert_eq!(parse_duration("tokenduration", "90s"), Ok(90));
        assert_eq!(parse_duration("tokenduration", "1h1m1s"), Ok(3661));
        for bad in ["", "10", "m", "0s", "25h", "1d", "-1m"] {
            assert!(parse_duration("tokenduration", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_freshness_key_and_its_lifetime_are_read_and_checked() {
        let base = Path::new("/etc/mig");
        let c = Config::parse("[freshness]\nkey = fresh.key\n", "api.cfg", base).unwrap();
        assert_eq!(
            c.freshness,
            Some(crate::freshness::Settings {
                key: PathBuf::from("/etc/mig/fresh.key"),
                lifetime: 86_400
            })
        );
        let c = Config::parse("[freshness]\nkey = k\nlifetime = 720h\n", "api.cfg", base).unwrap();
        assert_eq!(c.freshness.map(|f| f.lifetime), Some(30 * 86_400));
        for (text, why) in [
            ("[freshness]\nlifetime = 1h\n", "lifetime needs key"),
            ("[freshness]\nkey = k\nlifetime = 59s\n", "outside 60s"),
            ("[freshness]\nkey = k\nlifetime = 721h\n", "outside 60s"),
            ("[freshness]\nkey = k\nlifetime = 1d\n", "not a duration"),
            ("[freshness]\nkey =\n", "key is empty"),
        ] {
            let e = Config::parse(text, "api.cfg", base)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }
}
