//! The host's fully qualified name as `hostname --fqdn` prints it, read from the files it reads
//! instead of running it (docs/design.md §4.18): every run of the loader discovers the hostname,
//! and a child process is most of a no-change run's cost.
//!
//! `hostname --fqdn` asks the C library for the canonical name of the kernel hostname
//! (`getaddrinfo` with `AI_CANONNAME`), which walks the `hosts:` sources of /etc/nsswitch.conf in
//! order. The sources answered here are the ones whose answer is in a file or is the name itself:
//! `files` (the canonical name, first on the first /etc/hosts line naming the host, any case) and
//! `myhostname` (the name itself). `dns` and every other source ask a service; when the walk
//! reaches one, [`Answer::AskTheResolver`] says so and the caller runs `hostname --fqdn`.

use crate::child;
use crate::discover::read_fact;
use crate::limits::Limits;
use std::path::Path;

/// MIG's hostname rule for a kernel hostname `short` without a dot: the canonical name when its
/// first label is `short` and it has a dot, else `short`. The canonical name comes from
/// /etc/nsswitch.conf and /etc/hosts of the running system; `hostname --fqdn` runs only when the
/// walk reaches a source that asks a service.
pub fn fqdn(short: &str, limits: &Limits) -> String {
    let read = |path: &str| read_fact(Path::new(path), limits);
    let found = match canonical(
        short,
        read("/etc/nsswitch.conf").as_deref(),
        read("/etc/hosts").as_deref(),
    ) {
        Answer::Canonical(c) => Some(c),
        Answer::Unknown => None,
        Answer::AskTheResolver => child::output(
            "hostname",
            &["--fqdn"],
            limits.discovery_command,
            limits.child_output,
        )
        .map(|s| s.trim().to_string()),
    };
    found
        .filter(|f| f.split('.').next() == Some(short) && f.contains('.'))
        .unwrap_or_else(|| short.to_string())
}

/// What the walk of the `hosts:` sources found for the kernel hostname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The canonical name `hostname --fqdn` prints.
    Canonical(String),
    /// No source knows the name: `hostname --fqdn` fails.
    Unknown,
    /// A source that asks a service (DNS, mDNS, systemd-resolved) comes first.
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

    /// On this machine, whatever its /etc says: the name is the one MIG's rule makes of what
    /// `hostname --fqdn` prints (where /etc/hosts names the host, without running it).
    #[test]
    fn this_machine_gets_what_hostname_fqdn_gives() {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let name = name.trim();
        let out = std::process::Command::new("hostname")
            .arg("--fqdn")
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
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
