//! Which responses the cache may store (RFC 9111 §3), and what of them.
//!
//! - Storing: [`storable`] says yes, or which rule says no.
//! - Storing the right fields (§3.1): [`headers_for_storage`].
//! - The fields of the cache's own requests to the origin:
//!   [`own_request_fields`].
//!
//! Which stored responses a request makes obsolete is in
//! [`super::invalidation`]; conditional requests, in [`super::conditional`].

use std::fmt;

use super::control::{RequestDirectives, ResponseDirectives};
use super::freshness::is_heuristically_cacheable;
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
}
