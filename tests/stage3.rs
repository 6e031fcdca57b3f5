//! Stage 3 on the wire: the shared cache (RFC 9111) and its `Cache-Status`
//! (RFC 9211).
//!
//! Each test starts its own origin and a stage 3 proxy whose cache runs on a
//! `ManualClock`. The origin stamps its `Date` from the same clock, so a
//! test makes a response stale by moving the clock, never by sleeping.
//! What is checked is what a user sees: status, body bytes, `Age` and
//! `Cache-Status`, and what the origin received and how often. A hit is a
//! request the origin never saw.

mod common;

// More of the chapter, one file each in tests/stage3/, on the bench below.
#[path = "stage3/background.rs"]
mod background;
#[path = "stage3/collapsed.rs"]
mod collapsed;
#[path = "stage3/ranges.rs"]
mod ranges;
#[path = "stage3/rules.rs"]
mod rules;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use common::client::Framing;
use common::*;
use webproxy::cache::{CacheConfig, Clock, ManualClock};

const HIT: &str = "webproxy; hit";
const MISS_STORED: &str = "webproxy; fwd=miss; stored";
const MISS: &str = "webproxy; fwd=miss";
const REVALIDATED: &str = "webproxy; fwd=stale; fwd-status=304";
/// A validation the client asked for (`no-cache`, `max-age=0`) of an entry
/// that was still fresh (RFC 9211 §2.2).
const CLIENT_REVALIDATED: &str = "webproxy; fwd=request; fwd-status=304";
const STALE_SERVED: &str = "webproxy; hit; detail=stale";

/// A stage 3 proxy, the hand-moved clock its cache reads, and one client
/// connection for the test's requests.
///
/// The cache stores a response after its last byte has gone to the client,
/// so a request on a *new* connection could overtake the store of the one
/// before. Requests on one connection are served one after the other, so
/// the bench sends them all on one (and opens a new one only after the
/// proxy closed the last).
struct Bench {
    clock: Arc<ManualClock>,
    proxy: SocketAddr,
    client: Mutex<Option<Client>>,
}

impl Bench {
    fn new() -> Bench {
        Bench::with(CacheConfig::default())
    }

    fn with(config: CacheConfig) -> Bench {
        Bench::with_server(config, test_config())
    }

    /// A bench whose proxy runs with `server` (more worker threads, say).
    fn with_server(config: CacheConfig, server: webproxy::server::Config) -> Bench {
        let clock = manual_clock();
        let cache = test_cache(config, &clock);
        let proxy = start_stage3(server, cache);
        Bench {
            clock,
            proxy,
            client: Mutex::new(None),
        }
    }

    /// Moves the clock `secs` seconds forward.
    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// An HTTP date `offset` seconds from the clock's present.
    fn date(&self, offset: i64) -> String {
        let now = self.clock.now();
        let t = if offset >= 0 {
            now + Duration::from_secs(offset as u64)
        } else {
            now - Duration::from_secs(offset.unsigned_abs())
        };
        http_date(t)
    }

    /// An origin answering with `handler`, every reply stamped with a
    /// `Date` from the bench's clock, as a real origin's would be.
    fn origin(
        &self,
        handler: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    ) -> Origin {
        let clock = Arc::clone(&self.clock);
        Origin::start(move |request| handler(request).header("Date", &http_date(clock.now())))
    }

    /// An origin that always gives (a copy of) `reply`, dated.
    fn fixed(&self, reply: Reply) -> Origin {
        self.origin(move |_| reply.clone())
    }

    fn get(&self, url: &str) -> Response {
        self.request(&Req::get(url))
    }

    fn request(&self, req: &Req) -> Response {
        let mut slot = self.client.lock().unwrap();
        let client = slot.get_or_insert_with(|| Client::connect(self.proxy));
        let response = client.request(req);
        if response.says_close() {
            // Read to the end: the proxy has finished with the exchange
            // (stored or not) once it closes.
            client.read_to_close();
            *slot = None;
        }
        response
    }
}

fn cache_status(r: &Response) -> &str {
    r.header("Cache-Status").unwrap_or("(no Cache-Status)")
}

/// An origin whose reply the test can change between requests.
struct Script(Arc<Mutex<Reply>>);

impl Script {
    fn new(bench: &Bench, first: Reply) -> (Origin, Script) {
        let current = Arc::new(Mutex::new(first));
        let shared = Arc::clone(&current);
        let origin = bench.origin(move |_| shared.lock().unwrap().clone());
        (origin, Script(current))
    }

    fn set(&self, reply: Reply) {
        *self.0.lock().unwrap() = reply;
    }
}

// ---------------------------------------------------------------- the basics

#[test]
fn test_dates_are_imf_fixdates() {
    // The formatter the test origins use, checked against RFC 9110's own
    // example and against the proxy's parser.
    let example = UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(http_date(example), "Sun, 06 Nov 1994 08:49:37 GMT");
    let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(http_date(leap_day), "Tue, 29 Feb 2000 00:00:00 GMT");
    for secs in [0, 1_700_000_000, 4_102_444_799, 1_709_210_096] {
        let t = UNIX_EPOCH + Duration::from_secs(secs);
        let parsed = webproxy::cache::freshness::parse_date(http_date(t).as_bytes());
        assert_eq!(parsed, Some(t), "{}", http_date(t));
    }
}

// ANCHOR: second_fetch_is_a_hit
#[test]
fn the_second_fetch_is_a_hit() {
    let bench = Bench::new();
    let body = binary(100 * KIB, 31);
    let origin = bench.fixed(Reply::ok(body.clone()).header("Cache-Control", "max-age=60"));
    let url = origin.url("/logo.png");

    let first = bench.get(&url);
    assert_eq!(first.status, 200);
    assert_eq!(cache_status(&first), MISS_STORED);
    assert!(first.body == body);
    assert_eq!(origin.hits(), 1);

    bench.advance(5);
    let second = bench.get(&url);
    assert_eq!(second.status, 200);
    assert_eq!(cache_status(&second), HIT);
    assert_eq!(second.header("Age"), Some("5"));
    assert_eq!(second.header("Content-Length"), Some("102400"));
    assert!(
        second.body == body,
        "the stored body differs from the original"
    );
    assert_eq!(origin.hits(), 1, "a hit must not reach the origin");
}
// ANCHOR_END: second_fetch_is_a_hit

#[test]
fn a_hit_keeps_the_origin_fields_and_the_connection() {
    let bench = Bench::new();
    let origin = bench.fixed(
        Reply::ok("<p>hi</p>")
            .header("Cache-Control", "max-age=60")
            .header("Content-Type", "text/html")
            .header("ETag", "\"v1\"")
            .header("X-Custom", "kept"),
    );
    let url = origin.url("/page");
    let mut client = Client::connect(bench.proxy);
    let first = client.request(&Req::get(&url));
    let second = client.request(&Req::get(&url));
    assert_eq!(cache_status(&second), HIT);
    assert!(!second.says_close(), "a hit keeps the connection open");
    for name in ["Content-Type", "ETag", "X-Custom", "Cache-Control", "Date"] {
        assert_eq!(second.header(name), first.header(name), "{name}");
    }
    assert_eq!(second.header_all("Via"), vec!["1.1 webproxy"]);
    assert_eq!(second.body, b"<p>hi</p>");
    // The connection still carries a third request.
    let third = client.request(&Req::get(&url));
    assert_eq!((third.status, cache_status(&third)), (200, HIT));
    assert_eq!(origin.hits(), 1);
}

#[test]
fn a_chunked_response_is_stored_and_served_with_a_length() {
    let bench = Bench::new();
    let body = text(20_000);
    let chunks = vec![
        body[..7].to_vec(),
        body[7..12_000].to_vec(),
        body[12_000..].to_vec(),
    ];
    let origin = bench.fixed(Reply::chunked(chunks).header("Cache-Control", "max-age=60"));
    let url = origin.url("/chunked");
    let first = bench.get(&url);
    assert_eq!(first.framing, Framing::Chunked);
    assert_eq!(cache_status(&first), MISS_STORED);
    let second = bench.get(&url);
    assert_eq!(cache_status(&second), HIT);
    assert_eq!(second.framing, Framing::Length(20_000));
    assert!(second.body == body);
    assert!(!second.has_header("Transfer-Encoding"));
    assert_eq!(origin.hits(), 1);
}

#[test]
fn query_strings_are_stored_separately() {
    let bench = Bench::new();
    let origin = bench.origin(|request| {
        Reply::ok(format!("you asked for {}", request.target)).header("Cache-Control", "max-age=60")
    });
    for _ in 0..2 {
        for q in ["/search?a", "/search?b", "/search"] {
            let response = bench.get(&origin.url(q));
            assert_eq!(response.body_text(), format!("you asked for {q}"));
        }
    }
    assert_eq!(origin.hits_for("/search?a"), 1);
    assert_eq!(origin.hits_for("/search?b"), 1);
    assert_eq!(origin.hits(), 3);
}

#[test]
fn head_is_answered_from_a_stored_get() {
    let bench = Bench::new();
    let body = binary(5000, 2);
    let origin = bench.fixed(Reply::ok(body.clone()).header("Cache-Control", "max-age=60"));
    let url = origin.url("/file.bin");
    assert_eq!(bench.get(&url).body, body);

    let head = bench.request(&Req::new("HEAD", &url));
    assert_eq!(head.status, 200);
    assert_eq!(cache_status(&head), HIT);
    assert_eq!(head.header("Content-Length"), Some("5000"));
    assert!(head.body.is_empty());
    // No stray body bytes: the next response on the connection parses.
    let get = bench.get(&url);
    assert!(get.body == body);
    assert_eq!(origin.hits(), 1);
}

// ---------------------------------------------------------- what is stored

#[test]
fn no_store_and_private_responses_are_not_stored() {
    for cc in [
        "no-store",
        "private",
        "max-age=60, no-store",
        "private, max-age=60",
    ] {
        let bench = Bench::new();
        let origin = bench.fixed(Reply::ok("for you only").header("Cache-Control", cc));
        let url = origin.url("/account");
        for _ in 0..2 {
            let response = bench.get(&url);
            assert_eq!(response.body, b"for you only");
            assert_eq!(cache_status(&response), MISS, "{cc}");
        }
        assert_eq!(origin.hits(), 2, "{cc}: stored although it must not be");
    }
}

#[test]
fn a_request_with_no_store_is_not_stored() {
    let bench = Bench::new();
    let origin = bench.fixed(Reply::ok("x").header("Cache-Control", "max-age=60"));
    let url = origin.url("/r");
    let req = Req::get(&url).header("Cache-Control", "no-store");
    assert_eq!(cache_status(&bench.request(&req)), MISS);
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
    assert_eq!(origin.hits(), 2);
}

#[test]
fn responses_to_authorized_requests_are_not_shared() {
    let bench = Bench::new();
    let origin = bench.fixed(Reply::ok("alice's inbox").header("Cache-Control", "max-age=60"));
    let url = origin.url("/inbox");
    let alice = Req::get(&url).header("Authorization", "Basic YWxpY2U6c2VjcmV0");
    assert_eq!(cache_status(&bench.request(&alice)), MISS);
    assert_eq!(cache_status(&bench.request(&alice)), MISS);
    // Nobody else gets Alice's answer from the cache either.
    let anyone = bench.get(&url);
    assert_eq!(cache_status(&anyone), MISS_STORED);
    assert_eq!(origin.hits(), 3);
}

#[test]
fn authorized_responses_marked_shareable_are_stored() {
    // RFC 9111 §3.5: public, s-maxage or must-revalidate let a shared cache
    // keep the answer to an authorized request.
    for cc in [
        "public, max-age=60",
        "s-maxage=60",
        "max-age=60, must-revalidate",
    ] {
        let bench = Bench::new();
        let origin = bench.fixed(Reply::ok("team page").header("Cache-Control", cc));
        let url = origin.url("/team");
        let req = Req::get(&url).header("Authorization", "Bearer t0ken");
        assert_eq!(cache_status(&bench.request(&req)), MISS_STORED, "{cc}");
        let again = bench.request(&req);
        assert_eq!(
            (cache_status(&again), &again.body[..]),
            (HIT, &b"team page"[..])
        );
        assert_eq!(origin.hits(), 1, "{cc}");
    }
}

#[test]
fn errors_without_freshness_are_not_stored_but_a_404_is() {
    let bench = Bench::new();
    let origin = Origin::routes([
        ("/boom", Reply::with_status(500, "server error")),
        (
            "/gone",
            Reply::with_status(404, "not here").header("Cache-Control", "max-age=60"),
        ),
    ]);
    for _ in 0..2 {
        assert_eq!(bench.get(&origin.url("/boom")).status, 500);
        assert_eq!(bench.get(&origin.url("/gone")).status, 404);
    }
    assert_eq!(origin.hits_for("/boom"), 2);
    assert_eq!(origin.hits_for("/gone"), 1);
}

#[test]
fn a_truncated_response_is_never_stored() {
    let bench = Bench::new();
    let body = text(10_000);
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let full = body.clone();
    let origin = bench.origin(move |_| {
        let reply = if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            // Content-Length: 10000, then 4000 bytes and a close.
            Reply::truncated(10_000, full[..4000].to_vec())
        } else {
            Reply::ok(full.clone())
        };
        reply.header("Cache-Control", "max-age=60")
    });
    let url = origin.url("/cut");
    let mut client = Client::connect(bench.proxy);
    client.send(Req::get(&url).to_bytes());
    let cut = client.try_read_response("GET").expect("a response head");
    assert!(!cut.complete, "the client must see the body end early");
    assert!(cut.body.len() <= 4000);

    let second = bench.get(&url);
    assert!(second.body == body);
    assert_eq!(cache_status(&second), MISS_STORED);
    assert_eq!(
        origin.hits(),
        2,
        "the truncated copy was served from the cache"
    );
    assert_eq!(cache_status(&bench.get(&url)), HIT);
}

#[test]
fn a_chunked_response_cut_off_is_never_stored() {
    let bench = Bench::new();
    let origin = Origin::fixed(Reply::raw(
        &b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n\
           5\r\nhello\r\n6\r\n world\r\n"[..],
    ));
    let url = origin.url("/chunks");
    for _ in 0..2 {
        let mut client = Client::connect(bench.proxy);
        client.send(Req::get(&url).to_bytes());
        let cut = client.try_read_response("GET").expect("a response head");
        assert!(!cut.complete, "the last chunk never came");
        assert_eq!(cut.body, b"hello world");
    }
    assert_eq!(origin.hits(), 2);
}

// ANCHOR: too_large
#[test]
fn an_object_over_the_size_limit_is_relayed_whole_and_not_stored() {
    let bench = Bench::with(CacheConfig {
        max_object_bytes: 16 * KIB,
        ..CacheConfig::default()
    });
    let body = binary(100 * KIB, 9);
    let chunks: Vec<Vec<u8>> = body.chunks(7000).map(<[u8]>::to_vec).collect();
    let origin = Origin::routes([
        (
            "/big",
            Reply::ok(body.clone()).header("Cache-Control", "max-age=60"),
        ),
        (
            "/big-chunked",
            Reply::chunked(chunks).header("Cache-Control", "max-age=60"),
        ),
    ]);
    for path in ["/big", "/big-chunked"] {
        for _ in 0..2 {
            let response = bench.get(&origin.url(path));
            assert_eq!(response.status, 200);
            assert!(response.body == body, "{path}: the body changed");
        }
        assert_eq!(origin.hits_for(path), 2, "{path} was stored");
    }
    // With a Content-Length the proxy knows before relaying that it will
    // not keep a copy, and does not claim to.
    assert_eq!(cache_status(&bench.get(&origin.url("/big"))), MISS);
}
// ANCHOR_END: too_large

// ------------------------------------------------------------- freshness

// ANCHOR: max_age_expiry
#[test]
fn max_age_expiry_leads_to_a_refetch() {
    let bench = Bench::new();
    let version = Arc::new(AtomicUsize::new(0));
    let v = Arc::clone(&version);
    let origin = bench.origin(move |_| {
        let n = v.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::ok(format!("version {n}")).header("Cache-Control", "max-age=60")
    });
    let url = origin.url("/news");
    assert_eq!(bench.get(&url).body_text(), "version 1");

    // Fresh while age < 60 (RFC 9111 §4.2: lifetime > current_age).
    bench.advance(59);
    let cached = bench.get(&url);
    assert_eq!(cache_status(&cached), HIT);
    assert_eq!(cached.header("Age"), Some("59"));
    assert_eq!(cached.body_text(), "version 1");

    // At age 60 it is stale; no validator, so the origin sends it again.
    bench.advance(1);
    let refetched = bench.get(&url);
    assert_eq!(refetched.body_text(), "version 2");
    assert_eq!(cache_status(&refetched), "webproxy; fwd=stale; stored");
    assert_eq!(origin.hits(), 2);

    // And the new copy is fresh from now on.
    let again = bench.get(&url);
    assert_eq!(
        (cache_status(&again), again.body_text()),
        (HIT, "version 2".into())
    );
}
// ANCHOR_END: max_age_expiry

#[test]
fn s_maxage_wins_over_max_age_in_a_shared_cache() {
    let bench = Bench::new();
    let origin = bench.fixed(Reply::ok("x").header("Cache-Control", "max-age=600, s-maxage=10"));
    let url = origin.url("/s");
    bench.get(&url);
    bench.advance(9);
    assert_eq!(cache_status(&bench.get(&url)), HIT);
    bench.advance(1);
    bench.get(&url);
    assert_eq!(origin.hits(), 2);
}

#[test]
fn expires_minus_date_is_the_lifetime() {
    let bench = Bench::new();
    let clock = Arc::clone(&bench.clock);
    let origin = bench.origin(move |_| {
        let expires = http_date(clock.now() + Duration::from_secs(100));
        Reply::ok("until expiry").header("Expires", &expires)
    });
    let url = origin.url("/e");
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
    bench.advance(99);
    let fresh = bench.get(&url);
    assert_eq!(
        (cache_status(&fresh), fresh.header("Age")),
        (HIT, Some("99"))
    );
    bench.advance(1);
    assert_eq!(
        cache_status(&bench.get(&url)),
        "webproxy; fwd=stale; stored"
    );
    assert_eq!(origin.hits(), 2);
}

#[test]
fn expires_is_counted_from_the_origins_date() {
    // The origin's clock runs 1000 s fast. Its Expires says "120 s after my
    // Date", and that is the lifetime; comparing Expires with our own clock
    // would keep the response for 1120 s.
    let bench = Bench::new();
    let (date, expires) = (bench.date(1000), bench.date(1120));
    let origin = Origin::fixed(
        Reply::ok("fast clock")
            .header("Date", &date)
            .header("Expires", &expires),
    );
    let url = origin.url("/skew");
    bench.get(&url);
    bench.advance(119);
    assert_eq!(cache_status(&bench.get(&url)), HIT);
    bench.advance(1);
    assert_ne!(cache_status(&bench.get(&url)), HIT);
    assert_eq!(origin.hits(), 2);
}

#[test]
fn an_invalid_expires_means_already_stale() {
    for expires in ["0", "-1", "tomorrow"] {
        let bench = Bench::new();
        let origin = bench.fixed(Reply::ok("x").header("Expires", expires));
        let url = origin.url("/bad-expires");
        // Stored (Expires is explicit freshness information), but stale.
        assert_eq!(cache_status(&bench.get(&url)), MISS_STORED, "{expires}");
        assert_eq!(
            cache_status(&bench.get(&url)),
            "webproxy; fwd=stale; stored",
            "{expires}"
        );
        assert_eq!(origin.hits(), 2, "Expires: {expires} was treated as fresh");
    }
}

#[test]
fn last_modified_gives_a_heuristic_lifetime_of_a_tenth() {
    // Changed 1000 s before its Date: fresh for 10% of that, 100 s.
    let bench = Bench::new();
    let modified = bench.date(-1000);
    let origin = bench.fixed(Reply::ok("static file").header("Last-Modified", &modified));
    let url = origin.url("/static.css");
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
    bench.advance(99);
    assert_eq!(cache_status(&bench.get(&url)), HIT);
    bench.advance(1);
    let response = bench.get(&url);
    assert_ne!(cache_status(&response), HIT);
    assert_eq!(origin.hits(), 2);
}

#[test]
fn a_response_without_freshness_information_is_refetched_next_time() {
    let bench = Bench::new();
    let origin = bench.fixed(Reply::ok("no caching hints at all"));
    let url = origin.url("/plain");
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
    // Stored with a lifetime of 0: the next request goes to the origin,
    // even at the same instant.
    let second = bench.get(&url);
    assert_eq!(cache_status(&second), "webproxy; fwd=stale; stored");
    assert_eq!(second.body, b"no caching hints at all");
    assert_eq!(origin.hits(), 2);
}

#[test]
fn age_from_an_upstream_cache_counts() {
    // Another cache already held the response for 50 of its 60 seconds.
    let bench = Bench::new();
    let origin = bench.fixed(
        Reply::ok("x")
            .header("Cache-Control", "max-age=60")
            .header("Age", "50"),
    );
    let url = origin.url("/aged");
    bench.get(&url);
    bench.advance(9);
    let hit = bench.get(&url);
    assert_eq!((cache_status(&hit), hit.header("Age")), (HIT, Some("59")));
    bench.advance(1);
    bench.get(&url);
    assert_eq!(origin.hits(), 2);
}

// ------------------------------------------------------------ validation

/// An origin whose response carries the ETag `etag`, and which answers a
/// request with `If-None-Match: etag` with 304 Not Modified.
fn validating_origin(bench: &Bench, etag: &'static str) -> Origin {
    bench.origin(move |request| {
        let reply = if request.header("If-None-Match") == Some(etag) {
            Reply::with_status(304, "")
        } else {
            Reply::ok(text(3000))
        };
        reply
            .header("Cache-Control", "max-age=60")
            .header("ETag", etag)
    })
}

// ANCHOR: revalidation
#[test]
fn a_stale_entry_is_revalidated_with_its_etag() {
    let bench = Bench::new();
    let origin = validating_origin(&bench, "\"v1\"");
    let url = origin.url("/doc");
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
    assert!(!origin.last_request().has_header("If-None-Match"));

    bench.advance(61);
    let revalidated = bench.get(&url);
    // The origin was asked "changed since \"v1\"?" and said no (304) ...
    assert_eq!(
        origin.last_request().header("If-None-Match"),
        Some("\"v1\"")
    );
    // ... and the client got the whole stored response, not the 304.
    assert_eq!(revalidated.status, 200);
    assert!(revalidated.body == text(3000));
    assert_eq!(cache_status(&revalidated), REVALIDATED);
    assert_eq!(revalidated.header("Age"), Some("0"));

    // The 304 made the entry fresh again for another 60 s.
    bench.advance(30);
    assert_eq!(cache_status(&bench.get(&url)), HIT);
    assert_eq!(origin.hits(), 2);
}
// ANCHOR_END: revalidation

#[test]
fn a_stale_entry_is_revalidated_with_its_last_modified() {
    let bench = Bench::new();
    let modified = bench.date(-86_400);
    let lm = modified.clone();
    let origin = bench.origin(move |request| {
        let reply = if request.header("If-Modified-Since") == Some(lm.as_str()) {
            Reply::with_status(304, "")
        } else {
            Reply::ok("dated body")
        };
        reply
            .header("Cache-Control", "max-age=60")
            .header("Last-Modified", &lm)
    });
    let url = origin.url("/dated");
    bench.get(&url);
    bench.advance(61);
    let response = bench.get(&url);
    assert_eq!(
        origin.last_request().header("If-Modified-Since"),
        Some(modified.as_str())
    );
    assert_eq!(
        (response.status, &response.body[..]),
        (200, &b"dated body"[..])
    );
    assert_eq!(cache_status(&response), REVALIDATED);
}

#[test]
fn a_304_updates_the_stored_fields() {
    let bench = Bench::new();
    let (origin, script) = Script::new(
        &bench,
        Reply::ok("body")
            .header("Cache-Control", "max-age=60")
            .header("ETag", "\"e\"")
            .header("X-Version", "1"),
    );
    let url = origin.url("/meta");
    bench.get(&url);
    script.set(
        Reply::with_status(304, "")
            .header("Cache-Control", "max-age=600")
            .header("ETag", "\"e\"")
            .header("X-Version", "2"),
    );
    bench.advance(61);
    let response = bench.get(&url);
    assert_eq!(cache_status(&response), REVALIDATED);
    assert_eq!(response.header("X-Version"), Some("2"));
    assert_eq!(response.body, b"body");
    // The new max-age=600 applies: still fresh 500 s later.
    bench.advance(500);
    let later = bench.get(&url);
    assert_eq!(
        (cache_status(&later), later.header("X-Version")),
        (HIT, Some("2"))
    );
    assert_eq!(origin.hits(), 2);
}

#[test]
fn a_200_on_revalidation_replaces_the_stored_body() {
    let bench = Bench::new();
    let (origin, script) = Script::new(
        &bench,
        Reply::ok("old body")
            .header("Cache-Control", "max-age=60")
            .header("ETag", "\"old\""),
    );
    let url = origin.url("/changing");
    bench.get(&url);
    script.set(
        Reply::ok("new body")
            .header("Cache-Control", "max-age=60")
            .header("ETag", "\"new\""),
    );
    bench.advance(61);
    let changed = bench.get(&url);
    assert_eq!(
        origin.last_request().header("If-None-Match"),
        Some("\"old\"")
    );
    assert_eq!(changed.body, b"new body");
    assert_eq!(cache_status(&changed), "webproxy; fwd=stale; stored");
    let hit = bench.get(&url);
    assert_eq!((cache_status(&hit), &hit.body[..]), (HIT, &b"new body"[..]));
    assert_eq!(hit.header("ETag"), Some("\"new\""));
    assert_eq!(origin.hits(), 2);
}

#[test]
fn a_client_conditional_on_a_fresh_entry_gets_304_from_the_cache() {
    let bench = Bench::new();
    let origin = validating_origin(&bench, "\"v7\"");
    let url = origin.url("/doc");
    bench.get(&url);

    let not_modified = bench.request(&Req::get(&url).header("If-None-Match", "\"v7\""));
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("ETag"), Some("\"v7\""));
    assert_eq!(cache_status(&not_modified), HIT);
    // Weak comparison (RFC 9110 §13.1.2) and lists work too.
    let weak = bench.request(&Req::get(&url).header("If-None-Match", "\"x\", W/\"v7\""));
    assert_eq!(weak.status, 304);
    // Another tag: the full stored response.
    let other = bench.request(&Req::get(&url).header("If-None-Match", "\"v6\""));
    assert_eq!(other.status, 200);
    assert!(other.body == text(3000));
    assert_eq!(origin.hits(), 1, "the origin was asked");
}

#[test]
fn a_client_conditional_on_a_stale_entry_is_answered_after_validation() {
    let bench = Bench::new();
    let origin = validating_origin(&bench, "\"v2\"");
    let url = origin.url("/doc");
    bench.get(&url);
    bench.advance(61);
    // The proxy puts the client's question aside, validates the stale entry
    // with its own validator, then answers the client from the refreshed
    // entry: the client's tag matches, so a 304.
    let response = bench.request(&Req::get(&url).header("If-None-Match", "\"v2\""));
    assert_eq!(
        origin.last_request().header("If-None-Match"),
        Some("\"v2\"")
    );
    assert_eq!(response.status, 304);
    assert_eq!(cache_status(&response), REVALIDATED);
    assert_eq!(origin.hits(), 2);
}

// ------------------------------------------------------------------ Vary

#[test]
fn vary_keeps_one_variant_per_header_value() {
    let bench = Bench::new();
    let origin = bench.origin(|request| {
        let body = match request.header("Accept-Language") {
            Some("fr") => "bonjour",
            Some("de") => "hallo",
            _ => "hello",
        };
        Reply::ok(body)
            .header("Cache-Control", "max-age=60")
            .header("Vary", "Accept-Language")
    });
    let url = origin.url("/greeting");
    let in_lang = |lang: Option<&str>| {
        let mut req = Req::get(&url);
        if let Some(lang) = lang {
            req = req.header("Accept-Language", lang);
        }
        bench.request(&req)
    };
    for (lang, expected) in [
        (Some("fr"), "bonjour"),
        (Some("de"), "hallo"),
        (None, "hello"),
    ] {
        let first = in_lang(lang);
        assert_eq!(
            (first.body_text(), cache_status(&first)),
            (expected.into(), MISS_STORED)
        );
    }
    assert_eq!(origin.hits(), 3);
    for (lang, expected) in [
        (Some("de"), "hallo"),
        (None, "hello"),
        (Some("fr"), "bonjour"),
    ] {
        let again = in_lang(lang);
        assert_eq!(again.body_text(), expected, "{lang:?} got another variant");
        assert_eq!(cache_status(&again), HIT);
    }
    assert_eq!(origin.hits(), 3);
    // A value not seen before is a miss, not the nearest variant.
    assert_eq!(in_lang(Some("fr-CA")).body_text(), "hello");
    assert_eq!(origin.hits(), 4);
}

#[test]
fn vary_star_is_never_served_from_the_cache() {
    let bench = Bench::new();
    let origin = bench.fixed(
        Reply::ok("depends on everything")
            .header("Cache-Control", "max-age=60")
            .header("Vary", "*"),
    );
    let url = origin.url("/star");
    for _ in 0..3 {
        let response = bench.get(&url);
        assert_eq!(response.body, b"depends on everything");
        assert_eq!(cache_status(&response), MISS);
    }
    assert_eq!(origin.hits(), 3);
}

// ---------------------------------------------------------- invalidation

#[test]
fn a_post_invalidates_what_was_stored_for_its_uri() {
    let bench = Bench::new();
    let origin = bench.origin(|request| match request.method.as_str() {
        "GET" => {
            Reply::ok(format!("list {}", request.target)).header("Cache-Control", "max-age=600")
        }
        _ => Reply::with_status(201, "created"),
    });
    let url = origin.url("/items");
    bench.get(&url);
    assert_eq!(cache_status(&bench.get(&url)), HIT);

    let post = bench.request(&Req::new("POST", &url).body("name=new"));
    assert_eq!(post.status, 201);
    assert_eq!(cache_status(&post), "webproxy; fwd=method");
    let after = bench.get(&url);
    assert_eq!(cache_status(&after), MISS_STORED);
    assert_eq!(origin.hits_for("/items"), 3);

    // DELETE too.
    assert_eq!(bench.request(&Req::new("DELETE", &url)).status, 201);
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
}

#[test]
fn a_failed_post_does_not_invalidate() {
    let bench = Bench::new();
    let origin = bench.origin(|request| match request.method.as_str() {
        "GET" => Reply::ok("list").header("Cache-Control", "max-age=600"),
        _ => Reply::with_status(400, "no"),
    });
    let url = origin.url("/items");
    bench.get(&url);
    assert_eq!(bench.request(&Req::new("POST", &url).body("x")).status, 400);
    assert_eq!(cache_status(&bench.get(&url)), HIT);
}

#[test]
fn location_on_the_same_origin_is_invalidated_but_not_on_another() {
    let bench = Bench::new();
    let other = bench.fixed(Reply::ok("elsewhere").header("Cache-Control", "max-age=600"));
    let other_url = other.url("/thing");
    let here = bench.origin({
        let other_url = other_url.clone();
        move |request| match (request.method.as_str(), request.path()) {
            ("GET", _) => Reply::ok("a thing").header("Cache-Control", "max-age=600"),
            (_, "/here") => Reply::with_status(201, "").header("Location", "/thing"),
            (_, _) => Reply::with_status(201, "").header("Location", &other_url),
        }
    });
    let thing = here.url("/thing");
    bench.get(&thing);
    bench.get(&other_url);

    // A POST to /elsewhere names another origin's URI: §4.4 forbids
    // invalidating it (or any site could empty any other's entries).
    bench.request(&Req::new("POST", &here.url("/elsewhere")).body("x"));
    assert_eq!(cache_status(&bench.get(&other_url)), HIT);
    assert_eq!(cache_status(&bench.get(&thing)), HIT);

    // A POST to /here answers with Location: /thing on the same origin.
    bench.request(&Req::new("POST", &here.url("/here")).body("x"));
    assert_eq!(cache_status(&bench.get(&thing)), MISS_STORED);
    assert_eq!(here.hits_for("/thing"), 2);
    assert_eq!(other.hits(), 1);
}

// ----------------------------------------------------- request directives

#[test]
fn a_client_no_cache_forces_validation() {
    for (name, value) in [("Cache-Control", "no-cache"), ("Pragma", "no-cache")] {
        let bench = Bench::new();
        let origin = validating_origin(&bench, "\"nc\"");
        let url = origin.url("/doc");
        bench.get(&url);
        let response = bench.request(&Req::get(&url).header(name, value));
        assert_eq!(
            origin.hits(),
            2,
            "{name}: {value} was answered from the cache"
        );
        assert_eq!(
            origin.last_request().header("If-None-Match"),
            Some("\"nc\"")
        );
        assert_eq!(response.status, 200);
        assert_eq!(cache_status(&response), CLIENT_REVALIDATED);
    }
}

#[test]
fn a_client_max_age_zero_forces_validation() {
    // What a browser sends when the user presses reload.
    let bench = Bench::new();
    let origin = validating_origin(&bench, "\"r\"");
    let url = origin.url("/doc");
    bench.get(&url);
    let response = bench.request(&Req::get(&url).header("Cache-Control", "max-age=0"));
    assert_eq!(cache_status(&response), CLIENT_REVALIDATED);
    assert_eq!(origin.hits(), 2);
    // A larger max-age is satisfied by a young enough entry.
    bench.advance(10);
    let response = bench.request(&Req::get(&url).header("Cache-Control", "max-age=30"));
    assert_eq!(cache_status(&response), HIT);
}

#[test]
fn only_if_cached_never_reaches_the_origin() {
    let bench = Bench::new();
    let origin = bench.fixed(Reply::ok("x").header("Cache-Control", "max-age=60"));
    let url = origin.url("/maybe");
    let only = Req::get(&url).header("Cache-Control", "only-if-cached");
    let refused = bench.request(&only);
    assert_eq!(refused.status, 504);
    // The proxy's own error says what the cache did, like every response.
    assert_eq!(cache_status(&refused), "webproxy; fwd=miss");
    assert_eq!(origin.hits(), 0);

    bench.get(&url);
    let hit = bench.request(&only);
    assert_eq!((hit.status, cache_status(&hit)), (200, HIT));
    // Stale now: still 504, still no origin contact.
    bench.advance(61);
    assert_eq!(bench.request(&only).status, 504);
    assert_eq!(origin.hits(), 1);
}

#[test]
fn max_stale_accepts_a_stale_entry() {
    let bench = Bench::new();
    let origin = bench.fixed(Reply::ok("a bit old").header("Cache-Control", "max-age=60"));
    let url = origin.url("/old");
    bench.get(&url);
    bench.advance(70); // 10 s stale
    let ok = bench.request(&Req::get(&url).header("Cache-Control", "max-stale=20"));
    assert_eq!((ok.status, cache_status(&ok)), (200, HIT));
    assert_eq!(ok.header("Age"), Some("70"));
    let any = bench.request(&Req::get(&url).header("Cache-Control", "max-stale"));
    assert_eq!(cache_status(&any), HIT);
    assert_eq!(origin.hits(), 1);
    // Too stale for max-stale=5: the origin is asked.
    bench.request(&Req::get(&url).header("Cache-Control", "max-stale=5"));
    assert_eq!(origin.hits(), 2);
}

#[test]
fn max_stale_does_not_override_must_revalidate() {
    let bench = Bench::new();
    let origin =
        bench.fixed(Reply::ok("strict").header("Cache-Control", "max-age=60, must-revalidate"));
    let url = origin.url("/strict");
    bench.get(&url);
    bench.advance(70);
    bench.request(&Req::get(&url).header("Cache-Control", "max-stale"));
    assert_eq!(origin.hits(), 2);
}

// ------------------------------------------------------------ origin down

// ANCHOR: stale_when_down
#[test]
fn a_stale_entry_stands_in_when_the_origin_is_down() {
    let bench = Bench::new();
    let origin = bench.fixed(Reply::ok(text(2000)).header("Cache-Control", "max-age=60"));
    let url = origin.url("/status");
    bench.get(&url);
    bench.advance(3600);
    drop(origin); // nothing listens on its port any more

    let response = bench.get(&url);
    assert_eq!(response.status, 200);
    assert!(response.body == text(2000));
    assert_eq!(cache_status(&response), STALE_SERVED);
    assert_eq!(response.header("Age"), Some("3600"));
}
// ANCHOR_END: stale_when_down

#[test]
fn a_stale_entry_stands_in_when_the_origin_times_out() {
    let bench = Bench::new();
    let (origin, script) = Script::new(
        &bench,
        Reply::ok("cached").header("Cache-Control", "max-age=60"),
    );
    let url = origin.url("/slow");
    bench.get(&url);
    bench.advance(120);
    script.set(Reply::silent());
    let response = bench.get(&url);
    assert_eq!((response.status, &response.body[..]), (200, &b"cached"[..]));
    assert_eq!(cache_status(&response), STALE_SERVED);
    assert_eq!(origin.hits(), 2, "the origin was tried first");
}

#[test]
fn must_revalidate_means_an_error_when_the_origin_is_down() {
    let bench = Bench::new();
    let (origin, script) = Script::new(
        &bench,
        Reply::ok("must be checked").header("Cache-Control", "max-age=60, must-revalidate"),
    );
    let url = origin.url("/checked");
    bench.get(&url);
    bench.advance(120);
    // The origin accepts the request and never answers: 504.
    script.set(Reply::silent());
    let timed_out = bench.get(&url);
    assert_eq!(timed_out.status, 504);
    assert_ne!(timed_out.body, b"must be checked");
    // Nothing listens any more: 502.
    drop(origin);
    let refused = bench.get(&url);
    assert_eq!(refused.status, 502);
    assert_ne!(refused.body, b"must be checked");
}

#[test]
fn an_origin_error_is_passed_on_without_stale_if_error() {
    let bench = Bench::new();
    let (origin, script) = Script::new(
        &bench,
        Reply::ok("ok").header("Cache-Control", "max-age=60"),
    );
    let url = origin.url("/flaky");
    bench.get(&url);
    bench.advance(120);
    script.set(Reply::with_status(503, "busy"));
    let response = bench.get(&url);
    // An origin that answers is not "disconnected" (§4.2.4): its 503 stands.
    assert_eq!((response.status, &response.body[..]), (503, &b"busy"[..]));
    assert_eq!(origin.hits(), 2);
}

#[test]
fn stale_if_error_serves_the_stale_copy_inside_its_window() {
    let bench = Bench::new();
    let (origin, script) = Script::new(
        &bench,
        Reply::ok("last good").header("Cache-Control", "max-age=60, stale-if-error=100"),
    );
    let url = origin.url("/sie");
    bench.get(&url);
    bench.advance(160); // 100 s stale: the last second of the window
    for status in [500, 503] {
        script.set(Reply::with_status(status, "broken"));
        let inside = bench.get(&url);
        assert_eq!((inside.status, &inside.body[..]), (200, &b"last good"[..]));
        assert_eq!(cache_status(&inside), STALE_SERVED);
    }
    bench.advance(1); // 101 s stale: outside
    let outside = bench.get(&url);
    assert_eq!((outside.status, &outside.body[..]), (503, &b"broken"[..]));
    assert_eq!(origin.hits(), 4);
}

// ------------------------------------------------------ the store itself

// ANCHOR: lru_on_the_wire
#[test]
fn the_least_recently_used_entry_is_evicted_first() {
    // Room for two 10 kB entries (plus their heads), not three.
    let bench = Bench::with(CacheConfig {
        max_bytes: 25_000,
        max_object_bytes: 12_000,
        dir: None,
    });
    let origin = bench.origin(|request| {
        Reply::ok(vec![request.path().as_bytes()[1]; 10_000]).header("Cache-Control", "max-age=600")
    });
    let status = |path: &str| cache_status(&bench.get(&origin.url(path))).to_string();
    assert_eq!(status("/a"), MISS_STORED);
    assert_eq!(status("/b"), MISS_STORED);
    assert_eq!(status("/a"), HIT); // a is now more recently used than b
    assert_eq!(status("/c"), MISS_STORED); // evicts b
    assert_eq!(status("/a"), HIT);
    assert_eq!(status("/c"), HIT);
    assert_eq!(status("/b"), MISS_STORED);
    assert_eq!(origin.hits_for("/a"), 1);
    assert_eq!(origin.hits_for("/b"), 2);
}
// ANCHOR_END: lru_on_the_wire

#[test]
fn many_readers_of_one_hot_entry_are_served_from_one_fetch() {
    let bench = Bench::new();
    let body = binary(256 * KIB, 77);
    let origin = bench.fixed(Reply::ok(body.clone()).header("Cache-Control", "max-age=600"));
    let url = origin.url("/hot");
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
    assert_eq!(cache_status(&bench.get(&url)), HIT);

    let proxy = bench.proxy;
    let readers: Vec<_> = (0..32)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || {
                let mut client = Client::connect(proxy);
                (0..3)
                    .map(|_| client.request(&Req::get(&url)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for reader in readers {
        for response in reader.join().expect("a reader panicked") {
            assert_eq!(response.status, 200);
            assert_eq!(cache_status(&response), HIT);
            assert!(response.body == body, "a reader got a different body");
        }
    }
    assert_eq!(origin.hits(), 1);
}

// ------------------------------------------------- the stage 3 binary

fn stage3() -> &'static str {
    env!("CARGO_BIN_EXE_stage3")
}

#[test]
fn stage3_binary_smoke_test() {
    let origin = Origin::fixed(
        Reply::ok("from the real binary")
            .header("Cache-Control", "max-age=3600")
            .header("ETag", "\"smoke\""),
    );
    let (running, log) = RunningBinary::start_logged(stage3(), &["--port", "0", "--threads", "2"]);
    let url = origin.url("/smoke");
    let mut client = Client::connect(running.addr);
    let first = client.request(&Req::get(&url));
    assert_eq!((first.status, cache_status(&first)), (200, MISS_STORED));
    let second = client.request(&Req::get(&url));
    assert_eq!((second.status, cache_status(&second)), (200, HIT));
    assert_eq!(second.body, b"from the real binary");
    assert_eq!(origin.hits(), 1);
    let wait = Duration::from_secs(5);
    assert!(log.wait_for(&["/smoke", " 200 ", "MISS"], wait).is_some());
    assert!(log.wait_for(&["/smoke", " 200 ", "HIT"], wait).is_some());
}

#[test]
fn the_access_log_says_revalidated() {
    // max-age=0: stored, and validated on every use; the real clock is fine.
    let origin = Origin::start(|request| {
        let reply = if request.header("If-None-Match") == Some("\"r1\"") {
            Reply::with_status(304, "")
        } else {
            Reply::ok("validate me")
        };
        reply
            .header("Cache-Control", "max-age=0")
            .header("ETag", "\"r1\"")
    });
    let (running, log) = RunningBinary::start_logged(stage3(), &["--port", "0"]);
    let url = origin.url("/every-time");
    // One connection: its requests are served in order, so the second
    // cannot overtake the storing of the first.
    let mut client = Client::connect(running.addr);
    assert_eq!(cache_status(&client.request(&Req::get(&url))), MISS_STORED);
    let second = client.request(&Req::get(&url));
    assert_eq!(second.body, b"validate me");
    assert_eq!(cache_status(&second), REVALIDATED);
    let line = log.wait_for(&["/every-time", "REVALIDATED"], Duration::from_secs(5));
    assert!(line.is_some(), "no REVALIDATED line in {:?}", log.lines());
}

/// Fetches `paths` through a fresh stage 3 binary on `dir`, waits until the
/// cache directory holds `files` entries, and stops the binary.
fn run_and_stop(dir: &CacheDir, origin: &Origin, paths: &[&str], expect: &str, files: usize) {
    let running = RunningBinary::start(stage3(), &["--port", "0", "--cache-dir", dir.to_str()]);
    let mut client = Client::connect(running.addr);
    for path in paths {
        let response = client.request(&Req::get(&origin.url(path)));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_text(), format!("body of {path}"));
        assert_eq!(cache_status(&response), expect, "{path}");
    }
    // The file is written just after the response is sent.
    let written = eventually(Duration::from_secs(5), || dir.entry_files().len() == files);
    assert!(written, "files in the cache dir: {:?}", dir.entry_files());
    drop(running);
}

fn disk_origin() -> Origin {
    Origin::start(|request| {
        Reply::ok(format!("body of {}", request.path())).header("Cache-Control", "max-age=3600")
    })
}

// ANCHOR: cache_dir_restart
#[test]
fn the_cache_dir_survives_a_restart() {
    let dir = CacheDir::new("restart");
    let origin = disk_origin();
    run_and_stop(&dir, &origin, &["/kept"], MISS_STORED, 1);
    // A new process, the same directory: the entry is loaded at start.
    run_and_stop(&dir, &origin, &["/kept"], HIT, 1);
    assert_eq!(
        origin.hits(),
        1,
        "the restarted proxy asked the origin again"
    );
}
// ANCHOR_END: cache_dir_restart

#[test]
fn corrupt_cache_files_are_ignored() {
    let dir = CacheDir::new("corrupt");
    let origin = disk_origin();
    let paths = ["/flipped", "/truncated", "/intact"];
    run_and_stop(&dir, &origin, &paths, MISS_STORED, 3);

    for file in dir.entry_files() {
        let mut bytes = std::fs::read(&file).unwrap();
        if let Some(at) = find(&bytes, b"body of /flipped") {
            // One bit of the stored body: the file still parses, and only
            // its checksum tells that "Body of /flipped" is not what the
            // origin sent.
            bytes[at] ^= 0x20;
        } else if find(&bytes, b"/truncated").is_some() {
            let half = bytes.len() / 2;
            bytes.truncate(half);
        } else {
            continue;
        }
        std::fs::write(&file, bytes).unwrap();
    }
    // The damaged entries are refetched (and stored again), the intact one
    // is still a hit, and the proxy keeps serving.
    let running = RunningBinary::start(stage3(), &["--port", "0", "--cache-dir", dir.to_str()]);
    let mut client = Client::connect(running.addr);
    for (path, expect) in [
        ("/flipped", MISS_STORED),
        ("/truncated", MISS_STORED),
        ("/intact", HIT),
    ] {
        let response = client.request(&Req::get(&origin.url(path)));
        assert_eq!(response.body_text(), format!("body of {path}"));
        assert_eq!(cache_status(&response), expect, "{path}");
    }
    for path in paths {
        assert_eq!(
            cache_status(&client.request(&Req::get(&origin.url(path)))),
            HIT
        );
    }
    assert_eq!(origin.hits_for("/flipped"), 2);
    assert_eq!(origin.hits_for("/truncated"), 2);
    assert_eq!(origin.hits_for("/intact"), 1);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn the_stats_page_shows_the_hit_ratio() {
    let bench = Bench::new();
    let origin = bench.fixed(Reply::ok(text(1000)).header("Cache-Control", "max-age=60"));
    let url = origin.url("/counted");
    for _ in 0..4 {
        assert_eq!(bench.get(&url).status, 200);
    }
    // On the same connection, so the last request has been counted.
    let stats = bench.get(&format!("http://{}/stats.json", bench.proxy));
    let text = stats.body_text();
    assert!(text.contains("\"cache_hits\": 3"), "{text}");
    assert!(text.contains("\"cache_misses\": 1"), "{text}");
    assert!(text.contains("\"cache_hit_ratio\": 0.7500"), "{text}");
    assert!(text.contains("\"cache_objects\": 1"), "{text}");
    assert_eq!(origin.hits(), 1);
}
