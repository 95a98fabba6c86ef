//! The state directory and its small files: the highest installed serial (docs/design.md §4.6: refuse a
//! lower one) and the last report sent. Every write is atomic: temporary file, fsync, rename,
//! fsync of the directory, so a crash leaves the old or the new content, never a torn one.

use crate::error::{Error, Result};
use mig_protocol::loader::ReportResult;
use mig_protocol::statement::Serial;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The largest state file read (they hold one line).
const MAX_STATE_FILE: u64 = 4096;

/// Creates the state directory with mode 0700 when it is missing (its parents 0755).
pub fn ensure_dir(dir: &Path) -> Result<()> {
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

/// Flushes a directory entry change (create, rename, unlink) to disk.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Replaces `path` with `content` atomically (mode 0600).
pub fn atomic_write(path: &Path, content: &[u8]) -> Result<()> {
    let tmp = crate::layout::with_suffix(path, ".tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(content)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))?;
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Reads a small text file; `None` when it does not exist.
pub fn read_small(path: &Path) -> Result<Option<String>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut s = String::new();
    f.take(MAX_STATE_FILE + 1)
        .read_to_string(&mut s)
        .map_err(|e| Error::io("read", path, e))?;
    if s.len() as u64 > MAX_STATE_FILE {
        return Err(Error::TooLarge {
            what: format!("state file {}", path.display()),
            limit: MAX_STATE_FILE,
        });
    }
    Ok(Some(s))
}

/// The highest serial installed so far; 0 before the first install.
pub fn installed_serial(path: &Path) -> Result<Serial> {
    match read_small(path)? {
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
pub fn last_report(path: &Path) -> Option<(Serial, String)> {
    let s = read_small(path).ok()??;
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
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let p = state.join("serial");
        assert_eq!(installed_serial(&p).unwrap(), Serial::NONE);
        write_serial(&p, Serial::new(42)).unwrap();
        assert_eq!(installed_serial(&p).unwrap(), Serial::new(42));
        assert!(!crate::layout::with_suffix(&p, ".tmp").exists());
        std::fs::write(&p, "forty-two").unwrap();
        let e = installed_serial(&p).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
    }

    #[test]
    fn last_report_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("reported");
        assert_eq!(last_report(&p), None);
        write_last_report(&p, Serial::new(3), ReportResult::Installed).unwrap();
        assert_eq!(
            last_report(&p),
            Some((Serial::new(3), "installed".to_string()))
        );
    }
}
