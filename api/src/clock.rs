//! A map bounded in bytes that evicts one entry at a time (CLOCK, "second chance"): each entry
//! has a referenced bit, set when it is read; a full map walks a hand over the entries, clearing
//! the bits it passes, and evicts the first entry found unreferenced. So a full cache loses its
//! coldest entries, never all of them at once, and the entries read since the hand last passed
//! survive. Every operation is O(1) amortised; the owner holds it under its own lock.

use std::collections::HashMap;
use std::hash::Hash;

struct Slot<K, V> {
    key: K,
    value: V,
    bytes: usize,
    referenced: bool,
}

/// What a cache did since start, and what it holds, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub entries: u64,
    pub bytes: u64,
    pub capacity: u64,
}

/// Entries of at most `capacity` bytes in all, by the owner's count of each entry's bytes.
/// Slots keep their place in the hand's circle: a removed entry leaves a vacancy the next
/// insertion fills, so a new entry stands just behind the hand and gets a whole turn.
pub struct Clock<K, V> {
    index: HashMap<K, usize>,
    slots: Vec<Option<Slot<K, V>>>,
    vacant: Vec<usize>,
    hand: usize,
    bytes: usize,
    capacity: usize,
    hits: u64,
    misses: u64,
    evictions: u64,
}

impl<K: Hash + Eq + Clone, V> Clock<K, V> {
    /// An empty cache of `capacity` bytes; 0 keeps nothing.
    pub fn new(capacity: usize) -> Self {
        Clock {
            index: HashMap::new(),
            slots: Vec::new(),
            vacant: Vec::new(),
            hand: 0,
            bytes: 0,
            capacity,
            hits: 0,
            misses: 0,
            evictions: 0,
        }
    }

    /// The entry of `key`, marked as read (so the hand spares it once). Counts a hit or a miss;
    /// an owner that finds the entry stale calls [`Clock::stale`].
    pub fn get(&mut self, key: &K) -> Option<&V> {
        let Some(slot) = self
            .index
            .get(key)
            .and_then(|&i| self.slots.get_mut(i))
            .and_then(Option::as_mut)
        else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        slot.referenced = true;
        Some(&slot.value)
    }

    /// The entry just returned by [`Clock::get`] could not be used: a miss, not a hit.
    pub fn stale(&mut self) {
        self.hits = self.hits.saturating_sub(1);
        self.misses += 1;
    }

    /// Keeps `value` under `key`, counted as `bytes`, evicting the coldest entries until it
    /// fits; an entry larger than the whole cache is not kept.
    pub fn insert(&mut self, key: K, value: V, bytes: usize) {
        self.remove(&key);
        if bytes > self.capacity {
            return;
        }
        while self.bytes + bytes > self.capacity && !self.index.is_empty() {
            self.evict_one();
        }
        self.bytes += bytes;
        let slot = Some(Slot {
            key: key.clone(),
            value,
            bytes,
            referenced: false,
        });
        let i = match self.vacant.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.index.insert(key, i);
    }

    /// Drops the entry of `key`, if any.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.index.remove(key)?;
        self.vacate(i)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            hits: self.hits,
            misses: self.misses,
            evictions: self.evictions,
            entries: self.index.len() as u64,
            bytes: self.bytes as u64,
            capacity: self.capacity as u64,
        }
    }

    /// Advances the hand to the first unreferenced entry, clearing the bits it passes, and
    /// evicts it, leaving the hand just past its slot. Ends within two turns: the first clears
    /// every bit. Called only with at least one entry.
    fn evict_one(&mut self) {
        let n = self.slots.len();
        for _ in 0..2 * n + 1 {
            let i = self.hand % n;
            self.hand = (i + 1) % n;
            let Some(slot) = self.slots[i].as_mut() else {
                continue;
            };
            if slot.referenced {
                slot.referenced = false;
                continue;
            }
            let key = slot.key.clone();
            self.index.remove(&key);
            self.vacate(i);
            self.evictions += 1;
            return;
        }
    }

    /// Empties slot `i` (its key already out of the index) for the next insertion.
    fn vacate(&mut self, i: usize) -> Option<V> {
        let slot = self.slots.get_mut(i)?.take()?;
        self.vacant.push(i);
        self.bytes -= slot.bytes;
        Some(slot.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_evicts_one_entry_and_the_hot_ones_survive() {
        // Ten entries of 10 bytes fill 100 bytes.
        let mut c = Clock::new(100);
        for k in 0..10u64 {
            c.insert(k, k * 10, 10);
        }
        assert_eq!(c.stats().entries, 10);
        // Entries 0..5 are hot: read since they were stored.
        for k in 0..5u64 {
            assert_eq!(c.get(&k), Some(&(k * 10)));
        }
        // Each entry past capacity costs one cold entry, never the whole map.
        for k in 10..15u64 {
            c.insert(k, k * 10, 10);
            assert_eq!(c.stats().entries, 10, "after inserting {k}");
        }
        let s = c.stats();
        assert_eq!((s.evictions, s.entries, s.bytes), (5, 10, 100));
        for k in 0..5u64 {
            assert_eq!(c.get(&k), Some(&(k * 10)), "hot entry {k} survived");
        }
        for k in 5..10u64 {
            assert_eq!(c.get(&k), None, "cold entry {k} went");
        }
        for k in 10..15u64 {
            assert!(c.get(&k).is_some(), "new entry {k} is kept");
        }
        let s = c.stats();
        assert_eq!((s.hits, s.misses), (15, 5));
    }

    #[test]
    fn sizes_are_bytes_and_removal_keeps_the_index_right() {
        let mut c = Clock::new(100);
        c.insert("a", 1, 60);
        c.insert("b", 2, 30);
        // 60 + 30 + 50 > 100: the coldest (a) makes room, b stays.
        c.insert("c", 3, 50);
        assert_eq!(c.get(&"a"), None);
        assert_eq!(c.get(&"b"), Some(&2));
        assert_eq!(c.get(&"c"), Some(&3));
        assert_eq!(c.stats().bytes, 80);
        // Too large for the whole cache: not kept, and nothing evicted for it.
        c.insert("huge", 4, 101);
        assert_eq!(c.get(&"huge"), None);
        assert_eq!(c.stats().entries, 2);
        // Replacing an entry re-counts its bytes; removing one leaves a vacancy.
        c.insert("b", 5, 10);
        assert_eq!(c.stats().bytes, 60);
        assert_eq!(c.remove(&"c"), Some(3));
        assert_eq!(c.get(&"b"), Some(&5));
        assert_eq!(c.remove(&"b"), Some(5));
        assert_eq!(c.stats().entries, 0);
        assert_eq!(c.stats().bytes, 0);
        // A cache of 0 bytes keeps nothing.
        let mut none = Clock::new(0);
        none.insert(1, 1, 1);
        assert_eq!(none.get(&1), None);
    }
}
