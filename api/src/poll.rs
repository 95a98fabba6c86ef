//! The poll that changes nothing (docs/design.md §3.2). Almost every `POST loader/manifest`
//! repeats the loader's last one: the same bytes, the same answer. [`PollCache`] keeps each
//! loader's last outcome under the digest of its request's bytes and the targeting generation,
//! so such a poll is answered from memory: no parsing, no WASM, no write but a coalesced
//! `lastseen`.
//!
//! Correctness rests on three rules, each kept in one place:
//! - any administrator request that is not a read bumps the generation once it has been handled,
//!   whatever it changed and whatever its answer but a refusal of its credentials or permission
//!   (`routes::Invalidate`), so a disabled manifest, a new
//!   expectenv or attribute, a plugin upload or delete, a halt rule takes effect on the very next
//!   poll; a halt tripped by a report bumps it too (`serve::report`). The exceptions are the
//!   writes that change only one loader's status, key, expectenv or attributes, or enrol a
//!   loader: they forget that loader's entry here and bump nothing;
//! - a write of what selection reads from one loader's own row, its expectenv or attributes,
//!   advances that row's `selection_rev` (loaders.rs), which authentication reads with the key
//!   on every request on every replica; an entry is kept under the `selection_rev` read, so
//!   that loader's entry is stale everywhere at once and every other loader's stays ([`Stamp`]);
//! - a report forgets its loader's entry: whether a halted manifest is offered to a loader
//!   depends on its latest report;
//! - the generation and `selection_rev` are read before the rest of the database, and an entry
//!   is stored under those read, so an answer computed across a concurrent change is never
//!   reused after it: both only grow.
//!
//! A disabled loader or a rotated key is refused by authentication, which runs before the
//! cache on every request.
//!
//! The outcomes are bounded in bytes (`[limits] pollcache`, [`ENTRY_BYTES`] each plus a
//! refusal's message): when full, CLOCK (clock.rs) evicts the coldest loader's outcome, one at a
//! time, so a fleet larger than the cache still finds the loaders that poll most often in it.

use crate::clock::{Clock, Stats};
use crate::db::Db;
use crate::error::Result;
use mig_protocol::admin::FreshnessSignature;
use mig_protocol::time::Timestamp;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// What one kept outcome costs in memory besides its refusal message: the entry, its slot and
/// its index in the cache (`[limits] pollcache` is divided by it).
pub const ENTRY_BYTES: usize = 160;
/// How long a loader's `lastseen` may wait in memory before it is written, in one transaction
/// with every other pending one. A crash loses at most this much `lastseen`, never a report,
/// a reported environment or an administrator's write.
pub const SEEN_FLUSH: Duration = Duration::from_secs(5);

/// What a manifest request ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This manifest, whose answer is these bytes (`ManifestResponse` JSON).
    Given(u64, Arc<[u8]>),
    /// No active manifest targets the loader (404 with this message).
    NoneMatched(String),
    /// The reported environment does not meet the loader's expectenv (403 with this message).
    Denied(String),
}

/// A manifest's answer as made (serve::answer_bytes): its bytes, when they must be made again
/// (the freshness signature in them is half its lifetime old; never without one), and that
/// signature's `issued` and `expires`.
pub struct Made {
    pub body: Vec<u8>,
    pub refresh_at: Timestamp,
    pub signed: Option<(Timestamp, Timestamp)>,
}

/// A manifest's answer kept: as [`Made`], at the generation it was made at.
struct Kept {
    generation: u64,
    refresh_at: Timestamp,
    body: Arc<[u8]>,
    signed: Option<(Timestamp, Timestamp)>,
}

/// What a kept outcome was computed from: the targeting generation and the loader's
/// `selection_rev` (its expectenv and attributes), both read before selection. It is reused only
/// under the same two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub generation: u64,
    pub loader: i64,
}

struct Entry {
    stamp: Stamp,
    digest: [u8; 32],
    outcome: Outcome,
    /// When the manifest given expires: the outcome is not reused from then on.
    until: Timestamp,
}

/// Each loader's last outcome, each manifest's answer, and the `lastseen` writes waiting to
/// be flushed.
pub struct PollCache {
    generation: AtomicU64,
    /// The database's shared generation this replica last caught up with
    /// (`replicas::catch_up`); none at start.
    shared_seen: Mutex<Option<i64>>,
    /// Bounded in bytes (`[limits] pollcache`): when full, the coldest loader's entry goes.
    entries: Mutex<Clock<u64, Entry>>,
    /// Manifest id → its answer at a generation.
    answers: Mutex<HashMap<u64, Kept>>,
    seen: Mutex<HashMap<u64, u64>>,
}

/// The digest of a manifest request's bytes: everything the loader reports about itself.
pub fn digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

impl PollCache {
    /// An empty cache keeping at most `bytes` of outcomes.
    pub fn new(bytes: u64) -> PollCache {
        PollCache {
            generation: AtomicU64::new(0),
            shared_seen: Mutex::new(None),
            entries: Mutex::new(Clock::new(usize::try_from(bytes).unwrap_or(usize::MAX))),
            answers: Mutex::default(),
            seen: Mutex::default(),
        }
    }

    /// The generation to read before the database and to store an outcome under.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Something targeting depends on changed: every kept outcome is stale.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The kept outcome of `loader`, if it reported `digest` under `stamp` and the manifest it
    /// gave has not expired by `now`.
    pub fn lookup(
        &self,
        loader: u64,
        stamp: Stamp,
        digest: &[u8; 32],
        now: Timestamp,
    ) -> Option<Outcome> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let e = entries.get(&loader)?;
        let fresh =
            (e.stamp == stamp && &e.digest == digest && now < e.until).then(|| e.outcome.clone());
        if fresh.is_none() {
            entries.stale();
        }
        fresh
    }

    /// Keeps `outcome`, computed from the state at `stamp`, until `until` (the expiry of the
    /// manifest it gives).
    pub fn store(
        &self,
        loader: u64,
        stamp: Stamp,
        digest: [u8; 32],
        outcome: Outcome,
        until: Timestamp,
    ) {
        let bytes = ENTRY_BYTES
            + match &outcome {
                Outcome::Given(..) => 0,
                Outcome::NoneMatched(m) | Outcome::Denied(m) => m.len(),
            };
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                loader,
                Entry {
                    stamp,
                    digest,
                    outcome,
                    until,
                },
                bytes,
            );
    }

    /// The answer bytes of manifest `id`, made once per generation (its signatures only change
    /// through an administrator's request, which bumps it) and again once `now` reaches the
    /// refresh time `make` returned with them (its freshness signature's half-life,
    /// docs/design.md §4.20): every loader given the manifest shares one signature.
    pub fn answer(
        &self,
        id: u64,
        now: Timestamp,
        make: impl FnOnce() -> Result<Made>,
    ) -> Result<Arc<[u8]>> {
        let generation = self.generation();
        if let Some(k) = self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            if k.generation == generation && now < k.refresh_at {
                return Ok(k.body.clone());
            }
        }
        let made = make()?;
        let body: Arc<[u8]> = made.body.into();
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the current generation's answers are kept: at most one per manifest offered.
        answers.retain(|_, k| k.generation == generation);
        answers.insert(
            id,
            Kept {
                generation,
                refresh_at: made.refresh_at,
                body: body.clone(),
                signed: made.signed,
            },
        );
        Ok(body)
    }

    /// The freshness signature in each kept answer, by manifest: what this replica hands out
    /// (`GET freshness`, `/metrics`).
    pub fn signatures(&self) -> Vec<FreshnessSignature> {
        let mut out: Vec<FreshnessSignature> = self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(&manifest, k)| {
                k.signed.map(|(issued, expires)| FreshnessSignature {
                    manifest,
                    issued,
                    expires,
                })
            })
            .collect();
        out.sort_by_key(|f| f.manifest);
        out
    }

    /// Drops `loader`'s outcome (it reported).
    pub fn forget(&self, loader: u64) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&loader);
    }

    /// Polls answered from memory since start, the others, and the outcomes evicted.
    pub fn stats(&self) -> Stats {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats()
    }

    /// `loader` was heard from at `now`: written by the next [`PollCache::flush`].
    pub fn saw(&self, loader: u64, now: Timestamp) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let t = seen.entry(loader).or_default();
        *t = (*t).max(now.0);
    }

    /// Catches up with the database's shared generation `shared` (`replicas::catch_up`): the
    /// first caller to see it moved runs `resync` (the plugins made the stored ones) and makes
    /// every kept outcome stale; the others wait for it, then have nothing to do.
    pub fn catch_up(&self, shared: i64, resync: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut seen = self
            .shared_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The generation only grows: a reader that saw an older one than another thread already
        // caught up with has nothing to do.
        if seen.is_some_and(|s| s >= shared) {
            return Ok(());
        }
        resync()?;
        self.bump();
        *seen = Some(shared);
        Ok(())
    }

    /// Writes every pending `lastseen` in one transaction (never moving one backwards).
    pub fn flush(&self, db: &Db) -> Result<usize> {
        let pending =
            std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() {
            return Ok(0);
        }
        let n = pending.len();
        let written = db.with_relaxed(|c| {
            let what = || crate::error::Error::db("writing lastseen");
            let tx = c.transaction().map_err(what())?;
            for (loader, t) in &pending {
                tx.execute("UPDATE loaders SET lastseen = CASE WHEN COALESCE(lastseen, 0) > ?1 THEN lastseen ELSE ?1 END
                     WHERE id = ?2",
                    crate::params![*t as i64, *loader as i64],
                )
                .map_err(what())?;
            }
            tx.commit().map_err(what())
        });
        if written.is_err() {
            // Tried again at the next turn, unless a newer time came in meanwhile.
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            for (loader, t) in pending {
                let e = seen.entry(loader).or_default();
                *e = (*e).max(t);
            }
        }
        written.map(|_| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_poll_cache_loses_its_coldest_loader_not_every_loader() {
        let given = || Outcome::Given(7, Arc::from(&b"answer"[..]));
        let forever = Timestamp(u64::MAX);
        let now = Timestamp(1);
        let cache = PollCache::new(3 * ENTRY_BYTES as u64);
        let g = Stamp {
            generation: cache.generation(),
            loader: 0,
        };
        for loader in 1..=3 {
            cache.store(loader, g, digest(b"poll"), given(), forever);
        }
        // Loaders 1 and 3 poll again; 2 does not.
        for loader in [1, 3] {
            assert_eq!(
                cache.lookup(loader, g, &digest(b"poll"), now),
                Some(given())
            );
        }
        cache.store(4, g, digest(b"poll"), given(), forever);
        for loader in [1, 3, 4] {
            assert!(
                cache.lookup(loader, g, &digest(b"poll"), now).is_some(),
                "{loader}"
            );
        }
        assert_eq!(cache.lookup(2, g, &digest(b"poll"), now), None);
        // Another request from a kept loader is a miss, not a hit.
        assert_eq!(cache.lookup(1, g, &digest(b"other"), now), None);
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.evictions, s.entries), (5, 2, 1, 3));
    }
}
