//! The cache key: which stored responses a request may be answered from.
//!
//! RFC 9111 §2 and §4: a stored response is reused only for a request with
//! the same target URI (and method). Our key is that URI, normalised just
//! enough that the same resource always gives the same string:
//!
//! ```text
//! http://  +  host in lower case  +  :port  +  path-and-query, byte for byte
//! ```
//!
//! - The scheme is always `http`: a forward proxy only sees plain-HTTP
//!   requests; HTTPS goes through CONNECT tunnels it cannot read.
//! - Host names are case-insensitive (RFC 3986 §3.2.2), so they are
//!   lower-cased; an IPv6 literal is written in brackets, as in a URI.
//! - The port is always written, even 80, so `a.test` and `a.test:80` are one
//!   entry and `a.test:8080` is another.
//! - The path and query are kept byte for byte. We do not decode `%41` into
//!   `A` or drop an empty `?`: equivalent URIs that are spelled differently
//!   merely miss the cache, whereas a normalisation that goes too far would
//!   make two different resources share an entry. The query is part of the
//!   key: `/search?q=a` and `/search?q=b` are different resources.
//! - The method is not in the key because only responses to GET are stored
//!   (see [`super::policy::storable`]); every other method bypasses the
//!   cache, and HEAD may be answered from the stored GET (§4).
//!
//! The seed proxies got this wrong in instructive ways. One used only the
//! host name as a file name, so every page of a site shared one entry. One
//! built file names by replacing `/` and `.` with `_`, so `/a.b`, `/a_b` and
//! `/a/b` all became one file; it also cached
//! whatever method the request used under that name, so the answer to a POST
//! could be handed to the next GET. One keyed an in-memory table by the raw
//! request bytes, headers and all, so the same URL requested by two browsers
//! gave two entries. Our key is the URI itself, and files on disk are
//! named by a hash of it (see [`super::disk`]), so no escaping can collide.

// ANCHOR: cache_key
/// The cache key for `http://host:port/path?query`. `path_and_query` is the
/// origin-form request target; an empty one means `/` (RFC 9112 §3.2.1).
pub fn cache_key(host: &str, port: u16, path_and_query: &str) -> String {
    let host = host.to_ascii_lowercase();
    let path = if path_and_query.is_empty() {
        "/"
    } else {
        path_and_query
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:{port}{path}")
    } else {
        format!("http://{host}:{port}{path}")
    }
}
// ANCHOR_END: cache_key

/// Splits a key made by [`cache_key`] back into host (with brackets for
/// IPv6), port and path-and-query. `None` for anything else.
pub fn split_key(key: &str) -> Option<(&str, u16, &str)> {
    let rest = key.strip_prefix("http://")?;
    let slash = rest.find('/')?;
    let (authority, path) = rest.split_at(slash);
    let colon = authority.rfind(':')?;
    let (host, port) = (&authority[..colon], &authority[colon + 1..]);
    if host.is_empty() || (host.contains(':') && !host.ends_with(']')) {
        return None;
    }
    Some((host, port.parse().ok()?, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_lowercased_port_always_written() {
        assert_eq!(
            cache_key("Example.TEST", 80, "/A?B"),
            "http://example.test:80/A?B"
        );
        assert_eq!(cache_key("a.test", 8080, ""), "http://a.test:8080/");
    }

    #[test]
    fn query_port_and_path_case_make_different_keys() {
        let base = cache_key("a.test", 80, "/search?q=a");
        assert_ne!(base, cache_key("a.test", 80, "/search?q=b"));
        assert_ne!(base, cache_key("a.test", 80, "/search"));
        assert_ne!(base, cache_key("a.test", 81, "/search?q=a"));
        assert_ne!(base, cache_key("a.test", 80, "/Search?q=a"));
        // The seed's escaping made these collide.
        assert_ne!(
            cache_key("a.test", 80, "/a.b"),
            cache_key("a.test", 80, "/a_b")
        );
    }

    #[test]
    fn ipv6_in_brackets() {
        assert_eq!(cache_key("::1", 8080, "/x"), "http://[::1]:8080/x");
        assert_eq!(cache_key("[::1]", 8080, "/x"), "http://[::1]:8080/x");
        assert_eq!(
            split_key("http://[::1]:8080/x"),
            Some(("[::1]", 8080, "/x"))
        );
    }

    #[test]
    fn split_round_trips() {
        let key = cache_key("a.test", 81, "/p?q=1:2");
        assert_eq!(split_key(&key), Some(("a.test", 81, "/p?q=1:2")));
        assert_eq!(split_key("https://a.test:443/"), None);
        assert_eq!(split_key("http://a.test/"), None);
    }
}
