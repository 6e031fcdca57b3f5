//! Which responses the cache may store, which stored responses a request
//! makes obsolete, and the conditional requests that keep entries fresh.
//!
//! - Storing (RFC 9111 §3): [`storable`] says yes, or which rule says no.
//! - Storing the right fields (§3.1): [`headers_for_storage`].
//! - Invalidation (§4.4): a successful POST, PUT, DELETE... changes the
//!   resource, so what we stored for it is now wrong: [`invalidates`] and
//!   [`invalidation_keys`].
//! - Validation (§4.3): asking the origin "has it changed?" instead of
//!   fetching it again ([`validation_fields`], sent with the client's other
//!   fields from [`own_request_fields`]), and answering a client's own
//!   conditional request from the cache ([`client_gets_not_modified`],
//!   [`not_modified_fields`]).

use std::fmt;

use super::control::{RequestDirectives, ResponseDirectives};
use super::freshness::{is_heuristically_cacheable, parse_date};
use super::key::{cache_key, split_key};
use super::variant::StoredResponse;
use crate::headers::Headers;

/// Why a response was not stored. `Display` gives a short phrase for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotStored {
    /// Only responses to GET are stored (§3: "the request method is
    /// understood by the cache"); HEAD is answered from a stored GET.
    Method,
    /// 1xx: not a final response (§3).
    NotFinal,
    /// 206: we do not combine or serve byte ranges (§3.3, §3.4).
    PartialContent,
    /// 304: it updates a stored response (§4.3.4), it is not one itself.
    NotModified,
    /// The request said `no-store` (§5.2.1.5).
    RequestNoStore,
    /// The response said `no-store` (§5.2.2.5).
    ResponseNoStore,
    /// `private`: meant for one user's cache, and we are shared (§5.2.2.7).
    Private,
    /// `Set-Cookie` without `public` or `s-maxage`: the cookie is one
    /// client's, and a shared copy would hand it to the next (our choice,
    /// see [`storable`]).
    SetCookie,
    /// Both Content-Length and Transfer-Encoding: RFC 9112 §6.1 says such a
    /// message "ought to be handled as an error", so it is relayed by its
    /// chunked framing but never kept.
    BothFramings,
    /// The request carried Authorization and the response did not say a
    /// shared cache may keep it (§3.5).
    Authorization,
    /// `Vary: *`: it can never match a later request (§4.1), so storing it
    /// would only take space.
    VaryStar,
    /// No explicit lifetime, not `public`, and a status that may not get a
    /// heuristic one (§3, RFC 9110 §15.1).
    NoFreshness,
}

impl fmt::Display for NotStored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotStored::Method => "method is not GET",
            NotStored::NotFinal => "status is not final",
            NotStored::PartialContent => "partial content (206)",
            NotStored::NotModified => "304 Not Modified",
            NotStored::RequestNoStore => "request says no-store",
            NotStored::ResponseNoStore => "response says no-store",
            NotStored::Private => "response is private",
            NotStored::SetCookie => "Set-Cookie without public or s-maxage",
            NotStored::BothFramings => "both Content-Length and Transfer-Encoding",
            NotStored::Authorization => "authorized request, response not marked shareable",
            NotStored::VaryStar => "Vary: *",
            NotStored::NoFreshness => "no freshness information and not heuristically cacheable",
        })
    }
}

impl std::error::Error for NotStored {}

// ANCHOR: storable
/// May a shared cache store this response? (RFC 9111 §3)
///
/// The caller still has to make sure the body was received completely
/// (§3.3) and fits the size limits; this only looks at the messages' heads.
///
/// One rule is ours rather than the RFC's. RFC 9111 §7.3 notes that
/// `Set-Cookie` "does not inhibit caching", and leaves it to the origin to
/// say `private` or `no-cache="Set-Cookie"` (§5.2.2.4); but an origin that
/// forgot would have one client's session cookie served to everyone after.
/// We store such a response only when the origin says it is meant for
/// sharing (`public`, `s-maxage`), which is what nginx and Varnish do by
/// default too.
pub fn storable(
    method: &str,
    request_headers: &Headers,
    status: u16,
    response_headers: &Headers,
) -> Result<(), NotStored> {
    // Method names are case-sensitive (RFC 9110 §9.1): "get" is not GET.
    if method != "GET" {
        return Err(NotStored::Method);
    }
    match status {
        100..=199 => return Err(NotStored::NotFinal),
        206 => return Err(NotStored::PartialContent),
        304 => return Err(NotStored::NotModified),
        _ => {}
    }
    if RequestDirectives::from_headers(request_headers).no_store {
        return Err(NotStored::RequestNoStore);
    }
    let cc = ResponseDirectives::from_headers(response_headers);
    if cc.no_store {
        return Err(NotStored::ResponseNoStore);
    }
    if cc.private {
        return Err(NotStored::Private);
    }
    // ANCHOR: set_cookie
    let shared_on_purpose = cc.public || cc.s_maxage.is_some();
    if response_headers.contains("set-cookie") && !shared_on_purpose {
        return Err(NotStored::SetCookie);
    }
    // ANCHOR_END: set_cookie
    if response_headers.contains("content-length") && response_headers.contains("transfer-encoding")
    {
        return Err(NotStored::BothFramings);
    }
    // One user's credentials produced this response; only the origin can
    // say that other users may see it too (§3.5).
    if request_headers.contains("authorization")
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return Err(NotStored::Authorization);
    }
    if response_headers.has_token("vary", "*") {
        return Err(NotStored::VaryStar);
    }
    let explicit =
        cc.max_age.is_some() || cc.s_maxage.is_some() || response_headers.contains("expires");
    if !(explicit || cc.public || is_heuristically_cacheable(status)) {
        return Err(NotStored::NoFreshness);
    }
    Ok(())
}
// ANCHOR_END: storable

/// The response's fields as they should be stored (§3.1): everything the
/// origin sent, unknown fields included, minus the hop-by-hop fields, those
/// named by Connection, and the proxy-authentication fields. The body is
/// stored de-chunked, so whoever serves it sets Content-Length from its
/// length.
pub fn headers_for_storage(response_headers: &Headers) -> Headers {
    let mut out = response_headers.clone();
    crate::forward::strip_hop_by_hop(&mut out);
    out
}

/// The fields of a client's request that the cache must not pass on when it
/// asks the origin for itself (to validate a stored response, §4.3.1, or to
/// fetch one afresh): the client's own conditionals, which the cache answers
/// itself from what comes back (§4.3.2), and its `Range`, which the cache
/// applies to a whole stored response (RFC 9110 §14.2) or drops, answering
/// with the whole 200, which a range request always allows. Sending the
/// `Range` without its `If-Range` would be worse than either: a changed
/// resource would come back as a piece of the new version.
const CLIENT_ONLY: &[&str] = &[
    "If-None-Match",
    "If-Modified-Since",
    "If-Match",
    "If-Unmodified-Since",
    "If-Range",
    "Range",
];

/// The request fields for a request the cache makes on its own account:
/// the client's fields as a proxy forwards them, minus [`CLIENT_ONLY`].
/// Fields a `Vary` may name (`Accept-Language`, ...) stay, so the answer
/// is the variant this client would have got.
pub fn own_request_fields(request_headers: &Headers) -> Headers {
    let mut fields = crate::forward::request_fields(request_headers);
    for name in CLIENT_ONLY {
        fields.remove(name);
    }
    fields
}

/// Safe methods (RFC 9110 §9.2.1) do not change the resource.
pub fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

// ANCHOR: invalidates
/// §4.4: a non-error response (2xx or 3xx) to an unsafe method, or one we
/// do not know, means the resource may have changed: drop what we stored
/// for it. A 4xx/5xx means the change did not happen.
pub fn invalidates(method: &str, status: u16) -> bool {
    !is_safe_method(method) && (200..400).contains(&status)
}

/// The keys to invalidate after such a response: the target itself, plus
/// the `Location` and `Content-Location` URIs if they are on the same origin
/// (§4.4 forbids invalidating another origin's entries: otherwise any site
/// could empty the cache of any other with a crafted header).
pub fn invalidation_keys(target_key: &str, response_headers: &Headers) -> Vec<String> {
    let mut keys = vec![target_key.to_string()];
    for name in ["location", "content-location"] {
        let resolved = response_headers
            .get_str(name)
            .and_then(|reference| resolve_same_origin(target_key, reference));
        if let Some(k) = resolved
            && !keys.contains(&k)
        {
            keys.push(k);
        }
    }
    keys
}
// ANCHOR_END: invalidates

// ANCHOR: resolve
/// Resolves a URI reference from a response header against the request's
/// key (RFC 3986 §5.2) and returns its cache key, or `None` when it points
/// to another origin, another scheme, or cannot be understood.
pub fn resolve_same_origin(base_key: &str, reference: &str) -> Option<String> {
    let (base_host, base_port, base_pq) = split_key(base_key)?;
    // A fragment never reaches the server, so it is not part of a key.
    let reference = reference.trim().split('#').next().unwrap_or("");
    if reference.is_empty() {
        return None; // the target itself
    }
    let (host, port, path_and_query) =
        if let Some(rest) = strip_prefix_ignore_case(reference, "http://") {
            absolute(rest)?
        } else if let Some(rest) = reference.strip_prefix("//") {
            absolute(rest)? // network-path reference: same scheme as the base
        } else if has_scheme(reference) {
            return None; // https:, ftp:, mailto:... never the same origin
        } else {
            let (base_path, _) = split_query(base_pq);
            let (path, query) = split_query(reference);
            let path = if path.is_empty() {
                base_path.to_string() // "?q=2": same path, new query
            } else if path.starts_with('/') {
                remove_dot_segments(path)
            } else {
                // Relative path: replace the last segment of the base path.
                let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
                remove_dot_segments(&format!("{dir}{path}"))
            };
            (base_host.to_string(), base_port, format!("{path}{query}"))
        };
    let same_origin = host.eq_ignore_ascii_case(base_host) && port == base_port;
    same_origin.then(|| cache_key(&host, port, &path_and_query))
}
// ANCHOR_END: resolve

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"` before
/// any `/`, `?` or `#`.
fn has_scheme(reference: &str) -> bool {
    let Some(colon) = reference.find(':') else {
        return false;
    };
    let scheme = &reference[..colon];
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Splits "path?query" into ("path", "?query").
fn split_query(s: &str) -> (&str, &str) {
    match s.find('?') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// Parses `authority[/path][?query]` (after `http://` or `//`).
fn absolute(rest: &str) -> Option<(String, u16, String)> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return None; // userinfo: never in our keys, and a classic spoofing trick
    }
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let port = authority[close + 1..].strip_prefix(':');
        (&authority[..=close], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => 80,
        Some(p) => p.parse().ok()?,
    };
    if host.is_empty() {
        return None;
    }
    let (path, query) = split_query(tail);
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        remove_dot_segments(path)
    };
    Some((host.to_ascii_lowercase(), port, format!("{path}{query}")))
}

/// RFC 3986 §5.2.4 for an absolute path: resolves `.` and `..` segments.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
        // "/a/b/." and "/a/b/.." name a directory: keep the trailing slash.
        if i == last && (*seg == "." || *seg == "..") {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

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

    fn check(
        method: &str,
        req: &[(&str, &str)],
        status: u16,
        resp: &[(&str, &str)],
    ) -> Result<(), NotStored> {
        storable(method, &headers(req), status, &headers(resp))
    }

    #[test]
    fn storable_and_each_reason_not_to() {
        let fresh = [("Cache-Control", "max-age=60")];
        assert_eq!(check("GET", &[], 200, &fresh), Ok(()));
        assert_eq!(check("POST", &[], 200, &fresh), Err(NotStored::Method));
        assert_eq!(check("HEAD", &[], 200, &fresh), Err(NotStored::Method));
        assert_eq!(check("get", &[], 200, &fresh), Err(NotStored::Method));
        assert_eq!(check("GET", &[], 103, &fresh), Err(NotStored::NotFinal));
        assert_eq!(
            check("GET", &[], 206, &fresh),
            Err(NotStored::PartialContent)
        );
        assert_eq!(check("GET", &[], 304, &fresh), Err(NotStored::NotModified));
        let no_store = [("Cache-Control", "No-Store")];
        assert_eq!(
            check("GET", &no_store, 200, &fresh),
            Err(NotStored::RequestNoStore)
        );
        let resp = [("Cache-Control", "max-age=60, no-store")];
        assert_eq!(
            check("GET", &[], 200, &resp),
            Err(NotStored::ResponseNoStore)
        );
        let resp = [("Cache-Control", "private, max-age=60")];
        assert_eq!(check("GET", &[], 200, &resp), Err(NotStored::Private));
        let resp = [("Cache-Control", "max-age=60"), ("Set-Cookie", "id=1")];
        assert_eq!(check("GET", &[], 200, &resp), Err(NotStored::SetCookie));
        let resp = [("Content-Length", "3"), ("Transfer-Encoding", "chunked")];
        assert_eq!(check("GET", &[], 200, &resp), Err(NotStored::BothFramings));
        let resp = [("Cache-Control", "max-age=60"), ("Vary", "Accept, *")];
        assert_eq!(check("GET", &[], 200, &resp), Err(NotStored::VaryStar));
        assert_eq!(check("GET", &[], 302, &[]), Err(NotStored::NoFreshness));
        assert_eq!(check("GET", &[], 500, &[]), Err(NotStored::NoFreshness));
        assert_eq!(NotStored::Private.to_string(), "response is private");
    }

    #[test]
    fn freshness_sources_that_make_a_response_storable() {
        assert_eq!(
            check("GET", &[], 200, &[]),
            Ok(()),
            "heuristically cacheable"
        );
        assert_eq!(check("GET", &[], 404, &[]), Ok(()));
        assert_eq!(check("GET", &[], 302, &[("Expires", "0")]), Ok(()));
        assert_eq!(
            check("GET", &[], 302, &[("Cache-Control", "s-maxage=5")]),
            Ok(())
        );
        assert_eq!(
            check("GET", &[], 302, &[("Cache-Control", "public")]),
            Ok(())
        );
        // no-cache may be stored: it is revalidated before each use.
        assert_eq!(
            check("GET", &[], 200, &[("Cache-Control", "no-cache")]),
            Ok(())
        );
    }

    #[test]
    fn authorization_needs_permission() {
        let auth = [("Authorization", "Basic dTpw")];
        let plain = [("Cache-Control", "max-age=60")];
        assert_eq!(
            check("GET", &auth, 200, &plain),
            Err(NotStored::Authorization)
        );
        for ok in [
            "max-age=60, public",
            "s-maxage=60",
            "max-age=60, must-revalidate",
        ] {
            assert_eq!(
                check("GET", &auth, 200, &[("Cache-Control", ok)]),
                Ok(()),
                "{ok}"
            );
        }
    }

    #[test]
    fn set_cookie_is_stored_only_when_meant_for_sharing() {
        let cookie = ("Set-Cookie", "session=abc");
        for cc in ["public, max-age=60", "s-maxage=60"] {
            let resp = [("Cache-Control", cc), cookie];
            assert_eq!(check("GET", &[], 200, &resp), Ok(()), "{cc}");
        }
        for cc in ["max-age=60", "max-age=60, must-revalidate"] {
            let resp = [("Cache-Control", cc), cookie];
            let got = check("GET", &[], 200, &resp);
            assert_eq!(got, Err(NotStored::SetCookie), "{cc}");
        }
    }

    #[test]
    fn own_requests_drop_the_clients_conditionals_and_range() {
        let h = headers(&[
            ("Accept-Language", "fr"),
            ("If-None-Match", "\"a\""),
            ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("Range", "bytes=0-1"),
            ("If-Range", "\"a\""),
            ("Connection", "close"),
        ]);
        let names: Vec<_> = own_request_fields(&h)
            .iter()
            .map(|f| f.name.clone())
            .collect();
        assert_eq!(names, vec!["Accept-Language"]);
    }

    #[test]
    fn stored_headers_lose_hop_by_hop_fields() {
        let h = headers(&[
            ("Connection", "close, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Proxy-Authenticate", "Basic"),
            ("Set-Cookie", "a=1"),
            ("X-Unknown", "kept"),
        ]);
        let kept: Vec<_> = headers_for_storage(&h)
            .iter()
            .map(|f| f.name.clone())
            .collect();
        assert_eq!(kept, vec!["Set-Cookie", "X-Unknown"]);
    }

    #[test]
    fn unsafe_non_error_responses_invalidate() {
        assert!(invalidates("POST", 200));
        assert!(invalidates("PUT", 201));
        assert!(invalidates("DELETE", 204));
        assert!(invalidates("PATCH", 303));
        assert!(invalidates("FROB", 200), "unknown methods count as unsafe");
        assert!(!invalidates("POST", 404));
        assert!(!invalidates("POST", 500));
        assert!(!invalidates("GET", 200));
        assert!(!invalidates("HEAD", 200));
        assert!(!invalidates("OPTIONS", 200));
    }

    #[test]
    fn resolving_locations() {
        let base = "http://a.test:80/dir/page?x=1";
        let r = |s| resolve_same_origin(base, s);
        assert_eq!(r("/other").as_deref(), Some("http://a.test:80/other"));
        assert_eq!(
            r("sibling?y").as_deref(),
            Some("http://a.test:80/dir/sibling?y")
        );
        assert_eq!(r("../up").as_deref(), Some("http://a.test:80/up"));
        assert_eq!(r("./.").as_deref(), Some("http://a.test:80/dir/"));
        assert_eq!(r("?q=2").as_deref(), Some("http://a.test:80/dir/page?q=2"));
        assert_eq!(
            r("HTTP://A.TEST/x#frag").as_deref(),
            Some("http://a.test:80/x")
        );
        assert_eq!(r("http://a.test:80").as_deref(), Some("http://a.test:80/"));
        assert_eq!(r("//a.test/n").as_deref(), Some("http://a.test:80/n"));
        assert_eq!(r("/a/b/../../../c").as_deref(), Some("http://a.test:80/c"));
        // Other origins are never touched.
        assert_eq!(r("http://b.test/x"), None);
        assert_eq!(r("http://a.test:8080/x"), None);
        assert_eq!(r("https://a.test/x"), None);
        assert_eq!(r("//b.test/x"), None);
        assert_eq!(r("http://user@a.test/x"), None);
        assert_eq!(r("mailto:x@a.test"), None);
        assert_eq!(r(""), None);
        assert_eq!(r("http://a.test:99999/x"), None);
        let v6 = "http://[::1]:8080/a/b";
        assert_eq!(
            resolve_same_origin(v6, "c").as_deref(),
            Some("http://[::1]:8080/a/c")
        );
        assert_eq!(
            resolve_same_origin(v6, "http://[::1]:8080/z").as_deref(),
            Some("http://[::1]:8080/z")
        );
    }

    #[test]
    fn invalidation_keys_include_same_origin_locations() {
        let target = "http://a.test:80/items";
        let h = headers(&[
            ("Location", "/items/7"),
            ("Content-Location", "http://evil.test/"),
        ]);
        assert_eq!(
            invalidation_keys(target, &h),
            vec![target, "http://a.test:80/items/7"]
        );
        let h = headers(&[("Content-Location", "/items")]);
        assert_eq!(invalidation_keys(target, &h), vec![target]);
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
