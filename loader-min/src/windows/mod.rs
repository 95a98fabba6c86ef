//! What mig-loader does differently on Windows (docs/design.md §2.8): discovery from Win32 and
//! the registry, MIG's `C:\mig` directory and key readable only by SYSTEM and Administrators,
//! durable renames, an executable that cannot be deleted while it runs, and the service
//! ([`service`], `mig-loader -s`).
//! The Win32 declarations are in [`sys`], the one module allowed `unsafe`.

pub mod service;
mod sys;

use crate::error::{Error, Result};
use crate::log;
use std::path::Path;

/// Where the registry keeps the product name and build number.
const CURRENT_VERSION: &str = "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion";

/// Owner Administrators; full control for SYSTEM and Administrators only, inherited by every file
/// created inside; the parent's ACEs do not apply (`P`).
pub const DIR_SDDL: &str = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";
/// The same for one file (no inheritance flags: a file has no children).
pub const FILE_SDDL: &str = "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)";

/// Discovery's host facts on Windows: FQDN, ident, init (`windows`, as MIG's agent reports it)
/// and the local addresses.
pub fn facts() -> (String, String, String, Vec<String>) {
    (hostname(), ident(), "windows".into(), addresses())
}

/// Every local address in CIDR form, loopback excluded (as on Linux, docs/design.md §4.18).
fn addresses() -> Vec<String> {
    match sys::unicast_addresses() {
        Ok(list) => cidrs(&list),
        Err(e) => {
            log::warn(format!("GetAdaptersAddresses: {e}"));
            Vec::new()
        }
    }
}

fn cidrs(list: &[(std::net::IpAddr, u8)]) -> Vec<String> {
    list.iter()
        .filter(|(a, _)| !a.is_loopback())
        .map(|(a, len)| format!("{a}/{len}"))
        .collect()
}

/// The FQDN (`GetComputerNameExW(ComputerNameDnsFullyQualified)`), `localhost` when it fails.
pub fn hostname() -> String {
    match sys::computer_name_fqdn() {
        Ok(n) if !n.trim().is_empty() => n.trim().to_string(),
        Ok(_) => "localhost".into(),
        Err(e) => {
            log::warn(format!("GetComputerNameExW: {e}"));
            "localhost".into()
        }
    }
}

/// `<ProductName> <CurrentBuild>` from `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`
/// (`Windows 10 Pro 19045`).
pub fn ident() -> String {
    let get = |v: &str| sys::registry_string(CURRENT_VERSION, v).ok();
    let parts: Vec<String> = [get("ProductName"), get("CurrentBuild")]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        "unknown".into()
    } else {
        parts.join(" ")
    }
}

/// Fills `buf` from the system CSPRNG.
pub fn random(buf: &mut [u8]) -> Result<()> {
    sys::random(buf).map_err(|e| Error::io("read random bytes", "BCryptGenRandom", e))
}

/// Renames `from` over `to`, on disk when this returns.
pub fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    sys::rename_durably(from, to)
}

/// Gives `path` (a directory or a file) owner Administrators and access for SYSTEM and
/// Administrators only.
pub fn restrict(path: &Path) -> Result<()> {
    let sddl = if path.is_dir() { DIR_SDDL } else { FILE_SDDL };
    sys::set_owner_and_protected_dacl(path, sddl)
        .map_err(|e| Error::io("restrict access to SYSTEM and Administrators", path, e))
}

/// [`restrict`] for a file that may not exist yet.
pub fn restrict_if_present(path: &Path) -> Result<()> {
    if path.exists() {
        restrict(path)?;
    }
    Ok(())
}

/// Whether a failed removal means the file is an image that is running (or open without
/// delete sharing): Windows refuses to delete it until it exits.
pub fn in_use(e: &std::io::Error) -> bool {
    // ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION.
    matches!(e.raw_os_error(), Some(5 | 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_reads_win32_and_the_registry() {
        let h = hostname();
        assert!(!h.is_empty() && h != "localhost", "{h}");
        let id = ident();
        assert!(id.contains("Windows"), "{id}");
        assert!(
            id.split_whitespace()
                .last()
                .is_some_and(|b| b.bytes().all(|c| c.is_ascii_digit())),
            "{id}"
        );
        // Every host has a loopback adapter; the address list drops it.
        let all = sys::unicast_addresses().unwrap();
        let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
        assert!(all.contains(&(loopback, 8)), "{all:?}");
        assert!(cidrs(&all).iter().all(|c| !c.starts_with("127.")));
        assert_eq!(
            cidrs(&all).len(),
            all.iter().filter(|(a, _)| !a.is_loopback()).count()
        );
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        random(&mut a).unwrap();
        random(&mut b).unwrap();
        assert_ne!(a, b);
    }

    /// Windows parses the access lists as meant: owner Administrators, protected, exactly SYSTEM
    /// and Administrators. Wine (8.0) keeps no access list on disk (docs/design.md §2.8), so
    /// what it reads back from a file says nothing; the call that sets them must succeed.
    #[test]
    fn access_lists_are_exactly_system_and_administrators() {
        assert_eq!(
            sys::reparsed(DIR_SDDL).unwrap(),
            "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
        );
        assert_eq!(
            sys::reparsed(FILE_SDDL).unwrap(),
            "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)"
        );
        let dir = tempfile::tempdir().unwrap();
        let mig = dir.path().join("mig");
        std::fs::create_dir(&mig).unwrap();
        let key = mig.join("mig-loader.key");
        restrict_if_present(&key).unwrap();
        std::fs::write(&key, "k").unwrap();
        restrict(&mig).unwrap();
        restrict_if_present(&key).unwrap();
        let e = restrict(&mig.join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn an_open_file_without_delete_sharing_counts_as_in_use() {
        use std::os::windows::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mig-loader.exe.mig-prev");
        std::fs::write(&p, "old image").unwrap();
        // FILE_SHARE_READ only: what the loader of a running image holds.
        let held = std::fs::OpenOptions::new()
            .read(true)
            .share_mode(0x1)
            .open(&p)
            .unwrap();
        let e = std::fs::remove_file(&p).unwrap_err();
        assert!(in_use(&e), "{e:?}");
        drop(held);
        std::fs::remove_file(&p).unwrap();
    }
}
