//! Range requests answered from a stored response (RFC 9110 §14).
//!
//! A client that already holds part of a file (a download that broke off, a
//! video player seeking) asks for the rest with `Range: bytes=...`. When the
//! whole response is stored and fresh, the cache has every byte, so it can
//! cut the piece out itself instead of asking the origin (§14.2 lets any
//! server, a cache included, answer ranges or ignore them):
//!
//! | request | stored body of 10 000 bytes gives |
//! |---|---|
//! | `bytes=0-499` | 206, `Content-Range: bytes 0-499/10000` |
//! | `bytes=9500-` | 206, the last 500 bytes |
//! | `bytes=-500` | 206, the last 500 bytes too (a suffix, §14.1.2) |
//! | `bytes=0-99, 200-299` | 206, `multipart/byteranges` with two parts (§14.6) |
//! | `bytes=20000-` | 416, `Content-Range: bytes */10000` (§15.5.17) |
//! | `bytes=abc`, `items=1-2` | 200, the whole body: an invalid or unknown range is ignored |
//!
//! Ranges apply only to a 200 to GET (§14.2), and only after the
//! preconditions: a client's `If-None-Match` that matches still gets its 304
//! first (§13.2.2). `If-Range` says "the range only if the resource is still
//! this version" (§13.1.5); when the version differs, the whole 200 goes
//! out, so the client never glues bytes of two versions together.
//!
//! The cache never stores a 206 (see `cache::policy`): combining pieces
//! safely needs more care than serving pieces of a whole.

use std::borrow::Cow;

use crate::cache::StoredResponse;
use crate::cache::fnv::Fnv1a64;
use crate::cache::freshness::{date_value, parse_date};
use crate::headers::Headers;

/// More range-specs than this in one `Range` is not a client reading a file
/// but an attack on the server's effort (§14.2 allows ignoring them).
const MAX_SPECS: usize = 64;

/// Ranges closer than this are sent as one: the headers of a second part
/// cost about as much as the gap (§15.3.7.2 allows coalescing).
const COALESCE_GAP: u64 = 80;

/// One satisfiable range: `first..=last`, both inside the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub first: u64,
    pub last: u64,
}

/// What the `Range` (and `If-Range`) of a request ask of a stored response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// No range, an ignored one, or a failed `If-Range`: the whole response.
    Whole,
    /// One range (perhaps several coalesced): a 206 with `Content-Range`.
    Single(Span),
    /// Several ranges, in ascending order and apart: multipart/byteranges.
    Multi(Vec<Span>),
    /// No range is satisfiable: 416.
    Unsatisfiable,
}

// ANCHOR: plan
/// Decides how to answer a GET with `request` fields from `stored`.
pub fn plan(request: &Headers, stored: &StoredResponse) -> Plan {
    // Range is a single field; two lines of it make no sense (§5.3).
    if stored.status != 200 || request.count("range") != 1 {
        return Plan::Whole;
    }
    if let Some(validator) = request.get("if-range")
        && !if_range_holds(validator, stored)
    {
        return Plan::Whole;
    }
    let len = stored.body.len() as u64;
    // An empty body has no byte to name: answer with all of it (nothing).
    let Some(value) = request.get_str("range").filter(|_| len > 0) else {
        return Plan::Whole;
    };
    let Some(mut spans) = parse(value, len) else {
        return Plan::Whole;
    };
    if spans.is_empty() {
        return Plan::Unsatisfiable;
    }
    spans.sort_by_key(|s| s.first);
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(prev) if span.first <= prev.last.saturating_add(COALESCE_GAP) => {
                prev.last = prev.last.max(span.last);
            }
            _ => merged.push(span),
        }
    }
    match merged.as_slice() {
        [one] => Plan::Single(*one),
        _ => Plan::Multi(merged),
    }
}
// ANCHOR_END: plan

/// Parses `bytes=...` against a body of `len` bytes (§14.1): the satisfiable
/// spans (empty when none is), or `None` when the field is to be ignored:
/// another unit, bad syntax, `last < first` (§14.1.1 makes that invalid), or
/// too many specs.
fn parse(value: &str, len: u64) -> Option<Vec<Span>> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None; // §14.2: a proxy may discard a unit it does not know
    }
    let specs: Vec<&str> = set
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if specs.is_empty() || specs.len() > MAX_SPECS {
        return None;
    }
    let mut spans = Vec::new();
    for spec in specs {
        let (first, last) = spec.split_once('-')?;
        let span = if first.is_empty() {
            // A suffix: the last n bytes, all of them if the body is
            // shorter; `-0` names nothing (§14.1.2).
            let n = number(last)?;
            (n > 0).then(|| Span {
                first: len - n.min(len),
                last: len - 1,
            })
        } else {
            let first = number(first)?;
            let last = if last.is_empty() {
                u64::MAX
            } else {
                number(last)?
            };
            if last < first {
                return None;
            }
            // A range that starts past the end is unsatisfiable; one that
            // ends past it is cut at the end (§14.1.2).
            (first < len).then(|| Span {
                first,
                last: last.min(len - 1),
            })
        };
        spans.extend(span);
    }
    Some(spans)
}

/// `1*DIGIT`; a number too large for u64 saturates (it is past any end).
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

// ANCHOR: if_range
/// §13.1.5: is the stored response the version `If-Range` names? An entity
/// tag must match strongly: a weak tag never does, since a weak validator
/// only promises "equivalent", not "the same bytes". A date must equal the
/// stored Last-Modified exactly, and that Last-Modified must be strong:
/// at least a second older than the response's Date (§8.8.2.2), or two
/// changes within one second could share it.
fn if_range_holds(validator: &[u8], stored: &StoredResponse) -> bool {
    let validator = validator.trim_ascii();
    // An entity tag has a DQUOTE within its first three characters; a date
    // never does (§13.1.5).
    if validator.iter().take(3).any(|&b| b == b'"') {
        let ours = stored.headers.get("etag").map(<[u8]>::trim_ascii);
        return !validator.starts_with(b"W/") && ours == Some(validator);
    }
    let Some(modified) = stored.headers.get("last-modified") else {
        return false;
    };
    let strong = parse_date(modified)
        .and_then(|m| date_value(stored).duration_since(m).ok())
        .is_some_and(|d| d.as_secs() >= 1);
    strong && modified.trim_ascii() == validator
}
// ANCHOR_END: if_range

/// A response to send in place of the stored one: status, fields (before
/// `Age` and `Cache-Status`) and the body in pieces, most of them borrowed
/// from the stored body.
pub struct Answer<'a> {
    pub status: u16,
    pub reason: &'a str,
    pub fields: Headers,
    pub body: Vec<Cow<'a, [u8]>>,
}

impl Answer<'_> {
    pub fn len(&self) -> u64 {
        self.body.iter().map(|p| p.len() as u64).sum()
    }
}

// ANCHOR: answer
/// Carries out `plan` on `stored`: the whole response, one range, several
/// in a multipart/byteranges body, or a 416.
pub fn answer<'a>(plan: &Plan, stored: &'a StoredResponse) -> Answer<'a> {
    let len = stored.body.len() as u64;
    let slice = |s: &Span| Cow::Borrowed(&stored.body[s.first as usize..=s.last as usize]);
    let content_range = |s: &Span| format!("bytes {}-{}/{len}", s.first, s.last);
    // §15.3.7: a 206 carries the fields a 200 would have (Date, ETag,
    // Cache-Control, ...), and Content-Range instead of the whole length.
    let partial = |fields: Headers, body| Answer {
        status: 206,
        reason: "Partial Content",
        fields,
        body,
    };
    match plan {
        Plan::Single(span) => {
            let mut fields = stored.headers.clone();
            fields.set("Content-Range", content_range(span));
            partial(fields, vec![slice(span)])
        }
        Plan::Multi(spans) => match multipart(stored, spans) {
            Some((boundary, body)) => {
                let mut fields = stored.headers.clone();
                let kind = format!("multipart/byteranges; boundary={boundary}");
                fields.set("Content-Type", kind);
                partial(fields, body)
            }
            None => answer(&Plan::Whole, stored),
        },
        Plan::Unsatisfiable => {
            let mut fields = Headers::new();
            fields.append("Content-Range", format!("bytes */{len}"));
            fields.append("Content-Type", "text/plain; charset=utf-8");
            let why = format!("no requested range lies within the {len} bytes stored\n");
            Answer {
                status: 416,
                reason: "Range Not Satisfiable",
                fields,
                body: vec![Cow::Owned(why.into_bytes())],
            }
        }
        Plan::Whole => Answer {
            status: stored.status,
            reason: &stored.reason,
            fields: stored.headers.clone(),
            body: vec![Cow::Borrowed(&stored.body[..])],
        },
    }
}
// ANCHOR_END: answer

/// The boundary and the body of a multipart/byteranges answer (§14.6): for
/// each span, a delimiter line, the part's Content-Type and Content-Range,
/// an empty line and the bytes; then the closing delimiter. `None` in the
/// unlikely case that a part contains the boundary, which would end the
/// part early for the reader: then the whole 200 goes out instead.
fn multipart<'a>(
    stored: &'a StoredResponse,
    spans: &[Span],
) -> Option<(String, Vec<Cow<'a, [u8]>>)> {
    let len = stored.body.len() as u64;
    let mut hash = Fnv1a64::new();
    hash.write(&len.to_be_bytes());
    for s in spans {
        hash.write(&s.first.to_be_bytes());
        hash.write(&s.last.to_be_bytes());
    }
    let boundary = format!("webproxy-{:016x}", hash.finish());
    let content_type = stored.headers.get_str("content-type");
    let mut body = Vec::with_capacity(spans.len() * 2 + 1);
    for (i, s) in spans.iter().enumerate() {
        let part = &stored.body[s.first as usize..=s.last as usize];
        if part
            .windows(boundary.len())
            .any(|w| w == boundary.as_bytes())
        {
            return None;
        }
        // The CRLF before a delimiter belongs to the delimiter (RFC 2046).
        let mut head = if i == 0 { String::new() } else { "\r\n".into() };
        head.push_str(&format!("--{boundary}\r\n"));
        if let Some(t) = content_type {
            head.push_str(&format!("Content-Type: {t}\r\n"));
        }
        head.push_str(&format!(
            "Content-Range: bytes {}-{}/{len}\r\n\r\n",
            s.first, s.last
        ));
        body.push(Cow::Owned(head.into_bytes()));
        body.push(Cow::Borrowed(part));
    }
    body.push(Cow::Owned(format!("\r\n--{boundary}--\r\n").into_bytes()));
    Some((boundary, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn stored(body: &[u8], lines: &[(&str, &str)]) -> StoredResponse {
        let mut h = Headers::new();
        for (n, v) in lines {
            h.append(n, *v);
        }
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        StoredResponse::new(200, "OK", h, body.to_vec(), &Headers::new(), t, t)
    }

    fn plan_for(range: &str, s: &StoredResponse) -> Plan {
        let mut h = Headers::new();
        h.append("Range", range);
        plan(&h, s)
    }

    fn span(first: u64, last: u64) -> Span {
        Span { first, last }
    }

    #[test]
    fn the_three_forms_of_a_byte_range() {
        let s = stored(&[b'x'; 1000], &[]);
        assert_eq!(plan_for("bytes=0-499", &s), Plan::Single(span(0, 499)));
        assert_eq!(plan_for("bytes=900-", &s), Plan::Single(span(900, 999)));
        assert_eq!(plan_for("bytes=-100", &s), Plan::Single(span(900, 999)));
        assert_eq!(plan_for("Bytes = 0-0", &s), Plan::Whole, "no OWS around =");
        assert_eq!(plan_for("BYTES=0-0", &s), Plan::Single(span(0, 0)));
        // Past the end: cut at the end; a suffix longer than the body: all.
        assert_eq!(plan_for("bytes=990-5000", &s), Plan::Single(span(990, 999)));
        assert_eq!(plan_for("bytes=-5000", &s), Plan::Single(span(0, 999)));
        let huge = "bytes=0-99999999999999999999999";
        assert_eq!(plan_for(huge, &s), Plan::Single(span(0, 999)));
    }

    #[test]
    fn invalid_ranges_are_ignored_and_unsatisfiable_ones_refused() {
        let s = stored(&[b'x'; 1000], &[]);
        for ignored in [
            "bytes=5-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=",
            "0-1",
            "bytes=1",
        ] {
            assert_eq!(plan_for(ignored, &s), Plan::Whole, "{ignored}");
        }
        let many = format!("bytes={}", vec!["1-1"; MAX_SPECS + 1].join(","));
        assert_eq!(plan_for(&many, &s), Plan::Whole);
        for refused in ["bytes=1000-", "bytes=-0", "bytes=5000-6000, -0"] {
            assert_eq!(plan_for(refused, &s), Plan::Unsatisfiable, "{refused}");
        }
        // One satisfiable range is enough.
        assert_eq!(plan_for("bytes=5000-, 0-1", &s), Plan::Single(span(0, 1)));
        // Only a 200 is cut, and an empty body never.
        let mut not_found = stored(b"gone", &[]);
        not_found.status = 404;
        assert_eq!(plan_for("bytes=0-1", &not_found), Plan::Whole);
        assert_eq!(plan_for("bytes=0-1", &stored(b"", &[])), Plan::Whole);
    }

    #[test]
    fn overlapping_and_close_ranges_are_coalesced() {
        let s = stored(&[b'x'; 10_000], &[]);
        let got = plan_for("bytes=500-600, 0-99, 50-150", &s);
        assert_eq!(got, Plan::Multi(vec![span(0, 150), span(500, 600)]));
        let got = plan_for("bytes=0-99, 120-199, 0-9", &s);
        assert_eq!(got, Plan::Single(span(0, 199)));
    }

    #[test]
    fn if_range_needs_the_same_version() {
        let lm = "Tue, 14 Nov 2023 00:00:00 GMT";
        let date = "Tue, 14 Nov 2023 22:13:20 GMT";
        let s = stored(
            b"0123456789",
            &[("ETag", "\"v1\""), ("Last-Modified", lm), ("Date", date)],
        );
        let ask = |if_range: &str| {
            let mut h = Headers::new();
            h.append("Range", "bytes=0-1");
            h.append("If-Range", if_range);
            plan(&h, &s)
        };
        assert_eq!(ask("\"v1\""), Plan::Single(span(0, 1)));
        assert_eq!(ask(lm), Plan::Single(span(0, 1)));
        for other in [
            "\"v2\"",
            "W/\"v1\"",
            "Wed, 15 Nov 2023 00:00:00 GMT",
            "junk",
        ] {
            assert_eq!(ask(other), Plan::Whole, "{other}");
        }
        // A Last-Modified equal to Date is weak: no range on it.
        let weak = stored(b"0123456789", &[("Last-Modified", date), ("Date", date)]);
        let mut h = Headers::new();
        h.append("Range", "bytes=0-1");
        h.append("If-Range", date);
        assert_eq!(plan(&h, &weak), Plan::Whole);
    }

    #[test]
    fn answers_carry_content_range() {
        let s = stored(
            b"0123456789",
            &[("Content-Type", "text/plain"), ("ETag", "\"e\"")],
        );
        let one = answer(&Plan::Single(span(2, 4)), &s);
        assert_eq!((one.status, one.len()), (206, 3));
        assert_eq!(one.fields.get_str("Content-Range"), Some("bytes 2-4/10"));
        assert_eq!(one.fields.get_str("ETag"), Some("\"e\""));
        assert_eq!(one.body.concat(), b"234");

        let none = answer(&Plan::Unsatisfiable, &s);
        assert_eq!(none.status, 416);
        assert_eq!(none.fields.get_str("Content-Range"), Some("bytes */10"));

        let two = answer(&Plan::Multi(vec![span(0, 0), span(8, 9)]), &s);
        assert_eq!(two.status, 206);
        let kind = two.fields.get_str("Content-Type").unwrap().to_string();
        let boundary = kind
            .strip_prefix("multipart/byteranges; boundary=")
            .unwrap();
        let expected = format!(
            "--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/10\r\n\r\n0\
             \r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 8-9/10\r\n\r\n89\
             \r\n--{boundary}--\r\n"
        );
        assert_eq!(String::from_utf8(two.body.concat()).unwrap(), expected);
        assert_eq!(two.len(), expected.len() as u64);
    }

    #[test]
    fn a_body_holding_the_boundary_is_sent_whole() {
        // The boundary depends on the length and the spans only, so a probe
        // of the same length shows which one the real body will get.
        let spans = vec![span(90, 200), span(280, 299)];
        let plain = stored(&[b'x'; 300], &[]);
        let probe = answer(&Plan::Multi(spans.clone()), &plain);
        let kind = probe.fields.get_str("Content-Type").unwrap_or_default();
        let boundary = kind.rsplit('=').next().unwrap_or_default().to_string();
        assert!(boundary.starts_with("webproxy-"), "{kind}");
        let mut body = vec![b'x'; 300];
        body[100..100 + boundary.len()].copy_from_slice(boundary.as_bytes());
        let holding = stored(&body, &[]);
        let whole = answer(&Plan::Multi(spans), &holding);
        assert_eq!((whole.status, whole.len()), (200, 300));
    }
}
