//! The state directory and its small files: the highest installed serial (docs/design.md §4.6: refuse a
//! lower one) and the last report sent. Every write goes through [`atomic_write`], so a crash
//! leaves the old or the new content, never a torn one.

use crate::error::{Error, Result};
use crate::fsutil::{atomic_write, read_small};
use mig_protocol::loader::ReportResult;
use mig_protocol::statement::Serial;
use std::path::Path;

/// Creates the state directory with mode 0700 when it is missing (its parents 0755).
#[cfg(unix)]
pub fn ensure_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| Error::io("create directory", parent, e))?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .or_else(|e| if dir.is_dir() { Ok(()) } else { Err(e) })
        .map_err(|e| Error::io("create directory", dir, e))?;
    // The umask may have taken bits away; it can never have added any, but make it exact.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("chmod", dir, e))
}

/// Creates the state directory (`C:\mig`) when it is missing and gives it, on every run, an access
/// list of SYSTEM and Administrators only, which the files inside inherit (docs/design.md §2.8).
#[cfg(windows)]
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    crate::windows::restrict(dir)
}

/// The highest serial installed so far; 0 before the first install.
pub fn installed_serial(path: &Path, cap: u64) -> Result<Serial> {
    match read_small(path, cap)? {
        None => Ok(Serial::NONE),
        Some(s) => s.trim().parse::<u64>().map(Serial::new).map_err(|_| {
            // A torn write cannot happen (atomic_write); refuse rather than accept any serial.
            Error::Config(format!(
                "state file {} does not hold a serial; remove it only if you accept any manifest serial",
                path.display()
            ))
        }),
    }
}

/// Records a newly committed serial.
pub fn write_serial(path: &Path, serial: Serial) -> Result<()> {
    atomic_write(path, format!("{}\n", serial.get()).as_bytes())
}

/// The last report the API accepted, as `(serial, result)`.
pub fn last_report(path: &Path, cap: u64) -> Option<(Serial, String)> {
    let s = read_small(path, cap).ok()??;
    let (serial, result) = s.trim().split_once(' ')?;
    Some((Serial::new(serial.parse().ok()?), result.to_string()))
}

/// Remembers the last report the API accepted.
pub fn write_last_report(path: &Path, serial: Serial, result: ReportResult) -> Result<()> {
    atomic_write(
        path,
        format!("{} {}\n", serial.get(), result.as_str()).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_round_trips_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("var/lib/mig");
        ensure_dir(&state).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        let p = state.join("serial");
        assert_eq!(installed_serial(&p, 4096).unwrap(), Serial::NONE);
        write_serial(&p, Serial::new(42)).unwrap();
        assert_eq!(installed_serial(&p, 4096).unwrap(), Serial::new(42));
        assert!(!crate::layout::with_suffix(&p, ".tmp").exists());
        std::fs::write(&p, "forty-two").unwrap();
        let e = installed_serial(&p, 4096).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
    }

    #[test]
    fn last_report_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("reported");
        assert_eq!(last_report(&p, 4096), None);
        write_last_report(&p, Serial::new(3), ReportResult::Installed).unwrap();
        assert_eq!(
            last_report(&p, 4096),
            Some((Serial::new(3), "installed".to_string()))
        );
    }
}
