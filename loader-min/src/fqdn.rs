//! The host's fully qualified name as `hostname --fqdn` prints it, without running it
//! (docs/design.md §4.18): every run of the loader discovers the hostname, and a child process is
//! most of a no-change run's cost.
//!
//! `hostname --fqdn` asks the C library for the canonical name of the kernel hostname
//! (`getaddrinfo` with `AI_CANONNAME`), which walks the `hosts:` sources of /etc/nsswitch.conf in
//! order. The sources whose answer is in a file or is the name itself are answered here: `files`
//! (the canonical name, first on the first /etc/hosts line naming the host, any case) and
//! `myhostname` (the name itself). When the walk reaches one that asks a service
//! ([`Answer::AskTheResolver`]), the loader's own C library answers: `getaddrinfo` with
//! `AI_CANONNAME`, the call `hostname --fqdn` makes (static musl reads /etc/hosts, then asks the
//! name servers of /etc/resolv.conf with its search domains, which is what `dns` and
//! systemd-resolved's `resolve` answer for a name).

use crate::child;
use crate::discover::read_fact;
use crate::limits::Limits;
use std::path::Path;
use std::time::Duration;

/// MIG's hostname rule for a kernel hostname `short` without a dot: the canonical name when its
/// first label is `short` and it has a dot, else `short`. The canonical name comes from
/// /etc/nsswitch.conf and /etc/hosts of the running system, else from the resolver.
pub fn fqdn(short: &str, limits: &Limits) -> String {
    let read = |path: &str| read_fact(Path::new(path), limits);
    let nsswitch = read("/etc/nsswitch.conf");
    let found = match canonical(short, nsswitch.as_deref(), read("/etc/hosts").as_deref()) {
        Answer::Canonical(c) => Some(c),
        Answer::Unknown => None,
        Answer::AskTheResolver => {
            resolver_canonical(short, limits.discovery_command).or_else(|| {
                // A source no static C library has (NIS, LDAP, SSSD, winbind: glibc loads them as
                // modules) may still know the host; only the system's own `hostname` can ask it.
                has_module_source(nsswitch.as_deref())
                    .then(|| {
                        child::output(
                            "hostname",
                            &["--fqdn"],
                            limits.discovery_command,
                            limits.child_output,
                        )
                    })
                    .flatten()
                    .map(|s| s.trim().to_string())
            })
        }
    };
    found
        .filter(|f| f.split('.').next() == Some(short) && f.contains('.'))
        .unwrap_or_else(|| short.to_string())
}

/// The longest name DNS carries (RFC 1035 §2.3.4: 255 octets on the wire, 253 as text).
const MAX_NAME: usize = 253;

/// The resolver's canonical name for `name`, or `None` when it has none, names something longer
/// than a DNS name, or does not answer within `deadline` (a name server that never answers must
/// not hold the run: the lookup runs on its own thread, which is left behind and ends with the
/// process).
pub fn resolver_canonical(name: &str, deadline: Duration) -> Option<String> {
    let name = std::ffi::CString::new(name).ok()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("getaddrinfo".into())
        .spawn(move || {
            let _ = tx.send(sys::canonical_name(&name));
        })
        .ok()?;
    rx.recv_timeout(deadline)
        .ok()
        .flatten()
        .filter(|c| !c.is_empty() && c.len() <= MAX_NAME)
}

/// The one C library call of this module.
#[cfg(unix)]
#[allow(unsafe_code)]
mod sys {
    use std::ffi::CStr;

    /// `getaddrinfo(name, NULL, {AI_CANONNAME, SOCK_DGRAM})`'s `ai_canonname`, as `hostname
    /// --fqdn` asks it; `None` on any error. Read up to its NUL and at most one byte more than
    /// fits in a DNS name.
    pub fn canonical_name(name: &CStr) -> Option<String> {
        // SAFETY: an all-zero `addrinfo` is its documented empty value (null pointers, zero
        // integers).
        let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
        hints.ai_flags = libc::AI_CANONNAME;
        hints.ai_socktype = libc::SOCK_DGRAM;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated, the service is null (allowed when a name is given),
        // `hints` is initialised and `res` is where the C library stores its list.
        let rc = unsafe { libc::getaddrinfo(name.as_ptr(), std::ptr::null(), &hints, &mut res) };
        if rc != 0 || res.is_null() {
            return None;
        }
        // SAFETY: getaddrinfo succeeded, so `res` points to its first entry, whose
        // `ai_canonname` is null or a NUL-terminated string owned by the list; strnlen reads at
        // most MAX_NAME + 1 bytes of it, which the string holds up to its NUL; the list is freed
        // once, after the name is copied out.
        unsafe {
            let canon = (*res).ai_canonname;
            let out = (!canon.is_null()).then(|| {
                let len = libc::strnlen(canon, super::MAX_NAME + 1);
                let bytes = std::slice::from_raw_parts(canon.cast::<u8>(), len);
                String::from_utf8_lossy(bytes).into_owned()
            });
            libc::freeaddrinfo(res);
            out
        }
    }
}

/// Windows has no `hosts:` walk (discover.rs asks its own APIs).
#[cfg(not(unix))]
mod sys {
    pub fn canonical_name(_name: &std::ffi::CStr) -> Option<String> {
        None
    }
}

/// What the walk of the `hosts:` sources found for the kernel hostname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The canonical name `hostname --fqdn` prints.
    Canonical(String),
    /// No source knows the name: `hostname --fqdn` fails.
    Unknown,
    /// A source that asks a service (DNS, mDNS, systemd-resolved) comes first: the resolver
    /// answers ([`resolver_canonical`]).
    AskTheResolver,
}

/// glibc's order when /etc/nsswitch.conf has no `hosts:` line: `dns [!UNAVAIL=return] files`.
const GLIBC_DEFAULT: &str = "dns [!UNAVAIL=return] files";

/// The canonical name of `name` from the text of /etc/nsswitch.conf (None: no such file) and of
/// /etc/hosts (None: no such file, which no source finds anything in).
pub fn canonical(name: &str, nsswitch: Option<&str>, hosts: Option<&str>) -> Answer {
    let sources = nsswitch
        .and_then(hosts_line)
        .unwrap_or(GLIBC_DEFAULT)
        .to_ascii_lowercase();
    let mut words = sources.split_whitespace().peekable();
    while let Some(source) = words.next() {
        if source.starts_with('[') {
            continue;
        }
        let found = match source {
            "files" => hosts.and_then(|h| from_hosts(h, name)),
            "myhostname" => Some(name.to_string()),
            _ => return Answer::AskTheResolver,
        };
        if let Some(canonical) = found {
            return Answer::Canonical(canonical);
        }
        // An action such as `[NOTFOUND=return]` ends the walk when this source found nothing.
        let mut stop = false;
        while let Some(action) = words.next_if(|w| w.starts_with('[')) {
            let action = action.trim_matches(['[', ']']);
            stop |= action.split_whitespace().any(|a| a == "notfound=return");
        }
        if stop {
            return Answer::Unknown;
        }
    }
    Answer::Unknown
}

/// The sources the walk reads or the resolver answers: the files and the name itself, DNS, and
/// systemd-resolved and multicast DNS (which answer a name without a dot, if at all, as DNS
/// does: mDNS only names under `.local`).
const RESOLVER_SOURCES: &[&str] = &["files", "myhostname", "dns", "resolve"];

/// Whether the `hosts:` line names a source that only one of glibc's modules can ask (NIS, LDAP,
/// SSSD, winbind...): those are where `hostname --fqdn` may know more than the resolver.
pub fn has_module_source(nsswitch: Option<&str>) -> bool {
    nsswitch
        .and_then(hosts_line)
        .unwrap_or(GLIBC_DEFAULT)
        .to_ascii_lowercase()
        .split_whitespace()
        .filter(|w| !w.starts_with('[') && !w.ends_with(']') && !w.contains('='))
        .any(|s| !RESOLVER_SOURCES.contains(&s) && !s.starts_with("mdns"))
}

/// The sources of the last `hosts:` line of nsswitch.conf (glibc reads the last one).
fn hosts_line(nsswitch: &str) -> Option<&str> {
    nsswitch
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.strip_prefix("hosts:"))
        .next_back()
        .map(str::trim)
}

/// The canonical name (the first name) of the first /etc/hosts line whose address parses and
/// that names `name` as its canonical name or an alias, compared without case.
pub fn from_hosts(hosts: &str, name: &str) -> Option<String> {
    hosts.lines().find_map(|line| {
        let mut fields = line.split('#').next().unwrap_or("").split_whitespace();
        fields.next()?.parse::<std::net::IpAddr>().ok()?;
        let canonical = fields.next()?;
        std::iter::once(canonical)
            .chain(fields)
            .any(|n| n.eq_ignore_ascii_case(name))
            .then(|| canonical.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_NSS: &str = "passwd: files\nhosts:          files dns\nnetworks: files\n";

    #[test]
    fn the_first_hosts_line_naming_the_host_gives_its_canonical_name() {
        let hosts = "127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.org web1\n\
                     ::1 localhost ip6-localhost\n10.0.0.5 web1.other.net web1\n";
        assert_eq!(
            canonical("web1", Some(DEBIAN_NSS), Some(hosts)),
            Answer::Canonical("web1.example.org".into())
        );
        // Names compare without case; the canonical name is printed as written.
        assert_eq!(
            canonical("WEB1", Some(DEBIAN_NSS), Some(hosts)),
            Answer::Canonical("web1.example.org".into())
        );
    }

    #[test]
    fn comments_and_lines_without_an_address_are_not_read() {
        let hosts = "# 127.0.1.1 wrong.example.org web1\nweb1 web1.bad.org\n\
                     127.0.1.1 web1.example.org web1 # web1.comment.org\n";
        assert_eq!(
            from_hosts(hosts, "web1").as_deref(),
            Some("web1.example.org")
        );
        assert_eq!(from_hosts(hosts, "comment"), None);
    }

    #[test]
    fn a_host_known_only_by_its_short_name_is_that_name() {
        // The layout of this CI machine and of most containers.
        let hosts = "127.0.0.1 localhost\n127.0.0.1 vm\n";
        assert_eq!(
            canonical("vm", Some(DEBIAN_NSS), Some(hosts)),
            Answer::Canonical("vm".into())
        );
    }

    #[test]
    fn a_name_not_in_files_goes_to_the_resolver_or_ends_where_nsswitch_says() {
        let hosts = "127.0.0.1 localhost\n";
        assert_eq!(
            canonical("web1", Some(DEBIAN_NSS), Some(hosts)),
            Answer::AskTheResolver
        );
        // Ubuntu desktops: mdns4_minimal asks avahi.
        let mdns = "hosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n";
        assert_eq!(
            canonical("web1", Some(mdns), Some(hosts)),
            Answer::AskTheResolver
        );
        let stop = "hosts: files [NOTFOUND=return] dns\n";
        assert_eq!(canonical("web1", Some(stop), Some(hosts)), Answer::Unknown);
        // systemd's myhostname answers the name itself.
        let myhost = "hosts: files myhostname dns\n";
        assert_eq!(
            canonical("web1", Some(myhost), None),
            Answer::Canonical("web1".into())
        );
        assert_eq!(
            canonical("web1", Some("hosts: files\n"), Some(hosts)),
            Answer::Unknown
        );
    }

    #[test]
    fn without_nsswitch_the_c_library_asks_dns_first() {
        let hosts = "127.0.1.1 web1.example.org web1\n";
        assert_eq!(canonical("web1", None, Some(hosts)), Answer::AskTheResolver);
        assert_eq!(
            canonical("web1", Some("passwd: files\n"), Some(hosts)),
            Answer::AskTheResolver
        );
    }

    /// Whole /etc layouts (`testdata/etc/<layout>/`: nsswitch.conf, if any, hosts, and
    /// `expected`): what the walk finds for `web1`, and whether a glibc module could know more.
    #[test]
    fn etc_layouts_give_their_canonical_name_or_the_resolver() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/etc");
        let mut layouts: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        layouts.sort();
        assert_eq!(layouts.len(), 5, "{layouts:?}");
        for dir in layouts {
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
            let (nsswitch, hosts) = (read("nsswitch.conf"), read("hosts"));
            let expected = read("expected").unwrap();
            let mut lines = expected.lines();
            let walk = match lines.next().unwrap().split_once(' ') {
                Some(("canonical", name)) => Answer::Canonical(name.into()),
                None => Answer::AskTheResolver,
                other => panic!("{}: {other:?}", dir.display()),
            };
            let module = lines.next() == Some("module yes");
            assert_eq!(
                canonical("web1", nsswitch.as_deref(), hosts.as_deref()),
                walk,
                "{}",
                dir.display()
            );
            assert_eq!(
                has_module_source(nsswitch.as_deref()),
                module,
                "{}",
                dir.display()
            );
        }
    }

    #[test]
    fn only_sources_of_glibc_modules_send_the_loader_to_hostname() {
        for (line, module) in [
            ("hosts: files dns\n", false),
            ("hosts: files [NOTFOUND=return] dns\n", false),
            (
                "hosts: resolve [!UNAVAIL=return] files myhostname dns\n",
                false,
            ),
            (
                "hosts: files mdns4_minimal [NOTFOUND=return TRYAGAIN=continue] dns\n",
                false,
            ),
            ("hosts: files nis dns\n", true),
            ("hosts: files ldap\n", true),
            ("hosts: files winbind dns\n", true),
        ] {
            assert_eq!(has_module_source(Some(line)), module, "{line}");
        }
        // No nsswitch.conf: glibc's own order, DNS and files.
        assert!(!has_module_source(None));
    }

    /// This machine's kernel hostname, and what `hostname --fqdn` exits with and prints.
    #[cfg(unix)]
    fn machine_hostname_fqdn() -> (String, std::process::Output, String) {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let out = std::process::Command::new("hostname")
            .arg("--fqdn")
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (name.trim().to_string(), out, printed)
    }

    /// The resolver answers as `hostname --fqdn` does on this machine (the call it makes, through
    /// this build's C library), and names `localhost` by itself.
    // This machine's resolver and `hostname`: the Unix builds' (the Windows build, whose unit
    // tests run under wine, asks no resolver here: discover.rs takes its name from Windows).
    #[cfg(unix)]
    #[test]
    fn the_resolver_gives_what_hostname_fqdn_prints() {
        let (name, out, printed) = machine_hostname_fqdn();
        let name = name.as_str();
        let resolved = resolver_canonical(name, Duration::from_secs(10));
        if out.status.success() {
            assert_eq!(resolved.as_deref(), Some(printed.as_str()));
        } else {
            assert_eq!(resolved, None, "hostname --fqdn failed: {out:?}");
        }
        assert_eq!(
            resolver_canonical("localhost", Duration::from_secs(10)).as_deref(),
            Some("localhost")
        );
        assert_eq!(
            resolver_canonical("no\0such", Duration::from_secs(10)),
            None
        );
    }

    /// On this machine, whatever its /etc says: the name is the one MIG's rule makes of what
    /// `hostname --fqdn` prints (where /etc/hosts names the host, without running it).
    #[cfg(unix)]
    #[test]
    fn this_machine_gets_what_hostname_fqdn_gives() {
        let (name, out, printed) = machine_hostname_fqdn();
        let name = name.as_str();
        let mig = if out.status.success()
            && printed.split('.').next() == Some(name)
            && printed.contains('.')
        {
            printed
        } else {
            name.to_string()
        };
        assert_eq!(fqdn(name, &Limits::DEFAULT), mig);
    }
}
