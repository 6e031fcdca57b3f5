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
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// 2023-11-14 22:13:20 UTC, a round number of seconds.
    const BASE: u64 = 1_700_000_000;

    fn t(secs: i64) -> SystemTime {
        let base = UNIX_EPOCH + Duration::from_secs(BASE);
        if secs >= 0 {
            base + Duration::from_secs(secs as u64)
        } else {
            base - Duration::from_secs(secs.unsigned_abs())
        }
    }

    fn http_date(secs: i64) -> String {
        httpdate::fmt_http_date(t(secs))
    }

    /// A 200 requested at `t(0)`, received at `t(1)`.
    fn stored(status: u16, lines: &[(&str, &str)]) -> StoredResponse {
        let mut h = Headers::new();
        for (n, v) in lines {
            h.append(n, *v);
        }
        StoredResponse::new(status, "X", h, Vec::new(), &Headers::new(), t(0), t(1))
    }

    fn req(cc: &str) -> RequestDirectives {
        let mut h = Headers::new();
        h.append("Cache-Control", cc);
        RequestDirectives::from_headers(&h)
    }

    #[test]
    fn three_date_formats() {
        let expected = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(expected));
        assert_eq!(
            parse_date(b"Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(expected)
        );
        assert_eq!(parse_date(b"Sun Nov  6 08:49:37 1994"), Some(expected));
        assert_eq!(
            parse_date(b" Sun, 06 Nov 1994 08:49:37 GMT "),
            Some(expected)
        );
        assert_eq!(parse_date(b"0"), None);
        assert_eq!(parse_date(b"-1"), None);
        assert_eq!(parse_date(b"yesterday"), None);
        assert_eq!(parse_date(b"Sun, 06 Nov 1994 08:49:37 \xff"), None);
    }

    // ANCHOR: lifetime_tests
    #[test]
    fn lifetime_precedence() {
        let date = http_date(0);
        let expires = http_date(3600);
        let lm = http_date(-10 * 86_400);
        let all = [
            ("Date", date.as_str()),
            ("Expires", expires.as_str()),
            ("Last-Modified", lm.as_str()),
        ];
        // s-maxage beats max-age beats Expires beats the heuristic.
        let mut lines = all.to_vec();
        lines.push(("Cache-Control", "max-age=60, s-maxage=30"));
        assert_eq!(freshness_lifetime(&stored(200, &lines)), 30);
        lines.pop();
        lines.push(("Cache-Control", "max-age=60"));
        assert_eq!(freshness_lifetime(&stored(200, &lines)), 60);
        lines.pop();
        // Expires - Date = 3600 s.
        assert_eq!(freshness_lifetime(&stored(200, &all)), 3600);
        // Heuristic: Date - Last-Modified = 10 days; 10% = 1 day = 86400 s.
        assert_eq!(freshness_lifetime(&stored(200, &all[..1])), 0);
        assert_eq!(freshness_lifetime(&stored(200, &[all[0], all[2]])), 86_400);
    }

    #[test]
    fn expires_is_measured_from_date_not_from_our_clock() {
        // The origin's clock is 1000 s behind ours: Date and Expires are
        // both "early", their difference is still 120 s.
        let date = http_date(-1000);
        let expires = http_date(-880);
        let r = stored(200, &[("Date", &date), ("Expires", &expires)]);
        assert_eq!(freshness_lifetime(&r), 120);
    }

    #[test]
    fn expires_without_date_uses_response_time() {
        // Received at t(1); Expires at t(61).
        let r = stored(200, &[("Expires", &http_date(61))]);
        assert_eq!(freshness_lifetime(&r), 60);
    }

    #[test]
    fn invalid_or_past_expires_is_stale() {
        let date = http_date(0);
        for bad in ["0", "-1", "never", ""] {
            let r = stored(200, &[("Date", &date), ("Expires", bad)]);
            assert_eq!(freshness_lifetime(&r), 0, "Expires: {bad}");
        }
        let past = http_date(-50);
        assert_eq!(
            freshness_lifetime(&stored(200, &[("Date", &date), ("Expires", &past)])),
            0
        );
        // An explicit (even invalid) Expires rules out the heuristic.
        let lm = http_date(-86_400);
        let r = stored(
            200,
            &[("Date", &date), ("Expires", "0"), ("Last-Modified", &lm)],
        );
        assert_eq!(freshness_lifetime(&r), 0);
    }

    #[test]
    fn heuristic_is_ten_percent_capped_at_a_day() {
        let date = http_date(0);
        // 5 days since modification: 10% = 43200 s (12 h).
        let lm = http_date(-5 * 86_400);
        assert_eq!(
            freshness_lifetime(&stored(200, &[("Date", &date), ("Last-Modified", &lm)])),
            43_200
        );
        // 100 days: 10% would be 10 days; capped at 86400 s.
        let lm = http_date(-100 * 86_400);
        assert_eq!(
            freshness_lifetime(&stored(404, &[("Date", &date), ("Last-Modified", &lm)])),
            86_400
        );
        // Last-Modified after Date: nothing to go on.
        let lm = http_date(500);
        assert_eq!(
            freshness_lifetime(&stored(200, &[("Date", &date), ("Last-Modified", &lm)])),
            0
        );
    }

    #[test]
    fn heuristic_only_for_heuristically_cacheable_status_or_public() {
        let date = http_date(0);
        let lm = http_date(-1000);
        let lines = [("Date", date.as_str()), ("Last-Modified", lm.as_str())];
        assert_eq!(freshness_lifetime(&stored(200, &lines)), 100);
        assert_eq!(freshness_lifetime(&stored(302, &lines)), 0);
        assert_eq!(freshness_lifetime(&stored(500, &lines)), 0);
        let mut public = lines.to_vec();
        public.push(("Cache-Control", "public"));
        assert_eq!(freshness_lifetime(&stored(302, &public)), 100);
    }

    #[test]
    fn invalid_max_age_is_stale() {
        let lm = http_date(-86_400);
        let r = stored(
            200,
            &[("Cache-Control", "max-age=abc"), ("Last-Modified", &lm)],
        );
        assert_eq!(freshness_lifetime(&r), 0);
    }
    // ANCHOR_END: lifetime_tests

    // ANCHOR: age_tests
    #[test]
    fn age_worked_example() {
        // Request sent at t(0); the response arrives at t(2) with
        // Date = t(1) and Age: 10 (another cache held it 10 s).
        let date = http_date(1);
        let mut r = stored(200, &[("Date", &date), ("Age", "10")]);
        r.response_time = t(2);
        let a = age(&r, t(32));
        assert_eq!(a.apparent_age, 1); // 2 - 1
        assert_eq!(a.response_delay, 2); // 2 - 0
        assert_eq!(a.corrected_age_value, 12); // 10 + 2
        assert_eq!(a.corrected_initial_age, 12); // max(1, 12)
        assert_eq!(a.resident_time, 30); // 32 - 2
        assert_eq!(a.current_age, 42);
        assert_eq!(age_header_value(&r, t(32)), 42);
    }

    #[test]
    fn date_in_the_future_counts_as_zero() {
        let date = http_date(3600); // origin clock an hour fast
        let r = stored(200, &[("Date", &date)]);
        let a = age(&r, t(11));
        assert_eq!(a.apparent_age, 0);
        assert_eq!(a.current_age, 1 + 10); // response delay + resident time
    }

    #[test]
    fn old_date_dominates_a_small_age() {
        // Date says the response is 100 s old, Age only 5: trust the older.
        let date = http_date(-99);
        let r = stored(200, &[("Date", &date), ("Age", "5")]);
        assert_eq!(current_age(&r, t(1)), 100);
    }

    #[test]
    fn bad_age_is_ignored_huge_age_capped() {
        let date = http_date(1);
        for bad in ["-5", "abc", "1.5", ""] {
            let r = stored(200, &[("Date", &date), ("Age", bad)]);
            assert_eq!(current_age(&r, t(1)), 1, "Age: {bad}");
        }
        let r = stored(200, &[("Date", &date), ("Age", "7, 9")]);
        assert_eq!(current_age(&r, t(1)), 8, "first list member");
        let r = stored(200, &[("Age", "999999999999999999999999")]);
        assert_eq!(age_header_value(&r, t(10)), DELTA_SECONDS_MAX);
    }
    // ANCHOR_END: age_tests

    fn max_age_60() -> StoredResponse {
        // Received at t(1) with Date = t(1): current_age at t(x) = x.
        let date = http_date(1);
        stored(200, &[("Date", &date), ("Cache-Control", "max-age=60")])
    }

    #[test]
    fn fresh_then_stale() {
        let r = max_age_60();
        let d = reuse(&r, &RequestDirectives::default(), t(59));
        assert_eq!(
            (d.reuse, d.current_age, d.freshness_lifetime),
            (Reuse::Fresh, 59, 60)
        );
        assert_eq!(
            reuse(&r, &RequestDirectives::default(), t(60)).reuse,
            Reuse::MustValidate
        );
    }

    #[test]
    fn request_directives_tighten_or_loosen() {
        let r = max_age_60();
        assert_eq!(reuse(&r, &req("no-cache"), t(2)).reuse, Reuse::MustValidate);
        assert_eq!(
            reuse(&r, &req("max-age=0"), t(1)).reuse,
            Reuse::MustValidate
        );
        assert_eq!(reuse(&r, &req("max-age=30"), t(20)).reuse, Reuse::Fresh);
        assert_eq!(
            reuse(&r, &req("max-age=30"), t(30)).reuse,
            Reuse::MustValidate
        );
        assert_eq!(reuse(&r, &req("min-fresh=20"), t(39)).reuse, Reuse::Fresh);
        assert_eq!(
            reuse(&r, &req("min-fresh=20"), t(40)).reuse,
            Reuse::MustValidate
        );
        // Stale by 10 s at t(70).
        assert_eq!(
            reuse(&r, &req("max-stale=10"), t(70)).reuse,
            Reuse::StaleAllowed
        );
        assert_eq!(
            reuse(&r, &req("max-stale=9"), t(70)).reuse,
            Reuse::MustValidate
        );
        assert_eq!(
            reuse(&r, &req("max-stale"), t(100_000)).reuse,
            Reuse::StaleAllowed
        );
        let mut pragma = Headers::new();
        pragma.append("Pragma", "no-cache");
        let d = RequestDirectives::from_headers(&pragma);
        assert_eq!(reuse(&r, &d, t(2)).reuse, Reuse::MustValidate);
    }

    #[test]
    fn origin_directives_forbid_stale() {
        let date = http_date(1);
        for cc in [
            "max-age=60, must-revalidate",
            "max-age=60, proxy-revalidate",
            "s-maxage=60",
        ] {
            let r = stored(200, &[("Date", &date), ("Cache-Control", cc)]);
            assert_eq!(
                reuse(&r, &req("max-stale"), t(30)).reuse,
                Reuse::Fresh,
                "{cc}"
            );
            assert_eq!(
                reuse(&r, &req("max-stale"), t(70)).reuse,
                Reuse::MustValidate,
                "{cc}"
            );
        }
        let r = stored(
            200,
            &[("Date", &date), ("Cache-Control", "max-age=60, no-cache")],
        );
        assert_eq!(
            reuse(&r, &RequestDirectives::default(), t(2)).reuse,
            Reuse::MustValidate
        );
    }

    #[test]
    fn no_freshness_information_means_validate_every_time() {
        let r = stored(200, &[("Date", &http_date(1))]);
        let d = reuse(&r, &RequestDirectives::default(), t(1));
        assert_eq!((d.reuse, d.freshness_lifetime), (Reuse::MustValidate, 0));
    }

    // ANCHOR: stale_tests
    #[test]
    fn stale_when_disconnected() {
        let r = max_age_60();
        let none = RequestDirectives::default();
        assert!(may_serve_stale_on_error(
            &r,
            &none,
            t(5000),
            OriginFailure::Unreachable
        ));
        // The origin answered 503: pass that on, no permission to hide it.
        assert!(!may_serve_stale_on_error(
            &r,
            &none,
            t(5000),
            OriginFailure::ErrorStatus
        ));
        assert!(!may_serve_stale_on_error(
            &r,
            &req("no-cache"),
            t(5000),
            OriginFailure::Unreachable
        ));
        let date = http_date(1);
        let strict = stored(
            200,
            &[
                ("Date", &date),
                ("Cache-Control", "max-age=60, must-revalidate"),
            ],
        );
        assert!(!may_serve_stale_on_error(
            &strict,
            &none,
            t(70),
            OriginFailure::Unreachable
        ));
    }

    #[test]
    fn stale_if_error_window() {
        let date = http_date(1);
        let r = stored(
            200,
            &[
                ("Date", &date),
                ("Cache-Control", "max-age=60, stale-if-error=100"),
            ],
        );
        let none = RequestDirectives::default();
        let err = OriginFailure::from_status(503).unwrap();
        assert!(may_serve_stale_on_error(&r, &none, t(160), err)); // 100 s stale
        assert!(!may_serve_stale_on_error(&r, &none, t(161), err));
        assert!(!may_serve_stale_on_error(
            &r,
            &none,
            t(161),
            OriginFailure::Unreachable
        ));
        // The client may ask for a wider window itself.
        assert!(may_serve_stale_on_error(
            &r,
            &req("stale-if-error=500"),
            t(400),
            err
        ));
        assert_eq!(OriginFailure::from_status(404), None);
        let strict = stored(
            200,
            &[
                ("Date", &date),
                ("Cache-Control", "s-maxage=60, stale-if-error=100"),
            ],
        );
        assert!(!may_serve_stale_on_error(&strict, &none, t(70), err));
    }
    // ANCHOR_END: stale_tests

    #[test]
    fn stale_while_revalidate_window() {
        let date = http_date(1);
        let r = stored(
            200,
            &[
                ("Date", &date),
                ("Cache-Control", "max-age=60, stale-while-revalidate=30"),
            ],
        );
        let none = RequestDirectives::default();
        assert!(may_serve_stale_while_revalidate(&r, &none, t(90)));
        assert!(!may_serve_stale_while_revalidate(&r, &none, t(91)));
        assert!(!may_serve_stale_while_revalidate(
            &max_age_60(),
            &none,
            t(61)
        ));
        for fresher in ["no-cache", "max-age=100", "min-fresh=1"] {
            assert!(!may_serve_stale_while_revalidate(&r, &req(fresher), t(70)));
        }
    }
}
