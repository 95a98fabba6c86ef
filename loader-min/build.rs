//! Bakes mig-loader's built-in configuration into the binary.
//!
//! `LOADERCONF=path/to.toml` names the configuration (relative to the directory cargo or make was
//! started in, or absolute). Without it the development configuration `conf/mig-loader-dev.toml`
//! is used and cargo prints a warning. The TOML is validated here, so a loader that would accept
//! fewer than one signature, or name a key file that is not a public key, never gets built.
//! The result is `$OUT_DIR/config.rs`: one `BuildConfig` constant that `src/main.rs` includes.

#[path = "src/deadlines.rs"]
mod deadlines;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The largest key or CA file accepted (an armored public key is a few KiB).
const MAX_KEY_FILE: u64 = 256 * 1024;

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("mig-loader build configuration error: {msg}");
    std::process::exit(1);
}

fn main() {
    println!("cargo:rerun-if-env-changed=LOADERCONF");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/deadlines.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_else(|| fail("OUT_DIR unset")));
    let out = out.join("config.rs");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest_dir.parent().unwrap_or(&manifest_dir).to_path_buf();
    let dev = workspace.join("conf/mig-loader-dev.toml");
    let (path, development) = match std::env::var("LOADERCONF") {
        Ok(v) if !v.trim().is_empty() => {
            let p = resolve(v.trim(), &workspace);
            let is_dev = same_file(&p, &dev);
            (p, is_dev)
        }
        _ => {
            println!(
                "cargo:warning=LOADERCONF is not set: building mig-loader with the DEVELOPMENT \
                 configuration {} (publicly known keys, plain http); never deploy this binary",
                dev.display()
            );
            (dev, true)
        }
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let text = read_capped(&path, MAX_KEY_FILE)
        .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", path.display())));
    let table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| fail(format!("{} is not valid TOML: {e}", path.display())));
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let cfg = Parsed::from_table(&table, &dir, &path);
    write(&out, &cfg.render(&path, development));
}

/// A relative LOADERCONF is relative to where the build was started (`PWD`); the workspace root
/// is tried as well because `cargo -p` is often run from a member directory.
fn resolve(v: &str, workspace: &Path) -> PathBuf {
    let p = PathBuf::from(v);
    if p.is_absolute() {
        return p;
    }
    let mut bases: Vec<PathBuf> = Vec::new();
    if let Some(pwd) = std::env::var_os("PWD") {
        bases.push(PathBuf::from(pwd));
    }
    bases.push(workspace.to_path_buf());
    bases
        .iter()
        .map(|b| b.join(&p))
        .find(|c| c.is_file())
        .unwrap_or_else(|| {
            fail(format!(
                "LOADERCONF={v}: no such file (looked in {})",
                bases
                    .iter()
                    .map(|b| b.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn read_capped(path: &Path, cap: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_string(&mut s)?;
    if s.len() as u64 > cap {
        return Err(std::io::Error::other(format!("larger than {cap} bytes")));
    }
    Ok(s)
}

fn write(path: &Path, text: &str) {
    // Rewrite only on change so that an unchanged configuration does not rebuild the crate.
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return;
    }
    std::fs::write(path, text).unwrap_or_else(|e| fail(format!("write {}: {e}", path.display())));
}

/// The validated configuration.
struct Parsed {
    api_url: String,
    ca: Option<(String, PathBuf)>,
    allow_plain_http: bool,
    proxy: Option<String>,
    connect_timeout_secs: u64,
    request_timeout_secs: u64,
    run_timeout_secs: u64,
    required: u64,
    keys: Vec<(String, PathBuf)>,
    /// `[freshness] key`: the API's freshness public key (docs/design.md §4.20).
    freshness: Option<(String, PathBuf)>,
    tags: Vec<(String, String)>,
    public_ip: bool,
    aws_metadata: bool,
    trigger_timeout_secs: u64,
    health_timeout_secs: u64,
}

/// Typed access to one TOML table that rejects unknown keys (typos must not pass silently).
struct Section<'a> {
    name: &'a str,
    file: &'a Path,
    table: &'a toml::Table,
}

impl<'a> Section<'a> {
    fn new(root: &'a toml::Table, name: &'a str, file: &'a Path, allowed: &[&str]) -> Self {
        let table = match root.get(name) {
            Some(toml::Value::Table(t)) => t,
            Some(_) => fail(format!("{}: [{name}] must be a table", file.display())),
            None => fail(format!("{}: section [{name}] is missing", file.display())),
        };
        if name != "tags" {
            for k in table.keys() {
                if !allowed.contains(&k.as_str()) {
                    fail(format!(
                        "{}: unknown key {name}.{k} (known: {})",
                        file.display(),
                        allowed.join(", ")
                    ));
                }
            }
        }
        Section { name, file, table }
    }

    fn where_(&self, key: &str) -> String {
        format!("{}: {}.{key}", self.file.display(), self.name)
    }

    fn str_opt(&self, key: &str) -> Option<String> {
        match self.table.get(key) {
            None => None,
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(_) => fail(format!("{} must be a string", self.where_(key))),
        }
    }

    fn str(&self, key: &str) -> String {
        self.str_opt(key)
            .unwrap_or_else(|| fail(format!("{} is required", self.where_(key))))
    }

    fn bool(&self, key: &str, default: bool) -> bool {
        match self.table.get(key) {
            None => default,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => fail(format!("{} must be true or false", self.where_(key))),
        }
    }

    fn int(&self, key: &str, default: Option<u64>, range: std::ops::RangeInclusive<i64>) -> u64 {
        let v = match (self.table.get(key), default) {
            // Past i64, a default fails the range check below like a written value would.
            (None, Some(d)) => i64::try_from(d).unwrap_or(i64::MAX),
            (None, None) => fail(format!("{} is required", self.where_(key))),
            (Some(toml::Value::Integer(i)), _) => *i,
            (Some(_), _) => fail(format!("{} must be an integer", self.where_(key))),
        };
        if !range.contains(&v) {
            fail(format!(
                "{} = {v} is outside {}..={}",
                self.where_(key),
                range.start(),
                range.end()
            ));
        }
        v as u64
    }
}

impl Parsed {
    fn from_table(t: &toml::Table, dir: &Path, file: &Path) -> Parsed {
        for k in t.keys() {
            if ![
                "api",
                "signatures",
                "freshness",
                "tags",
                "discovery",
                "agent",
            ]
            .contains(&k.as_str())
            {
                fail(format!("{}: unknown section [{k}]", file.display()));
            }
        }
        let api = Section::new(
            t,
            "api",
            file,
            &[
                "url",
                "ca",
                "allow_plain_http",
                "proxy",
                "connect_timeout_secs",
                "request_timeout_secs",
                "run_timeout_secs",
            ],
        );
        let allow_plain_http = api.bool("allow_plain_http", false);
        let mut api_url = api.str("url");
        if api_url.starts_with("http://") {
            if !allow_plain_http {
                fail(format!(
                    "{} is plain http:// but api.allow_plain_http is not true (only for tests)",
                    api.where_("url")
                ));
            }
        } else if !api_url.starts_with("https://") {
            fail(format!("{} must start with https://", api.where_("url")));
        }
        if api_url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            fail(format!("{} holds whitespace", api.where_("url")));
        }
        if !api_url.ends_with('/') {
            api_url.push('/');
        }
        let ca = api.str_opt("ca").map(|rel| {
            let p = dir.join(&rel);
            let pem = read_input(&p, &api.where_("ca"));
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                fail(format!(
                    "{} names {}, which holds no PEM certificate",
                    api.where_("ca"),
                    p.display()
                ));
            }
            (rel, p)
        });
        let proxy = api.str_opt("proxy").filter(|p| !p.is_empty());
        let connect_timeout_secs = api.int(
            "connect_timeout_secs",
            Some(deadlines::CONNECT_SECS),
            1..=300,
        );
        let request_timeout_secs = api.int(
            "request_timeout_secs",
            Some(deadlines::REQUEST_SECS),
            1..=86_400,
        );
        let run_timeout_secs = api.int("run_timeout_secs", Some(deadlines::RUN_SECS), 1..=86_400);

        let sigs = Section::new(t, "signatures", file, &["required", "keys"]);
        // docs/design.md §4.1: a threshold below 1 would switch verification off.
        let required = sigs.int("required", None, 1..=64);
        let keys: Vec<(String, PathBuf)> = match sigs.table.get("keys") {
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => (s.clone(), dir.join(s)),
                    _ => fail(format!("{} must list file names", sigs.where_("keys"))),
                })
                .collect(),
            _ => fail(format!(
                "{} must be a list of armored public key files",
                sigs.where_("keys")
            )),
        };
        if (keys.len() as u64) < required {
            fail(format!(
                "{}: signatures.required = {required} but only {} key file(s) are listed: \
                 no statement could ever be accepted",
                file.display(),
                keys.len()
            ));
        }
        let mut seen = BTreeSet::new();
        for (name, p) in &keys {
            let text = read_input(p, &sigs.where_("keys"));
            check_public_key(&text, name, p);
            if !seen.insert(text.trim().to_string()) {
                fail(format!(
                    "{}: key file {name} is listed twice (same content)",
                    file.display()
                ));
            }
        }

        // docs/design.md §4.20: a role of its own, optional; never one of the administrators'.
        let freshness = t.get("freshness").map(|_| {
            let fresh = Section::new(t, "freshness", file, &["key"]);
            let name = fresh.str("key");
            let p = dir.join(&name);
            let text = read_input(&p, &fresh.where_("key"));
            check_public_key(&text, &name, &p);
            if seen.contains(text.trim()) {
                fail(format!(
                    "{}: freshness.key {name} is also listed in signatures.keys: the API holds \
                     the freshness key online, so it must never count as an administrator",
                    file.display()
                ));
            }
            (name, p)
        });

        let tags_section = Section::new(t, "tags", file, &[]);
        let tags = tags_section
            .table
            .iter()
            .map(|(k, v)| match v {
                toml::Value::String(s) => (k.clone(), s.clone()),
                _ => fail(format!("{} must be a string", tags_section.where_(k))),
            })
            .collect();

        let disc = Section::new(t, "discovery", file, &["public_ip", "aws_metadata"]);
        let agent = Section::new(
            t,
            "agent",
            file,
            &["trigger_timeout_secs", "health_timeout_secs"],
        );
        Parsed {
            api_url,
            ca,
            allow_plain_http,
            proxy,
            connect_timeout_secs,
            request_timeout_secs,
            run_timeout_secs,
            required,
            keys,
            freshness,
            tags,
            public_ip: disc.bool("public_ip", false),
            aws_metadata: disc.bool("aws_metadata", false),
            trigger_timeout_secs: agent.int(
                "trigger_timeout_secs",
                Some(deadlines::TRIGGER_SECS),
                1..=3600,
            ),
            health_timeout_secs: agent.int(
                "health_timeout_secs",
                Some(deadlines::HEALTH_SECS),
                1..=3600,
            ),
        }
    }

    fn render(&self, source: &Path, development: bool) -> String {
        let mut s = String::new();
        let lit = |v: &str| format!("{v:?}");
        let inc = |p: &Path| format!("include_str!({:?})", p.display().to_string());
        let _ = writeln!(
            s,
            "// Generated by loader-min/build.rs from {} — do not edit.",
            source.display()
        );
        let _ = writeln!(s, "pub const BUILD: ::loader_min::config::BuildConfig = ::loader_min::config::BuildConfig {{");
        let _ = writeln!(s, "    source: {},", lit(&source.display().to_string()));
        let _ = writeln!(s, "    development: {development},");
        let _ = writeln!(s, "    api_url: {},", lit(&self.api_url));
        match &self.ca {
            Some((rel, p)) => {
                let _ = writeln!(s, "    ca_pem: Some(({}, {})),", lit(rel), inc(p));
            }
            None => {
                let _ = writeln!(s, "    ca_pem: None,");
            }
        }
        let _ = writeln!(s, "    allow_plain_http: {},", self.allow_plain_http);
        match &self.proxy {
            Some(p) => {
                let _ = writeln!(s, "    proxy: Some({}),", lit(p));
            }
            None => {
                let _ = writeln!(s, "    proxy: None,");
            }
        }
        let _ = writeln!(
            s,
            "    connect_timeout_secs: {},\n    request_timeout_secs: {},\n    run_timeout_secs: {},",
            self.connect_timeout_secs, self.request_timeout_secs, self.run_timeout_secs
        );
        let _ = writeln!(s, "    required_signatures: {},", self.required);
        let _ = writeln!(s, "    keys: &[");
        for (name, p) in &self.keys {
            println!("cargo:rerun-if-changed={}", p.display());
            let _ = writeln!(s, "        ({}, {}),", lit(name), inc(p));
        }
        let _ = writeln!(s, "    ],");
        match &self.freshness {
            Some((name, p)) => {
                println!("cargo:rerun-if-changed={}", p.display());
                let _ = writeln!(s, "    freshness_key: Some(({}, {})),", lit(name), inc(p));
            }
            None => {
                let _ = writeln!(s, "    freshness_key: None,");
            }
        }
        let _ = writeln!(s, "    tags: &[");
        for (k, v) in &self.tags {
            let _ = writeln!(s, "        ({}, {}),", lit(k), lit(v));
        }
        let _ = writeln!(s, "    ],");
        let _ = writeln!(
            s,
            "    discover_public_ip: {},\n    discover_aws_metadata: {},",
            self.public_ip, self.aws_metadata
        );
        let _ = writeln!(
            s,
            "    trigger_timeout_secs: {},\n    health_timeout_secs: {},",
            self.trigger_timeout_secs, self.health_timeout_secs
        );
        let _ = writeln!(s, "}};");
        if let Some((_, p)) = &self.ca {
            println!("cargo:rerun-if-changed={}", p.display());
        }
        s
    }
}

fn read_input(p: &Path, what: &str) -> String {
    read_capped(p, MAX_KEY_FILE)
        .unwrap_or_else(|e| fail(format!("{what}: cannot read {}: {e}", p.display())))
}

/// A text check only: pgp is not built for the build script (it would compile twice). The loader
/// parses every key when it starts and a unit test parses the built-in keys.
fn check_public_key(text: &str, name: &str, p: &Path) {
    if text.contains("PRIVATE KEY") {
        fail(format!(
            "key file {name} ({}) holds a PRIVATE key: only public keys are built in",
            p.display()
        ));
    }
    let begin = text.find("-----BEGIN PGP PUBLIC KEY BLOCK-----");
    let end = text.find("-----END PGP PUBLIC KEY BLOCK-----");
    match (begin, end) {
        (Some(b), Some(e)) if b < e => {}
        _ => fail(format!(
            "key file {name} ({}) is not an armored OpenPGP public key",
            p.display()
        )),
    }
}
