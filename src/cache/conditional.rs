//! Conditional requests (RFC 9111 §4.3, RFC 9110 §13): asking the origin
//! "has it changed?" instead of fetching a stale response again
//! ([`validation_fields`]), and answering a client's own conditional request
//! from the cache ([`client_gets_not_modified`], [`not_modified_fields`]).

use super::freshness::parse_date;
use super::variant::StoredResponse;
use crate::headers::Headers;

// ANCHOR: validation
/// The fields to add to a request that revalidates `stored` (§4.3.1):
/// If-None-Match with its ETag, If-Modified-Since with its Last-Modified.
/// The origin answers 304 if nothing changed, and we save the body transfer.
/// Both go back byte for byte as the origin sent them: a weak `W/` prefix,
/// an odd date format or spacing is the origin's to compare, not ours to
/// tidy (RFC 9110 §8.8.3: an entity tag is opaque).
pub fn validation_fields(stored: &StoredResponse) -> Headers {
    let mut h = Headers::new();
    if let Some(etag) = stored.headers.get("etag") {
        h.append("If-None-Match", etag);
    }
    if let Some(lm) = stored.headers.get("last-modified") {
        h.append("If-Modified-Since", lm);
    }
    h
}

/// §4.3.2: may the cache answer the client's own conditional GET or HEAD
/// with 304 from the (fresh) stored response? If-None-Match, when present,
/// decides alone (RFC 9110 §13.2.2), with the weak comparison (§13.1.2):
/// `W/"x"` and `"x"` match, since a GET only asks "is my copy still
/// good?". Otherwise If-Modified-Since is compared with the stored
/// Last-Modified.
///
/// A stored response without Last-Modified never answers If-Modified-Since
/// with 304. RFC 9111 §4.3.2 would let its Date stand in, but RFC 9110
/// §13.1.3 tells a recipient to ignore the field when the representation
/// has no modification date, and the two disagree where it matters: Date
/// says when the message was made, not when the content last changed, so a
/// client holding an older copy from elsewhere would be told it is current.
/// A 200 instead only costs the body.
pub fn client_gets_not_modified(request_headers: &Headers, stored: &StoredResponse) -> bool {
    if request_headers.contains("if-none-match") {
        let ours = stored.headers.get("etag").map(opaque_tag);
        return request_headers.get_all("if-none-match").any(|line| {
            entity_tags(line)
                .iter()
                .any(|tag| tag == b"*" || Some(opaque_tag(tag)) == ours)
        });
    }
    let since = match request_headers.get("if-modified-since") {
        Some(v) => parse_date(v),
        None => return false,
    };
    let Some(since) = since else {
        return false; // an invalid date is ignored (RFC 9110 §13.1.3)
    };
    match stored.headers.get("last-modified").and_then(parse_date) {
        Some(modified) => modified <= since,
        None => false,
    }
}
// ANCHOR_END: validation

/// Weak comparison ignores the `W/` prefix: `W/"x"` and `"x"` match.
fn opaque_tag(tag: &[u8]) -> &[u8] {
    let tag = tag.trim_ascii();
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// Splits an If-None-Match value into entity tags. Not [`Headers::list`]:
/// an entity tag may contain a comma inside its quotes.
fn entity_tags(line: &[u8]) -> Vec<&[u8]> {
    let mut tags = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && matches!(line[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let start = i;
        if line[i..].starts_with(b"W/") {
            i += 2;
        }
        if i < line.len() && line[i] == b'"' {
            i += 1;
            while i < line.len() && line[i] != b'"' {
                i += 1;
            }
            i = (i + 1).min(line.len());
        } else {
            while i < line.len() && line[i] != b',' {
                i += 1;
            }
        }
        tags.push(line[start..i].trim_ascii());
    }
    tags
}

/// The fields of a 304 generated from `stored` (RFC 9110 §15.4.5): those a
/// 200 would have carried that let the client update its own copy.
/// Last-Modified is included when there is no ETag, as the only validator.
/// The caller adds Age, Via and the framing.
pub fn not_modified_fields(stored: &StoredResponse) -> Headers {
    let has_etag = stored.headers.contains("etag");
    let mut h = Headers::new();
    for f in &stored.headers {
        let keep = [
            "cache-control",
            "content-location",
            "date",
            "etag",
            "expires",
            "vary",
        ]
        .iter()
        .any(|n| f.name.eq_ignore_ascii_case(n))
            || (!has_etag && f.name.eq_ignore_ascii_case("last-modified"));
        if keep {
            h.append(&f.name, f.value.clone());
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in lines {
            h.append(n, *v);
        }
        h
    }

    fn stored(lines: &[(&str, &str)]) -> StoredResponse {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        StoredResponse::new(
            200,
            "OK",
            headers(lines),
            b"x".to_vec(),
            &Headers::new(),
            t,
            t,
        )
    }

    #[test]
    fn validation_request_carries_both_validators() {
        let s = stored(&[
            ("ETag", "\"v1\""),
            ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        let v = validation_fields(&s);
        assert_eq!(v.get_str("If-None-Match"), Some("\"v1\""));
        assert_eq!(
            v.get_str("If-Modified-Since"),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert!(validation_fields(&stored(&[])).is_empty());
    }

    #[test]
    fn answering_client_conditionals() {
        let s = stored(&[
            ("ETag", "W/\"a,b\""),
            ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        let ask = |lines: &[(&str, &str)]| client_gets_not_modified(&headers(lines), &s);
        assert!(
            ask(&[("If-None-Match", "\"x\", \"a,b\"")]),
            "weak comparison, comma inside"
        );
        assert!(ask(&[("If-None-Match", "*")]));
        assert!(!ask(&[("If-None-Match", "\"x\"")]));
        // If-None-Match decides alone, even when If-Modified-Since would say 304.
        assert!(!ask(&[
            ("If-None-Match", "\"x\""),
            ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")
        ]));
        assert!(ask(&[(
            "If-Modified-Since",
            "Sun, 06 Nov 1994 08:49:37 GMT"
        )]));
        assert!(ask(&[(
            "If-Modified-Since",
            "Mon, 07 Nov 1994 00:00:00 GMT"
        )]));
        assert!(!ask(&[(
            "If-Modified-Since",
            "Sat, 05 Nov 1994 00:00:00 GMT"
        )]));
        assert!(!ask(&[("If-Modified-Since", "garbage")]));
        assert!(!ask(&[]));
        // No Last-Modified: no modification date, so no 304 (RFC 9110
        // §13.1.3), even when the Date would say "unchanged".
        let dated = stored(&[("Date", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        let ims = headers(&[("If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT")]);
        assert!(!client_gets_not_modified(&ims, &dated));
        // A stored weak tag matches the strong form of it too.
        let weak = stored(&[("ETag", "W/\"w\"")]);
        let inm = headers(&[("If-None-Match", "\"w\"")]);
        assert!(client_gets_not_modified(&inm, &weak));
    }

    #[test]
    fn not_modified_keeps_the_listed_fields() {
        let s = stored(&[
            ("Content-Type", "text/html"),
            ("ETag", "\"1\""),
            ("Cache-Control", "max-age=5"),
            ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("Vary", "Accept"),
        ]);
        let names: Vec<_> = not_modified_fields(&s)
            .iter()
            .map(|f| f.name.clone())
            .collect();
        assert_eq!(names, vec!["ETag", "Cache-Control", "Vary"]);
        let s = stored(&[("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert!(not_modified_fields(&s).contains("last-modified"));
    }
}
