//! Stage 3, exercise 3: the store, LRU under one short lock.
//!
//! With `--features ex-3-3`, the methods in this file replace the reference
//! LRU index (`Index::touch`, `remove`, `put`, `evict_to`) and
//! `Cache::lookup`, `insert` and `invalidate` in `src/cache/store.rs`, and
//! everything around them is the reference code: this file is a child
//! module of `cache::store`, so `use super::*` reaches the private `Index`,
//! `Slot` and their fields, `Cache::lock` and `Cache::sync_file`. The
//! `Index` methods are `pub(super)` so that `src/cache/store.rs` can call
//! them. Hints: `exercises/stage3/HINTS.md`; grade it with
//! `cargo run --bin grade -- 3`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: index
impl Index {
    /// Marks `id` as just used: it moves to the young end of the LRU order.
    pub(super) fn touch(&mut self, id: u64) {
        // TODO(exercise 3a): `id` was just used: give it the next tick and
        // move it to the young end of `lru` (take its old tick out first).
        // Unknown ids are ignored.
        todo!("stage 3, exercise 3a: touch")
    }

    /// Takes slot `id` out of the index, if it is there.
    pub(super) fn remove(&mut self, id: u64) -> Option<Slot> {
        // TODO(exercise 3a): take slot `id` out of all three places that
        // know it (`slots`, `lru`, and its key's list in `by_key`, dropping
        // that list when it becomes empty; the other variants of the key
        // stay), and subtract its bytes. `None` if there was no such slot.
        todo!("stage 3, exercise 3a: remove")
    }

    /// Puts `response` in slot `id`, replacing whatever was there.
    pub(super) fn put(&mut self, id: u64, key: &str, response: Arc<StoredResponse>, bytes: usize) {
        // TODO(exercise 3a): replace whatever slot `id` held (its bytes must
        // not be counted twice), record the new slot under its key, count
        // its bytes, and make it the most recently used.
        todo!("stage 3, exercise 3a: put")
    }

    // ANCHOR: evict
    /// Drops least recently used entries until the total fits `max_bytes`;
    /// returns their ids so their files can be removed after unlocking.
    pub(super) fn evict_to(&mut self, max_bytes: usize) -> Vec<u64> {
        // TODO(exercise 3b): while more than `max_bytes` are stored, remove
        // the least recently used entry (the first of `lru`), count it in
        // `stats.evicted`, and collect its id.
        todo!("stage 3, exercise 3b: evict_to")
    }
    // ANCHOR_END: evict
}
// ANCHOR_END: index

// ANCHOR: cache
impl Cache {
    // ANCHOR: lookup
    /// The stored response for `key` whose Vary values match this request,
    /// or `None`. When several variants match (the origin changed its Vary),
    /// the most recently received one wins (§4.1). Finding it counts as a use
    /// for LRU. The caller decides freshness with [`super::freshness::reuse`].
    pub fn lookup(&self, key: &str, request_headers: &Headers) -> Option<Arc<StoredResponse>> {
        // TODO(exercise 3c): under the lock (`self.lock()`), among the
        // variants stored for `key` whose Vary values match the request
        // (`vary_matches`), pick the one received last (`response_time`).
        // Finding one is a use (`touch`) and counts in `stats.found`;
        // finding none counts in `stats.missed`. Return a clone of the
        // `Arc`, never a copy of the body: the caller writes it to a socket
        // after the lock is gone.
        todo!("stage 3, exercise 3c: lookup")
    }
    // ANCHOR_END: lookup

    // ANCHOR: insert
    /// Stores `response` under `key`, replacing the same variant if present,
    /// and evicts least recently used entries to stay within `max_bytes`.
    /// Returns `false` (and stores nothing) if the entry alone is larger than
    /// `max_object_bytes` or the whole budget. The caller has already checked
    /// [`super::policy::storable`] and that the body is complete.
    pub fn insert(&self, key: &str, response: StoredResponse) -> bool {
        // TODO(exercise 3c): the entry counts `entry_bytes(key, &response)`
        // and is identified by `variant_id(key, &response.vary)`. Under the
        // lock: refuse it (`stats.too_large`, `false`) if it is larger than
        // `max_object_bytes` or the whole budget, before evicting anything;
        // otherwise `put` it, count it in `stats.inserted`, and evict down to
        // `max_bytes`. After releasing the lock, `sync_file` the new id and
        // every evicted one (that keeps `--cache-dir` in step).
        todo!("stage 3, exercise 3c: insert")
    }
    // ANCHOR_END: insert

    /// Removes every variant stored under `key` (RFC 9111 §4.4); returns how
    /// many there were.
    pub fn invalidate(&self, key: &str) -> usize {
        // TODO(exercise 3c): remove every variant stored under `key`, count
        // them in `stats.invalidated`, `sync_file` each removed id after the
        // lock is released, and return how many there were.
        todo!("stage 3, exercise 3c: invalidate")
    }
}
// ANCHOR_END: cache
