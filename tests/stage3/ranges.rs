//! Range requests answered from the cache (RFC 9110 §14): 206 with
//! `Content-Range` for the three forms of a byte range, 416 when nothing is
//! satisfiable, the whole 200 when `If-Range` names another version, and a
//! multipart answer for several ranges. On a miss the request goes to the
//! origin as it is, and a 206 is never stored.

use super::*;

const RANGE_HIT: &str = "webproxy; hit";

/// A stored 10 000-byte response, and the bench that stored it.
fn stored_file() -> (Bench, Origin, String, Vec<u8>) {
    let bench = Bench::new();
    let body = binary(10_000, 14);
    let origin = bench.fixed(
        Reply::ok(body.clone())
            .header("Cache-Control", "max-age=60")
            .header("Content-Type", "application/octet-stream")
            .header("ETag", "\"v1\""),
    );
    let url = origin.url("/file.bin");
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
    (bench, origin, url, body)
}

fn ranged(url: &str, range: &str) -> Req {
    Req::get(url).header("Range", range)
}

// ANCHOR: range_hits
#[test]
fn ranges_are_cut_from_a_stored_response() {
    let (bench, origin, url, body) = stored_file();
    for (range, first, last) in [
        ("bytes=0-499", 0, 499),          // first-last
        ("bytes=9500-", 9500, 9999),      // open-ended
        ("bytes=-300", 9700, 9999),       // suffix: the last 300 bytes
        ("bytes=9990-20000", 9990, 9999), // cut at the end
    ] {
        let part = bench.request(&ranged(&url, range));
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(cache_status(&part), RANGE_HIT, "{range}");
        let expected = format!("bytes {first}-{last}/10000");
        assert_eq!(part.header("Content-Range"), Some(expected.as_str()));
        let len = (last - first + 1).to_string();
        assert_eq!(part.header("Content-Length"), Some(len.as_str()));
        assert!(part.body == body[first..=last], "{range}: wrong bytes");
        // The fields a 200 would carry come along (RFC 9110 §15.3.7).
        assert_eq!(part.header("ETag"), Some("\"v1\""));
    }
    assert_eq!(origin.hits(), 1, "a range of a stored response is a hit");
}
// ANCHOR_END: range_hits

#[test]
fn an_unsatisfiable_range_gets_416_with_the_length() {
    let (bench, origin, url, _) = stored_file();
    for range in ["bytes=10000-", "bytes=20000-20010", "bytes=-0"] {
        let refused = bench.request(&ranged(&url, range));
        assert_eq!(refused.status, 416, "{range}");
        assert_eq!(refused.header("Content-Range"), Some("bytes */10000"));
        assert!(!refused.body.is_empty(), "the 416 says why");
    }
    // The connection is still in step: a whole GET follows.
    assert_eq!(bench.get(&url).body.len(), 10_000);
    assert_eq!(origin.hits(), 1);
}

#[test]
fn if_range_with_another_validator_gets_the_whole_200() {
    let (bench, origin, url, body) = stored_file();
    let with_if_range =
        |validator: &str| bench.request(&ranged(&url, "bytes=0-9").header("If-Range", validator));
    let same = with_if_range("\"v1\"");
    assert_eq!((same.status, same.body.len()), (206, 10));
    // Another version, or a weak tag, which never matches strongly: the
    // whole response, so the client cannot splice two versions.
    for other in ["\"v0\"", "W/\"v1\"", "Sun, 06 Nov 1994 08:49:37 GMT"] {
        let whole = with_if_range(other);
        assert_eq!(whole.status, 200, "If-Range: {other}");
        assert!(whole.body == body);
        assert!(!whole.has_header("Content-Range"));
    }
    assert_eq!(origin.hits(), 1);
}

#[test]
fn several_ranges_get_a_multipart_answer() {
    let (bench, origin, url, body) = stored_file();
    let parts = bench.request(&ranged(&url, "bytes=0-9, 5000-5009"));
    assert_eq!(parts.status, 206);
    assert!(!parts.has_header("Content-Range"), "that is in each part");
    let kind = parts.header("Content-Type").unwrap_or_default();
    let boundary = kind
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("Content-Type: {kind}"));
    let mut expected = Vec::new();
    for (i, (first, last)) in [(0, 9), (5000, 5009)].into_iter().enumerate() {
        let delimiter = if i == 0 { "" } else { "\r\n" };
        expected.extend_from_slice(
            format!(
                "{delimiter}--{boundary}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Range: bytes {first}-{last}/10000\r\n\r\n"
            )
            .as_bytes(),
        );
        expected.extend_from_slice(&body[first..=last]);
    }
    expected.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    assert!(
        parts.body == expected,
        "{}",
        String::from_utf8_lossy(&parts.body)
    );

    // Overlapping ranges are one range: a plain 206.
    let merged = bench.request(&ranged(&url, "bytes=100-199, 0-149"));
    assert_eq!(merged.header("Content-Range"), Some("bytes 0-199/10000"));
    assert_eq!(origin.hits(), 1);
}

#[test]
fn an_invalid_range_is_ignored() {
    let (bench, _origin, url, body) = stored_file();
    for range in ["bytes=500-100", "bytes=abc", "items=0-9", "bytes=0-9; x"] {
        let whole = bench.request(&ranged(&url, range));
        assert_eq!((whole.status, cache_status(&whole)), (200, HIT), "{range}");
        assert!(whole.body == body);
    }
    // A HEAD has no body to cut.
    let head = bench.request(&Req::new("HEAD", &url).header("Range", "bytes=0-9"));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("10000"));
}

#[test]
fn a_range_that_misses_goes_to_the_origin_as_it_is_and_its_206_is_not_stored() {
    let bench = Bench::new();
    let body = text(1000);
    let whole = body.clone();
    let origin = bench.origin(move |request| {
        let reply = match request.header("Range") {
            Some("bytes=0-99") => Reply::with_status(206, whole[..100].to_vec())
                .header("Content-Range", "bytes 0-99/1000"),
            _ => Reply::ok(whole.clone()),
        };
        reply.header("Cache-Control", "max-age=60")
    });
    let url = origin.url("/partly");
    let part = bench.request(&ranged(&url, "bytes=0-99"));
    assert_eq!((part.status, cache_status(&part)), (206, MISS));
    assert_eq!(origin.last_request().header("Range"), Some("bytes=0-99"));
    assert!(part.body == body[..100]);
    // The 206 was not stored: the whole response is fetched, and stored.
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
    assert_eq!(origin.hits(), 2);
    let from_cache = bench.request(&ranged(&url, "bytes=0-99"));
    assert_eq!((from_cache.status, cache_status(&from_cache)), (206, HIT));
    assert_eq!(origin.hits(), 2);
}

#[test]
fn a_range_of_a_stale_entry_is_validated_without_the_range() {
    let bench = Bench::new();
    let origin = validating_origin(&bench, "\"r1\"");
    let url = origin.url("/doc");
    bench.get(&url);
    bench.advance(61);
    let part = bench.request(&ranged(&url, "bytes=10-19").header("If-Range", "\"r1\""));
    // The origin was asked about the whole response, with our validator
    // only, and its 304 let the cache cut the range itself.
    let asked = origin.last_request();
    assert!(!asked.has_header("Range") && !asked.has_header("If-Range"));
    assert_eq!(asked.header("If-None-Match"), Some("\"r1\""));
    assert_eq!((part.status, cache_status(&part)), (206, REVALIDATED));
    assert!(part.body == text(3000)[10..20]);
}
