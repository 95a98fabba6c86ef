//! The loader key: first line of `<root>/etc/mig/mig-loader.key`, exactly 40 ASCII alphanumerics
//! (docs/design.md §4.8). Its secret part never reaches a log or an error message.

use crate::error::{Error, Result};
use crate::fsutil::{atomic_write, remove_if_present};
use crate::layout::Layout;
use mig_protocol::loader::LoaderKey;
use std::io::Read;
use std::path::Path;

/// Reads and validates the key file (at most `cap` bytes).
pub fn load(path: &Path, cap: u64) -> Result<LoaderKey> {
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Config(format!(
                "invalid loader key: key file {} does not exist: put the 40-character key that `create loader` printed there",
                path.display()
            ))
        } else {
            Error::io("open loader key file", path, e)
        }
    })?;
    let mut buf = Vec::new();
    file.take(cap)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read loader key file", path, e))?;
    parse(&String::from_utf8_lossy(&buf), path)
}

/// The key in `text` (its first line), or an error naming `path` that does not repeat the key.
fn parse(text: &str, path: &Path) -> Result<LoaderKey> {
    LoaderKey::from_file_content(text).map_err(|e| {
        let reason = match e {
            mig_protocol::Error::LoaderKey(m) => m,
            other => other.to_string(),
        };
        Error::Config(format!(
            "invalid loader key: {}: first line must be exactly 40 ASCII letters and digits ({reason})",
            path.display()
        ))
    })
}

/// `mig-loader --install-key KEY` (the Windows installer's PIDKEY, docs/design.md §2.8): checks
/// `text` as [`load`] would read it, then writes it to the key file (mode 0600; on Windows the
/// directory and the file get the access list of SYSTEM and Administrators only).
pub fn install(layout: &Layout, text: &str) -> Result<()> {
    let path = layout.key_file();
    let key = parse(text, &path)?;
    let dir = layout.conf_dir();
    #[cfg(windows)]
    crate::state::ensure_dir(&dir)?;
    #[cfg(not(windows))]
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
    atomic_write(&path, format!("{}\n", key.as_str()).as_bytes())?;
    #[cfg(windows)]
    crate::windows::restrict(&path)?;
    Ok(())
}

/// `mig-loader --remove-key` (the Windows installer's uninstall): removes the key file.
pub fn remove(layout: &Layout) -> Result<()> {
    remove_if_present(&layout.key_file()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mig-loader.key");
        let e = load(&p, 4096).unwrap_err().to_string();
        assert!(
            e.contains("does not exist") && e.contains("mig-loader.key"),
            "{e}"
        );
        std::fs::write(
            &p,
            "AbCdEfGh0123456789abcdefghijklmnopqrstuv\nsecond line\n",
        )
        .unwrap();
        assert_eq!(load(&p, 4096).unwrap().prefix(), "AbCdEfGh");
        std::fs::write(&p, "AbCdEfGh0123456789abcdefghijklmnopqrst-v\n").unwrap();
        let e = load(&p, 4096).unwrap_err().to_string();
        assert!(e.contains("mig-loader.key") && e.contains("40"), "{e}");
        assert!(!e.contains("0123456789abcdef"), "the key leaked: {e}");
    }

    #[test]
    fn install_checks_writes_and_remove_removes() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), &mig_protocol::statement::Platform::host().os);
        let bad = "AbCdEfGh0123456789abcdefghijklmnopqrst-v";
        let e = install(&layout, bad).unwrap_err().to_string();
        assert!(e.contains("mig-loader.key") && e.contains("40"), "{e}");
        assert!(!e.contains("0123456789abcdef"), "the key leaked: {e}");
        assert!(!layout.key_file().exists());
        install(&layout, "AbCdEfGh0123456789abcdefghijklmnopqrstuv").unwrap();
        assert_eq!(
            std::fs::read_to_string(layout.key_file()).unwrap(),
            "AbCdEfGh0123456789abcdefghijklmnopqrstuv\n"
        );
        assert_eq!(load(&layout.key_file(), 4096).unwrap().prefix(), "AbCdEfGh");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(layout.key_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        remove(&layout).unwrap();
        assert!(!layout.key_file().exists());
        remove(&layout).unwrap();
    }
}
