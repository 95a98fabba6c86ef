//! Content-addressed file bodies next to the database (`<dbdir>/mig-api-files/<sha256>`).
//! Archive members are extracted here once at upload, so `loader/files/<sha256>` streams one
//! file and never decodes an archive per request. Written via a temporary file, fsync, rename
//! and a directory fsync: a kill at any instant leaves either no blob or a complete one.
//!
//! On PostgreSQL the database is the store every replica reaches (docs/design.md §6.6): a blob
//! is shared there ([`share`]) before any manifest row refers to it, and this directory is each
//! replica's cache of it, filled on first use ([`local`]) and checked against the sha256.

use crate::db::{Db, Dialect, OptionalExtension};
use crate::error::{Error, Result};
use crate::params;
use mig_protocol::statement::is_sha256_hex;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const TMP_PREFIX: &str = ".tmp-";
/// The size of one row of `blob_chunks`: a body never travels to or from PostgreSQL whole.
const CHUNK: usize = 1 << 20;

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

/// The local path of blob `sha256`. On PostgreSQL a blob this replica does not have yet is
/// fetched from the database first, chunk by chunk, and kept only if its bytes hash to its name.
pub fn local(store: &BlobStore, db: &Db, sha256: &str) -> Result<PathBuf> {
    let path = store.path(sha256)?;
    if db.dialect() == Dialect::Sqlite || path.exists() {
        return Ok(path);
    }
    let what = || Error::db(format!("reading file body {sha256}"));
    let size: Option<i64> = db.with(|c| {
        c.query_row(
            "SELECT size FROM blobs WHERE sha256 = ?1",
            params![sha256],
            |r| r.get(0),
        )
        .optional()
        .map_err(what())
    })?;
    let Some(size) = size else {
        return Err(Error::Internal(format!(
            "file body {sha256} is neither in this replica's store nor in the database"
        )));
    };
    let mut w = store.writer()?;
    let chunks = (size as u64).div_ceil(CHUNK as u64);
    for n in 0..chunks as i64 {
        let data: Vec<u8> = db.with(|c| {
            c.query_row(
                "SELECT data FROM blob_chunks WHERE sha256 = ?1 AND n = ?2",
                params![sha256, n],
                |r| r.get(0),
            )
            .map_err(what())
        })?;
        w.write_all(&data).map_err(Error::io("writing", &w.tmp))?;
    }
    let (got, got_size) = w.finish()?;
    if got.as_str() != sha256 || got_size != size as u64 {
        logging_corrupt(sha256, got.as_str());
        return Err(Error::Internal(format!(
            "file body {sha256} in the database hashes to {got} ({got_size} bytes): refused"
        )));
    }
    Ok(path)
}

fn logging_corrupt(sha256: &str, got: &str) {
    crate::logging::event(
        "error",
        "blob_corrupt",
        &[("source", &"database"), ("file", &sha256), ("sha256", &got)],
    );
}

/// Copies blobs of this replica's store into the database, so every replica can serve them
/// (PostgreSQL; nothing to do on SQLite). Each chunk is written once whoever writes it (the
/// same name is the same bytes), and the `blobs` row, written last, says the body is whole.
pub fn share<'s>(
    store: &BlobStore,
    db: &Db,
    blobs: impl IntoIterator<Item = &'s str>,
) -> Result<()> {
    if db.dialect() == Dialect::Sqlite {
        return Ok(());
    }
    for sha256 in blobs {
        let what = || Error::db(format!("sharing file body {sha256}"));
        let whole = db.with(|c| {
            c.query_row(
                "SELECT 1 FROM blobs WHERE sha256 = ?1",
                params![sha256],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(what())
        })?;
        if whole {
            continue;
        }
        let path = store.path(sha256)?;
        let mut file = File::open(&path).map_err(Error::io("opening", &path))?;
        let mut size = 0u64;
        for n in 0i64.. {
            let mut data = Vec::with_capacity(CHUNK);
            (&mut file)
                .take(CHUNK as u64)
                .read_to_end(&mut data)
                .map_err(Error::io("reading", &path))?;
            if data.is_empty() && n > 0 {
                break;
            }
            size += data.len() as u64;
            let last = data.len() < CHUNK;
            db.with(|c| {
                c.execute(
                    "INSERT INTO blob_chunks (sha256, n, data) VALUES (?1, ?2, ?3)
                     ON CONFLICT (sha256, n) DO NOTHING",
                    params![sha256, n, data],
                )
                .map_err(what())
            })?;
            if last {
                break;
            }
        }
        db.with(|c| {
            c.execute(
                "INSERT INTO blobs (sha256, size, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sha256) DO NOTHING",
                params![
                    sha256,
                    size as i64,
                    mig_protocol::time::Timestamp::now().0 as i64
                ],
            )
            .map_err(what())
        })?;
    }
    Ok(())
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
