//! Manifest archives as an operator makes them: GNU `tar -czf` over a directory.

use crate::process::run;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Writes `files` into `parent/bundle/` and packs that directory with GNU `tar -czf` into
/// `parent/<bundle>.tar.gz`, as the operator's walk-through does.
#[track_caller]
pub fn tar_gz(parent: &Path, bundle: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = parent.join(bundle);
    std::fs::create_dir_all(&dir).expect("create the manifest directory");
    for (name, data) in files {
        std::fs::write(dir.join(name), data).expect("write a manifest file");
    }
    let out = parent.join(format!("{bundle}.tar.gz"));
    let mut c = Command::new("tar");
    c.arg("-czf").arg(&out).arg("-C").arg(parent).arg(bundle);
    run(c, None, Duration::from_secs(60)).ok();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_tar_packs_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let a = tar_gz(
            d.path(),
            "bundle",
            &[("mig-agent", b"x"), ("configuration", b"y")],
        );
        let mut c = Command::new("tar");
        c.arg("-tzf").arg(&a);
        let o = run(c, None, Duration::from_secs(20));
        assert!(o.ok().stdout.contains("bundle/mig-agent"), "{o}");
    }
}
