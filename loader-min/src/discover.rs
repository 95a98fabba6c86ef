//! Environment discovery, as MIG reports it (docs/design.md §4.18): hostname (FQDN when known), OS and
//! architecture in Go's spellings, ident, init system, addresses without loopback, optionally the
//! public IP and AWS metadata (short timeouts; failures are logged, never fatal), and tags.
//!
//! Kernel facts come from /proc (no libc); files of the installed system (os-release, the agent ID)
//! are read under the root prefix.

use crate::config::Settings;
use crate::error::Result;
use crate::layout::Layout;
use crate::limits::Limits;
use crate::{child, log};
use mig_http::Client;
use mig_protocol::loader::{Agent, Aws, Environment};
use mig_protocol::statement::Platform;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// A small file of the running system (a fact for discovery), at most `limits.fact_file` bytes;
/// `None` when it cannot be read.
pub(crate) fn read_fact(path: &Path, limits: &Limits) -> Option<String> {
    let mut s = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(limits.fact_file)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// The whole `agent` part of the manifest request.
pub fn discover(layout: &Layout, settings: &Settings, api: &Client) -> Result<Agent> {
    let limits = &settings.limits;
    let platform = Platform::host();
    #[cfg(target_os = "macos")]
    let (name, ident, init, addresses) = crate::darwin::host_facts(limits);
    #[cfg(windows)]
    let (name, ident, init, addresses) = crate::windows::facts();
    #[cfg(not(any(target_os = "macos", windows)))]
    let (name, ident, init, addresses) = (
        hostname(limits),
        ident(layout.root(), limits),
        init_system(layout.root(), limits),
        addresses(limits),
    );
    log::step(format!("Hostname is {name}"));
    log::step(format!("Ident is {ident}"));
    log::step(format!("Init is {init}"));
    for a in &addresses {
        log::step(format!("Found local address {a}"));
    }
    let publicip = if settings.discover_public_ip {
        public_ip(api)
    } else {
        String::new()
    };
    let aws = if settings.discover_aws_metadata {
        aws_metadata(limits)
    } else {
        Aws::default()
    };
    let queueloc = match agent_id(&layout.agent_id_file(), limits) {
        Ok(id) => format!("{}.{id}", platform.os),
        Err(e) => {
            log::warn(e);
            String::new()
        }
    };
    Ok(Agent {
        name,
        queueloc,
        environment: Environment {
            os: platform.os,
            arch: platform.arch,
            ident,
            init,
            addresses,
            publicip,
            aws,
        },
        tags: settings.tags.clone(),
    })
}

/// MIG: the kernel hostname if it has a dot, else its FQDN as `hostname --fqdn` gives it when its
/// first label matches (src/fqdn.rs).
pub fn hostname(limits: &Limits) -> String {
    let short = read_fact(Path::new("/proc/sys/kernel/hostname"), limits)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            child::output(
                "hostname",
                &[],
                limits.discovery_command,
                limits.child_output,
            )
            .map(|s| s.trim().into())
        })
        .unwrap_or_else(|| "localhost".to_string());
    if short.contains('.') {
        return short;
    }
    crate::fqdn::fqdn(&short, limits)
}

/// `<root>/etc/os-release` (any distribution, unlike MIG), then `lsb_release`, then /etc/issue.
pub fn ident(root: &Path, limits: &Limits) -> String {
    for f in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(text) = read_fact(&root.join(f), limits) {
            if let Some(id) = ident_from_os_release(&text) {
                return id;
            }
        }
    }
    if let Some(out) = child::output(
        "lsb_release",
        &["-i", "-r", "-c", "-s"],
        limits.discovery_command,
        limits.child_output,
    ) {
        let id = out.split_whitespace().collect::<Vec<_>>().join(" ");
        if !id.is_empty() {
            return id;
        }
    }
    read_fact(&root.join("etc/issue"), limits)
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.replace("\\n", "").replace("\\l", ""))
        })
        .map(|l| l.trim().to_string())
        .filter(|l| l.len() > 3)
        .unwrap_or_else(|| "unknown".to_string())
}

/// `NAME VERSION_ID VERSION_CODENAME`, like `lsb_release -irc -s` ("Ubuntu 15.10 wily").
pub fn ident_from_os_release(text: &str) -> Option<String> {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
            let v = v.trim().trim_matches('"').trim_matches('\'').trim();
            (!v.is_empty()).then(|| v.to_string())
        })
    };
    let name = get("NAME")?;
    let parts: Vec<String> = [Some(name), get("VERSION_ID"), get("VERSION_CODENAME")]
        .into_iter()
        .flatten()
        .collect();
    Some(parts.join(" "))
}

/// MIG's init flavours: systemd, upstart, sysvinit (or whatever PID 1 is called).
pub fn init_system(root: &Path, limits: &Limits) -> String {
    if root.join("run/systemd/system").is_dir() {
        return "systemd".into();
    }
    let comm = read_fact(Path::new("/proc/1/comm"), limits).map(|s| s.trim().to_string());
    match comm.as_deref() {
        Some("systemd") => "systemd".into(),
        Some("init") if root.join("sbin/initctl").exists() => "upstart".into(),
        Some("init") | None => "sysvinit".into(),
        Some(other) => other.to_string(),
    }
}

/// Every local address in CIDR form, loopback excluded (MIG dropped 127.0.0.1/8 and ::1/128).
pub fn addresses(limits: &Limits) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(trie) = read_fact(Path::new("/proc/net/fib_trie"), limits) {
        out.extend(ipv4_from_fib_trie(&trie));
    }
    if let Some(text) = read_fact(Path::new("/proc/net/if_inet6"), limits) {
        out.extend(ipv6_from_if_inet6(&text));
    }
    out
}

/// Local IPv4 addresses from `/proc/net/fib_trie`, each with the prefix of the longest link
/// route that contains it (`/32` when there is none).
pub fn ipv4_from_fib_trie(text: &str) -> Vec<String> {
    let mut locals: Vec<Ipv4Addr> = Vec::new();
    let mut links: Vec<(u32, u32)> = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim_start_matches([' ', '|', '+', '-']).trim();
        if let Ok(a) = t.parse::<Ipv4Addr>() {
            last = Some(a);
            continue;
        }
        let Some(rest) = t.strip_prefix('/') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (Some(len), Some(scope), Some(kind)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (Some(a), Ok(len)) = (last, len.parse::<u32>()) else {
            continue;
        };
        match (scope, kind) {
            ("host", "LOCAL") if len == 32 && !a.is_loopback() && !locals.contains(&a) => {
                locals.push(a);
            }
            ("link", "UNICAST") if len <= 32 => links.push((u32::from(a), len)),
            _ => {}
        }
    }
    locals
        .into_iter()
        .map(|a| {
            let bits = u32::from(a);
            let len = links
                .iter()
                .filter(|(net, len)| {
                    let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
                    bits & mask == *net & mask
                })
                .map(|(_, len)| *len)
                .max()
                .unwrap_or(32);
            format!("{a}/{len}")
        })
        .collect()
}

/// IPv6 addresses from `/proc/net/if_inet6` (`<32 hex> <ifindex> <prefix hex> <scope> <flags> <if>`).
pub fn ipv6_from_if_inet6(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 6 || f[0].len() != 32 {
                return None;
            }
            let bits = u128::from_str_radix(f[0], 16).ok()?;
            let len = u8::from_str_radix(f[2], 16).ok()?;
            let a = Ipv6Addr::from(bits);
            (!a.is_loopback()).then(|| format!("{a}/{len}"))
        })
        .collect()
}

/// Asks the API which address it sees (`GET <api>/ip`, MIG's route without its double slash).
fn public_ip(api: &Client) -> String {
    let got = api
        .request(mig_http::Method::Get, "ip", &[], None)
        .and_then(|r| r.error_for_status(1024))
        .and_then(|r| r.read_capped(64));
    match got {
        Ok(body) => {
            let text = String::from_utf8_lossy(&body).trim().to_string();
            match text.parse::<IpAddr>() {
                Ok(ip) => {
                    log::step(format!("Found public ip {ip}"));
                    ip.to_string()
                }
                Err(_) => {
                    log::warn(format!("public IP answer {:?} is not an address", text));
                    String::new()
                }
            }
        }
        Err(e) => {
            log::warn(format!("public IP discovery failed: {e}"));
            String::new()
        }
    }
}

/// IMDSv2 (token first), falling back to IMDSv1, never through a proxy, 1 s per request.
fn aws_metadata(limits: &Limits) -> Aws {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(limits.cloud_metadata))
            .timeout_global(Some(limits.cloud_metadata))
            .build(),
    );
    const BASE: &str = "http://169.254.169.254/latest/";
    let token = agent
        .put(format!("{BASE}api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
        .send_empty()
        .ok()
        .filter(|r| r.status() == 200)
        .and_then(|r| {
            r.into_body()
                .with_config()
                .limit(limits.cloud_metadata_body)
                .read_to_string()
                .ok()
        });
    let get = |what: &str| -> Option<String> {
        let mut req = agent.get(format!("{BASE}meta-data/{what}"));
        if let Some(t) = &token {
            req = req.header("X-aws-ec2-metadata-token", t.trim());
        }
        let r = req.call().ok().filter(|r| r.status() == 200)?;
        let v = r
            .into_body()
            .with_config()
            .limit(limits.cloud_metadata_body)
            .read_to_string()
            .ok()?;
        Some(v.trim().to_string())
    };
    let Some(instanceid) = get("instance-id") else {
        log::step("AWS metadata service not found, skipping fetch");
        return Aws::default();
    };
    Aws {
        instanceid,
        localipv4: get("local-ipv4").unwrap_or_default(),
        amiid: get("ami-id").unwrap_or_default(),
        instancetype: get("instance-type").unwrap_or_default(),
    }
}

/// The agent ID shared with mig-agent (`^[0-9a-zA-Z]{80,}$`); made from the OS CSPRNG when missing
/// or malformed, written 0400 like MIG.
pub fn agent_id(path: &Path, limits: &Limits) -> Result<String> {
    use crate::error::Error;
    if let Some(text) = crate::fsutil::read_small(path, limits.state_file)? {
        let id = text.trim();
        if id.len() >= 80 && id.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(id.to_string());
        }
        std::fs::remove_file(path).map_err(|e| Error::io("remove malformed agent ID", path, e))?;
    }
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut random = [0u8; 96];
    #[cfg(windows)]
    crate::windows::random(&mut random)?;
    #[cfg(not(windows))]
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| Error::io("read", "/dev/urandom", e))?;
    // 252 = 7 * 36: rejecting larger bytes keeps every character equally likely.
    let id: String = random
        .iter()
        .filter(|b| **b < 252)
        .map(|b| ALPHABET[(*b % 36) as usize] as char)
        .collect();
    if id.len() < 80 {
        return Err(Error::Config(
            "not enough random bytes for an agent ID".into(),
        ));
    }
    let mut f =
        crate::fsutil::create_with_mode(OpenOptions::new().write(true).create_new(true), 0o400)
            .open(path)
            .map_err(|e| Error::io("create agent ID", path, e))?;
    f.write_all(id.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("write agent ID", path, e))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.0.0.0/24 2 0 2
        |-- 10.0.0.0
           /24 link UNICAST
        |-- 10.0.0.18
           /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.0
           /8 host LOCAL
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
        |-- 10.0.0.18
           /32 host LOCAL
";

    #[test]
    fn ipv4_addresses_get_their_link_prefix_and_loopback_is_dropped() {
        assert_eq!(ipv4_from_fib_trie(TRIE), vec!["10.0.0.18/24".to_string()]);
    }

    #[test]
    fn ipv6_addresses_without_loopback() {
        let t = "00000000000000000000000000000001 01 80 10 80       lo
fe800000000000000000000000000001 02 40 20 80     eth0
";
        assert_eq!(ipv6_from_if_inet6(t), vec!["fe80::1/64".to_string()]);
    }

    #[test]
    fn ident_reads_any_os_release() {
        let t = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";
        assert_eq!(
            ident_from_os_release(t).as_deref(),
            Some("Debian GNU/Linux 12 bookworm")
        );
        assert_eq!(ident_from_os_release("ID=x\n"), None);
    }

    #[test]
    fn agent_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".migagtid");
        let a = agent_id(&p, &Limits::DEFAULT).unwrap();
        assert!(a.len() >= 80 && a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(agent_id(&p, &Limits::DEFAULT).unwrap(), a);
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "short").unwrap();
        assert_ne!(agent_id(&p, &Limits::DEFAULT).unwrap(), "short");
    }
}
