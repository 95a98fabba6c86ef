//! File helpers every state of a run shares: atomic replacement (temporary file, fsync, rename,
//! fsync of the directory), renames and removals that name both paths in their errors, and
//! capped reads of small files.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Renames `from` to `to`; the error names both.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        Error::io(
            "rename",
            format!("{} -> {}", from.display(), to.display()),
            e,
        )
    })
}

/// Removes a file; `false` when it was not there.
pub fn remove_if_present(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path, e)),
    }
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

/// Reads a small text file of at most `cap` bytes; `None` when it does not exist.
pub fn read_small(path: &Path, cap: u64) -> Result<Option<String>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut s = String::new();
    f.take(cap + 1)
        .read_to_string(&mut s)
        .map_err(|e| Error::io("read", path, e))?;
    if s.len() as u64 > cap {
        return Err(Error::TooLarge {
            what: format!("file {}", path.display()),
            limit: cap,
        });
    }
    Ok(Some(s))
}
