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
    request.method == "GET"
        && body::other_transfer_codings(&head.headers).is_empty()
        && !directives.no_store
        && !too_large
        && policy::storable(
            &request.method,
            &request.headers,
            head.status,
            &head.headers,
        )
        .is_ok()
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
    cache.insert(key, stored);
}

// ANCHOR: confirm
/// `stored` as updated by a response that confirmed it (`validated`: the
/// fields of a 304 or of a HEAD's 200), for this request to be served
/// from. The store gets the update too, with three exceptions: the request
/// said `no-store`, so nothing of this exchange may be kept (§5.2.1.5); or
/// the update made the response one we may not store at all (a `no-store`,
/// `private` or `Set-Cookie` arriving with the 304), and then the old copy
/// goes too, since the origin has just disowned it.
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
    match policy::storable("GET", &request.headers, updated.status, &updated.headers) {
        Ok(()) => cache.replace(key, stored, updated),
        Err(why) => {
            log::info!("{key}: no longer stored after validation: {why}");
            cache.discard(key, stored);
            Arc::new(updated)
        }
    }
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
