//! The loader key: first line of `<root>/etc/mig/mig-loader.key`, exactly 40 ASCII alphanumerics
//! (docs/design.md §4.8). Its secret part never reaches a log or an error message.

use crate::error::{Error, Result};
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
    let text = String::from_utf8_lossy(&buf);
    LoaderKey::from_file_content(&text).map_err(|e| {
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
}
