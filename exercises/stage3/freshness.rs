//! Stage 3, exercise 1: how long may a copy be used?
//!
//! With `--features ex-3-1`, the functions in this file replace the
//! reference `freshness_lifetime` and `heuristic_lifetime` in
//! `src/cache/freshness.rs`, and everything around them is the reference
//! code: this file is a child module of `cache::freshness`, so
//! `use super::*` reaches `parse_date`, `header_date`, `secs_between`,
//! `date_value` and the constants. Hints: `exercises/stage3/HINTS.md`; grade
//! it with `cargo run --bin grade -- 3`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: freshness_lifetime
/// How long, in seconds, the response stays fresh after the origin made it
/// (RFC 9111 §4.2.1), as a shared cache sees it.
pub fn freshness_lifetime(r: &StoredResponse) -> u64 {
    // TODO(exercise 1a): the first of these that the response carries
    // decides (RFC 9111 §4.2.1):
    //
    // 1. `s-maxage`: meant for shared caches like this one, so it wins;
    // 2. `max-age`;
    // 3. `Expires` minus the response's `Date` (`date_value`), never
    //    negative and capped at `DELTA_SECONDS_MAX`. An `Expires` that does
    //    not parse as a date ("0" is the classic) means "already expired"
    //    (§5.3), and any `Expires` at all rules out the heuristic;
    // 4. otherwise `heuristic_lifetime`.
    //
    // `ResponseDirectives::from_headers(&r.headers)` has parsed
    // Cache-Control for you; an invalid `max-age=abc` already reads as 0.
    // `parse_date` and `secs_between` are in `src/cache/freshness.rs`.
    todo!("stage 3, exercise 1a: freshness_lifetime")
}
// ANCHOR_END: freshness_lifetime

// ANCHOR: heuristic
/// §4.2.2: no explicit expiry, so guess: 10% of the time since the resource
/// last changed, at most a day. Something unchanged for ten days is unlikely
/// to change in the next one. Only for statuses RFC 9110 §15.1 calls
/// heuristically cacheable, or responses the origin marked `public`; without
/// Last-Modified there is nothing to guess from and the lifetime is 0 (the
/// response is stored, revalidated on next use, and can stand in when the
/// origin is down).
fn heuristic_lifetime(r: &StoredResponse, cc: &ResponseDirectives) -> u64 {
    // TODO(exercise 1b): RFC 9111 §4.2.2. Only for statuses that are
    // heuristically cacheable (`is_heuristically_cacheable`) or responses
    // marked `public`; otherwise 0. Then 10% of the time between
    // `Last-Modified` and the response's `Date`, at most
    // `HEURISTIC_CAP_SECS`. No (readable) `Last-Modified`: 0.
    todo!("stage 3, exercise 1b: heuristic_lifetime")
}
// ANCHOR_END: heuristic
