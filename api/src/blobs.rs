//! Content-addressed file bodies next to the database (`<dbdir>/mig-api-files/<sha256>`).
//! Archive members are extracted here once at upload, so `loader/files/<sha256>` streams one
//! file and never decodes an archive per request. Written via a temporary file, fsync, rename
//! and a directory fsync: a kill at any instant leaves either no blob or a complete one.

use crate::error::{Error, Result};
use mig_protocol::statement::is_sha256_hex;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const TMP_PREFIX: &str = ".tmp-";

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// The store that belongs to the database at `db_path`.
    pub fn for_database(db_path: &Path) -> Result<BlobStore> {
        let parent = db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = parent.join("mig-api-files");
        fs::create_dir_all(&dir).map_err(Error::io("creating blob directory", &dir))?;
        Ok(BlobStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a blob; only a sha256 hex name ever becomes a path (no path from input).
    pub fn path(&self, sha256: &str) -> Result<PathBuf> {
        if !is_sha256_hex(sha256) {
            return Err(Error::Internal(format!(
                "blob name {sha256:?} is not a sha256"
            )));
        }
        Ok(self.dir.join(sha256))
    }

    /// A writer for a new blob.
    pub fn writer(&self) -> Result<BlobWriter> {
        let mut rnd = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut rnd);
        let name = mig_protocol::sha256::hex(&rnd);
        let tmp = self.dir.join(format!("{TMP_PREFIX}{name}"));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(Error::io("creating", &tmp))?;
        Ok(BlobWriter {
            store: self.clone(),
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stores bytes already in memory.
    pub fn put(&self, bytes: &[u8]) -> Result<(mig_protocol::Sha256, u64)> {
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(Error::io("writing", &w.tmp))?;
        w.finish()
    }

    /// Start-up clean-up: removes temporary files of interrupted writes and blobs no manifest
    /// references (members of uploads that failed half way).
    pub fn collect_garbage(&self, referenced: &HashSet<String>) -> Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir).map_err(Error::io("listing", &self.dir))? {
            let entry = entry.map_err(Error::io("listing", &self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = name.starts_with(TMP_PREFIX)
                || (is_sha256_hex(&name) && !referenced.contains(&name));
            if stale {
                fs::remove_file(entry.path()).map_err(Error::io("removing", entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A blob being written: hashes and counts as it goes.
pub struct BlobWriter {
    store: BlobStore,
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the blob durable under its sha256 and returns (sha256, size).
    pub fn finish(mut self) -> Result<(mig_protocol::Sha256, u64)> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::Internal("blob finished twice".into()))?;
        file.sync_all().map_err(Error::io("fsync", &self.tmp))?;
        drop(file);
        let sha = mig_protocol::Sha256::from_digest(&std::mem::take(&mut self.hasher).finalize());
        let dest = self.store.path(sha.as_str())?;
        // Same name, same bytes: an existing blob is kept, the copy dropped.
        if dest.exists() {
            fs::remove_file(&self.tmp).map_err(Error::io("removing", &self.tmp))?;
        } else {
            fs::rename(&self.tmp, &dest).map_err(Error::io("renaming", &dest))?;
            File::open(&self.store.dir)
                .and_then(|d| d.sync_all())
                .map_err(Error::io("fsync", &self.store.dir))?;
        }
        self.tmp = PathBuf::new();
        Ok((sha, self.size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("blob already finished"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    // An abandoned write leaves nothing behind.
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_named_by_their_hash_and_abandoned_writes_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_database(&dir.path().join("x.db")).unwrap();
        let (sha, size) = store.put(b"abc").unwrap();
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(size, 3);
        assert_eq!(fs::read(store.path(sha.as_str()).unwrap()).unwrap(), b"abc");
        assert_eq!(store.put(b"abc").unwrap().0, sha);
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        let names: Vec<_> = fs::read_dir(store.dir()).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(store.path("../etc/passwd").is_err());
    }

    #[test]
    fn garbage_collection_keeps_referenced_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_database(&dir.path().join("x.db")).unwrap();
        let (keep, _) = store.put(b"keep").unwrap();
        let (drop_me, _) = store.put(b"drop").unwrap();
        fs::write(store.dir().join(".tmp-123"), b"x").unwrap();
        let refs: HashSet<String> = [String::from(keep.clone())].into();
        assert_eq!(store.collect_garbage(&refs).unwrap(), 2);
        assert!(store.path(keep.as_str()).unwrap().exists());
        assert!(!store.path(drop_me.as_str()).unwrap().exists());
    }
}
