//! One stored variant: a response, the request header values its `Vary`
//! names, and whether it may answer a new request (RFC 9111 §4.1).
//!
//! An entry of the cache is one *variant*: a response for one cache key (the
//! absolute URI, see [`super::key`]) and one set of values of the request
//! headers that the response's `Vary` names. `GET /` with `Accept-Encoding:
//! gzip` and `GET /` without it can be two entries under the same key. An
//! entry is identified by a 64-bit FNV-1a hash of the key and those values
//! ([`variant_id`]); the same number names its file on disk. Two different
//! variants that happen to hash alike only evict each other: lookups compare
//! the key and the Vary values byte for byte ([`vary_matches`]), so a
//! collision can never serve the wrong response.
//!
//! This module sits below the store and the disk mirror, which both handle
//! [`StoredResponse`] and its id; freshness and policy read it too.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::fnv::Fnv1a64;
use crate::headers::Headers;

/// A response as the cache keeps it, with what freshness and age need.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub reason: String,
    /// Header fields as they will be sent to clients (hop-by-hop fields
    /// already removed, see [`super::policy::headers_for_storage`]).
    pub headers: Headers,
    /// The complete, de-chunked body. Shared, so serving never copies it.
    pub body: Arc<[u8]>,
    /// When we sent the request that produced this response (§4.2.3).
    pub request_time: SystemTime,
    /// When the response header arrived (§4.2.3).
    pub response_time: SystemTime,
    /// For each header named by `Vary` (lower-case, sorted): the request's
    /// normalised value, or `None` if the request did not have that header.
    pub vary: Vec<(String, Option<Vec<u8>>)>,
}

impl StoredResponse {
    /// Builds a stored response and records, from the request that produced
    /// it, the values of the headers its `Vary` names.
    pub fn new(
        status: u16,
        reason: &str,
        headers: Headers,
        body: impl Into<Arc<[u8]>>,
        request_headers: &Headers,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> Self {
        let vary = vary_values(&headers, request_headers);
        StoredResponse {
            status,
            reason: reason.to_string(),
            headers,
            body: body.into(),
            request_time,
            response_time,
            vary,
        }
    }

    /// Bytes this response occupies, without its key: status line text,
    /// header fields as written on the wire, Vary values and body.
    pub fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|f| f.name.len() + f.value.len() + 4)
            .sum();
        let vary: usize = self
            .vary
            .iter()
            .map(|(n, v)| n.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        // "HTTP/1.1 200 " + reason + CRLF, and the CRLF ending the header.
        15 + self.reason.len() + headers + 2 + vary + self.body.len()
    }
}

impl fmt::Debug for StoredResponse {
    // A derived Debug would print megabytes of body in a failed assertion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredResponse")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("request_time", &self.request_time)
            .field("response_time", &self.response_time)
            .field("vary", &self.vary)
            .finish()
    }
}

// ANCHOR: vary
/// The request's value of `name`, normalised for Vary matching (§4.1): each
/// line trimmed, several lines joined with ", " (RFC 9110 §5.3 says that is
/// the same field). `None` when the request has no such field: an absent
/// field only matches an absent field.
#[cfg(not(feature = "ex-3-2"))]
pub fn normalized_field(headers: &Headers, name: &str) -> Option<Vec<u8>> {
    let mut lines = headers.get_all(name).peekable();
    lines.peek()?;
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(line.trim_ascii());
    }
    Some(out)
}

/// The header names listed by `Vary` in the response (lower-case, sorted,
/// without duplicates) with the request's value of each, as Vary compares
/// it ([`selecting_value`]).
pub fn vary_values(
    response_headers: &Headers,
    request_headers: &Headers,
) -> Vec<(String, Option<Vec<u8>>)> {
    let mut names: Vec<String> = response_headers
        .list("vary")
        .map(str::to_ascii_lowercase)
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| {
            let v = selecting_value(request_headers, &n);
            (n, v)
        })
        .collect()
}

/// Whether `stored` may answer a request with `request_headers` as far as
/// Vary is concerned (§4.1). `Vary: *` stands for things outside the request
/// headers (the client's address, the time of day...), so it never matches.
#[cfg(not(feature = "ex-3-2"))]
pub fn vary_matches(stored: &StoredResponse, request_headers: &Headers) -> bool {
    if stored.headers.has_token("vary", "*") {
        return false;
    }
    stored
        .vary
        .iter()
        .all(|(name, value)| selecting_value(request_headers, name) == *value)
}
// ANCHOR_END: vary

// ANCHOR: selecting_value
/// Request fields whose value is a list of tokens with parameters
/// (RFC 9110 §12.5): whitespace around their commas and semicolons is
/// optional whitespace (§5.6.3), so it can be taken out before comparing.
const LIST_FIELDS: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
];

/// Of those, the fields whose members compare without regard to case:
/// charsets (§8.3.2), content codings (§8.4.1) and language tags
/// (§8.5.1, RFC 4647 §2). `Accept` is not one: a media type's parameter
/// values may be case-sensitive.
const CASELESS_FIELDS: &[&str] = &["accept-charset", "accept-encoding", "accept-language"];

/// The request's value of `name` as Vary compares it (§4.1): the
/// [`normalized_field`], then, for the fields above, each list member
/// without its optional whitespace, empty members dropped, and lower-cased
/// where case means nothing. `en-US,fr;q=0.5` and ` EN-us , fr ; q=0.5`
/// select the same variant. The order of members is kept: `en, fr` and
/// `fr, en` ask for different things.
pub fn selecting_value(headers: &Headers, name: &str) -> Option<Vec<u8>> {
    let joined = normalized_field(headers, name)?;
    let name = name.to_ascii_lowercase();
    if !LIST_FIELDS.contains(&name.as_str()) {
        return Some(joined);
    }
    let caseless = CASELESS_FIELDS.contains(&name.as_str());
    Some(canonical_list(&joined, caseless))
}

/// Rewrites a list value: members split at commas outside quoted strings,
/// spaces and tabs outside quoted strings removed (none is significant in
/// these fields' grammar), members joined with ", ".
fn canonical_list(value: &[u8], caseless: bool) -> Vec<u8> {
    let mut members: Vec<Vec<u8>> = Vec::new();
    let mut member = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    for &b in value {
        if quoted {
            member.push(b);
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match b {
            b',' => members.push(std::mem::take(&mut member)),
            b' ' | b'\t' => {}
            b'"' => {
                quoted = true;
                member.push(b);
            }
            _ if caseless => member.push(b.to_ascii_lowercase()),
            _ => member.push(b),
        }
    }
    members.push(member);
    members.retain(|m| !m.is_empty());
    members.join(&b", "[..])
}
// ANCHOR_END: selecting_value

// Exercise 3.2: with its feature, the student's `normalized_field` and
// `vary_matches` replace the ones above.
#[cfg(feature = "ex-3-2")]
#[path = "../../exercises/stage3/vary.rs"]
mod ex_3_2;
#[cfg(feature = "ex-3-2")]
pub use ex_3_2::{normalized_field, vary_matches};

/// The stable number that identifies one variant, in memory and on disk.
pub fn variant_id(key: &str, vary: &[(String, Option<Vec<u8>>)]) -> u64 {
    // Length prefixes keep ("ab","c") and ("a","bc") apart.
    let mut h = Fnv1a64::new();
    h.write_len_prefixed(key.as_bytes());
    for (name, value) in vary {
        h.write_len_prefixed(name.as_bytes());
        match value {
            Some(v) => {
                h.write(&[1]);
                h.write_len_prefixed(v);
            }
            None => h.write(&[0]),
        }
    }
    h.finish()
}

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

    fn response(resp: &[(&str, &str)], req: &[(&str, &str)]) -> StoredResponse {
        let at = SystemTime::UNIX_EPOCH;
        StoredResponse::new(
            200,
            "OK",
            headers(resp),
            b"x".to_vec(),
            &headers(req),
            at,
            at,
        )
    }

    #[test]
    fn vary_joins_several_lines() {
        let vary = [("Vary", "accept-language")];
        let stored = response(&vary, &[("Accept-Language", "en, fr")]);
        let two_lines = headers(&[("Accept-Language", "en"), ("accept-language", " fr")]);
        assert!(vary_matches(&stored, &two_lines));
        assert!(!vary_matches(
            &stored,
            &headers(&[("Accept-Language", "fr, en")])
        ));
    }

    #[test]
    fn list_fields_lose_whitespace_and_case_where_it_means_nothing() {
        let value = |name: &str, v: &str| selecting_value(&headers(&[(name, v)]), name);
        let lang = value("Accept-Language", "en-US,fr;q=0.5");
        assert_eq!(lang.as_deref(), Some(&b"en-us, fr;q=0.5"[..]));
        assert_eq!(value("accept-language", " EN-us , FR ; Q=0.5 ,"), lang);
        assert_ne!(value("Accept-Language", "fr;q=0.5, en-US"), lang);
        assert_eq!(
            value("Accept-Encoding", "GZIP,Deflate").as_deref(),
            Some(&b"gzip, deflate"[..])
        );
        // Accept keeps its case; quoted strings keep their spaces.
        assert_eq!(
            value("Accept", r#"Text/HTML ; x="A b" , */*"#).as_deref(),
            Some(&br#"Text/HTML;x="A b", */*"#[..])
        );
        // Other fields are only trimmed: their spaces may mean something.
        assert_eq!(
            value("User-Agent", " Mozilla/5.0 (X11; Linux) ").as_deref(),
            Some(&b"Mozilla/5.0 (X11; Linux)"[..])
        );
        assert_eq!(value("Accept-Language", ""), Some(Vec::new()));
        assert_eq!(selecting_value(&Headers::new(), "accept-language"), None);
    }

    #[test]
    fn vary_matches_normalised_values() {
        let vary = [("Vary", "Accept-Language, Accept-Encoding")];
        let stored = response(
            &vary,
            &[
                ("Accept-Language", "de-DE"),
                ("Accept-Encoding", "gzip, br"),
            ],
        );
        let same = headers(&[("accept-language", "DE-de"), ("accept-encoding", "GZIP,BR")]);
        assert!(vary_matches(&stored, &same));
        let other = headers(&[("accept-language", "de"), ("accept-encoding", "gzip, br")]);
        assert!(!vary_matches(&stored, &other));
    }

    #[test]
    fn vary_matches_absent_only_absent_and_never_star() {
        // Stored for a request without Accept-Language, and one with "".
        let vary = [("Vary", "Accept-Language, Accept")];
        let absent = response(&vary, &[("Accept", "text/html")]);
        assert_eq!(normalized_field(&headers(&[]), "accept-language"), None);
        assert_eq!(
            normalized_field(&headers(&[("Accept-Language", " ")]), "accept-language"),
            Some(Vec::new())
        );
        assert!(vary_matches(&absent, &headers(&[("Accept", "text/html")])));
        assert!(!vary_matches(
            &absent,
            &headers(&[("Accept", "text/html"), ("Accept-Language", "")])
        ));
        // Every listed field must match, not just one of them.
        assert!(!vary_matches(&absent, &headers(&[("Accept", "image/png")])));
        assert!(!vary_matches(&absent, &headers(&[])));
        // No Vary: any request matches.
        assert!(vary_matches(
            &response(&[], &[]),
            &headers(&[("Accept", "x")])
        ));
        // `*` never matches, even among other names, even the same request.
        let star = response(&[("Vary", "Accept, *")], &[("Accept", "x")]);
        assert!(!vary_matches(&star, &headers(&[("Accept", "x")])));
    }

    #[test]
    fn variant_ids_keep_fields_apart() {
        let a = vec![("ab".to_string(), Some(b"c".to_vec()))];
        let b = vec![("a".to_string(), Some(b"bc".to_vec()))];
        let absent = vec![("ab".to_string(), None)];
        let empty = vec![("ab".to_string(), Some(Vec::new()))];
        let key = "http://a.test:80/";
        assert_ne!(variant_id(key, &a), variant_id(key, &b));
        assert_ne!(variant_id(key, &absent), variant_id(key, &empty));
        assert_eq!(variant_id(key, &a), variant_id(key, &a.clone()));
    }
}
