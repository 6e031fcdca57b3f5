//! Unit tests of freshness: lifetimes, ages, heuristics and the stale-serving
//! rules, against fixed clocks.

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
