//! A shared HTTP cache (RFC 9111), as used by a forward proxy.
//!
//! ## Why a proxy caches
//!
//! Many clients behind one proxy ask for the same things: the same library
//! from a CDN, the same logo, the same front page. If the proxy keeps a copy
//! of a response, the next client gets it without a trip to the origin:
//! faster for the client, cheaper for the network and the origin. The hard
//! part is knowing when the copy may be used. HTTP gives each response a
//! *freshness lifetime*; while the copy is younger than that it may be served
//! as is, afterwards it must be checked with the origin ("validated"), which
//! costs a round trip but usually not the body (a 304 Not Modified).
//!
//! A proxy's cache is a *shared* cache: what it stores for one user may be
//! served to another. That is why it must not store `private` responses, nor
//! responses to requests with credentials unless the origin allows it.
//!
//! ## What is stored
//!
//! For each cache key (the absolute URI, [`key`]) one or more variants
//! ([`variant::StoredResponse`]): the status, the header fields minus the
//! hop-by-hop ones, the complete body, the time we sent the request and the
//! time the response arrived (both needed for the age), and the request
//! header values its `Vary` names. Only complete responses to GET are stored;
//! a body cut short is never stored (§3.3), and neither is one larger than
//! the per-object limit.
//!
//! ## Map of RFC 9111
//!
//! | section | topic | where |
//! |---|---|---|
//! | §2, §4 | cache key | [`key`] |
//! | §3, §3.5 | may we store it? | [`policy::storable`] |
//! | §3.1, §3.2 | which fields are stored / updated | [`policy::headers_for_storage`], [`not_modified::merge_304_headers`] |
//! | §3.3 | only complete responses are stored | [`capture::Capture`] |
//! | §4.1 | Vary | [`variant::vary_matches`], [`variant::selecting_value`], [`variant::variant_id`], [`store::Cache::lookup`] |
//! | §4.2.1 | freshness lifetime | [`freshness::freshness_lifetime`] |
//! | §4.2.2 | heuristic freshness | [`freshness`] (`heuristic_lifetime`) |
//! | §4.2.3 | age | [`freshness::age`] |
//! | §4.2.4 | serving stale | [`freshness::reuse`], [`freshness::may_serve_stale_on_error`] |
//! | §4.3.1, §4.3.2 | validation, answering conditionals | [`conditional::validation_fields`], [`conditional::client_gets_not_modified`] |
//! | §4.3.4 | freshening with a 304 | [`not_modified::validators_agree`], [`store::Cache::freshen`] |
//! | §4.3.5 | freshening with a HEAD response | [`not_modified::head_agrees`], [`store::Cache::replace`], [`store::Cache::discard`] |
//! | §4.4 | invalidation | [`invalidation::invalidates`], [`invalidation::invalidation_keys`], [`store::Cache::invalidate`] |
//! | §5.1 | Age | [`freshness::age_value`], [`freshness::age_header_value`] |
//! | §5.2 | Cache-Control | [`control`] |
//! | §5.3 | Expires | [`freshness::freshness_lifetime`] |
//! | §5.4 | Pragma | [`control::RequestDirectives`] |
//! | RFC 5861 | stale-if-error, stale-while-revalidate | [`freshness`] (the background revalidation is in `caching`) |
//! | RFC 9110 §14 | ranges from a stored response | `caching` (its `ranges` module); a 206 is never stored ([`policy::storable`]) |
//!
//! Storage itself ([`store`]) is an LRU bounded in bytes behind one short
//! lock, optionally mirrored to a directory ([`disk`]). Time comes from a
//! [`clock::Clock`] so tests can move it by hand.
//!
//! ## Layers
//!
//! Each module imports only the ones below it:
//!
//! - [`store`]: the LRU, its lock and the disk mirror; uses everything below.
//! - [`disk`]: the files of `--cache-dir`; knows stored responses, not the store.
//! - [`freshness`], [`policy`], [`not_modified`]: rules about one response.
//! - [`variant`]: a stored response and its Vary values; [`capture`]: the
//!   body copy taken while relaying.
//! - [`fnv`], [`control`], [`key`], [`clock`]: leaves.

pub mod capture;
pub mod clock;
pub mod conditional;
pub mod control;
#[cfg(test)]
mod dir_tests;
pub mod disk;
pub mod fnv;
pub mod freshness;
pub mod invalidation;
pub mod key;
pub mod not_modified;
pub mod policy;
pub mod store;
pub mod variant;

pub use capture::Capture;
pub use clock::{Clock, ManualClock, SystemClock};
pub use control::{RequestDirectives, ResponseDirectives};
pub use freshness::{
    OriginFailure, Reuse, ReuseDecision, age_header_value, current_age, freshness_lifetime,
    may_serve_stale_on_error, reuse,
};
pub use invalidation::{invalidates, invalidation_keys};
pub use key::cache_key;
pub use policy::{NotStored, storable};
pub use store::{Cache, CacheConfig, CacheStats};
pub use variant::StoredResponse;
