//! New files the console writes (a fetched archive, a report): never over an existing file, and
//! none left behind by a failed write.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Creates `path` (refusing an existing file) for writing.
pub fn create_new(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Usage(format!("refusing to overwrite {}", path.display()))
            } else {
                Error::io("create", path, e)
            }
        })
}

/// Writes `bytes` to the new file `path`, synced; a failed write leaves no file.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = create_new(path)?;
    let written = f
        .write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("write", path, e));
    if written.is_err() {
        drop(f);
        let _ = std::fs::remove_file(path);
    }
    written
}
