//! File bodies served by the front from memory. A loader file body passes Rocket only as a
//! decision (who may have which bytes, which range, which headers); Rocket answers with
//! [`HANDOFF_HEADER`] naming the blob and the range instead of the bytes, and the front sends
//! them from this cache. So a body crosses neither the loopback hop nor a file read per request.
//!
//! Blobs are content-addressed and never change, so an entry never goes stale. An entry is made
//! only after the bytes read from disk hash to the blob's name: a blob altered on disk is
//! refused (500; the log says why), never served. The cache holds at most
//! `[limits] filecache` bytes (config.rs); a blob larger than an eighth of that is streamed by
//! Rocket as before, so one large file cannot flush the rest. The least recently used entry
//! goes first.

use crate::blobs::BlobStore;
use crate::error::{Error, Result};
use hyper::body::Bytes;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Mutex, PoisonError};

/// The response header by which Rocket hands a body to the front: `<sha256> <start> <len>`. The
/// front always removes it; it only ever comes from this process's Rocket (front/forward.rs).
pub const HANDOFF_HEADER: &str = "x-mig-blob";

/// A range of a blob that the front is to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub sha256: String,
    pub start: u64,
    pub len: u64,
}

impl Handoff {
    pub fn header_value(&self) -> String {
        format!("{} {} {}", self.sha256, self.start, self.len)
    }

    /// The header's value, or `None` when it is not exactly `<sha256> <start> <len>`.
    pub fn parse(value: &str) -> Option<Handoff> {
        let mut parts = value.split(' ');
        let sha256 = parts.next()?;
        let start = parts.next()?.parse().ok()?;
        let len = parts.next()?.parse().ok()?;
        if parts.next().is_some() || !mig_protocol::statement::is_sha256_hex(sha256) {
            return None;
        }
        Some(Handoff {
            sha256: sha256.to_string(),
            start,
            len,
        })
    }
}

/// The bounded cache of verified blob bytes.
pub struct FileCache {
    capacity: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    total: u64,
    clock: u64,
}

struct Entry {
    bytes: Bytes,
    used: u64,
}

impl FileCache {
    /// A cache of at most `capacity` bytes (0: none, every body is streamed by Rocket).
    pub fn new(capacity: u64) -> FileCache {
        FileCache {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether a blob of `size` bytes is served from here: the one rule Rocket's file route and
    /// the cache share.
    pub fn holds(&self, size: u64) -> bool {
        size > 0 && size <= self.capacity / 8
    }

    /// Bytes held now.
    pub fn total(&self) -> u64 {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The blob's bytes if they are in memory (never blocks on the disk).
    pub fn cached(&self, sha256: &str) -> Option<Bytes> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let e = state.entries.get_mut(sha256)?;
        e.used = now;
        Some(e.bytes.clone())
    }

    /// The blob's bytes from memory, or read from `store` and checked against their name.
    /// Blocking on a miss: call it off the async workers.
    pub fn get(&self, store: &BlobStore, sha256: &str) -> Result<Bytes> {
        self.get_or_make(sha256, || read_verified(store, sha256, self.capacity / 8))
    }

    /// The bytes kept under `key`, or `make`'s, kept when they fit (a v1 fetch keeps the gzip of
    /// a blob under the blob's name, routes/v1.rs).
    pub fn get_or_make(&self, key: &str, make: impl FnOnce() -> Result<Bytes>) -> Result<Bytes> {
        if let Some(b) = self.cached(key) {
            return Ok(b);
        }
        let bytes = make()?;
        self.insert(key, bytes.clone());
        Ok(bytes)
    }

    fn insert(&self, sha256: &str, bytes: Bytes) {
        let size = bytes.len() as u64;
        if !self.holds(size) {
            return;
        }
        let mut state = self.lock();
        if state.entries.contains_key(sha256) {
            return;
        }
        while state.total + size > self.capacity {
            let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = state.entries.remove(&oldest) {
                state.total -= e.bytes.len() as u64;
            }
        }
        state.clock += 1;
        let used = state.clock;
        state.total += size;
        state
            .entries
            .insert(sha256.to_string(), Entry { bytes, used });
    }
}

/// A blob's whole bytes, at most `cap` of them, refused unless they hash to its name.
pub fn read_verified(store: &BlobStore, sha256: &str, cap: u64) -> Result<Bytes> {
    let path = store.path(sha256)?;
    let mut data = Vec::new();
    std::fs::File::open(&path)
        .map_err(Error::io("opening", &path))?
        .take(cap + 1)
        .read_to_end(&mut data)
        .map_err(Error::io("reading", &path))?;
    if data.len() as u64 > cap {
        return Err(Error::Internal(format!(
            "{} is over the file cache's {cap}-byte entry limit",
            path.display()
        )));
    }
    let actual = mig_protocol::sha256::hex(&Sha256::digest(&data));
    if actual != sha256 {
        crate::logging::event(
            "error",
            "blob_corrupt",
            &[("file", &path.display()), ("sha256", &actual)],
        );
        return Err(Error::Internal(format!(
            "{} does not hold the bytes it is named after (their sha256 is {actual}); it was \
             altered on disk and is not served",
            path.display()
        )));
    }
    Ok(Bytes::from(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handoff_header_round_trips_and_refuses_anything_else() {
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let h = Handoff {
            sha256: sha.into(),
            start: 5,
            len: 70_000,
        };
        assert_eq!(Handoff::parse(&h.header_value()), Some(h));
        for bad in [
            "",
            sha,
            &format!("{sha} 1"),
            &format!("{sha} 1 2 3"),
            &format!("{sha} -1 2"),
            "../../etc/passwd 0 1",
            &format!("{} 0 1", sha.to_uppercase()),
        ] {
            assert_eq!(Handoff::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn entries_are_verified_bounded_and_evicted_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_database(&dir.path().join("x.db")).unwrap();
        // 800 bytes: entries of up to 100.
        let cache = FileCache::new(800);
        assert!(cache.holds(100) && !cache.holds(101) && !cache.holds(0));
        let shas: Vec<String> = (0..9u8)
            .map(|i| store.put(&[i; 100]).unwrap().0.as_str().to_string())
            .collect();
        for s in &shas[..8] {
            assert_eq!(cache.get(&store, s).unwrap().len(), 100);
        }
        assert_eq!(cache.total(), 800);
        // Touch the first, then a ninth: the second (least recently used) goes.
        cache.get(&store, &shas[0]).unwrap();
        cache.get(&store, &shas[8]).unwrap();
        assert_eq!(cache.total(), 800);
        let state = cache.lock();
        assert!(state.entries.contains_key(&shas[0]));
        assert!(!state.entries.contains_key(&shas[1]));
        drop(state);

        // Altered on disk before it was cached: refused, and not cached.
        let (big, _) = store.put(&[7u8; 50]).unwrap();
        std::fs::write(store.path(big.as_str()).unwrap(), [8u8; 50]).unwrap();
        let err = cache.get(&store, big.as_str()).unwrap_err().to_string();
        assert!(err.contains("altered on disk"), "{err}");
        assert!(!cache.lock().entries.contains_key(big.as_str()));
        // Over the entry limit: refused with the limit named.
        let (huge, _) = store.put(&[1u8; 101]).unwrap();
        let err = cache.get(&store, huge.as_str()).unwrap_err().to_string();
        assert!(err.contains("entry limit"), "{err}");
    }
}
