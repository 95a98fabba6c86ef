//! One run at a time (docs/design.md §4.12): an advisory lock on `<state>/mig-loader.lock`, released by the
//! kernel when the process ends, however it ends, so a crashed run never blocks the next one.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::path::Path;

/// Held for the whole run; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock, or `Error::Locked` when another run holds it.
pub fn acquire(path: &Path) -> Result<RunLock> {
    // Opened without truncation: taking the lock writes nothing.
    let file = crate::fsutil::create_with_mode(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
        0o600,
    )
    .open(path)
    .map_err(|e| Error::io("open lock file", path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(format!("{}", path.display()))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mig-loader.lock");
        let first = acquire(&p).unwrap();
        let e = acquire(&p).unwrap_err();
        assert!(matches!(e, Error::Locked(_)), "{e}");
        assert!(e.to_string().contains("mig-loader.lock"));
        drop(first);
        acquire(&p).unwrap();
    }
}
