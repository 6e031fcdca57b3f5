//! Invalidation (RFC 9111 §4.4): a successful POST, PUT, DELETE... changes
//! the resource, so what the cache stored for it is now wrong: [`invalidates`]
//! says when, and [`invalidation_keys`] which keys, the request's own and
//! those its `Location` and `Content-Location` name on the same origin.

use super::key::{cache_key, split_key};
use crate::headers::Headers;

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
}
