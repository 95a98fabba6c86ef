//! A small tmpfs of its own for a test that needs a disk that fills up. Mounting needs root (CI
//! runs as root); anywhere else the test fails saying so, it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a directory of its own; lazily unmounted on drop.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` at `path` (created if missing).
    #[track_caller]
    pub fn mount(path: &Path, bytes: u64) -> Tmpfs {
        std::fs::create_dir_all(path).expect("create the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0755"))
            .arg("mig-test")
            .arg(path)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "mounting a {bytes}-byte tmpfs at {} failed (this test needs root, as in CI): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Grows (or shrinks) it to `bytes`, keeping its files.
    #[track_caller]
    pub fn resize(&self, bytes: u64) {
        let out = Command::new("mount")
            .arg("-o")
            .arg(format!("remount,size={bytes}"))
            .arg(&self.path)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "resizing the tmpfs at {} failed: {}",
            self.path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes still free on it.
    pub fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.path)
            .output()
            .expect("run df(1)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("df printed {:?}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Writes `name` with zeros until the filesystem has no space left; returns its path.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.path.join(name);
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        // Byte by byte into the last partial block.
        while f.write_all(&[0]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
