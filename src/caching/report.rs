//! What the caching layer tells about its work: one word per request for
//! the access log, the `Cache-Status` of the proxy's own error responses
//! (RFC 9211), and the figures on the stats page.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::CacheStats;
use crate::logging::Note;
use crate::relay::{Outcome, RelayError};
use crate::stats::{self, Stats, Value};

/// What the cache did with one request, for the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
    Revalidated,
    Stale,
    Bypass,
    /// Waited for another request's fetch and was served what it stored.
    Collapsed,
    /// A stale response was checked, and the origin sent a new one.
    Refreshed,
}

impl fmt::Display for CacheResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CacheResult {
    const ALL: usize = 7;

    /// The word for the access log.
    pub fn as_str(&self) -> &'static str {
        match self {
            CacheResult::Hit => "HIT",
            CacheResult::Miss => "MISS",
            CacheResult::Revalidated => "REVALIDATED",
            CacheResult::Stale => "STALE",
            CacheResult::Bypass => "BYPASS",
            CacheResult::Collapsed => "COLLAPSED",
            CacheResult::Refreshed => "REFRESHED",
        }
    }

    /// The access log's note: the word above, and squid's result code.
    pub fn note(&self) -> Note {
        let (squid, upstream) = match self {
            CacheResult::Hit => ("TCP_HIT", false),
            CacheResult::Collapsed => ("TCP_HIT", false),
            CacheResult::Miss | CacheResult::Bypass => ("TCP_MISS", true),
            CacheResult::Revalidated => ("TCP_REFRESH_UNMODIFIED", true),
            CacheResult::Stale => ("TCP_REFRESH_FAIL_OLD", true),
            CacheResult::Refreshed => ("TCP_REFRESH_MODIFIED", true),
        };
        Note::new(self.as_str(), squid, upstream)
    }

    /// The `Cache-Status` value for an error response that followed this
    /// outcome: the cache went to the origin (or could not), and why.
    pub fn fwd(&self) -> String {
        let why = match self {
            CacheResult::Bypass => "method",
            CacheResult::Revalidated | CacheResult::Stale | CacheResult::Refreshed => "stale",
            CacheResult::Hit | CacheResult::Miss | CacheResult::Collapsed => "miss",
        };
        format!("webproxy; fwd={why}")
    }

    /// Was the body sent from the store (a revalidated one included)?
    fn served_from_store(&self) -> bool {
        matches!(
            self,
            CacheResult::Hit
                | CacheResult::Stale
                | CacheResult::Revalidated
                | CacheResult::Collapsed
        )
    }
}

/// Requests by outcome, and bytes sent, in all and from stored responses.
#[derive(Default)]
pub struct Counts {
    by_result: [AtomicU64; CacheResult::ALL],
    bytes: AtomicU64,
    bytes_from_cache: AtomicU64,
}

/// Figures kept elsewhere that the stats page shows with the counts.
pub struct Others {
    pub store: CacheStats,
    pub collapse_waiting: usize,
    pub background_started: u64,
}

impl Counts {
    pub fn count(&self, note: CacheResult, result: &Result<Outcome, RelayError>) {
        self.by_result[note as usize].fetch_add(1, Ordering::Relaxed);
        let bytes = match result {
            Ok(outcome) => outcome.bytes,
            Err(RelayError::Aborted { bytes, .. }) => *bytes,
            Err(RelayError::Http(_)) => 0,
        };
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if note.served_from_store() {
            self.bytes_from_cache.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn get(&self, r: CacheResult) -> u64 {
        self.by_result[r as usize].load(Ordering::Relaxed)
    }

    /// Adds the cache's section to the stats page.
    pub fn report(&self, stats: &mut Stats, others: Others) {
        let get = |r| self.get(r);
        // Every request answered without a trip of its own to the origin.
        let hits = get(CacheResult::Hit) + get(CacheResult::Stale) + get(CacheResult::Collapsed);
        let lookups = hits + get(CacheResult::Miss) + get(CacheResult::Revalidated);
        let store = others.store;
        stats
            .section("cache")
            .row(
                "cache_hits",
                "hits (fresh, standing in or collapsed)",
                Value::Count(hits),
            )
            .row(
                "cache_revalidated",
                "revalidated (304)",
                Value::Count(get(CacheResult::Revalidated)),
            )
            .row(
                "cache_misses",
                "misses",
                Value::Count(get(CacheResult::Miss)),
            )
            .row(
                "cache_bypassed",
                "not cacheable (method)",
                Value::Count(get(CacheResult::Bypass)),
            )
            .row(
                "cache_collapsed",
                "served from another request's fetch",
                Value::Count(get(CacheResult::Collapsed)),
            )
            .row(
                "cache_collapse_waiting",
                "waiting for another request's fetch now",
                Value::Count(others.collapse_waiting as u64),
            )
            .row(
                "cache_background_revalidations",
                "revalidations started in the background",
                Value::Count(others.background_started),
            )
            .row(
                "cache_hit_ratio",
                "hit ratio, by requests",
                stats::ratio(hits, lookups),
            )
            .row(
                "cache_byte_hit_ratio",
                "hit ratio, by bytes",
                stats::ratio(
                    self.bytes_from_cache.load(Ordering::Relaxed),
                    self.bytes.load(Ordering::Relaxed),
                ),
            )
            .row(
                "cache_objects",
                "stored objects",
                Value::Count(store.entries as u64),
            )
            .row(
                "cache_bytes",
                "stored bytes",
                Value::Bytes(store.bytes as u64),
            )
            .row("cache_evictions", "evictions", Value::Count(store.evicted));
    }
}
