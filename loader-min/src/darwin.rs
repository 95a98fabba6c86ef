//! macOS (Go's `darwin`), MIG's way (docs/design.md §2.7): discovery from `sysctl`
//! (`kern.hostname`, `kern.osproductversion`, `kern.osversion`, `kern.osrelease`) with `sw_vers`
//! only as a fallback, `launchd` as the init system, addresses from `ifconfig`, and `-i` installing
//! the launchd interval job `/Library/LaunchDaemons/mig-loader.plist`.
//!
//! Every piece of logic is a plain function compiled and unit-tested on every OS; only the
//! `sysctlbyname` call ([`host_facts`]) and the decision to run `launchctl` are macOS-only. What has
//! never run on a Mac is listed in docs/design.md §2.7.

use crate::child;
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::limits::Limits;
use crate::log;
use mig_protocol::dictionary::DictName;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// launchd's label of the job (MIG's service name).
pub const LABEL: &str = "mig-loader";
/// Where `-i` installs the job: MIG's system LaunchDaemon path for its service name.
pub const PLIST: &str = "/Library/LaunchDaemons/mig-loader.plist";
/// Seconds between two runs: MIG's loader `runInterval`.
pub const INTERVAL_SECS: u32 = 7200;
/// Where launchd writes the runs' output.
pub const LOG_FILE: &str = "/var/log/mig-loader.log";
/// launchd's command line tool.
pub const LAUNCHCTL: &str = "/bin/launchctl";
/// The longest sysctl answer read: hostnames are at most 255 bytes, versions a few.
pub const SYSCTL_CAP: usize = 256;

/// The loader's path on macOS, from the dictionary (the path manifests replace it at).
pub fn loader_path() -> &'static str {
    // The dictionary's darwin rows are constants (the_darwin_dictionary_is_migs_bundle_entry_darwin).
    DictName::MigLoader
        .path("darwin")
        .unwrap_or("/usr/local/bin/mig-loader")
}

/// The one text of the launchd job, written by `mig-loader -i` (docs/design.md §2.7).
pub fn launchd_plist() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- {PLIST}: written by `mig-loader -i`; MIG's launchd interval job. -->
<plist version="1.0">
<dict>
    <key>Label</key>
    <string>{LABEL}</string>
    <key>ProgramArguments</key>
    <array>
        <string>{program}</string>
    </array>
    <key>StartInterval</key>
    <integer>{INTERVAL_SECS}</integer>
    <!-- The agent started by `mig-agent -u` must outlive the loader's run. -->
    <key>AbandonProcessGroup</key>
    <true/>
    <key>RunAtLoad</key>
    <true/>
    <key>StandardOutPath</key>
    <string>{LOG_FILE}</string>
    <key>StandardErrorPath</key>
    <string>{LOG_FILE}</string>
</dict>
</plist>
"#,
        program = loader_path()
    )
}

/// The `launchctl` command lines of `-i`, in order: the job unloaded (its failure ignored: it may
/// not be loaded yet), then, once the file is written, loaded and enabled (MIG's Stop, Install,
/// Start).
pub fn launchctl_unload() -> [&'static str; 2] {
    ["unload", PLIST]
}

/// See [`launchctl_unload`].
pub fn launchctl_load() -> [&'static str; 3] {
    ["load", "-w", PLIST]
}

/// Writes the launchd job under `root` (0644, root's, as launchd requires: not writable by
/// others) and returns its path.
pub fn write_plist(root: &Path) -> Result<PathBuf> {
    let path = root.join(PLIST.trim_start_matches('/'));
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
    }
    atomic_write(&path, launchd_plist().as_bytes())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io("chmod", &path, e))?;
    Ok(path)
}

/// `-i` on macOS: installs the launchd job and, when `root` is `/`, (re)loads it with
/// `launchctl`. Called with the run's lock held, so the run launchd starts at load finds it taken
/// and leaves this one to finish.
pub fn install_launchd_job(root: &Path, limits: &Limits) -> Result<()> {
    let live = root == Path::new("/");
    if live {
        let _ = child::run(Path::new(LAUNCHCTL), &launchctl_unload(), limits.trigger);
    }
    let path = write_plist(root)?;
    log::step(format!("installed launchd job {}", path.display()));
    if let Ok(me) = std::env::current_exe() {
        if me != Path::new(loader_path()) {
            log::warn(format!(
                "this mig-loader runs from {}, the launchd job runs {}: install it there",
                me.display(),
                loader_path()
            ));
        }
    }
    if !live {
        log::step(format!(
            "not loading it with launchctl: the root is {}, not /",
            root.display()
        ));
        return Ok(());
    }
    let args = launchctl_load();
    let status = child::run(Path::new(LAUNCHCTL), &args, limits.trigger)?;
    if !status.success() {
        return Err(Error::Trigger {
            command: child::describe(Path::new(LAUNCHCTL), &args),
            reason: format!("exited with {status}"),
        });
    }
    log::step(format!(
        "launchd job {LABEL} loaded: every {INTERVAL_SECS} s"
    ));
    Ok(())
}

/// A sysctl string answer: up to its first NUL, UTF-8, trimmed, not empty, no control
/// characters; anything else is no answer.
pub fn sysctl_text(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    let text = std::str::from_utf8(&raw[..end]).ok()?.trim();
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_string())
}

/// The ident MIG's agent reports on macOS (`System Version` and `Kernel Version` of
/// `system_profiler`): `macOS 14.5 (23F79) Darwin 23.5.0`, from `kern.osproductversion`,
/// `kern.osversion` (the build) and `kern.osrelease`; `None` without the product version.
pub fn ident_from_sysctl(
    product: Option<&str>,
    build: Option<&str>,
    kernel: Option<&str>,
) -> Option<String> {
    let mut ident = format!("macOS {}", product?);
    if let Some(b) = build {
        ident.push_str(&format!(" ({b})"));
    }
    if let Some(k) = kernel {
        ident.push_str(&format!(" Darwin {k}"));
    }
    Some(ident)
}

/// The fallback: `sw_vers` (`ProductName:\tmacOS`, `ProductVersion:\t14.5`,
/// `BuildVersion:\t23F79`) as `macOS 14.5 (23F79)`; `None` without a product version.
pub fn ident_from_sw_vers(text: &str) -> Option<String> {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let v = l.trim().strip_prefix(key)?.strip_prefix(':')?.trim();
            (!v.is_empty() && !v.chars().any(char::is_control)).then_some(v)
        })
    };
    let version = get("ProductVersion")?;
    let name = get("ProductName").unwrap_or("macOS");
    Some(match get("BuildVersion") {
        Some(b) => format!("{name} {version} ({b})"),
        None => format!("{name} {version}"),
    })
}

/// Local addresses in CIDR form from `ifconfig` (`inet 10.0.0.18 netmask 0xffffff00 …`,
/// `inet6 fe80::1%en0 prefixlen 64 …`), loopback excluded, as MIG reported them.
pub fn addresses_from_ifconfig(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let field = |name: &str| {
            f.iter()
                .position(|w| *w == name)
                .and_then(|i| f.get(i + 1))
                .copied()
        };
        let addr = match f.first().copied() {
            Some("inet") => f.get(1).and_then(|a| a.parse::<Ipv4Addr>().ok()).map(|a| {
                let len = field("netmask")
                    .and_then(|m| m.strip_prefix("0x"))
                    .and_then(|m| u32::from_str_radix(m, 16).ok())
                    .filter(|m| m.leading_ones() + m.trailing_zeros() == 32)
                    .map_or(32, u32::leading_ones);
                (a.is_loopback(), format!("{a}/{len}"))
            }),
            Some("inet6") => f
                .get(1)
                .and_then(|a| a.split('%').next())
                .and_then(|a| a.parse::<Ipv6Addr>().ok())
                .map(|a| {
                    let len = field("prefixlen")
                        .and_then(|l| l.parse::<u8>().ok())
                        .filter(|l| *l <= 128)
                        .unwrap_or(128);
                    (a.is_loopback(), format!("{a}/{len}"))
                }),
            _ => None,
        };
        if let Some((false, a)) = addr {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// The hostname: `kern.hostname`, else what `hostname` prints, else `localhost`.
pub fn hostname(kern_hostname: Option<String>, limits: &Limits) -> String {
    kern_hostname
        .or_else(|| {
            child::output(
                "hostname",
                &[],
                limits.discovery_command,
                limits.child_output,
            )
            .and_then(|s| sysctl_text(s.as_bytes()))
        })
        .unwrap_or_else(|| "localhost".to_string())
}

/// The ident: from sysctl, else from `sw_vers` (with the kernel release when sysctl gave it).
pub fn ident(
    product: Option<&str>,
    build: Option<&str>,
    kernel: Option<&str>,
    limits: &Limits,
) -> String {
    ident_from_sysctl(product, build, kernel)
        .or_else(|| {
            let out = child::output(
                "sw_vers",
                &[],
                limits.discovery_command,
                limits.child_output,
            )?;
            let id = ident_from_sw_vers(&out)?;
            Some(match kernel {
                Some(k) => format!("{id} Darwin {k}"),
                None => id,
            })
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Hostname, ident, init system and addresses of this Mac (discover.rs reports them).
#[cfg(target_os = "macos")]
pub fn host_facts(limits: &Limits) -> (String, String, String, Vec<String>) {
    let get =
        |name: &std::ffi::CStr| sys::sysctl_bytes(name, SYSCTL_CAP).and_then(|b| sysctl_text(&b));
    let name = hostname(get(c"kern.hostname"), limits);
    let (product, build, kernel) = (
        get(c"kern.osproductversion"),
        get(c"kern.osversion"),
        get(c"kern.osrelease"),
    );
    let ident = ident(
        product.as_deref(),
        build.as_deref(),
        kernel.as_deref(),
        limits,
    );
    let addresses = child::output(
        "ifconfig",
        &[],
        limits.discovery_command,
        limits.child_output,
    )
    .map(|t| addresses_from_ifconfig(&t))
    .unwrap_or_default();
    (name, ident, "launchd".to_string(), addresses)
}

/// The one system call of this module.
#[cfg(target_os = "macos")]
#[allow(unsafe_code)]
mod sys {
    use std::ffi::{c_char, c_int, c_void, CStr};

    extern "C" {
        // <sys/sysctl.h>, in libSystem, which every macOS program links.
        fn sysctlbyname(
            name: *const c_char,
            oldp: *mut c_void,
            oldlenp: *mut usize,
            newp: *mut c_void,
            newlen: usize,
        ) -> c_int;
    }

    /// The value of the sysctl `name`, at most `cap` bytes; `None` on any error (a value longer
    /// than `cap` is ENOMEM, so it is never cut short silently).
    pub fn sysctl_bytes(name: &CStr, cap: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; cap];
        let mut len = buf.len();
        // SAFETY: `name` is NUL-terminated; `buf` is valid for `len` bytes and the kernel writes
        // at most `len` bytes into it and stores how many in `len`; no new value is given.
        let rc = unsafe {
            sysctlbyname(
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return None;
        }
        buf.truncate(len.min(cap));
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MIG's `bundleEntryDarwin` (manifest.go): name, path, mode.
    const MIG_BUNDLE_DARWIN: [(&str, &str, u32); 7] = [
        ("mig-agent", "/usr/local/bin/mig-agent", 0o700),
        ("mig-loader", "/usr/local/bin/mig-loader", 0o700),
        ("configuration", "/etc/mig/mig-agent.cfg", 0o600),
        ("agentcert", "/etc/mig/agent.crt", 0o644),
        ("agentkey", "/etc/mig/agent.key", 0o600),
        ("cacert", "/etc/mig/ca.crt", 0o644),
        ("loaderconfig", "/etc/mig/mig-loader.cfg", 0o600),
    ];

    #[test]
    fn the_darwin_dictionary_is_migs_bundle_entry_darwin() {
        for (name, path, mode) in MIG_BUNDLE_DARWIN {
            let n = DictName::parse(name).unwrap();
            assert_eq!(n.path("darwin"), Some(path), "{name}");
            assert_eq!(n.mode(), mode, "{name}");
        }
        assert_eq!(mig_protocol::dictionary::ALL.len(), MIG_BUNDLE_DARWIN.len());
        // System Integrity Protection: binaries only under /usr/local, never /usr/bin or /sbin.
        for n in mig_protocol::dictionary::ALL {
            let p = n.path("darwin").unwrap();
            assert!(
                p.starts_with("/usr/local/") || p.starts_with("/etc/mig/"),
                "{p}"
            );
        }
        let l = crate::layout::Layout::new("/", "darwin");
        assert_eq!(l.state_dir(), Path::new("/Library/Preferences/mig"));
        assert_eq!(loader_path(), "/usr/local/bin/mig-loader");
    }

    #[test]
    fn the_plist_is_migs_interval_job_for_the_dictionary_loader() {
        let p = launchd_plist();
        for (key, value) in [
            ("Label", "<string>mig-loader</string>".to_string()),
            ("StartInterval", "<integer>7200</integer>".to_string()),
            ("AbandonProcessGroup", "<true/>".to_string()),
            ("RunAtLoad", "<true/>".to_string()),
            ("StandardOutPath", format!("<string>{LOG_FILE}</string>")),
            ("StandardErrorPath", format!("<string>{LOG_FILE}</string>")),
        ] {
            let after = p
                .split(&format!("<key>{key}</key>"))
                .nth(1)
                .unwrap_or_else(|| panic!("no {key} in\n{p}"));
            assert!(after.trim_start().starts_with(&value), "{key}: {p}");
        }
        let args = p.split("<key>ProgramArguments</key>").nth(1).unwrap();
        assert!(
            args.trim_start().starts_with(
                "<array>\n        <string>/usr/local/bin/mig-loader</string>\n    </array>"
            ),
            "{p}"
        );
        // Balanced: every element opened is closed, in order (launchd refuses a malformed plist).
        let mut open: Vec<&str> = Vec::new();
        for tag in p.split('<').skip(1).map(|t| t.split('>').next().unwrap()) {
            if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            match tag.strip_prefix('/') {
                Some(name) => assert_eq!(open.pop(), Some(name), "{p}"),
                None => open.push(tag.split(' ').next().unwrap()),
            }
        }
        assert!(open.is_empty(), "{open:?}");
        assert!(p.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist"));
    }

    #[test]
    fn dash_i_under_a_root_writes_the_plist_0644_and_runs_no_launchctl() {
        let dir = tempfile::tempdir().unwrap();
        install_launchd_job(dir.path(), &Limits::DEFAULT).unwrap();
        let path = dir.path().join("Library/LaunchDaemons/mig-loader.plist");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), launchd_plist());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // Written again over an older text.
        std::fs::write(&path, "old").unwrap();
        install_launchd_job(dir.path(), &Limits::DEFAULT).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), launchd_plist());
        assert_eq!(launchctl_load(), ["load", "-w", PLIST]);
        assert_eq!(launchctl_unload(), ["unload", PLIST]);
    }

    #[test]
    fn sysctl_answers_are_cut_at_nul_and_checked() {
        assert_eq!(
            sysctl_text(b"corbomite.example.com\0\0\0").as_deref(),
            Some("corbomite.example.com")
        );
        assert_eq!(sysctl_text(b"14.5").as_deref(), Some("14.5"));
        for bad in [
            &b""[..],
            b"\0",
            b"  \0",
            b"a\nb\0",
            b"\xff\xfe\0",
            b"a\x1bb",
        ] {
            assert_eq!(sysctl_text(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ident_from_sysctl_is_migs_system_profiler_ident() {
        assert_eq!(
            ident_from_sysctl(Some("14.5"), Some("23F79"), Some("23.5.0")).as_deref(),
            Some("macOS 14.5 (23F79) Darwin 23.5.0")
        );
        assert_eq!(
            ident_from_sysctl(Some("14.5"), None, None).as_deref(),
            Some("macOS 14.5")
        );
        assert_eq!(ident_from_sysctl(None, Some("23F79"), Some("23.5.0")), None);
        assert_eq!(
            ident(Some("13.4"), Some("22F66"), None, &Limits::DEFAULT),
            "macOS 13.4 (22F66)"
        );
    }

    #[test]
    fn sw_vers_is_parsed_as_the_fallback() {
        let t = "ProductName:\t\tmacOS\nProductVersion:\t\t14.5\nBuildVersion:\t\t23F79\n";
        assert_eq!(ident_from_sw_vers(t).as_deref(), Some("macOS 14.5 (23F79)"));
        let old = "ProductName:\tMac OS X\nProductVersion:\t10.13.6\n";
        assert_eq!(ident_from_sw_vers(old).as_deref(), Some("Mac OS X 10.13.6"));
        assert_eq!(ident_from_sw_vers("ProductName:\tmacOS\n"), None);
        assert_eq!(ident_from_sw_vers("ProductVersion:\t\n"), None);
    }

    #[test]
    fn ifconfig_addresses_get_their_prefix_and_loopback_is_dropped() {
        let t = "lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384
\toptions=1203<RXCSUM,TXCSUM,TXSTATUS,SW_TIMESTAMP>
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 ::1 prefixlen 128
\tinet6 fe80::1%lo0 prefixlen 64 scopeid 0x1
en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\tether 3c:22:fb:00:00:01
\tinet6 fe80::1c2a:5bff:fe00:1%en0 prefixlen 64 secured scopeid 0x4
\tinet 10.0.0.18 netmask 0xffffff00 broadcast 10.0.0.255
\tinet6 2001:db8::18 prefixlen 64 autoconf secured
\tinet 10.9.9.9 netmask 0xff00ff00
utun0: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1380
\tinet 100.64.0.2 --> 100.64.0.1 netmask 0xffffffff
";
        assert_eq!(
            addresses_from_ifconfig(t),
            vec![
                "fe80::1/64".to_string(),
                "fe80::1c2a:5bff:fe00:1/64".to_string(),
                "10.0.0.18/24".to_string(),
                "2001:db8::18/64".to_string(),
                // A non-contiguous mask says nothing about the prefix.
                "10.9.9.9/32".to_string(),
                "100.64.0.2/32".to_string(),
            ]
        );
        assert!(addresses_from_ifconfig("garbage\ninet\ninet6 zz prefixlen 999\n").is_empty());
    }
}
