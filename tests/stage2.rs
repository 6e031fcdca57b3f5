//! Stage 2 on the wire: every method, request bodies, persistent and
//! pipelined connections, the connection limit and the thread pool.
//!
//! Every test starts its own origin and its own proxy on free ports, talks
//! to the proxy with raw bytes, and checks what a user would see (status,
//! headers, body bytes, whether the connection stays open) and what the
//! origin received.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use common::client::Framing;
use common::*;
use webproxy::dial::Timeouts;
use webproxy::server::Config;

fn proxy() -> SocketAddr {
    start_stage2(test_config())
}

fn proxy_with(threads: usize, max_connections: usize, timeouts: Timeouts) -> SocketAddr {
    start_stage2(Config {
        threads,
        max_connections,
        timeouts,
        ..test_config()
    })
}

/// An origin that answers every request with what it saw, so a test can
/// check the exchange from both ends.
fn echo_origin() -> Origin {
    Origin::start(|request| {
        let mut body = format!(
            "{} {} {}\n",
            request.method,
            request.target,
            request.body.len()
        )
        .into_bytes();
        body.extend_from_slice(&request.body);
        Reply::ok(body)
    })
}

fn echo_of(method: &str, target: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} {}\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

#[test]
fn every_method_is_relayed_with_its_body() {
    let origin = echo_origin();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let cases: [(&str, Option<&[u8]>); 5] = [
        ("POST", Some(b"name=value&x=1")),
        ("PUT", Some(b"\x00\x01binary\xff\r\n")),
        ("PATCH", Some(b"{\"op\":\"replace\"}")),
        ("DELETE", None),
        ("OPTIONS", None),
    ];
    for (i, (method, body)) in cases.into_iter().enumerate() {
        let target = format!("/m/{i}?x=y");
        let mut req = Req::new(method, &origin.url(&target));
        if let Some(body) = body {
            req = req.body(body);
        }
        // All on one persistent connection.
        let response = client.request(&req);
        assert_eq!(response.status, 200, "{method}");
        assert!(!response.says_close(), "{method} closed the connection");
        assert_eq!(response.body, echo_of(method, &target, body.unwrap_or(b"")));

        let seen = origin.last_request();
        assert_eq!(seen.request_line(), format!("{method} {target} HTTP/1.1"));
        assert_eq!(seen.body, body.unwrap_or(b""), "{method}");
        assert_eq!(seen.header_all("Via"), vec!["1.1 webproxy"]);
        // The upstream connection is kept for the next request.
        assert!(seen.header_all("Connection").is_empty(), "{method}");
    }
    assert_eq!(origin.hits(), 5);
}

#[test]
fn upstream_connections_are_kept_between_requests() {
    let origin = echo_origin();
    let proxy = proxy();
    // One client connection, so each request starts after the previous
    // exchange has ended and its upstream connection has been put back.
    let mut client = Client::connect(proxy);
    for i in 0..3 {
        let response = client.request(&Req::new("GET", &origin.url(&format!("/kept/{i}"))));
        assert_eq!(response.status, 200);
    }
    assert_eq!(origin.hits(), 3);
    assert_eq!(
        origin.connections(),
        1,
        "every request opened its own upstream connection: {:?}",
        origin
            .requests()
            .iter()
            .map(|r| r.connection)
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_upstream_connection_that_asked_to_close_is_not_kept() {
    let origin = Origin::fixed(Reply::ok("bye").header("Connection", "close").close());
    let proxy = proxy();
    for _ in 0..2 {
        assert_eq!(get(proxy, &origin.url("/closing")).status, 200);
    }
    assert_eq!(origin.connections(), 2);
}

// ANCHOR: stale_upstream
/// An origin that closes a kept connection when the second request arrives
/// on it, without answering: what a proxy sees when the origin's idle
/// timeout and our next request cross on the wire.
fn origin_that_drops_kept_connections() -> Origin {
    let seen = std::sync::Mutex::new(std::collections::HashMap::<usize, usize>::new());
    Origin::start(move |request| {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(request.connection).or_insert(0);
        *n += 1;
        if *n == 2 {
            Reply::raw(Vec::new())
        } else {
            Reply::ok(format!("{} {}", request.method, request.target))
        }
    })
}

#[test]
fn a_get_on_a_kept_connection_the_origin_closed_is_retried_once() {
    let origin = origin_that_drops_kept_connections();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    assert_eq!(
        client
            .request(&Req::new("GET", &origin.url("/first")))
            .status,
        200
    );
    let second = client.request(&Req::new("GET", &origin.url("/second")));
    assert_eq!(second.status, 200, "{}", second.body_text());
    assert_eq!(second.body_text(), "GET /second");
    // Sent on the kept connection (dropped), then on a new one.
    assert_eq!(origin.hits_for("/second"), 2);
    assert_eq!(origin.connections(), 2);
}

#[test]
fn a_post_on_a_kept_connection_the_origin_closed_is_not_retried() {
    let origin = origin_that_drops_kept_connections();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    assert_eq!(
        client
            .request(&Req::new("GET", &origin.url("/first")))
            .status,
        200
    );
    let response = client.request(&Req::new("POST", &origin.url("/order")).body(b"once"));
    // The origin may have acted on it: sending it again could do it twice.
    assert_eq!(response.status, 502, "{}", response.body_text());
    assert_eq!(origin.hits_for("/order"), 1);
}
// ANCHOR_END: stale_upstream

#[test]
fn head_gets_no_body_though_the_origin_sends_a_length() {
    let origin = Origin::fixed(Reply::ok(text(5000)));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let head = client.request(&Req::new("HEAD", &origin.url("/doc")));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("5000"));
    assert!(head.body.is_empty());
    assert_eq!(origin.last_request().method, "HEAD");
    // No stray body bytes on the connection: the next response parses.
    let get = client.request(&Req::get(&origin.url("/doc")));
    assert_eq!(get.status, 200);
    assert_eq!(get.body, text(5000));
}

/// POSTs through the proxy with a body added by `with_body`, checks that
/// the origin got `expected`, and returns what the origin saw.
fn post_body(with_body: impl FnOnce(Req) -> Req, expected: &[u8]) -> RecordedRequest {
    let origin = echo_origin();
    let proxy = proxy();
    let req = with_body(Req::new("POST", &origin.url("/upload")));
    let response = Client::connect(proxy).request(&req);
    assert_eq!(response.status, 200);
    assert!(response.body == echo_of("POST", "/upload", expected));
    let seen = origin.last_request();
    assert_eq!(seen.body.len(), expected.len());
    assert!(seen.body == expected, "the request body changed");
    seen
}

#[test]
fn request_body_with_content_length_arrives_intact() {
    let body = binary(MIB, 7);
    let seen = post_body(|r| r.body(body.clone()), &body);
    assert_eq!(seen.header("Content-Length"), Some("1048576"));
}

#[test]
fn chunked_request_body_arrives_decoded() {
    let body = binary(MIB, 8);
    let chunks = vec![
        body[..1].to_vec(),
        body[1..4097].to_vec(),
        body[4097..500_000].to_vec(),
        body[500_000..].to_vec(),
    ];
    post_body(|r| r.chunked(chunks), &body);
}

#[test]
fn empty_request_bodies_arrive_empty() {
    let seen = post_body(|r| r.body(Vec::new()), b"");
    // RFC 9110 §8.6: a POST without content still says Content-Length: 0;
    // some servers answer 411 Length Required otherwise.
    assert_eq!(seen.header("Content-Length"), Some("0"));
    post_body(|r| r.chunked(Vec::new()), b"");
}

#[test]
fn expect_100_continue_gets_continue_then_the_final_response() {
    let origin = echo_origin();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let body = text(3000);
    let req = Req::new("PUT", &origin.url("/big"))
        .header("Expect", "100-continue")
        .body(body.clone());
    client.send(req.head_bytes());
    // The body is sent only after the 100.
    let interim = client.read_response_to("PUT");
    assert_eq!(interim.status, 100);
    client.send(req.body_bytes());
    let response = client.read_response_to("PUT");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, echo_of("PUT", "/big", &body));
    assert!(!origin.last_request().has_header("Expect"));
}

#[test]
fn several_requests_share_one_connection() {
    let origin = echo_origin();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    for i in 0..5 {
        let target = format!("/again/{i}");
        let response = client.request(&Req::get(&origin.url(&target)));
        assert_eq!(response.status, 200);
        assert!(!response.says_close());
        assert_eq!(response.body, echo_of("GET", &target, b""));
    }
    assert_eq!(origin.hits(), 5);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let origin = echo_origin();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let mut burst = Req::get(&origin.url("/one")).to_bytes();
    burst.extend(Req::get(&origin.url("/two")).to_bytes());
    client.send(&burst);
    assert_eq!(client.read_response().body, echo_of("GET", "/one", b""));
    assert_eq!(client.read_response().body, echo_of("GET", "/two", b""));

    // Three at once, with a body in the middle.
    let mut burst = Req::get(&origin.url("/a")).to_bytes();
    burst.extend(Req::new("POST", &origin.url("/b")).body("bee").to_bytes());
    burst.extend(Req::get(&origin.url("/c")).to_bytes());
    client.send(&burst);
    assert_eq!(client.read_response().body, echo_of("GET", "/a", b""));
    assert_eq!(client.read_response().body, echo_of("POST", "/b", b"bee"));
    assert_eq!(client.read_response().body, echo_of("GET", "/c", b""));
}

#[test]
fn connection_close_is_honoured() {
    let origin = Origin::fixed(Reply::ok("bye"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&origin.url("/")).header("Connection", "close"));
    assert_eq!(response.body, b"bye");
    assert!(response.says_close());
    client.assert_closed();
}

#[test]
fn http10_without_keep_alive_is_closed() {
    let origin = Origin::fixed(Reply::ok("old"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&origin.url("/")).version("HTTP/1.0"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"old");
    client.assert_closed();
}

#[test]
fn http10_with_keep_alive_stays_open() {
    let origin = echo_origin();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    for target in ["/first", "/second"] {
        let req = Req::get(&origin.url(target))
            .version("HTTP/1.0")
            .header("Connection", "keep-alive");
        let response = client.request(&req);
        assert_eq!(response.status, 200);
        assert_eq!(response.version, "HTTP/1.1");
        assert_eq!(response.header("Connection"), Some("keep-alive"));
        assert_eq!(response.body, echo_of("GET", target, b""));
    }
}

#[test]
fn a_response_of_unknown_length_ends_the_connection() {
    let body = binary(50 * KIB, 9);
    let origin = Origin::fixed(Reply::close_delimited(body.clone()).split(5000));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&origin.url("/stream")));
    assert_eq!(response.status, 200);
    assert_eq!(response.framing, Framing::UntilClose);
    assert!(response.says_close());
    assert!(response.body == body);
}

#[test]
fn chunked_response_is_rechunked_for_http11() {
    let body = binary(100 * KIB, 10);
    let chunks = vec![
        body[..3].to_vec(),
        body[3..70_000].to_vec(),
        body[70_000..].to_vec(),
    ];
    let origin = Origin::fixed(Reply::chunked(chunks).trailer("X-Sum", "1"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&origin.url("/c")));
    assert_eq!(response.status, 200);
    assert_eq!(response.framing, Framing::Chunked);
    assert!(!response.has_header("Content-Length"));
    assert!(response.body == body);
    // The connection stays usable.
    assert_eq!(client.request(&Req::get(&origin.url("/c"))).body, body);
}

#[test]
fn chunked_response_is_close_delimited_for_http10() {
    let body = text(20 * KIB);
    let chunks = body.chunks(3000).map(<[u8]>::to_vec).collect();
    let origin = Origin::fixed(Reply::chunked(chunks));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let req = Req::get(&origin.url("/c"))
        .version("HTTP/1.0")
        .header("Connection", "keep-alive");
    let response = client.request(&req);
    assert_eq!(response.status, 200);
    // HTTP/1.0 has no chunked coding: the body ends with the connection.
    assert_eq!(response.framing, Framing::UntilClose);
    assert!(!response.has_header("Transfer-Encoding"));
    assert!(!response.has_header("Content-Length"));
    assert!(response.body == body);
}

#[test]
fn transfer_codings_other_than_chunked_stay_named() {
    // We undo `chunked` only. A `gzip` transfer coding stays on the body,
    // so it must stay in Transfer-Encoding, or the client would take gzip
    // bytes for the content itself (RFC 9112 §6.1).
    let coded = binary(5000, 7);
    let chunks = coded.chunks(1500).map(<[u8]>::to_vec).collect();
    let origin = Origin::fixed(Reply::chunked(chunks).header("Transfer-Encoding", "gzip, chunked"));
    let proxy = proxy();
    let response = get(proxy, &origin.url("/z"));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Transfer-Encoding"), Some("gzip, chunked"));
    assert!(
        response.body == coded,
        "the coded bytes must arrive as sent"
    );

    // HTTP/1.0 has no transfer codings at all: the honest answer is 502.
    let mut client = Client::connect(proxy);
    let old = client.request(&Req::get(&origin.url("/z")).version("HTTP/1.0"));
    assert_eq!(old.status, 502, "{}", old.body_text());
}

#[test]
fn origin_closing_mid_body_closes_the_client_connection() {
    let origin = Origin::fixed(Reply::truncated(10_000, text(3000)));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    client.send(Req::get(&origin.url("/cut")).to_bytes());
    let response = client.try_read_response("GET").expect("a response head");
    assert_eq!(response.status, 200);
    assert!(!response.complete, "a truncated body looked complete");
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let timeouts = Timeouts {
        client_idle: Duration::from_millis(300),
        ..test_timeouts()
    };
    let origin = Origin::fixed(Reply::ok("once"));
    let proxy = proxy_with(4, 16, timeouts);
    // After a request...
    let mut used = Client::connect(proxy);
    let response = used.request(&Req::get(&origin.url("/")));
    assert_eq!(response.body, b"once");
    assert!(!response.says_close());
    // ...and without one: both are closed, well before the client gives
    // up after its own 10 s read timeout.
    let mut silent = Client::connect(proxy);
    used.assert_closed();
    silent.assert_closed();
}

/// Sends `raw`, expects `status` and a close, and checks that the proxy
/// still serves a good request. Returns the error response and the origin.
fn refused(raw: &[u8], status: u16) -> (Response, Origin) {
    let origin = Origin::fixed(Reply::ok("fine"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let raw = String::from_utf8_lossy(raw).replace("ORIGIN", &origin.authority());
    let _ = client.try_send(raw.as_bytes());
    let response = client.read_response();
    assert_eq!(response.status, status, "{}", response.body_text());
    assert!(response.says_close());
    client.assert_closed();
    assert_eq!(origin.hits(), 0, "a bad request reached the origin");
    let good = get(proxy, &origin.url("/after"));
    assert_eq!(good.body, b"fine");
    (response, origin)
}

#[test]
fn both_content_length_and_transfer_encoding_is_400() {
    let (_, origin) = refused(
        b"POST http://ORIGIN/ HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length: 5\r\n\
          Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
    );
    assert_eq!(origin.connections(), 1, "only the good request connects");
}

#[test]
fn bad_content_length_is_400() {
    for value in ["abc", "-1", "5, 6", "99999999999999999999999"] {
        let raw = format!(
            "POST http://ORIGIN/ HTTP/1.1\r\nHost: ORIGIN\r\nContent-Length: {value}\r\n\r\nhello"
        );
        refused(raw.as_bytes(), 400);
    }
}

#[test]
fn bad_chunk_size_is_400() {
    for chunks in ["zz\r\nhello\r\n0\r\n\r\n", "fffffffffffffffffffff\r\nx\r\n"] {
        let raw = format!(
            "POST http://ORIGIN/ HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}"
        );
        refused(raw.as_bytes(), 400);
    }
}

#[test]
fn unknown_transfer_coding_is_501() {
    refused(
        b"POST http://ORIGIN/ HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    );
    // Without chunked last, the body's end cannot be found at all: 400.
    refused(
        b"POST http://ORIGIN/ HTTP/1.1\r\nHost: ORIGIN\r\nTransfer-Encoding: gzip\r\n\r\n",
        400,
    );
}

#[test]
fn malformed_heads_are_400_and_close() {
    refused(b"NOT HTTP AT ALL\r\n\r\n", 400);
    refused(b"GET /relative HTTP/1.1\r\nHost: ORIGIN\r\n\r\n", 400);
    refused(b"GET http://ORIGIN/ HTTP/1.1\r\nHost : ORIGIN\r\n\r\n", 400);
}

#[test]
fn an_error_ends_a_persistent_connection() {
    let origin = Origin::fixed(Reply::ok("fine"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    assert_eq!(client.request(&Req::get(&origin.url("/"))).body, b"fine");
    let bad = Req::new("POST", &origin.url("/"))
        .header("Content-Length", "1")
        .header("Transfer-Encoding", "chunked");
    let response = client.request(&bad);
    assert_eq!(response.status, 400);
    client.assert_closed();
}

#[test]
fn silent_origin_is_504() {
    let origin = Origin::fixed(Reply::silent());
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&origin.url("/quiet")));
    assert_eq!(response.status, 504);
    client.assert_closed();
}

#[test]
fn refused_origin_is_502() {
    let proxy = proxy();
    let response = get(proxy, &format!("http://{}/", closed_port()));
    assert_eq!(response.status, 502);
    assert!(response.says_close());
}

#[test]
fn a_stuck_origin_does_not_block_other_clients() {
    let timeouts = Timeouts {
        upstream_read: Duration::from_secs(10),
        ..test_timeouts()
    };
    let origin = Origin::routes([("/stuck", Reply::silent()), ("/ok", Reply::ok("free"))]);
    let proxy = proxy_with(2, 16, timeouts);
    let mut stuck = Client::connect(proxy);
    stuck.send(Req::get(&origin.url("/stuck")).to_bytes());
    assert!(origin.wait_for_hits(1, Duration::from_secs(10)));

    let response = get(proxy, &origin.url("/ok"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"free");
    assert!(
        stuck.nothing_within(Duration::from_millis(50)),
        "the stuck request should still be waiting"
    );
}

/// A GET on a new connection; None when the proxy turned it away (503) or
/// closed it.
fn try_get(proxy: SocketAddr, url: &str) -> Option<Response> {
    let mut client = Client::connect(proxy);
    let _ = client.try_send(Req::get(url).to_bytes());
    match client.try_read_response("GET") {
        Ok(r) if r.status == 503 => None,
        Ok(r) => Some(r),
        Err(_) => None,
    }
}

#[test]
fn over_the_connection_limit_a_client_gets_503_until_a_slot_frees() {
    let timeouts = Timeouts {
        client_idle: Duration::from_secs(10),
        ..test_timeouts()
    };
    let origin = Origin::fixed(Reply::ok("in"));
    let proxy = proxy_with(4, 2, timeouts);
    let mut a = Client::connect(proxy);
    let mut b = Client::connect(proxy);
    // Both are admitted and stay open.
    assert_eq!(a.request(&Req::get(&origin.url("/a"))).body, b"in");
    assert_eq!(b.request(&Req::get(&origin.url("/b"))).body, b"in");

    let mut third = Client::connect(proxy);
    let response = third.read_response();
    assert_eq!(response.status, 503);
    assert!(response.says_close());
    third.assert_closed();
    assert_eq!(origin.hits(), 2);

    // Closing one frees its place. The proxy frees it just after the
    // close, so give it a moment.
    drop(a);
    assert!(
        eventually(Duration::from_secs(5), || try_get(proxy, &origin.url("/c"))
            .is_some_and(|r| r.body == b"in")),
        "no place was freed after a client left"
    );
    // The other connection was never disturbed.
    assert_eq!(b.request(&Req::get(&origin.url("/b"))).body, b"in");
}

#[test]
fn stuck_and_idle_connections_count_toward_the_limit() {
    let timeouts = Timeouts {
        client_idle: Duration::from_secs(10),
        upstream_read: Duration::from_secs(10),
        ..test_timeouts()
    };
    let origin = Origin::routes([("/stuck", Reply::silent()), ("/ok", Reply::ok("in"))]);
    let proxy = proxy_with(4, 2, timeouts);
    let mut stuck = Client::connect(proxy);
    stuck.send(Req::get(&origin.url("/stuck")).to_bytes());
    assert!(origin.wait_for_hits(1, Duration::from_secs(10)));
    let mut idle = Client::connect(proxy);
    assert_eq!(idle.request(&Req::get(&origin.url("/ok"))).body, b"in");

    let mut third = Client::connect(proxy);
    assert_eq!(third.read_response().status, 503);
    third.assert_closed();
}

#[test]
fn no_slot_leaks_after_error_paths() {
    let origin = Origin::routes([
        ("/ok", Reply::ok("in")),
        ("/cut", Reply::truncated(1000, "short")),
        ("/junk", Reply::raw(&b"junk\r\n\r\n"[..])),
    ]);
    let proxy = proxy_with(2, 2, test_timeouts());
    let target = origin.authority();
    let bad_requests: Vec<Vec<u8>> = vec![
        b"garbage\r\n\r\n".to_vec(),
        format!("GET /relative HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes(),
        format!(
            "POST http://{target}/ok HTTP/1.1\r\nHost: {target}\r\nContent-Length: 1\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes(),
        format!(
            "POST http://{target}/ok HTTP/1.1\r\nHost: {target}\r\n\
             Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
        .into_bytes(),
        Req::get(&format!("http://{}/", closed_port())).to_bytes(),
        Req::get(&origin.url("/cut")).to_bytes(),
        Req::get(&origin.url("/junk")).to_bytes(),
        // A head that stops halfway, then the client leaves.
        format!("GET http://{target}/ok HTTP/1.1\r\nHo").into_bytes(),
        // A client that leaves without a word.
        Vec::new(),
    ];
    for raw in &bad_requests {
        let mut client = Client::connect(proxy);
        let _ = client.try_send(raw);
        client.shutdown_write();
        // Whatever the answer, the proxy ends the connection.
        let _ = client.try_read_response("GET");
        let _ = client.read_to_close();
    }
    // A turned-away client must not cost a place either.
    {
        let _a = Client::connect(proxy);
        let _b = Client::connect(proxy);
        let mut c = Client::connect(proxy);
        let _ = c.try_read_response("GET");
    }
    // Both places are free again: two clients at once are served. The proxy
    // frees a place just after the close the client sees, so retry briefly.
    let full_house = || {
        let mut a = Client::connect(proxy);
        let mut b = Client::connect(proxy);
        let _ = a.try_send(Req::get(&origin.url("/ok")).to_bytes());
        let _ = b.try_send(Req::get(&origin.url("/ok")).to_bytes());
        let ra = a.try_read_response("GET");
        let rb = b.try_read_response("GET");
        matches!((ra, rb), (Ok(x), Ok(y)) if x.status == 200 && y.status == 200)
    };
    assert!(
        eventually(Duration::from_secs(5), full_house),
        "a connection slot leaked"
    );
}

#[test]
fn many_concurrent_clients_get_their_own_bodies() {
    const CLIENTS: usize = 32;
    const REQUESTS: usize = 5;
    let origin = Origin::start(|request| {
        let n: u64 = request
            .path()
            .trim_start_matches("/obj/")
            .parse()
            .unwrap_or(0);
        Reply::ok(binary(1000 + n as usize * 37, n))
    });
    let proxy = proxy_with(4, 64, test_timeouts());
    thread::scope(|scope| {
        for c in 0..CLIENTS {
            let origin = &origin;
            scope.spawn(move || {
                let mut client = Client::connect(proxy);
                for r in 0..REQUESTS {
                    let n = c * REQUESTS + r;
                    let response = client.request(&Req::get(&origin.url(&format!("/obj/{n}"))));
                    assert_eq!(response.status, 200, "client {c} request {r}");
                    assert!(
                        response.body == binary(1000 + n * 37, n as u64),
                        "client {c} request {r} got the wrong body"
                    );
                }
            });
        }
    });
    assert_eq!(origin.hits(), CLIENTS * REQUESTS);
}

#[test]
fn stage2_binary_smoke_test() {
    let origin = echo_origin();
    let running = RunningBinary::start(
        env!("CARGO_BIN_EXE_stage2"),
        &["--port", "0", "--threads", "2", "--max-connections", "8"],
    );
    let mut client = Client::connect(running.addr);
    let first = client.request(&Req::new("POST", &origin.url("/smoke")).body("hi"));
    assert_eq!(first.status, 200);
    assert_eq!(first.body, echo_of("POST", "/smoke", b"hi"));
    // Persistent: a second request on the same connection.
    let second = client.request(&Req::get(&origin.url("/again")));
    assert_eq!(second.body, echo_of("GET", "/again", b""));
}

#[test]
fn interim_responses_reach_http11_clients_but_not_http10_ones() {
    let origin = Origin::fixed(Reply::raw(
        &b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
           HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
    ));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    client.send(Req::get(&origin.url("/hints")).to_bytes());
    let early = client.read_response();
    assert_eq!(early.status, 103);
    assert_eq!(early.header("Link"), Some("</style.css>; rel=preload"));
    let last = client.read_response();
    assert_eq!((last.status, &last.body[..]), (200, &b"ok"[..]));

    let mut old = Client::connect(proxy);
    let response = old.request(&Req::get(&origin.url("/hints")).version("HTTP/1.0"));
    assert_eq!((response.status, &response.body[..]), (200, &b"ok"[..]));
}

#[test]
fn the_client_sees_one_100_continue_only() {
    // The origin sends its own 100 Continue; the proxy already sent one.
    let origin = Origin::fixed(Reply::raw(
        &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"[..],
    ));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let req = Req::new("POST", &origin.url("/up"))
        .header("Expect", "100-continue")
        .body("data");
    client.send(req.head_bytes());
    assert_eq!(client.read_response_to("POST").status, 100);
    client.send(req.body_bytes());
    let response = client.read_response_to("POST");
    assert_eq!((response.status, &response.body[..]), (201, &b"done"[..]));
    assert_eq!(origin.last_request().body, b"data");
}

#[test]
fn a_client_stalling_mid_request_gets_408() {
    let timeouts = Timeouts {
        client_read: Duration::from_millis(300),
        ..test_timeouts()
    };
    let origin = echo_origin();
    let proxy = proxy_with(4, 16, timeouts);
    // Halfway through the head...
    let mut client = Client::connect(proxy);
    client.send(format!("GET {} HTTP/1.1\r\nHost: ", origin.url("/")));
    assert_eq!(client.read_response().status, 408);
    client.assert_closed();
    // ...and halfway through the body.
    let mut client = Client::connect(proxy);
    let req = Req::new("POST", &origin.url("/")).body(text(1000));
    client.send(&req.to_bytes()[..req.head_bytes().len() + 500]);
    assert_eq!(client.read_response_to("POST").status, 408);
    client.assert_closed();
    assert_eq!(origin.hits(), 0, "half a request reached the origin");
}

#[test]
fn a_client_that_closes_in_the_middle_of_a_head_gets_400() {
    let origin = Origin::fixed(Reply::ok("never"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    client.send(format!("GET {} HTTP/1.1\r\nHo", origin.url("/")));
    client.shutdown_write();
    let response = client.read_response();
    assert_eq!(response.status, 400, "{}", response.body_text());
    client.assert_closed();
    assert_eq!(origin.connections(), 0);
}

#[test]
fn a_half_closed_client_still_gets_its_response() {
    let origin = Origin::fixed(Reply::ok("for nc users"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    client.send(Req::get(&origin.url("/")).to_bytes());
    client.shutdown_write();
    assert_eq!(client.read_response().body, b"for nc users");
    client.assert_closed();
}

#[test]
fn idle_persistent_connections_do_not_starve_new_clients() {
    // As many idle keep-alive clients as workers: a worker that sat on its
    // idle connection until the idle timeout would leave none for anyone.
    let timeouts = Timeouts {
        client_idle: Duration::from_secs(30),
        ..test_timeouts()
    };
    let origin = Origin::fixed(Reply::ok("served"));
    let proxy = proxy_with(2, 16, timeouts);
    let mut idle: Vec<Client> = (0..4).map(|_| Client::connect(proxy)).collect();
    for client in &mut idle {
        assert_eq!(client.request(&Req::get(&origin.url("/"))).body, b"served");
    }
    for _ in 0..3 {
        assert_eq!(get(proxy, &origin.url("/new")).body, b"served");
    }
    // The idle ones are still open and still served.
    for client in &mut idle {
        assert_eq!(client.request(&Req::get(&origin.url("/"))).body, b"served");
    }
}

#[test]
fn an_eager_client_does_not_keep_the_only_worker() {
    // One worker, and a client that sent twenty requests at once, each
    // answered in 20 ms. A worker that served the whole batch before it
    // looked at its queue would keep a second client waiting for all of it.
    let origin = Origin::routes([
        ("/batch", Reply::ok("batch").pace(Duration::from_millis(20))),
        ("/other", Reply::ok("other")),
    ]);
    let proxy = proxy_with(1, 16, test_timeouts());
    let mut eager = Client::connect(proxy);
    eager.send(Req::get(&origin.url("/batch")).to_bytes().repeat(20));
    assert!(origin.wait_for_hits(1, Duration::from_secs(5)));
    assert_eq!(get(proxy, &origin.url("/other")).body_text(), "other");
    let served = origin.hits_for("/batch");
    assert!(
        served < 20,
        "the second client was served only after the eager one's {served} requests\n{}",
        eager.transcript()
    );
    // Sent to the back of the queue, not forgotten: all twenty come back.
    for _ in 0..20 {
        let response = eager.read_response();
        assert_eq!(response.body_text(), "batch", "{}", eager.transcript());
    }
}

// ANCHOR: slow_head
#[test]
fn a_slow_request_head_does_not_hold_a_worker() {
    // Two workers, and four clients that each send half a head and stop.
    // A worker that waited for the rest would be held for the whole read
    // timeout (30 s here), longer than this test's client waits.
    let timeouts = Timeouts {
        client_read: Duration::from_secs(30),
        ..test_timeouts()
    };
    let origin = Origin::fixed(Reply::ok("served"));
    let proxy = proxy_with(2, 16, timeouts);
    let slow: Vec<Client> = (0..4)
        .map(|_| {
            let mut client = Client::connect(proxy);
            client.send(format!("GET {} HTTP/1.1\r\nHo", origin.url("/slow")).into_bytes());
            client
        })
        .collect();
    let response = get(proxy, &origin.url("/ordinary"));
    assert_eq!(response.body_text(), "served");
    assert_eq!(origin.hits_for("/slow"), 0);
    // Parked, not forgotten: the rest of each head is read when it comes,
    // and the request is served.
    for mut client in slow {
        client.send("st: a\r\n\r\n");
        let response = client.read_response();
        assert_eq!(response.body_text(), "served", "{}", client.transcript());
    }
    assert_eq!(origin.hits_for("/slow"), 4);
}
// ANCHOR_END: slow_head

#[test]
fn a_slow_request_body_does_not_hold_a_worker() {
    // One worker, and a client that sends a POST head and only part of
    // its body. The body is read on a thread of its own; a worker that
    // read it would be held for the whole read timeout (30 s here), longer
    // than this test's client waits.
    let timeouts = Timeouts {
        client_read: Duration::from_secs(30),
        ..test_timeouts()
    };
    let origin = Origin::fixed(Reply::ok("served"));
    let proxy = proxy_with(1, 16, timeouts);
    let mut slow = Client::connect(proxy);
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nhalf",
        origin.url("/upload")
    );
    slow.send(head.into_bytes());
    let response = get(proxy, &origin.url("/ordinary"));
    assert_eq!(response.body_text(), "served");
    // The rest of the upload comes, and it is served too.
    slow.send(vec![b'x'; 96]);
    let response = slow.read_response();
    assert_eq!(response.body_text(), "served", "{}", slow.transcript());
}

#[test]
fn a_request_that_waited_for_a_worker_is_served_not_dropped() {
    // One worker, busy for longer than the idle timeout. A client that sent
    // its request meanwhile was never idle: the proxy was slow, and the
    // request must be answered when the worker gets to it.
    let timeouts = Timeouts {
        client_idle: Duration::from_millis(300),
        upstream_read: Duration::from_secs(5),
        ..test_timeouts()
    };
    let origin = Origin::routes([
        ("/slow", Reply::ok("slow").pace(Duration::from_millis(800))),
        ("/quick", Reply::ok("quick")),
    ]);
    let proxy = proxy_with(1, 16, timeouts);
    let mut busy = Client::connect(proxy);
    busy.send(
        Req::get(&origin.url("/slow"))
            .header("Connection", "close")
            .to_bytes(),
    );
    assert!(origin.wait_for_hits(1, Duration::from_secs(10)));
    let mut waiting = Client::connect(proxy);
    waiting.send(Req::get(&origin.url("/quick")).to_bytes());
    assert_eq!(busy.read_response().body, b"slow");
    let response = waiting
        .try_read_response("GET")
        .expect("the queued request was dropped");
    assert_eq!(response.body, b"quick");
}

#[test]
fn an_unknown_expectation_is_417() {
    let origin = echo_origin();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let req = Req::new("POST", &origin.url("/"))
        .header("Expect", "teapot")
        .body("x");
    assert_eq!(client.request(&req).status, 417);
    client.assert_closed();
    assert_eq!(origin.hits(), 0);
}

/// Asks the proxy for one of its own pages, sent straight to it.
fn own_page(proxy: SocketAddr, path: &str) -> Response {
    Client::connect(proxy).request(&Req::get(path).host(&proxy.to_string()))
}

/// A figure from `/stats.json`, which is one flat object of numbers.
fn figure(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &json[start..];
    Some(rest[..rest.find([',', '\n']).unwrap_or(rest.len())].to_string())
}

#[test]
fn the_proxy_answers_for_itself_with_a_stats_page() {
    let origin = echo_origin();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    for i in 0..3 {
        let response = client.request(&Req::get(&origin.url(&format!("/n/{i}"))));
        assert_eq!(response.status, 200);
    }
    drop(client);

    let json = own_page(proxy, "/stats.json");
    assert_eq!(json.status, 200);
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    assert_eq!(json.header("Cache-Control"), Some("no-store"));
    let text = json.body_text();
    // Three relayed requests, then this one.
    assert_eq!(figure(&text, "requests").as_deref(), Some("4"), "{text}");
    assert_eq!(
        figure(&text, "upstream_opened").as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        figure(&text, "upstream_reused").as_deref(),
        Some("2"),
        "{text}"
    );
    assert!(
        text.contains(&format!("[\"{}\", 3]", origin.authority())),
        "the busiest hosts miss the origin: {text}"
    );
    assert_eq!(origin.hits(), 3, "a page request reached the origin");

    let html = own_page(proxy, "/");
    assert_eq!(html.status, 200);
    assert_eq!(
        html.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let page = html.body_text();
    assert!(page.contains("This is a proxy"), "{page}");
    assert!(page.contains("http-equiv=\"refresh\""), "{page}");
    assert!(
        !page.contains("src=\"http"),
        "the page loads something from outside"
    );

    let pac = own_page(proxy, "/proxy.pac");
    assert_eq!(pac.status, 200);
    assert!(
        pac.body_text().contains(&format!("PROXY {proxy}")),
        "{}",
        pac.body_text()
    );
}

#[test]
fn the_stats_page_is_reached_by_the_proxys_own_address_too() {
    let proxy = proxy();
    let response = get(proxy, &format!("http://{proxy}/stats.json"));
    assert_eq!(response.status, 200);
    assert!(response.body_text().contains("\"uptime_seconds\""));
    // Other origin-form targets still get the explanation.
    let other = own_page(proxy, "/elsewhere");
    assert_eq!(other.status, 400);
    assert!(other.body_text().contains("this is a proxy"));
}

#[test]
fn options_and_trace_with_max_forwards_0_stop_at_the_proxy() {
    // RFC 9110 §7.6.2: at 0 the proxy is the final recipient.
    let origin = echo_origin();
    let proxy = proxy();
    let options = Req::new("OPTIONS", &origin.url("/x")).header("Max-Forwards", "0");
    let mut client = Client::connect(proxy);
    let response = client.request(&options);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Allow"),
        Some(webproxy::forward::ALLOW),
        "an OPTIONS answer says what is allowed"
    );
    // TRACE is refused by policy: its answer would echo the client's
    // credentials (see forward::answer_last_hop).
    let trace = Req::new("TRACE", &origin.url("/x"))
        .header("Max-Forwards", "0")
        .header("Cookie", "session=secret");
    let response = Client::connect(proxy).request(&trace);
    assert_eq!(response.status, 405);
    assert!(response.has_header("Allow"));
    assert!(!response.body_text().contains("secret"));
    assert_eq!(
        origin.hits(),
        0,
        "a request with no hops left was forwarded"
    );
}

#[test]
fn max_forwards_goes_on_one_smaller_for_options_and_trace_only() {
    let origin = echo_origin();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let endless = (u64::MAX - 1).to_string();
    for (method, sent, seen) in [
        ("OPTIONS", "5", "4"),
        ("TRACE", "1", "0"),
        ("TRACE", "99999999999999999999999", endless.as_str()),
        ("GET", "5", "5"),
        ("GET", "0", "0"),
    ] {
        let req = Req::new(method, &origin.url("/mf")).header("Max-Forwards", sent);
        let response = client.request(&req);
        assert_eq!(response.status, 200, "{method} with Max-Forwards: {sent}");
        let last = origin.last_request();
        assert_eq!(last.method, method);
        assert_eq!(
            last.header_all("Max-Forwards"),
            vec![seen],
            "{method} {sent}"
        );
    }
    // Without the field nothing is added.
    client.request(&Req::new("OPTIONS", &origin.url("/mf")));
    assert!(!origin.last_request().has_header("Max-Forwards"));
}

#[test]
fn a_max_forwards_that_is_no_number_is_400() {
    for value in ["-1", "two", "1, 2", ""] {
        let raw = format!(
            "OPTIONS http://ORIGIN/ HTTP/1.1\r\nHost: ORIGIN\r\nMax-Forwards: {value}\r\n\r\n"
        );
        let (response, _) = refused(raw.as_bytes(), 400);
        assert!(response.body_text().contains("Max-Forwards"), "{value:?}");
    }
    refused(
        b"TRACE http://ORIGIN/ HTTP/1.1\r\nHost: ORIGIN\r\nMax-Forwards: 1\r\nMax-Forwards: 2\r\n\r\n",
        400,
    );
}

#[test]
fn options_for_a_server_goes_upstream_as_asterisk_form() {
    // RFC 9112 §3.2.4: an empty path without a query asks about the server.
    let origin = echo_origin();
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let authority = origin.authority();
    for (target, upstream) in [
        (format!("http://{authority}"), "*"),
        (format!("http://{authority}#frag"), "*"),
        (format!("http://{authority}/"), "/"),
        (format!("http://{authority}?q=1"), "/?q=1"),
    ] {
        let response = client.request(&Req::new("OPTIONS", &target).host(&authority));
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(
            origin.last_request().request_line(),
            format!("OPTIONS {upstream} HTTP/1.1"),
            "{target}"
        );
    }
    // Only OPTIONS has an asterisk-form.
    let response = client.request(&Req::get(&format!("http://{authority}")));
    assert_eq!(response.status, 200);
    assert_eq!(origin.last_request().request_line(), "GET / HTTP/1.1");
}

#[test]
fn an_over_long_method_is_501_however_its_bytes_arrive() {
    // The same bytes once got a 200 in one write (relayed!) and a 414 in
    // two. RFC 9112 §3: a method longer than any the server implements is
    // a 501, and it is never forwarded.
    let origin = Origin::fixed(Reply::ok("fine"));
    let proxy = proxy();
    let raw = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        "A".repeat(10_000),
        origin.url("/"),
        origin.authority()
    );
    for piece in [raw.len(), 5_000, 1_000] {
        let mut client = Client::connect(proxy);
        for (i, part) in raw.as_bytes().chunks(piece).enumerate() {
            if i > 0 {
                thread::sleep(Duration::from_millis(20));
            }
            // The proxy may answer, and close, before the rest is sent.
            if client.try_send(part).is_err() {
                break;
            }
        }
        let response = client.read_response();
        assert_eq!(response.status, 501, "in pieces of {piece}");
        assert!(response.says_close());
    }
    assert_eq!(origin.hits(), 0, "the long method was forwarded");
    assert_eq!(get(proxy, &origin.url("/after")).body, b"fine");
}

#[test]
fn the_pac_file_names_only_a_valid_host() {
    let proxy = proxy();
    let evil = "a\"; alert(1); \"";
    let response = Client::connect(proxy).request(&Req::get("/proxy.pac").host(evil));
    assert_eq!(response.status, 400);
    assert!(!response.body_text().contains("FindProxyForURL"));
}

#[test]
fn one_client_cannot_take_every_connection() {
    let origin = Origin::fixed(Reply::ok("fine"));
    let proxy = start_stage2(Config {
        max_connections_per_client: 2,
        ..test_config()
    });
    // Two connections from 127.0.0.1, each served once and kept open.
    let mut kept: Vec<Client> = (0..2).map(|_| Client::connect(proxy)).collect();
    for client in &mut kept {
        assert_eq!(client.request(&Req::get(&origin.url("/"))).status, 200);
    }
    // A third is turned away at once, with a reason.
    let mut third = Client::connect(proxy);
    let response = third.read_response();
    assert_eq!(response.status, 503, "{}", response.body_text());
    assert!(
        response.body_text().contains("your address"),
        "{}",
        response.body_text()
    );
    // When one closes, its place is free again.
    drop(kept.pop());
    let freed = eventually(Duration::from_secs(5), || {
        get(proxy, &origin.url("/")).status == 200
    });
    assert!(freed, "the closed connection's place was not freed");
}

#[test]
fn a_request_body_slower_than_the_minimum_rate_gets_408() {
    let origin = echo_origin();
    let proxy = start_stage2(Config {
        min_body_rate: Some(webproxy::conn::MinRate {
            bytes_per_sec: 1000,
            grace: Duration::from_millis(300),
        }),
        ..test_config()
    });
    let mut client = Client::connect(proxy);
    client.send(
        format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 100000\r\n\r\n",
            origin.url("/upload"),
            origin.authority()
        )
        .into_bytes(),
    );
    // One byte every 50 ms: each read is prompt, so only the rate catches
    // it. The pauses pace the client; nothing here waits for the server.
    let mut answered = None;
    for _ in 0..100 {
        if client.try_send(b"x").is_err() {
            answered = Some(client.read_response_to("POST"));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = answered.unwrap_or_else(|| client.read_response_to("POST"));
    assert_eq!(response.status, 408, "{}", response.body_text());
    assert!(
        response.body_text().contains("request body"),
        "{}",
        response.body_text()
    );
    assert_eq!(
        origin.hits(),
        0,
        "the origin answered a request it never got whole"
    );
}

#[test]
fn a_proxy_short_of_file_descriptors_refuses_with_503_instead_of_silence() {
    // With 256 descriptors, the server fits its connection limit to them:
    // the clients over it get a 503 at once instead of a hung connection.
    let program = env!("CARGO_BIN_EXE_stage2");
    let (running, log) = RunningBinary::start_logged(
        "sh",
        &["-c", &format!("ulimit -n 256 && exec {program} --port 0")],
    );
    assert!(
        log.wait_for(&["lowered to"], Duration::from_secs(5))
            .is_some(),
        "{:?}",
        log.lines()
    );
    let mut clients: Vec<Client> = (0..80).map(|_| Client::connect(running.addr)).collect();
    let last = clients.last_mut().expect("a client");
    let response = last.read_response();
    assert_eq!(response.status, 503, "{}", response.body_text());
}
