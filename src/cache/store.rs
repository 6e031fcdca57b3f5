//! The shared in-memory store: every worker thread looks responses up and
//! stores them here, through one `Arc<Cache>`.
//!
//! What an entry is, and which request it may answer, is
//! [`super::variant`]'s business; what a 304 changes in one is
//! [`super::not_modified`]'s. This module keeps the entries: under one lock,
//! within a byte budget, least recently used first out, optionally mirrored
//! to a directory ([`super::disk`]). It follows RFC 9111 §4 (a lookup picks
//! the newest matching variant, §4.1), §4.3.4 and §4.3.5 (freshening, by a
//! 304 or a HEAD response, applies to the variant that was validated, and a
//! variant shown out of date is discarded) and §4.4 (invalidation drops
//! every variant of a key).
//!
//! ## Locking
//!
//! One `Mutex` guards the whole index (the entries, the per-key lists of
//! variants and the LRU order). That is enough because of what happens
//! *under* it: a hash lookup, a few pointer updates and an `Arc` clone, a
//! microsecond or so. The body is never copied under the lock: a reader takes
//! its `Arc<StoredResponse>` and writes the body to its socket after the lock
//! is released, so a hundred clients fetching the same hot entry hold the lock
//! one after another for microseconds each, not for the length of a download.
//! A `RwLock` would not help, because every read is also a write (it moves the
//! entry to the young end of the LRU order), and sharding the index would
//! split the byte budget and the LRU order, which are global by nature. The
//! store never does network I/O, and disk I/O happens after the index lock is
//! released (see [`Cache::insert`]).
//!
//! ## Eviction
//!
//! Least recently used first, counted in bytes (the key, status line, header
//! fields and body, see [`entry_bytes`]), so a few large bodies cannot hide
//! behind an entry count. A read counts as a use. An object larger than
//! `max_object_bytes` is never stored: while relaying,
//! [`Capture`](super::capture::Capture) stops keeping a copy as soon as the
//! body grows past that limit.

// While this exercise's starter stands in for the reference code, what only
// the reference used goes unused.
#![cfg_attr(feature = "ex-3-3", allow(dead_code, unused_imports))]

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use super::clock::Clock;
use super::disk;
use super::not_modified::{freshened, validators_agree};
use super::variant::{StoredResponse, variant_id, vary_matches};
use crate::headers::Headers;

/// The bytes an entry counts for in the LRU budget: its key plus
/// [`StoredResponse::size`].
pub fn entry_bytes(key: &str, response: &StoredResponse) -> usize {
    key.len() + response.size()
}

/// Size limits and persistence for [`Cache::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Total budget for all entries, in bytes.
    pub max_bytes: usize,
    /// Largest single entry we keep, counted like the total (key, status
    /// line, header fields and body together, see [`entry_bytes`]).
    pub max_object_bytes: usize,
    /// `--cache-dir`: keep a copy of every entry on disk and reload it at start.
    pub dir: Option<PathBuf>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 64 * 1024 * 1024,
            max_object_bytes: 8 * 1024 * 1024,
            dir: None,
        }
    }
}

/// Counters for tests and logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    /// Lookups that found a matching variant (fresh or not).
    pub found: u64,
    /// Lookups that found nothing to use.
    pub missed: u64,
    pub inserted: u64,
    /// Inserts refused because the object was too large.
    pub too_large: u64,
    pub evicted: u64,
    pub invalidated: u64,
    /// Entries read back from the cache directory at start.
    pub loaded: u64,
}

struct Slot {
    key: String,
    response: Arc<StoredResponse>,
    bytes: usize,
    tick: u64,
}

/// Everything behind the one lock.
#[derive(Default)]
struct Index {
    slots: HashMap<u64, Slot>,
    by_key: HashMap<String, Vec<u64>>,
    /// Use order: tick of last use -> variant id. The first entry is the
    /// least recently used one.
    lru: BTreeMap<u64, u64>,
    tick: u64,
    bytes: usize,
    stats: CacheStats,
}

// ANCHOR: index
impl Index {
    /// Marks `id` as just used: it moves to the young end of the LRU order.
    #[cfg(not(feature = "ex-3-3"))]
    fn touch(&mut self, id: u64) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(slot) = self.slots.get_mut(&id) {
            self.lru.remove(&slot.tick);
            slot.tick = tick;
            self.lru.insert(tick, id);
        }
    }

    /// Takes slot `id` out of the index, if it is there.
    #[cfg(not(feature = "ex-3-3"))]
    fn remove(&mut self, id: u64) -> Option<Slot> {
        let slot = self.slots.remove(&id)?;
        self.lru.remove(&slot.tick);
        self.bytes -= slot.bytes;
        if let Some(ids) = self.by_key.get_mut(&slot.key) {
            ids.retain(|&other| other != id);
            if ids.is_empty() {
                self.by_key.remove(&slot.key);
            }
        }
        Some(slot)
    }

    /// Puts `response` in slot `id`, replacing whatever was there.
    #[cfg(not(feature = "ex-3-3"))]
    fn put(&mut self, id: u64, key: &str, response: Arc<StoredResponse>, bytes: usize) {
        self.remove(id);
        self.slots.insert(
            id,
            Slot {
                key: key.to_string(),
                response,
                bytes,
                tick: 0,
            },
        );
        self.by_key.entry(key.to_string()).or_default().push(id);
        self.bytes += bytes;
        self.touch(id);
    }

    // ANCHOR: evict
    /// Drops least recently used entries until the total fits `max_bytes`;
    /// returns their ids so their files can be removed after unlocking.
    #[cfg(not(feature = "ex-3-3"))]
    fn evict_to(&mut self, max_bytes: usize) -> Vec<u64> {
        let mut evicted = Vec::new();
        while self.bytes > max_bytes {
            let Some((_, id)) = self.lru.pop_first() else {
                break;
            };
            if let Some(slot) = self.remove(id) {
                // Under the lock, but only formatted when debug is on.
                log::debug!(
                    "cache: evicted {} ({} bytes), the least recently used",
                    slot.key,
                    slot.bytes
                );
                evicted.push(id);
                self.stats.evicted += 1;
            }
        }
        evicted
    }
    // ANCHOR_END: evict
}
// ANCHOR_END: index

// Exercise 3.3: with its feature, the student's `Index` methods above and
// `Cache::lookup`, `insert` and `invalidate` below replace the reference ones.
#[cfg(feature = "ex-3-3")]
#[path = "../../exercises/stage3/store.rs"]
mod ex_3_3;

/// The shared HTTP cache. `Send + Sync`; share it with `Arc<Cache>`.
pub struct Cache {
    config: CacheConfig,
    clock: Arc<dyn Clock>,
    index: Mutex<Index>,
    /// Serialises disk writes and removals so that the file for a variant
    /// always ends up matching the latest in-memory state (see `sync_file`).
    disk_lock: Mutex<()>,
}

impl Cache {
    /// Creates the cache. With `config.dir`, creates the directory if needed
    /// and reloads what a previous run stored there, within the size limits.
    /// A directory that cannot be created, written or read is an error that
    /// names it, now rather than a warning on every store later.
    pub fn new(config: CacheConfig, clock: Arc<dyn Clock>) -> io::Result<Cache> {
        let mut index = Index::default();
        if let Some(dir) = &config.dir {
            let named = |what: &str, e: io::Error| {
                io::Error::new(e.kind(), format!("{what} {}: {e}", dir.display()))
            };
            std::fs::create_dir_all(dir).map_err(|e| named("cannot create", e))?;
            disk::check_writable(dir).map_err(|e| named("cannot write in", e))?;
            let files = disk::load_dir(dir, config.max_object_bytes)
                .map_err(|e| named("cannot read", e))?;
            load_into(&mut index, dir, files, &config);
        }
        Ok(Cache {
            config,
            clock,
            index: Mutex::new(index),
            disk_lock: Mutex::new(()),
        })
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // Nothing under this lock can panic halfway through an update in a
        // way that breaks the index, so a poisoned lock is still usable; the
        // proxy keeps serving instead of failing every later request.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ANCHOR: lookup
    /// The stored response for `key` whose Vary values match this request,
    /// or `None`. When several variants match (the origin changed its Vary),
    /// the most recently received one wins (§4.1). Finding it counts as a use
    /// for LRU. The caller decides freshness with [`super::freshness::reuse`].
    #[cfg(not(feature = "ex-3-3"))]
    pub fn lookup(&self, key: &str, request_headers: &Headers) -> Option<Arc<StoredResponse>> {
        let mut index = self.lock();
        let best = index.by_key.get(key).and_then(|ids| {
            ids.iter()
                .filter_map(|id| index.slots.get(id).map(|s| (*id, s)))
                .filter(|(_, s)| vary_matches(&s.response, request_headers))
                .max_by_key(|(_, s)| s.response.response_time)
                .map(|(id, s)| (id, Arc::clone(&s.response)))
        });
        match best {
            Some((id, response)) => {
                index.touch(id);
                index.stats.found += 1;
                Some(response)
            }
            None => {
                index.stats.missed += 1;
                None
            }
        }
    }
    // ANCHOR_END: lookup

    // ANCHOR: insert
    /// Stores `response` under `key`, replacing the same variant if present,
    /// and evicts least recently used entries to stay within `max_bytes`.
    /// Returns `false` (and stores nothing) if the entry alone is larger than
    /// `max_object_bytes` or the whole budget. The caller has already checked
    /// [`super::policy::storable`] and that the body is complete.
    #[cfg(not(feature = "ex-3-3"))]
    pub fn insert(&self, key: &str, response: StoredResponse) -> bool {
        let bytes = entry_bytes(key, &response);
        let id = variant_id(key, &response.vary);
        let evicted = {
            let mut index = self.lock();
            if bytes > self.config.max_object_bytes || bytes > self.config.max_bytes {
                index.stats.too_large += 1;
                return false;
            }
            index.put(id, key, Arc::new(response), bytes);
            index.stats.inserted += 1;
            index.evict_to(self.config.max_bytes)
        }; // index lock released here: the disk is written without it
        self.sync_file(id);
        for gone in evicted {
            self.sync_file(gone);
        }
        true
    }
    // ANCHOR_END: insert

    // ANCHOR: freshen
    /// Applies a 304 Not Modified to the stored response it validated
    /// (RFC 9111 §4.3.4): the 304's header fields replace the stored ones of
    /// the same name, and the request/response times become those of the
    /// validation, so the entry is fresh again. Returns the updated response
    /// to serve, or `None` when the 304's validator names a different
    /// representation than `old` (then the caller must fetch it anew).
    ///
    /// If `old` is no longer the stored variant because a newer response
    /// replaced it meanwhile, the newer one is kept, and the freshened copy
    /// is only returned for this request.
    pub fn freshen(
        &self,
        key: &str,
        old: &Arc<StoredResponse>,
        validated: &Headers,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> Option<Arc<StoredResponse>> {
        if !validators_agree(&old.headers, validated) {
            return None;
        }
        let updated = freshened(old, validated, request_time, response_time);
        Some(self.replace(key, old, updated))
    }

    /// Stores `updated` in place of `old`, the variant it was made from
    /// (by a 304, §4.3.4, or a HEAD response, §4.3.5), and returns it. If a
    /// newer response replaced `old` meanwhile, that one is kept, and
    /// `updated` only serves the request at hand.
    pub fn replace(
        &self,
        key: &str,
        old: &Arc<StoredResponse>,
        updated: StoredResponse,
    ) -> Arc<StoredResponse> {
        let updated = Arc::new(updated);
        let id = variant_id(key, &old.vary);
        let bytes = entry_bytes(key, &updated);
        let evicted = {
            let mut index = self.lock();
            let replace = match index.slots.get(&id) {
                Some(slot) => Arc::ptr_eq(&slot.response, old),
                None => true, // evicted meanwhile: store it again
            };
            if !replace || bytes > self.config.max_object_bytes || bytes > self.config.max_bytes {
                return updated;
            }
            index.put(id, key, Arc::clone(&updated), bytes);
            index.evict_to(self.config.max_bytes)
        };
        self.sync_file(id);
        for gone in evicted {
            self.sync_file(gone);
        }
        updated
    }

    /// Drops the variant `old` if it is still the stored one: a HEAD
    /// response showed it out of date (§4.3.5), or a 304 made it one we may
    /// not keep. Returns whether it was removed.
    pub fn discard(&self, key: &str, old: &Arc<StoredResponse>) -> bool {
        let id = variant_id(key, &old.vary);
        let removed = {
            let mut index = self.lock();
            let current = index
                .slots
                .get(&id)
                .is_some_and(|slot| Arc::ptr_eq(&slot.response, old));
            current && index.remove(id).is_some()
        };
        if removed {
            self.sync_file(id);
        }
        removed
    }
    // ANCHOR_END: freshen

    // ANCHOR: invalidate
    /// Removes every variant stored under `key` (RFC 9111 §4.4); returns how
    /// many there were.
    #[cfg(not(feature = "ex-3-3"))]
    pub fn invalidate(&self, key: &str) -> usize {
        let removed: Vec<u64> = {
            let mut index = self.lock();
            let ids = index.by_key.get(key).cloned().unwrap_or_default();
            for id in &ids {
                index.remove(*id);
            }
            index.stats.invalidated += ids.len() as u64;
            ids
        };
        for id in &removed {
            self.sync_file(*id);
        }
        removed.len()
    }
    // ANCHOR_END: invalidate

    pub fn stats(&self) -> CacheStats {
        let index = self.lock();
        let mut stats = index.stats.clone();
        stats.entries = index.slots.len();
        stats.bytes = index.bytes;
        stats
    }

    /// Number of stored variants.
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes counted against `max_bytes`.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    // ANCHOR: sync_file
    /// Makes the file of variant `id` match memory: written if the variant is
    /// stored, removed if not. Writers call this after releasing the index
    /// lock, in any order; because each call reads the *current* state under
    /// the disk lock, the last call always leaves the right file behind, even
    /// when an insert and an eviction of the same variant race.
    fn sync_file(&self, id: u64) {
        let Some(dir) = &self.config.dir else {
            return;
        };
        let _disk = self.disk_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current = {
            let index = self.lock();
            index
                .slots
                .get(&id)
                .map(|s| (s.key.clone(), Arc::clone(&s.response)))
        };
        let path = dir.join(disk::file_name(id));
        match current {
            Some((key, response)) => {
                if let Err(e) = disk::write_atomic(dir, &path, &disk::encode(&key, &response)) {
                    // The entry stays in memory; only persistence is lost.
                    log::warn!("cache: cannot write {}: {e}", path.display());
                }
            }
            None => disk::remove_quietly(&path),
        }
    }
    // ANCHOR_END: sync_file
}

/// Fills a fresh index from the files found at start: newest response first
/// until the byte budget is full; the files that do not fit are removed.
fn load_into(
    index: &mut Index,
    dir: &std::path::Path,
    mut files: Vec<disk::Loaded>,
    config: &CacheConfig,
) {
    files.sort_by_key(|f| std::cmp::Reverse(f.response.response_time));
    let mut kept = Vec::new();
    let mut total = 0usize;
    for f in files {
        let bytes = entry_bytes(&f.key, &f.response);
        if bytes > config.max_object_bytes || total + bytes > config.max_bytes {
            log::info!(
                "cache: {} does not fit the size limits, removed",
                f.path.display()
            );
            disk::remove_quietly(&f.path);
            continue;
        }
        total += bytes;
        kept.push((f.key, f.response, bytes));
    }
    // Oldest first, so the newest responses end up most recently used.
    for (key, response, bytes) in kept.into_iter().rev() {
        let id = variant_id(&key, &response.vary);
        index.put(id, &key, Arc::new(response), bytes);
        index.stats.loaded += 1;
    }
    // The stage's startup line reports the count; this is the detail.
    log::debug!(
        "cache: loaded {} entries ({} bytes) from {}",
        index.slots.len(),
        index.bytes,
        dir.display()
    );
}

// The tests are long, so they live in their own file.
#[cfg(test)]
mod tests;
