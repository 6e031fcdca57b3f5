//! Stage 3's request flow: the cache standing between client and origin.
//!
//! [`crate::cache`] knows what may be stored and when a stored response is
//! fresh; this module does the talking. For each request it decides among
//! the outcomes that RFC 9111 allows, and reports which one it took in a
//! `Cache-Status` field (RFC 9211) and in the access log:
//!
//! | log         | what happened                                              | Cache-Status                      |
//! |-------------|------------------------------------------------------------|-----------------------------------|
//! | HIT         | a stored response was fresh enough (§4.2)                   | `webproxy; hit`                   |
//! | MISS        | nothing usable was stored; the origin answered              | `webproxy; fwd=miss` (+ `stored`) |
//! | REVALIDATED | a stale response was confirmed by a 304 (§4.3.3, §4.3.4)    | `webproxy; fwd=stale; fwd-status=304` |
//! |             | ... or one the client asked us to check (`no-cache`)       | `webproxy; fwd=request; fwd-status=304` |
//! | REFRESHED   | a validation brought a new response, which replaced ours   | `webproxy; fwd=stale` (+ `stored`) |
//! | STALE       | the origin failed, and a stale response stood in (§4.2.4)  | `webproxy; hit; detail=stale`     |
//! | BYPASS      | the method is not cacheable; unsafe ones invalidate (§4.4) | `webproxy; fwd=method`            |
//!
//! No lock is held while talking to the network: the store hands out
//! `Arc`s to stored responses, and a response is only inserted once its body
//! has been read completely.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::body::{self, Framing};
use crate::cache::control::RequestDirectives;
use crate::cache::freshness::{self, OriginFailure, Reuse};
use crate::cache::{Cache, Capture, StoredResponse, key, policy};
use crate::conn::Conn;
use crate::error::HttpError;
use crate::forward::{self, Persist};
use crate::handler::{Handled, Handler, Request};
use crate::headers::Headers;
use crate::logging::Note;
use crate::message::RequestHead;
use crate::relay::{self, Connector, Exchange, Outcome, RelayError};
use crate::stats::{self, Stats, Value};
use crate::uri::{self, AbsoluteUri};

/// What the cache did with one request, for the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
    Revalidated,
    Stale,
    Bypass,
    Refreshed,
}

impl fmt::Display for CacheResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CacheResult {
    /// The word for the access log.
    pub fn as_str(&self) -> &'static str {
        match self {
            CacheResult::Hit => "HIT",
            CacheResult::Miss => "MISS",
            CacheResult::Revalidated => "REVALIDATED",
            CacheResult::Stale => "STALE",
            CacheResult::Bypass => "BYPASS",
            CacheResult::Refreshed => "REFRESHED",
        }
    }

    /// The access log's note: the word above, and squid's result code.
    pub fn note(&self) -> Note {
        let (squid, upstream) = match self {
            CacheResult::Hit => ("TCP_HIT", false),
            CacheResult::Miss | CacheResult::Bypass => ("TCP_MISS", true),
            CacheResult::Revalidated => ("TCP_REFRESH_UNMODIFIED", true),
            CacheResult::Stale => ("TCP_REFRESH_FAIL_OLD", true),
            CacheResult::Refreshed => ("TCP_REFRESH_MODIFIED", true),
        };
        Note::new(self.as_str(), squid, upstream)
    }

    /// The `Cache-Status` value for an error response that followed this
    /// outcome: the cache went to the origin (or could not), and why.
    pub fn fwd(&self) -> String {
        let why = match self {
            CacheResult::Bypass => "method",
            CacheResult::Revalidated | CacheResult::Stale | CacheResult::Refreshed => "stale",
            CacheResult::Hit | CacheResult::Miss => "miss",
        };
        format!("webproxy; fwd={why}")
    }
}

/// The request fields a client uses to ask "only if changed"; when we
/// validate a stored response we send our own instead (RFC 9111 §4.3.1).
const CONDITIONALS: &[&str] = &[
    "If-None-Match",
    "If-Modified-Since",
    "If-Match",
    "If-Unmodified-Since",
    "If-Range",
];

fn cache_status(value: &str) -> Headers {
    let mut h = Headers::new();
    h.append("Cache-Status", format!("webproxy; {value}"));
    h
}

/// The cache key of a target: the normalised absolute URI.
pub fn key_of(uri: &AbsoluteUri) -> String {
    key::cache_key(
        &uri.authority.host.to_string(),
        uri.authority.port,
        &uri.path_and_query,
    )
}

// ANCHOR: layer
/// Stage 3's handler: requests go through the cache, and CONNECT, which
/// the cache has nothing to say about, goes to the handler it wraps.
pub struct Caching<H> {
    cache: Arc<Cache>,
    inner: H,
    counts: Counts,
}

/// What the stats page shows of the cache's work: requests by outcome, and
/// bytes sent, in all and from stored responses.
#[derive(Default)]
struct Counts {
    by_result: [AtomicU64; 6],
    bytes: AtomicU64,
    bytes_from_cache: AtomicU64,
}

impl<H: Handler> Caching<H> {
    pub fn new(cache: Cache, inner: H) -> Caching<H> {
        Caching {
            cache: Arc::new(cache),
            inner,
            counts: Counts::default(),
        }
    }

    fn count(&self, note: CacheResult, result: &Result<Outcome, RelayError>) {
        let n = |r: CacheResult| r as usize;
        self.counts.by_result[n(note)].fetch_add(1, Ordering::Relaxed);
        let bytes = match result {
            Ok(outcome) => outcome.bytes,
            Err(RelayError::Aborted { bytes, .. }) => *bytes,
            Err(RelayError::Http(_)) => 0,
        };
        self.counts.bytes.fetch_add(bytes, Ordering::Relaxed);
        // A revalidated response's body came from the store too.
        if matches!(
            note,
            CacheResult::Hit | CacheResult::Stale | CacheResult::Revalidated
        ) {
            self.counts
                .bytes_from_cache
                .fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

impl<H: Handler> Handler for Caching<H> {
    fn admit(&self, peer: Option<std::net::SocketAddr>) -> Result<(), HttpError> {
        self.inner.admit(peer)
    }

    fn handle(&self, conn: &mut Conn, request: &Request<'_>) -> Handled {
        if request.head.method == "CONNECT" {
            return self.inner.handle(conn, request);
        }
        let target = match uri::proxy_target(request.head) {
            Ok(target) => target,
            Err(e) => return Handled::error(e),
        };
        let (result, note) = handle(&self.cache, conn, request.head, &target, request.upstream);
        // Errors say what the cache did too (RFC 9211): it went to the
        // origin, and the origin failed us.
        let result = result.map_err(|e| match e {
            RelayError::Http(e) => RelayError::Http(e.with_field("Cache-Status", note.fwd())),
            aborted => aborted,
        });
        self.count(note, &result);
        Handled::Done {
            result,
            note: Some(note.note()),
        }
    }

    fn stats(&self, stats: &mut Stats) {
        self.inner.stats(stats);
        let get = |r: CacheResult| self.counts.by_result[r as usize].load(Ordering::Relaxed);
        let hits = get(CacheResult::Hit) + get(CacheResult::Stale);
        let misses = get(CacheResult::Miss) + get(CacheResult::Refreshed);
        let lookups = hits + misses + get(CacheResult::Revalidated);
        let store = self.cache.stats();
        stats
            .section("cache")
            .row(
                "cache_hits",
                "hits (fresh or standing in)",
                Value::Count(hits),
            )
            .row(
                "cache_revalidated",
                "revalidated (304)",
                Value::Count(get(CacheResult::Revalidated)),
            )
            .row("cache_misses", "misses", Value::Count(misses))
            .row(
                "cache_bypassed",
                "not cacheable (method)",
                Value::Count(get(CacheResult::Bypass)),
            )
            .row(
                "cache_hit_ratio",
                "hit ratio, by requests",
                stats::ratio(hits, lookups),
            )
            .row(
                "cache_byte_hit_ratio",
                "hit ratio, by bytes",
                stats::ratio(
                    self.counts.bytes_from_cache.load(Ordering::Relaxed),
                    self.counts.bytes.load(Ordering::Relaxed),
                ),
            )
            .row(
                "cache_objects",
                "stored objects",
                Value::Count(store.entries as u64),
            )
            .row(
                "cache_bytes",
                "stored bytes",
                Value::Bytes(store.bytes as u64),
            )
            .row("cache_evictions", "evictions", Value::Count(store.evicted));
    }
}
// ANCHOR_END: layer

// ANCHOR: handle
/// Answers one request through the cache.
pub fn handle(
    cache: &Cache,
    client: &mut Conn,
    request: &RequestHead,
    uri: &AbsoluteUri,
    upstream: &dyn Connector,
) -> (Result<Outcome, RelayError>, CacheResult) {
    let key = key_of(uri);
    if request.method != "GET" && request.method != "HEAD" {
        return (
            pass_through(cache, client, request, uri, &key, upstream),
            CacheResult::Bypass,
        );
    }
    let directives = RequestDirectives::from_headers(&request.headers);
    if let Some(stored) = cache.lookup(&key, &request.headers) {
        let now = cache.clock().now();
        match freshness::reuse(&stored, &directives, now).reuse {
            Reuse::Fresh | Reuse::StaleAllowed => {
                let result = serve_stored(client, request, &stored, now, "hit");
                return (result, CacheResult::Hit);
            }
            // RFC 9111 §5.2.1.7: the client wants nothing from the origin.
            Reuse::MustValidate if directives.only_if_cached => {}
            // Only GET is validated: a HEAD for a stale entry goes to the
            // origin as it is, below.
            Reuse::MustValidate if request.method == "GET" => {
                return validate(
                    cache,
                    client,
                    request,
                    uri,
                    &key,
                    stored,
                    &directives,
                    upstream,
                );
            }
            Reuse::MustValidate => {}
        }
    }
    if directives.only_if_cached {
        let e = HttpError::gateway_timeout("only-if-cached, and nothing fresh is stored");
        return (Err(e.into()), CacheResult::Miss);
    }
    let fields = forward::request_fields(&request.headers);
    let result = fetch(
        cache,
        client,
        request,
        uri,
        &key,
        &fields,
        &directives,
        upstream,
        "miss",
    );
    (result, CacheResult::Miss)
}
// ANCHOR_END: handle

// ANCHOR: pass_through
/// Relays a request the cache does not answer. A successful unsafe request
/// (POST, PUT, DELETE, ...) may have changed the resource, so what we stored
/// for it, and for the URIs its Location and Content-Location name on the
/// same origin, is thrown away (RFC 9111 §4.4).
fn pass_through(
    cache: &Cache,
    client: &mut Conn,
    request: &RequestHead,
    uri: &AbsoluteUri,
    key: &str,
    upstream: &dyn Connector,
) -> Result<Outcome, RelayError> {
    let fields = forward::request_fields(&request.headers);
    let mut exchange = relay::send_request(client, request, uri, &fields, upstream)?;
    if policy::invalidates(&request.method, exchange.head.status) {
        for stale in policy::invalidation_keys(key, &exchange.head.headers) {
            cache.invalidate(&stale);
        }
    }
    let status = cache_status("fwd=method");
    relay::relay_response(client, request, &mut exchange, &status, true, |_| {})
}
// ANCHOR_END: pass_through

// ANCHOR: validate
/// Asks the origin whether a stale stored response is still good, with the
/// validators it came with (RFC 9111 §4.3.1). A 304 freshens it (§4.3.4);
/// anything else replaces it. When the origin cannot be reached, or answers
/// with a server error inside a `stale-if-error` window, the stale response
/// stands in if nothing forbids it (§4.2.4, RFC 5861 §4).
#[allow(clippy::too_many_arguments)]
fn validate(
    cache: &Cache,
    client: &mut Conn,
    request: &RequestHead,
    uri: &AbsoluteUri,
    key: &str,
    stored: Arc<StoredResponse>,
    directives: &RequestDirectives,
    upstream: &dyn Connector,
) -> (Result<Outcome, RelayError>, CacheResult) {
    // RFC 9211 §2.2 tells apart a validation the client asked for
    // (`no-cache`, `max-age=0`: the entry itself was still fresh) from one
    // the entry's age made necessary.
    let now = cache.clock().now();
    let fwd = match freshness::reuse(&stored, &RequestDirectives::default(), now).reuse {
        Reuse::Fresh => "request",
        _ => "stale",
    };
    let mut fields = without_conditionals(request);
    let validators = policy::validation_fields(&stored);
    let has_validator = !validators.is_empty();
    for f in &validators {
        fields.append(&f.name, f.value.clone());
    }

    let request_time = cache.clock().now();
    let mut exchange = match relay::send_request(client, request, uri, &fields, upstream) {
        Ok(exchange) => exchange,
        Err(e) if e.status == 502 || e.status == 504 => {
            return stale_or(
                cache,
                client,
                request,
                &stored,
                directives,
                OriginFailure::Unreachable,
                e,
            );
        }
        Err(e) => return (Err(e.into()), CacheResult::Miss),
    };
    let response_time = cache.clock().now();
    let head = &exchange.head;

    if head.status == 304 && has_validator {
        if let Some(fresh) = cache.freshen(key, &stored, &head.headers, request_time, response_time)
        {
            let status = format!("fwd={fwd}; fwd-status=304");
            let result = serve_stored(client, request, &fresh, response_time, &status);
            return (result, CacheResult::Revalidated);
        }
        // The 304 names another representation than ours: fetch it whole.
        let fields = without_conditionals(request);
        let result = fetch(
            cache, client, request, uri, key, &fields, directives, upstream, fwd,
        );
        return (result, CacheResult::Refreshed);
    }
    if let Some(failure) = OriginFailure::from_status(head.status)
        && freshness::may_serve_stale_on_error(&stored, directives, response_time, failure)
    {
        log::info!(
            "{key}: origin answered {}, serving the stale copy",
            head.status
        );
        let result = serve_stored(client, request, &stored, response_time, "hit; detail=stale");
        return (result, CacheResult::Stale);
    }
    let result = store_and_relay(
        cache,
        client,
        request,
        key,
        &mut exchange,
        directives,
        request_time,
        fwd,
    );
    (result, CacheResult::Refreshed)
}
// ANCHOR_END: validate

fn without_conditionals(request: &RequestHead) -> Headers {
    let mut fields = forward::request_fields(&request.headers);
    for name in CONDITIONALS {
        fields.remove(name);
    }
    fields
}

/// Serves `stored` in place of an origin that failed, or passes on the
/// error when that is not allowed.
fn stale_or(
    cache: &Cache,
    client: &mut Conn,
    request: &RequestHead,
    stored: &StoredResponse,
    directives: &RequestDirectives,
    failure: OriginFailure,
    error: HttpError,
) -> (Result<Outcome, RelayError>, CacheResult) {
    let now = cache.clock().now();
    if freshness::may_serve_stale_on_error(stored, directives, now, failure) {
        log::info!("{}: {error}; serving the stale copy", request.target);
        let result = serve_stored(client, request, stored, now, "hit; detail=stale");
        return (result, CacheResult::Stale);
    }
    (Err(error.into()), CacheResult::Miss)
}

/// Fetches from the origin and stores the answer when policy allows.
#[allow(clippy::too_many_arguments)]
fn fetch(
    cache: &Cache,
    client: &mut Conn,
    request: &RequestHead,
    uri: &AbsoluteUri,
    key: &str,
    fields: &Headers,
    directives: &RequestDirectives,
    upstream: &dyn Connector,
    fwd: &str,
) -> Result<Outcome, RelayError> {
    let request_time = cache.clock().now();
    let mut exchange = relay::send_request(client, request, uri, fields, upstream)?;
    store_and_relay(
        cache,
        client,
        request,
        key,
        &mut exchange,
        directives,
        request_time,
        fwd,
    )
}

// ANCHOR: store_and_relay
/// Relays a response to the client, keeping a copy on the way when it may be
/// stored. The copy is inserted only if the whole body arrived: a response
/// cut short by the origin is never stored (RFC 9111 §3.3), and one that
/// grows past the object limit stops being captured but is still relayed.
#[allow(clippy::too_many_arguments)]
fn store_and_relay(
    cache: &Cache,
    client: &mut Conn,
    request: &RequestHead,
    key: &str,
    exchange: &mut Exchange<'_>,
    directives: &RequestDirectives,
    request_time: SystemTime,
    fwd: &str,
) -> Result<Outcome, RelayError> {
    let response_time = cache.clock().now();
    let head = &exchange.head;
    // `Cache-Status` goes out before the body, so its `stored` can only be
    // an intention: it holds if the body arrives whole and fits. A
    // Content-Length over the object limit settles it now, and then we
    // neither claim a copy nor start capturing one (RFC 9211 §2.7).
    let too_large = matches!(
        body::response_framing(request.method == "HEAD", head),
        Ok(Framing::Length(n)) if n > cache.config().max_object_bytes as u64
    );
    // A body still under a transfer coding such as gzip is not the
    // representation: it cannot be served later with a Content-Length.
    let not_stored = if !body::other_transfer_codings(&head.headers).is_empty() {
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
    if let Some(why) = &not_stored {
        log::debug!("{key}: not stored: {why}");
    }
    let storable = not_stored.is_none();
    let mut capture = storable.then(|| Capture::new(cache.config().max_object_bytes));
    let status = cache_status(&if storable {
        format!("fwd={fwd}; stored")
    } else {
        format!("fwd={fwd}")
    });
    let outcome = relay::relay_response(client, request, exchange, &status, true, |data| {
        if let Some(capture) = capture.as_mut() {
            capture.push(data);
        }
    })?;
    if capture.as_ref().is_some_and(Capture::overflowed) {
        log::debug!("{key}: not stored: the body outgrew --max-object-size");
    }
    if let Some(body) = capture.and_then(Capture::finish) {
        let head = &exchange.head;
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
    Ok(outcome)
}
// ANCHOR_END: store_and_relay

// ANCHOR: serve_stored
/// Writes a stored response to the client, with its `Age` (RFC 9111 §4.2.3)
/// and `Cache-Status`. A client's own conditional request is answered with
/// 304 when the stored response matches it (§4.3.2).
fn serve_stored(
    client: &mut Conn,
    request: &RequestHead,
    stored: &StoredResponse,
    now: SystemTime,
    status_value: &str,
) -> Result<Outcome, RelayError> {
    let not_modified = policy::client_gets_not_modified(&request.headers, stored);
    let mut fields = if not_modified {
        policy::not_modified_fields(stored)
    } else {
        stored.headers.clone()
    };
    fields.set("Age", freshness::age_header_value(stored, now).to_string());
    fields.append("Cache-Status", format!("webproxy; {status_value}"));
    let (status, reason, framing, body): (u16, &str, Framing, &[u8]) = if not_modified {
        (304, "Not Modified", Framing::Empty, &[])
    } else if request.method == "HEAD" {
        // A HEAD response describes the body without sending it.
        fields.set("Content-Length", stored.body.len().to_string());
        (stored.status, &stored.reason, Framing::Empty, &[])
    } else {
        let length = stored.body.len() as u64;
        (
            stored.status,
            &stored.reason,
            Framing::Length(length),
            &stored.body,
        )
    };
    let persist = if request.wants_keep_alive() {
        Persist::KeepAlive
    } else {
        Persist::Close
    };
    let gone = |bytes, e: std::io::Error| RelayError::Aborted {
        status,
        bytes,
        why: format!("client went away: {e}"),
    };
    let head_bytes = forward::write_response_head(
        client,
        status,
        reason,
        &fields,
        framing,
        persist,
        request.minor_version,
    )
    .map_err(|e| gone(0, e))?;
    client.write_all(body).map_err(|e| gone(head_bytes, e))?;
    Ok(Outcome {
        status,
        bytes: head_bytes + body.len() as u64,
        persist,
    })
}
// ANCHOR_END: serve_stored
