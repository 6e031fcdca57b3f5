//! Is a stored response still good to use? (RFC 9111 §4.2)
//!
//! A response is *fresh* while its age is below its *freshness lifetime*:
//!
//! ```text
//! response_is_fresh = freshness_lifetime > current_age
//! ```
//!
//! The lifetime comes from the origin (§4.2.1): `s-maxage`, else `max-age`,
//! else `Expires` minus `Date`, else a heuristic (§4.2.2). The age is how long
//! ago the origin produced the response (§4.2.3), counting time spent in other
//! caches (their `Age` header), on the network, and in ours.
//!
//! A stale response may still be served in a few cases (§4.2.4): the client
//! said it accepts stale (`max-stale`), or the origin cannot be reached, or
//! the origin allowed it on error (`stale-if-error`, RFC 5861). Never when the
//! origin forbade it with `must-revalidate`, `proxy-revalidate`, `s-maxage`
//! or `no-cache`.
//!
//! Everything here works in whole seconds, like the `Age` header, and takes
//! "now" as a parameter, so tests use a [`super::clock::ManualClock`] and
//! never sleep. All arithmetic saturates: a hostile `Age: 99999999999999`
//! gives a large age, not an overflow panic.

use std::time::SystemTime;

use super::control::{DELTA_SECONDS_MAX, RequestDirectives, ResponseDirectives, delta_seconds};
use super::variant::StoredResponse;
use crate::headers::Headers;

/// The heuristic lifetime is capped at one day: a file untouched for ten
/// years would otherwise be considered fresh for a year.
pub const HEURISTIC_CAP_SECS: u64 = 24 * 60 * 60;

// ANCHOR: parse_date
/// Parses an HTTP date in any of its three formats (RFC 9110 §5.6.7):
/// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete RFC 850 form
/// `Sunday, 06-Nov-94 08:49:37 GMT` and C's asctime `Sun Nov  6 08:49:37 1994`.
/// `None` for anything else. (The RFC 850 form has a two-digit year, which
/// httpdate reads as 1970–2069; RFC 9110 asks for a rolling 50-year window.
/// The two only disagree for years like "75" meaning 2075, and the servers
/// still sending this obsolete form date from the 1990s.)
pub fn parse_date(value: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(value).ok()?.trim();
    httpdate::parse_http_date(text).ok()
}
// ANCHOR_END: parse_date

/// The first `name` field as a date, if it parses.
fn header_date(headers: &Headers, name: &str) -> Option<SystemTime> {
    headers.get(name).and_then(parse_date)
}

/// Whole seconds from `earlier` to `later`; 0 if `later` is not later.
pub fn secs_between(later: SystemTime, earlier: SystemTime) -> u64 {
    later
        .duration_since(earlier)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 9110 §15.1: statuses a cache may give a heuristic lifetime.
/// (206 is here too, but we never store partial content, see `policy`.)
pub fn is_heuristically_cacheable(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// The time the origin says it produced the response: its `Date`, or when we
/// received it if `Date` is missing or unreadable (RFC 9110 §6.6.1 tells a
/// recipient to supply exactly that).
pub fn date_value(r: &StoredResponse) -> SystemTime {
    header_date(&r.headers, "date").unwrap_or(r.response_time)
}

// ANCHOR: freshness_lifetime
/// How long, in seconds, the response stays fresh after the origin made it
/// (RFC 9111 §4.2.1), as a shared cache sees it.
#[cfg(not(feature = "ex-3-1"))]
pub fn freshness_lifetime(r: &StoredResponse) -> u64 {
    let cc = ResponseDirectives::from_headers(&r.headers);
    // s-maxage is meant for shared caches like us, and wins over max-age.
    if let Some(s) = cc.s_maxage {
        return s;
    }
    if let Some(m) = cc.max_age {
        return m;
    }
    if let Some(expires) = r.headers.get("expires") {
        // An Expires we cannot read, "0" being the classic, means "already
        // expired" (§5.3). Subtracting Date rather than using our own clock
        // keeps a wrong clock at the origin from skewing the lifetime.
        return match parse_date(expires) {
            Some(at) => secs_between(at, date_value(r)).min(DELTA_SECONDS_MAX),
            None => 0,
        };
    }
    heuristic_lifetime(r, &cc)
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
#[cfg(not(feature = "ex-3-1"))]
fn heuristic_lifetime(r: &StoredResponse, cc: &ResponseDirectives) -> u64 {
    if !(is_heuristically_cacheable(r.status) || cc.public) {
        return 0;
    }
    match header_date(&r.headers, "last-modified") {
        Some(modified) => (secs_between(date_value(r), modified) / 10).min(HEURISTIC_CAP_SECS),
        None => 0,
    }
}
// ANCHOR_END: heuristic

// Exercise 3.1: with its feature, the student's `freshness_lifetime` and
// `heuristic_lifetime` replace the ones above.
#[cfg(feature = "ex-3-1")]
#[path = "../../exercises/stage3/freshness.rs"]
mod ex_3_1;
#[cfg(feature = "ex-3-1")]
pub use ex_3_1::freshness_lifetime;

/// The `Age` the response arrived with (§5.1): the first member of the first
/// line, if it is a non-negative integer; otherwise the field is ignored
/// (0). Huge values saturate at 2^31.
pub fn age_value(headers: &Headers) -> u64 {
    headers
        .list("age")
        .next()
        .and_then(delta_seconds)
        .unwrap_or(0)
}

/// The intermediate values of the age calculation, named as in §4.2.3,
/// so the book and the tests can show each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Age {
    pub apparent_age: u64,
    pub response_delay: u64,
    pub corrected_age_value: u64,
    pub corrected_initial_age: u64,
    pub resident_time: u64,
    pub current_age: u64,
}

// ANCHOR: age
/// RFC 9111 §4.2.3, step by step.
pub fn age(r: &StoredResponse, now: SystemTime) -> Age {
    // How old the response looked when it arrived, by the origin's Date.
    // Clocks disagree, so a Date "in the future" counts as 0, not negative.
    let apparent_age = secs_between(r.response_time, date_value(r));
    // The Age header says how long other caches held it; add our round trip,
    // since the response may have aged that much on the way.
    let response_delay = secs_between(r.response_time, r.request_time);
    let corrected_age_value = age_value(&r.headers).saturating_add(response_delay);
    // Take the larger: being wrong towards "older" only costs a revalidation.
    let corrected_initial_age = apparent_age.max(corrected_age_value);
    // Plus the time it has spent in our store.
    let resident_time = secs_between(now, r.response_time);
    let current_age = corrected_initial_age.saturating_add(resident_time);
    Age {
        apparent_age,
        response_delay,
        corrected_age_value,
        corrected_initial_age,
        resident_time,
        current_age,
    }
}
// ANCHOR_END: age

pub fn current_age(r: &StoredResponse, now: SystemTime) -> u64 {
    age(r, now).current_age
}

/// The value for the `Age` header on a response served from the cache
/// (§5.1, required on every such response by §4): whole seconds, capped
/// like every delta-seconds value.
pub fn age_header_value(r: &StoredResponse, now: SystemTime) -> u64 {
    current_age(r, now).min(DELTA_SECONDS_MAX)
}

/// What the cache may do with a stored response for a given request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Fresh enough for this request: serve it, no origin contact.
    Fresh,
    /// Stale, but the client accepts that much staleness (`max-stale`) and
    /// the origin did not forbid it: serve it.
    StaleAllowed,
    /// Ask the origin first (a conditional request, §4.3.1). If it cannot be
    /// reached, see [`may_serve_stale_on_error`]. With `only-if-cached` the
    /// answer is 504 instead (§5.2.1.7).
    MustValidate,
}

/// The decision with the numbers behind it (the `Age` to send, and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReuseDecision {
    pub reuse: Reuse,
    pub current_age: u64,
    pub freshness_lifetime: u64,
}

// ANCHOR: reuse
/// May `r` answer a request carrying `request` directives at time `now`
/// without asking the origin? (RFC 9111 §4, §4.2, §5.2.1, §4.2.4)
pub fn reuse(r: &StoredResponse, request: &RequestDirectives, now: SystemTime) -> ReuseDecision {
    let current_age = current_age(r, now);
    let freshness_lifetime = freshness_lifetime(r);
    let decide = |reuse| ReuseDecision {
        reuse,
        current_age,
        freshness_lifetime,
    };
    let cc = ResponseDirectives::from_headers(&r.headers);

    // no-cache from either side: always validate first (§5.2.1.4, §5.2.2.4).
    if request.no_cache || cc.no_cache {
        return decide(Reuse::MustValidate);
    }
    // The client's own age limit (§5.2.1.1). Exclusive, so that `max-age=0`,
    // what browsers send on reload, always reaches the origin.
    if request.max_age.is_some_and(|max| current_age >= max) {
        return decide(Reuse::MustValidate);
    }
    // Fresh, and fresh for at least min-fresh more seconds (§5.2.1.3).
    let min_fresh = request.min_fresh.unwrap_or(0);
    if freshness_lifetime > current_age.saturating_add(min_fresh) {
        return decide(Reuse::Fresh);
    }
    if freshness_lifetime > current_age {
        // Fresh, but not for as long as the client asked.
        return decide(Reuse::MustValidate);
    }
    // Stale. Serving it needs the client's permission (§5.2.1.2) and no
    // prohibition from the origin (§4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10).
    let staleness = current_age - freshness_lifetime;
    let client_accepts = match request.max_stale {
        Some(None) => true,
        Some(Some(limit)) => staleness <= limit,
        None => false,
    };
    if client_accepts && !cc.forbids_stale() {
        decide(Reuse::StaleAllowed)
    } else {
        decide(Reuse::MustValidate)
    }
}
// ANCHOR_END: reuse

/// How the origin failed us while we tried to validate or refetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginFailure {
    /// Connection refused, timed out, reset, or no usable response: the
    /// cache is "disconnected" in the sense of §4.2.4.
    Unreachable,
    /// The origin answered 500, 502, 503 or 504 (RFC 5861 §4's "error").
    ErrorStatus,
}

impl OriginFailure {
    /// `Some(ErrorStatus)` for the statuses RFC 5861 §4 counts as errors.
    pub fn from_status(status: u16) -> Option<OriginFailure> {
        matches!(status, 500 | 502 | 503 | 504).then_some(OriginFailure::ErrorStatus)
    }
}

impl std::fmt::Display for OriginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OriginFailure::Unreachable => "the origin could not be reached",
            OriginFailure::ErrorStatus => "the origin answered with a server error",
        })
    }
}

impl std::error::Error for OriginFailure {}

// ANCHOR: stale_on_error
/// When the origin fails, may we answer with the stale stored `r` instead of
/// an error page?
///
/// - Never when the origin forbade serving it stale (must-revalidate,
///   proxy-revalidate, s-maxage, no-cache: §4.2.4 and §5.2.2.2 say such a
///   cache must answer 504 instead), nor when the client asked for
///   validation (`no-cache`, §5.2.1.4).
/// - If the response or the request carries `stale-if-error=N` (RFC 5861 §4),
///   for up to N seconds of staleness, whatever the failure.
/// - Otherwise only when the origin is unreachable: §4.2.4 lets a
///   disconnected cache serve stale. An origin that answered 5xx is not
///   disconnected; its answer is passed on.
pub fn may_serve_stale_on_error(
    r: &StoredResponse,
    request: &RequestDirectives,
    now: SystemTime,
    failure: OriginFailure,
) -> bool {
    let cc = ResponseDirectives::from_headers(&r.headers);
    if cc.forbids_stale() || request.no_cache {
        return false;
    }
    let lifetime = freshness_lifetime(r);
    let staleness = current_age(r, now).saturating_sub(lifetime);
    let window = match (cc.stale_if_error, request.stale_if_error) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
    };
    match window {
        Some(window) => staleness <= window,
        None => failure == OriginFailure::Unreachable,
    }
}
// ANCHOR_END: stale_on_error

// ANCHOR: stale_while_revalidate
/// RFC 5861 §3: `stale-while-revalidate=N` lets a cache answer with the stale
/// response for up to N seconds of staleness *while it revalidates in the
/// background*. Only useful to a caller that starts that revalidation.
/// Not when the origin forbade stale responses (§4.2.4), nor when the client
/// asked for something fresher: `no-cache`, `max-age` or `min-fresh`
/// (§5.2.1) each say "check with the origin before you answer me".
pub fn may_serve_stale_while_revalidate(
    r: &StoredResponse,
    request: &RequestDirectives,
    now: SystemTime,
) -> bool {
    let cc = ResponseDirectives::from_headers(&r.headers);
    let Some(window) = cc.stale_while_revalidate else {
        return false;
    };
    let fresher = request.no_cache || request.max_age.is_some() || request.min_fresh.is_some();
    if cc.forbids_stale() || fresher {
        return false;
    }
    let staleness = current_age(r, now).saturating_sub(freshness_lifetime(r));
    staleness <= window
}
// ANCHOR_END: stale_while_revalidate

#[cfg(test)]
mod tests;
