//! What a 304 Not Modified does to a stored response (RFC 9111 §3.2,
//! §4.3.4).
//!
//! A validation that ends in 304 confirms the stored body, but the 304
//! carries fresh header fields (a new `Date`, a new `Cache-Control`, perhaps
//! a new `ETag` for the same bytes) that must replace the stored ones before
//! the response is served again. Two questions, kept apart from the store's
//! locking: does the 304 speak about *this* stored response at all
//! ([`validators_agree`]), and what does the header section look like once
//! merged ([`merge_304_headers`], [`freshened`])? The store applies the
//! answer under its lock.
//!
//! A 200 answering a HEAD request carries the same news (RFC 9111 §4.3.5):
//! [`head_agrees`] says whether it speaks about the stored GET response.

use std::time::SystemTime;

use super::variant::StoredResponse;
use crate::forward;
use crate::headers::Headers;

/// §4.3.4: a 304 updates the stored response it selects. With a strong or
/// weak ETag in the 304, that is the stored response with the same ETag;
/// otherwise, with a Last-Modified, the one with the same date. A 304 naming
/// another representation must not rewrite ours.
pub fn validators_agree(stored: &Headers, validated: &Headers) -> bool {
    if let Some(etag) = validated.get("etag") {
        return stored.get("etag").map(<[u8]>::trim_ascii) == Some(etag.trim_ascii());
    }
    if let Some(lm) = validated.get("last-modified") {
        return stored.get("last-modified").map(<[u8]>::trim_ascii) == Some(lm.trim_ascii());
    }
    true
}

/// Fields a 304 must not overwrite in a stored response (RFC 9111 §3.2):
/// hop-by-hop and proxy fields are not stored at all (§3.1), Content-Length
/// describes the stored body, not the empty 304, and Vary is what the stored
/// variant was selected by.
const NOT_UPDATED_BY_304: &[&str] = &["content-length", "vary"];

// ANCHOR: merge_304
/// The stored header section updated with a 304's fields (§3.2, §4.3.4):
/// every field the 304 carries replaces all stored lines of that name,
/// in place; fields it does not carry are kept.
pub fn merge_304_headers(stored: &Headers, validated: &Headers) -> Headers {
    let mut merged = stored.clone();
    let named_by_connection = forward::named_by_connection(validated);
    let mut done: Vec<String> = Vec::new();
    for field in validated {
        let name = field.name.to_ascii_lowercase();
        if done.contains(&name)
            || NOT_UPDATED_BY_304.contains(&name.as_str())
            || forward::is_hop_by_hop(&name)
            || named_by_connection.contains(&name)
        {
            continue;
        }
        let mut values = validated.get_all(&name);
        if let Some(first) = values.next() {
            merged.set(&field.name, first);
        }
        for more in values {
            merged.append(&field.name, more);
        }
        done.push(name);
    }
    // Age and Date describe the message they came with. A 304 without them
    // must not leave the old response's values behind: the old Age would be
    // counted again on top of the new times, and the old Date would make
    // the freshened response look as old as the first one (§4.2.3).
    for name in ["age", "date"] {
        if !validated.contains(name) {
            merged.remove(name);
        }
    }
    merged
}
// ANCHOR_END: merge_304

/// `old` as confirmed by a validation whose response carried `validated`
/// and was requested at `request_time`: the merged fields, and the new
/// times its age is counted from (§4.3.4). The caller has checked
/// [`validators_agree`] (or [`head_agrees`]).
pub fn freshened(
    old: &StoredResponse,
    validated: &Headers,
    request_time: SystemTime,
    response_time: SystemTime,
) -> StoredResponse {
    let mut updated = StoredResponse::clone(old);
    updated.headers = merge_304_headers(&old.headers, validated);
    updated.request_time = request_time;
    updated.response_time = response_time;
    updated
}

// ANCHOR: head_agrees
/// §4.3.5: does a 200 to a HEAD request describe `stored`, the GET response
/// it could have been answered from? Every validator the HEAD response
/// carries (ETag, Last-Modified) must equal the stored one, and its
/// Content-Length, if any, the stored body's length. Then its fields update
/// the stored response as a 304's would; otherwise the stored response is
/// out of date.
pub fn head_agrees(stored: &StoredResponse, head: &Headers) -> bool {
    for name in ["etag", "last-modified"] {
        if let Some(theirs) = head.get(name)
            && stored.headers.get(name).map(<[u8]>::trim_ascii) != Some(theirs.trim_ascii())
        {
            return false;
        }
    }
    match head.get_str("content-length") {
        Some(length) => length.trim().parse::<u64>().ok() == Some(stored.body.len() as u64),
        None => true,
    }
}
// ANCHOR_END: head_agrees

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in lines {
            h.append(n, *v);
        }
        h
    }

    #[test]
    fn validators_pick_the_representation() {
        let stored = headers(&[
            ("ETag", "\"v1\""),
            ("Last-Modified", "Mon, 13 Nov 2023 00:00:00 GMT"),
        ]);
        assert!(validators_agree(&stored, &headers(&[("ETag", " \"v1\" ")])));
        assert!(!validators_agree(&stored, &headers(&[("ETag", "\"v2\"")])));
        assert!(validators_agree(
            &stored,
            &headers(&[("Last-Modified", "Mon, 13 Nov 2023 00:00:00 GMT")])
        ));
        assert!(!validators_agree(
            &stored,
            &headers(&[("Last-Modified", "Tue, 14 Nov 2023 00:00:00 GMT")])
        ));
        // A 304 without validators says nothing against this response.
        assert!(validators_agree(&stored, &Headers::new()));
    }

    #[test]
    fn a_head_response_must_describe_the_stored_one() {
        let at = SystemTime::UNIX_EPOCH;
        let stored = StoredResponse::new(
            200,
            "OK",
            headers(&[
                ("ETag", "\"v1\""),
                ("Last-Modified", "Mon, 13 Nov 2023 00:00:00 GMT"),
            ]),
            b"four".to_vec(),
            &Headers::new(),
            at,
            at,
        );
        let agrees = |lines: &[(&str, &str)]| head_agrees(&stored, &headers(lines));
        assert!(agrees(&[("ETag", "\"v1\""), ("Content-Length", "4")]));
        assert!(agrees(&[("X-Other", "1")]), "nothing says otherwise");
        assert!(!agrees(&[("ETag", "\"v2\"")]));
        assert!(!agrees(&[("ETag", "\"v1\""), ("Content-Length", "5")]));
        assert!(!agrees(&[(
            "Last-Modified",
            "Tue, 14 Nov 2023 00:00:00 GMT"
        )]));
        assert!(!agrees(&[("Content-Length", "four")]));
    }

    #[test]
    fn merge_replaces_named_fields_and_drops_hop_by_hop_ones() {
        let stored = headers(&[
            ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("Cache-Control", "max-age=60"),
            ("Content-Length", "4"),
            ("Age", "30"),
            ("X-Kept", "yes"),
        ]);
        let not_modified = headers(&[
            ("cache-control", "max-age=120"),
            ("Content-Length", "0"),
            ("Connection", "X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
        ]);
        let merged = merge_304_headers(&stored, &not_modified);
        assert_eq!(merged.get_str("Cache-Control"), Some("max-age=120"));
        assert_eq!(merged.get_str("Content-Length"), Some("4"));
        assert_eq!(merged.get_str("X-Kept"), Some("yes"));
        for gone in ["X-Hop", "Keep-Alive", "Connection", "Age", "Date"] {
            assert!(!merged.contains(gone), "{gone} survived the merge");
        }
    }
}
