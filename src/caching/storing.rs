//! What the cache keeps from an exchange with the origin: a new response,
//! or the news that a stored one is still good.
//!
//! Two callers need the same answers: the request flow in
//! [`crate::caching`], which relays to a client while it keeps a copy, and
//! a background revalidation ([`super::background`]), which has no client.
//! So the decisions live here, apart from both:
//!
//! - [`may_store`]: RFC 9111 §3 ([`policy::storable`]) plus our own limits;
//! - [`keep`]: the complete response as it goes into the store (§3.1, §3.3);
//! - [`confirm`]: a 304 (§4.3.4) or a HEAD response (§4.3.5) updates a
//!   stored response, unless the request said `no-store` (§5.2.1.5) or the
//!   update made it a response we may not keep;
//! - [`update_from_head`]: §4.3.5 for a HEAD relayed to the origin.

use std::sync::Arc;
use std::time::SystemTime;

use crate::body::{self, Framing};
use crate::cache::control::RequestDirectives;
use crate::cache::not_modified::{freshened, head_agrees};
use crate::cache::{Cache, StoredResponse, policy};
use crate::headers::Headers;
use crate::message::{RequestHead, ResponseHead};

/// May the response with `head`, to `request`, be stored?
pub fn may_store(
    cache: &Cache,
    request: &RequestHead,
    directives: &RequestDirectives,
    head: &ResponseHead,
) -> bool {
    // A Content-Length over the object limit settles it before the body.
    let too_large = matches!(
        body::response_framing(request.method == "HEAD", head),
        Ok(Framing::Length(n)) if n > cache.config().max_object_bytes as u64
    );
    // A body still under a transfer coding such as gzip is not the
    // representation: it cannot be served later with a Content-Length.
    let why_not = if request.method != "GET" {
        Some(policy::NotStored::Method.to_string())
    } else if !body::other_transfer_codings(&head.headers).is_empty() {
        Some("the body is under a transfer coding".to_string())
    } else if directives.no_store {
        Some(policy::NotStored::RequestNoStore.to_string())
    } else if too_large {
        Some("Content-Length is over --max-object-size".to_string())
    } else {
        let (method, status) = (&request.method, head.status);
        policy::storable(method, &request.headers, status, &head.headers)
            .err()
            .map(|why| why.to_string())
    };
    if let Some(why) = &why_not {
        // RUST_LOG=debug says why, so that "why is this never a hit?" has
        // an answer.
        log::debug!("{}: not stored: {why}", request.target);
    }
    why_not.is_none()
}

/// Stores a response whose whole `body` arrived (§3.3).
pub fn keep(
    cache: &Cache,
    key: &str,
    request: &RequestHead,
    head: &ResponseHead,
    body: Vec<u8>,
    request_time: SystemTime,
    response_time: SystemTime,
) {
    let mut headers = policy::headers_for_storage(&head.headers);
    // The body is stored de-chunked; its length is set when it is served.
    headers.remove("Content-Length");
    // Date is what age is measured from: a response without one gets the
    // time we received it (RFC 9110 §6.6.1).
    if !headers.contains("Date") {
        headers.append("Date", httpdate::fmt_http_date(response_time));
    }
    let stored = StoredResponse::new(
        head.status,
        &head.reason,
        headers,
        body,
        &request.headers,
        request_time,
        response_time,
    );
    if cache.insert(key, stored) {
        log::debug!("{key}: stored");
    } else {
        log::debug!("{key}: not stored: larger than --max-object-size");
    }
}

// ANCHOR: confirm
/// `stored` as updated by a response that confirmed it (`validated`: the
/// fields of a 304 or of a HEAD's 200), for this request to be served
/// from. The store gets the update too, unless:
///
/// - the request said `no-store`: nothing of this exchange may be kept
///   (§5.2.1.5);
/// - the update made the response one we may not store at all (a
///   `no-store`, `private` or `Set-Cookie` arriving with the 304): then
///   the old copy goes too, since the origin has just disowned it;
/// - the request carried credentials the updated response does not allow
///   us to share (§3.5): what came back is this client's, and the stored
///   copy stays as it was for the others.
#[allow(clippy::too_many_arguments)]
pub fn confirm(
    cache: &Cache,
    key: &str,
    stored: &Arc<StoredResponse>,
    request: &RequestHead,
    directives: &RequestDirectives,
    validated: &Headers,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Arc<StoredResponse> {
    let updated = freshened(stored, validated, request_time, response_time);
    if directives.no_store {
        return Arc::new(updated);
    }
    let (status, fields) = (updated.status, &updated.headers);
    if let Err(why) = policy::storable("GET", &Headers::new(), status, fields) {
        log::info!("{key}: no longer stored after validation: {why}");
        cache.discard(key, stored);
        return Arc::new(updated);
    }
    if policy::storable("GET", &request.headers, status, fields).is_err() {
        return Arc::new(updated);
    }
    cache.replace(key, stored, updated)
}
// ANCHOR_END: confirm

// ANCHOR: update_from_head
/// §4.3.5: a 200 to a HEAD request that went to the origin updates the
/// stored GET response it could have been answered from, as a 304 would,
/// when its validators and length agree with it; when they do not, the
/// stored response is out of date and is dropped.
pub fn update_from_head(
    cache: &Cache,
    key: &str,
    request: &RequestHead,
    directives: &RequestDirectives,
    head: &ResponseHead,
    request_time: SystemTime,
    response_time: SystemTime,
) {
    if head.status != 200 || directives.no_store {
        return;
    }
    let Some(stored) = cache.lookup(key, &request.headers) else {
        return;
    };
    if head_agrees(&stored, &head.headers) {
        let headers = &head.headers;
        confirm(
            cache,
            key,
            &stored,
            request,
            directives,
            headers,
            request_time,
            response_time,
        );
    } else if cache.discard(key, &stored) {
        log::info!("{key}: a HEAD response shows the stored copy out of date");
    }
}
// ANCHOR_END: update_from_head

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CacheConfig, ManualClock};
    use std::time::{Duration, UNIX_EPOCH};

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in lines {
            h.append(n, *v);
        }
        h
    }

    /// A cache holding one fresh response under `KEY`, and that response.
    fn one_entry() -> (Cache, Arc<StoredResponse>) {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cache = Cache::new(CacheConfig::default(), Arc::new(ManualClock::new(t))).unwrap();
        let fields = headers(&[("Cache-Control", "max-age=60"), ("ETag", "\"e\"")]);
        let stored = StoredResponse::new(200, "OK", fields, b"x".to_vec(), &Headers::new(), t, t);
        cache.insert(KEY, stored);
        let stored = cache.lookup(KEY, &Headers::new()).unwrap();
        (cache, stored)
    }

    const KEY: &str = "http://a.test:80/";

    fn request(lines: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            target: "/".into(),
            minor_version: 1,
            headers: headers(lines),
        }
    }

    fn confirm_with(cache: &Cache, stored: &Arc<StoredResponse>, req: &RequestHead, v: &Headers) {
        let directives = RequestDirectives::from_headers(&req.headers);
        let t = stored.response_time + Duration::from_secs(100);
        let served = confirm(cache, KEY, stored, req, &directives, v, t, t);
        assert_eq!(served.response_time, t, "this request gets the update");
    }

    #[test]
    fn what_a_confirmation_leaves_in_the_store() {
        let update = headers(&[("ETag", "\"e\""), ("X-New", "1")]);
        // Plain: the store gets the update.
        let (cache, stored) = one_entry();
        confirm_with(&cache, &stored, &request(&[]), &update);
        let now = cache.lookup(KEY, &Headers::new()).unwrap();
        assert_eq!(now.headers.get_str("X-New"), Some("1"));
        // no-store, or credentials: the stored copy stays as it was.
        for lines in [
            [("Cache-Control", "no-store")],
            [("Authorization", "Basic dTpw")],
        ] {
            let (cache, stored) = one_entry();
            confirm_with(&cache, &stored, &request(&lines), &update);
            let now = cache.lookup(KEY, &Headers::new()).unwrap();
            assert!(Arc::ptr_eq(&now, &stored), "{lines:?}");
        }
        // A cookie arriving with the update: the stored copy goes.
        let (cache, stored) = one_entry();
        let cookie = headers(&[("ETag", "\"e\""), ("Set-Cookie", "s=1")]);
        confirm_with(&cache, &stored, &request(&[]), &cookie);
        assert!(cache.lookup(KEY, &Headers::new()).is_none());
    }
}
