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
//! |             | ... or stood in while it is revalidated (RFC 5861 §3)      | `webproxy; hit; fwd=stale`        |
//! | COLLAPSED   | another request's fetch was waited for and served (RFC 9211 §2.6) | `webproxy; fwd=miss; collapsed` |
//! | BYPASS      | the method is not cacheable; unsafe ones invalidate (§4.4) | `webproxy; fwd=method`            |
//!
//! A stored response may also answer part of a request: a byte range
//! (`caching/ranges.rs`, RFC 9110 §14) or a client's own conditional
//! (§4.3.2). Concurrent misses for one URI share one fetch
//! (`caching/collapse.rs`), and a `stale-while-revalidate` entry is checked
//! on a thread of its own (`caching/background.rs`); both store what they
//! learn through `caching/storing.rs`.
//!
//! No lock is held while talking to the network: the store hands out
//! `Arc`s to stored responses, and a response is only inserted once its body
//! has been read completely.

mod background;
mod collapse;
mod ranges;
mod report;
mod storing;

pub use report::CacheResult;

use std::sync::Arc;
use std::time::SystemTime;

use crate::body::Framing;
use crate::cache::control::RequestDirectives;
use crate::cache::freshness::{self, OriginFailure, Reuse};
use crate::cache::not_modified::validators_agree;
use crate::cache::{Cache, Capture, StoredResponse, conditional, invalidation, key, policy};
use crate::conn::{self, Conn};
use crate::dial::Connector;
use crate::error::HttpError;
use crate::forward::{self, Persist};
use crate::handler::{Handled, Handler, Request};
use crate::headers::Headers;
use crate::message::RequestHead;
use crate::relay::{self, Exchange, Outcome, RelayError};
use crate::stats::Stats;
use crate::uri::{self, AbsoluteUri};
use background::{Background, Job, Started};
use collapse::{Flights, Role};
use ranges::Answer;
use report::{Counts, Others};

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

/// One request on its way through the cache, with what every step needs.
struct Ask<'a> {
    cache: &'a Cache,
    request: &'a RequestHead,
    uri: &'a AbsoluteUri,
    key: String,
    directives: RequestDirectives,
    /// The request's connector, lent for this request only.
    upstream: &'a dyn Connector,
}

// ANCHOR: layer
/// Stage 3's handler: requests go through the cache, and CONNECT, which
/// the cache has nothing to say about, goes to the handler it wraps.
pub struct Caching<H> {
    cache: Arc<Cache>,
    inner: H,
    counts: Counts,
    /// Misses in flight that others may wait for.
    flights: Flights,
    /// Revalidations running after a stale response was served.
    background: Background,
}

impl<H: Handler> Caching<H> {
    pub fn new(cache: Cache, inner: H) -> Caching<H> {
        Caching {
            cache: Arc::new(cache),
            inner,
            counts: Counts::default(),
            flights: Flights::default(),
            background: Background::default(),
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
        let (result, note) = self.answer(conn, request, &target);
        // Errors say what the cache did too (RFC 9211): it went to the
        // origin, and the origin failed us.
        let result = result.map_err(|e| match e {
            RelayError::Http(e) => RelayError::Http(e.with_field("Cache-Status", note.fwd())),
            aborted => aborted,
        });
        self.counts.count(note, &result);
        Handled::Done {
            result,
            note: Some(note.note()),
        }
    }

    fn stats(&self, stats: &mut Stats) {
        self.inner.stats(stats);
        let others = Others {
            store: self.cache.stats(),
            collapse_waiting: self.flights.waiting(),
            background_started: self.background.started(),
        };
        self.counts.report(stats, others);
    }
}
// ANCHOR_END: layer

impl<H: Handler> Caching<H> {
    // ANCHOR: handle
    /// Answers one request through the cache.
    fn answer(
        &self,
        client: &mut Conn,
        request: &Request<'_>,
        uri: &AbsoluteUri,
    ) -> (Result<Outcome, RelayError>, CacheResult) {
        let head = request.head;
        let ask = Ask {
            cache: &self.cache,
            request: head,
            uri,
            key: key_of(uri),
            directives: RequestDirectives::from_headers(&head.headers),
            upstream: request.upstream,
        };
        if head.method != "GET" && head.method != "HEAD" {
            return (pass_through(&ask, client), CacheResult::Bypass);
        }
        if let Some(stored) = self.cache.lookup(&ask.key, &head.headers) {
            let now = self.cache.clock().now();
            match freshness::reuse(&stored, &ask.directives, now).reuse {
                Reuse::Fresh | Reuse::StaleAllowed => {
                    let result = serve_stored(client, head, &stored, now, "hit");
                    return (result, CacheResult::Hit);
                }
                // RFC 9111 §5.2.1.7: the client wants nothing from the origin.
                Reuse::MustValidate if ask.directives.only_if_cached => {}
                // RFC 5861 §3: answer at once, and ask the origin afterwards.
                Reuse::MustValidate if self.revalidate_later(&ask, &stored) => {
                    let result = serve_stored(client, head, &stored, now, "hit; fwd=stale");
                    return (result, CacheResult::Stale);
                }
                // Only GET is validated: a HEAD for a stale entry goes to the
                // origin as it is, below, and its answer updates the entry.
                Reuse::MustValidate if head.method == "GET" => {
                    return validate(&ask, client, stored);
                }
                Reuse::MustValidate => {}
            }
        }
        if ask.directives.only_if_cached {
            let e = HttpError::gateway_timeout("only-if-cached, and nothing fresh is stored");
            return (Err(e.into()), CacheResult::Miss);
        }
        self.miss(&ask, client)
    }
    // ANCHOR_END: handle

    // ANCHOR: revalidate_later
    /// Starts a background revalidation of `stored` if its
    /// `stale-while-revalidate` window allows serving it now (RFC 5861 §3),
    /// or finds one already running. False when the stale response may not
    /// be served, or when the background is full: then the request
    /// validates in the foreground.
    fn revalidate_later(&self, ask: &Ask<'_>, stored: &Arc<StoredResponse>) -> bool {
        let now = self.cache.clock().now();
        // The job stores what it learns, which a no-store request forbids.
        if ask.directives.no_store
            || !freshness::may_serve_stale_while_revalidate(stored, &ask.directives, now)
        {
            return false;
        }
        let mut request = ask.request.clone();
        request.method = "GET".into(); // a HEAD is served from the GET's entry
        let job = Job {
            cache: Arc::clone(&self.cache),
            key: ask.key.clone(),
            stored: Arc::clone(stored),
            request,
            uri: ask.uri.clone(),
            upstream: ask.upstream.detached(),
        };
        match self.background.start(job) {
            Started::Now | Started::Already => true,
            Started::Busy => false,
        }
    }
    // ANCHOR_END: revalidate_later

    // ANCHOR: miss
    /// Nothing usable is stored: fetch from the origin, unless a request for
    /// the same key is already doing so. Then wait for it, and serve what it
    /// stored; if it stored nothing we can use, go to the origin after all.
    fn miss(&self, ask: &Ask<'_>, client: &mut Conn) -> (Result<Outcome, RelayError>, CacheResult) {
        let fields = forward::request_fields(&ask.request.headers);
        // Only a request whose answer could serve the others leads: a GET
        // for the whole response, which may be stored.
        let may_lead = ask.request.method == "GET"
            && !ask.request.headers.contains("range")
            && !ask.directives.no_store;
        let flight = match self.flights.join(&ask.key, may_lead) {
            Role::Leader(lead) => {
                let result = fetch(ask, client, &fields, "miss");
                drop(lead); // stored (or not): the followers may look now
                return (result, CacheResult::Miss);
            }
            Role::Alone => return (fetch(ask, client, &fields, "miss"), CacheResult::Miss),
            Role::Follower(flight) => flight,
        };
        if self.flights.wait(&flight, collapse::WAIT)
            && let Some(stored) = self.cache.lookup(&ask.key, &ask.request.headers)
        {
            let now = self.cache.clock().now();
            let reuse = freshness::reuse(&stored, &ask.directives, now).reuse;
            if matches!(reuse, Reuse::Fresh | Reuse::StaleAllowed) {
                let result = serve_stored(client, ask.request, &stored, now, "fwd=miss; collapsed");
                return (result, CacheResult::Collapsed);
            }
        }
        // Not stored, not for this request, or too slow: RFC 9211 §2.6
        // says `collapsed` is false when a new request had to be made.
        let result = fetch(ask, client, &fields, "miss; collapsed=?0");
        (result, CacheResult::Miss)
    }
    // ANCHOR_END: miss
}

// ANCHOR: pass_through
/// Relays a request the cache does not answer. A successful unsafe request
/// (POST, PUT, DELETE, ...) may have changed the resource, so what we stored
/// for it, and for the URIs its Location and Content-Location name on the
/// same origin, is thrown away (RFC 9111 §4.4).
fn pass_through(ask: &Ask<'_>, client: &mut Conn) -> Result<Outcome, RelayError> {
    let (request, cache) = (ask.request, ask.cache);
    let fields = forward::request_fields(&request.headers);
    let mut exchange = relay::send_request(client, request, ask.uri, &fields, ask.upstream)?;
    if invalidation::invalidates(&request.method, exchange.head.status) {
        for stale in invalidation::invalidation_keys(&ask.key, &exchange.head.headers) {
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
fn validate(
    ask: &Ask<'_>,
    client: &mut Conn,
    stored: Arc<StoredResponse>,
) -> (Result<Outcome, RelayError>, CacheResult) {
    let (cache, request) = (ask.cache, ask.request);
    // RFC 9211 §2.2 tells apart a validation the client asked for
    // (`no-cache`, `max-age=0`: the entry itself was still fresh) from one
    // the entry's age made necessary.
    let now = cache.clock().now();
    let fwd = match freshness::reuse(&stored, &RequestDirectives::default(), now).reuse {
        Reuse::Fresh => "request",
        _ => "stale",
    };
    // The client's conditionals and Range stay here: the cache answers
    // them from what the origin says about the stored response.
    let mut fields = policy::own_request_fields(&request.headers);
    let validators = conditional::validation_fields(&stored);
    let has_validator = !validators.is_empty();
    for f in &validators {
        fields.append(&f.name, f.value.clone());
    }

    let request_time = cache.clock().now();
    let mut exchange = match relay::send_request(client, request, ask.uri, &fields, ask.upstream) {
        Ok(exchange) => exchange,
        Err(e) if e.status == 502 || e.status == 504 => {
            return stale_or(ask, client, &stored, OriginFailure::Unreachable, e);
        }
        Err(e) => return (Err(e.into()), CacheResult::Miss),
    };
    let response_time = cache.clock().now();
    let head = &exchange.head;

    if head.status == 304 && has_validator {
        if validators_agree(&stored.headers, &head.headers) {
            let (key, directives) = (&ask.key, &ask.directives);
            let fresh = storing::confirm(
                cache,
                key,
                &stored,
                request,
                directives,
                &head.headers,
                request_time,
                response_time,
            );
            let status = format!("fwd={fwd}; fwd-status=304");
            let result = serve_stored(client, request, &fresh, response_time, &status);
            return (result, CacheResult::Revalidated);
        }
        // The 304 names another representation than ours: fetch it whole.
        drop(exchange);
        let fields = policy::own_request_fields(&request.headers);
        return (fetch(ask, client, &fields, fwd), CacheResult::Refreshed);
    }
    if let Some(failure) = OriginFailure::from_status(head.status)
        && freshness::may_serve_stale_on_error(&stored, &ask.directives, response_time, failure)
    {
        log::info!(
            "{}: origin answered {}, serving the stale copy",
            ask.key,
            head.status
        );
        let result = serve_stored(client, request, &stored, response_time, "hit; detail=stale");
        return (result, CacheResult::Stale);
    }
    let result = store_and_relay(ask, client, &mut exchange, request_time, fwd);
    (result, CacheResult::Refreshed)
}
// ANCHOR_END: validate

/// Serves `stored` in place of an origin that failed, or passes on the
/// error when that is not allowed.
fn stale_or(
    ask: &Ask<'_>,
    client: &mut Conn,
    stored: &StoredResponse,
    failure: OriginFailure,
    error: HttpError,
) -> (Result<Outcome, RelayError>, CacheResult) {
    let now = ask.cache.clock().now();
    if freshness::may_serve_stale_on_error(stored, &ask.directives, now, failure) {
        log::info!("{}: {error}; serving the stale copy", ask.request.target);
        let result = serve_stored(client, ask.request, stored, now, "hit; detail=stale");
        return (result, CacheResult::Stale);
    }
    (Err(error.into()), CacheResult::Miss)
}

/// Fetches from the origin and stores the answer when policy allows.
fn fetch(
    ask: &Ask<'_>,
    client: &mut Conn,
    fields: &Headers,
    fwd: &str,
) -> Result<Outcome, RelayError> {
    let request_time = ask.cache.clock().now();
    let mut exchange = relay::send_request(client, ask.request, ask.uri, fields, ask.upstream)?;
    store_and_relay(ask, client, &mut exchange, request_time, fwd)
}

// ANCHOR: store_and_relay
/// Relays a response to the client, keeping a copy on the way when it may be
/// stored. The copy is inserted only if the whole body arrived: a response
/// cut short by the origin is never stored (RFC 9111 §3.3), and one that
/// grows past the object limit stops being captured but is still relayed.
/// A 200 to a HEAD updates the stored GET response instead (§4.3.5).
fn store_and_relay(
    ask: &Ask<'_>,
    client: &mut Conn,
    exchange: &mut Exchange<'_>,
    request_time: SystemTime,
    fwd: &str,
) -> Result<Outcome, RelayError> {
    let (cache, request) = (ask.cache, ask.request);
    let response_time = cache.clock().now();
    let head = &exchange.head;
    if request.method == "HEAD" {
        let (key, directives) = (&ask.key, &ask.directives);
        storing::update_from_head(
            cache,
            key,
            request,
            directives,
            head,
            request_time,
            response_time,
        );
    }
    // `Cache-Status` goes out before the body, so its `stored` can only be
    // an intention: it holds if the body arrives whole and fits. A
    // Content-Length over the object limit settles it now, and then we
    // neither claim a copy nor start capturing one (RFC 9211 §2.7).
    let storable = storing::may_store(cache, request, &ask.directives, head);
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
        log::debug!(
            "{}: not stored: the body outgrew --max-object-size",
            ask.key
        );
    }
    if let Some(body) = capture.and_then(Capture::finish) {
        let (key, head) = (&ask.key, &exchange.head);
        storing::keep(cache, key, request, head, body, request_time, response_time);
    }
    Ok(outcome)
}
// ANCHOR_END: store_and_relay

// ANCHOR: serve_stored
/// Writes a stored response to the client, with its `Age` (RFC 9111 §4.2.3)
/// and `Cache-Status`. A client's own conditional request is answered with
/// 304 when the stored response matches it (§4.3.2); after that, a `Range`
/// gets its part of a stored 200 (RFC 9110 §14.2, §13.2.2).
fn serve_stored(
    client: &mut Conn,
    request: &RequestHead,
    stored: &StoredResponse,
    now: SystemTime,
    status_value: &str,
) -> Result<Outcome, RelayError> {
    let not_modified = conditional::client_gets_not_modified(&request.headers, stored);
    let without_body = |status, reason, fields| Answer {
        status,
        reason,
        fields,
        body: Vec::new(),
    };
    let mut answer = if not_modified {
        without_body(
            304,
            "Not Modified",
            conditional::not_modified_fields(stored),
        )
    } else if request.method == "HEAD" {
        // A HEAD response describes the body without sending it.
        let mut fields = stored.headers.clone();
        fields.set("Content-Length", stored.body.len().to_string());
        without_body(stored.status, &stored.reason, fields)
    } else {
        ranges::answer(&ranges::plan(&request.headers, stored), stored)
    };
    answer
        .fields
        .set("Age", freshness::age_header_value(stored, now).to_string());
    answer
        .fields
        .append("Cache-Status", format!("webproxy; {status_value}"));
    let framing = if not_modified || request.method == "HEAD" {
        Framing::Empty
    } else {
        Framing::Length(answer.len())
    };
    let persist = if request.wants_keep_alive() {
        Persist::KeepAlive
    } else {
        Persist::Close
    };
    let status = answer.status;
    let gone = |bytes, e: std::io::Error| RelayError::Aborted {
        status,
        bytes,
        why: format!("client went away: {e}"),
    };
    let head = forward::response_head(
        status,
        answer.reason,
        &answer.fields,
        framing,
        persist,
        request.minor_version,
    )
    .map_err(|e| gone(0, e))?;
    // Head and body together: one system call, one packet for a small hit.
    let pieces = std::iter::once(&head[..]).chain(answer.body.iter().map(|piece| &piece[..]));
    let mut bytes = 0;
    conn::write_pieces(client, pieces, &mut bytes).map_err(|e| gone(bytes, e))?;
    Ok(Outcome {
        status,
        bytes,
        persist,
    })
}
// ANCHOR_END: serve_stored
