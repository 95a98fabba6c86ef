//! Manifest archives as an operator makes them (GNU `tar -czf` over a directory), and built in
//! memory with the `tar` crate for unit tests.

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

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

/// The tar (not gzipped) of regular files (path → content), built with the `tar` crate.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).expect("tar into memory");
    }
    b.into_inner().expect("tar into memory")
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
