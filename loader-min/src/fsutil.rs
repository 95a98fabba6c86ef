//! File helpers every state of a run shares: atomic replacement (temporary file, fsync, rename,
//! fsync of the directory), renames and removals that name both paths in their errors, and
//! capped reads of small files.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

/// Renames `from` to `to`; the error names both. On Windows the rename is written through to
/// disk before this returns, since a directory there cannot be flushed ([`fsync_dir`]).
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    #[cfg(windows)]
    let renamed = crate::windows::rename(from, to);
    #[cfg(not(windows))]
    let renamed = std::fs::rename(from, to);
    renamed.map_err(|e| {
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

/// Removes the previous image of an executable after a swap. Windows refuses to delete an image
/// while it runs (the loader replacing itself runs from it): it is then left for
/// [`crate::cleanup`] to remove on a later run. Everywhere else the removal must succeed.
pub fn remove_previous_image(path: &Path) -> Result<bool> {
    match remove_if_present(path) {
        #[cfg(windows)]
        Err(Error::Io { source, .. }) if crate::windows::in_use(&source) => {
            crate::log::step(format!(
                "{} is in use, removing it on a later run",
                path.display()
            ));
            Ok(false)
        }
        other => other,
    }
}

/// Sets the Unix mode `mode` on files `opts` creates. On Windows a file gets the access list
/// its directory passes on (docs/design.md §2.8), so the mode is not used.
pub fn create_with_mode(opts: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        opts
    }
}

/// Gives `path` exactly the Unix mode `mode`, returning whether it had to change; on Windows
/// nothing changes (see [`create_with_mode`]).
pub fn set_mode(path: &Path, mode: u32) -> Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
        if meta.permissions().mode() & 0o7777 == mode {
            return Ok(false);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("chmod", path, e))?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(false)
    }
}

/// Flushes a directory entry change (create, rename, unlink) to disk. Windows cannot open a
/// directory for flushing; there [`rename`] writes through instead.
#[cfg(windows)]
pub fn fsync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

/// Flushes a directory entry change (create, rename, unlink) to disk.
#[cfg(not(windows))]
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Replaces `path` with `content` atomically (mode 0600).
pub fn atomic_write(path: &Path, content: &[u8]) -> Result<()> {
    let tmp = crate::layout::with_suffix(path, ".tmp");
    let mut f = create_with_mode(
        OpenOptions::new().write(true).create(true).truncate(true),
        0o600,
    )
    .open(&tmp)
    .map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(content)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    drop(f);
    rename(&tmp, path)?;
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
