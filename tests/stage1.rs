//! Stage 1 on the wire: a GET relay, one client at a time.
//!
//! Every test starts its own origin and its own proxy on free ports, talks
//! to the proxy with raw bytes, and checks what a user would see (status,
//! headers, body bytes) and what the origin received.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::*;

fn proxy() -> SocketAddr {
    start_stage1(test_timeouts())
}

/// Fetches `body` through the proxy and checks it arrives byte for byte.
fn relays_intact(body: Vec<u8>) {
    let origin =
        Origin::fixed(Reply::ok(body.clone()).header("Content-Type", "application/x-test"));
    let proxy = proxy();
    let response = get(proxy, &origin.url("/file"));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Length"),
        Some(&*body.len().to_string())
    );
    assert_eq!(response.header("Content-Type"), Some("application/x-test"));
    assert_eq!(response.body.len(), body.len());
    assert!(response.body == body, "the body changed on its way");
    assert_eq!(origin.hits(), 1);
}

#[test]
fn get_relays_a_text_body() {
    relays_intact(text(10 * KIB));
}

#[test]
fn get_relays_a_binary_body() {
    relays_intact(binary(100 * KIB + 7, 1));
}

#[test]
fn get_relays_an_empty_body() {
    relays_intact(Vec::new());
}

#[test]
fn get_relays_one_mebibyte() {
    relays_intact(binary(MIB, 2));
}

/// An answer without a body: the tests of the request target use it, so
/// that they need no relay loop (`copy_body`, exercise 2) to pass.
fn no_content() -> Reply {
    Reply::with_status(204, "")
}

#[test]
fn origin_sees_origin_form_and_the_target_host() {
    let origin = Origin::fixed(no_content());
    let proxy = proxy();
    let url = origin.url("/some/path%20x?q=1&r=a%2Fb");
    let response = Client::connect(proxy).request(&Req::get(&url).host("wrong.test:99"));
    assert_eq!(response.status, 204);

    let seen = origin.last_request();
    assert_eq!(
        seen.request_line(),
        "GET /some/path%20x?q=1&r=a%2Fb HTTP/1.1"
    );
    // The origin listens on a port other than 80, so Host carries it.
    assert_eq!(seen.header_all("Host"), vec![origin.authority().as_str()]);
    assert_eq!(seen.header_all("Via"), vec!["1.1 webproxy"]);
    assert_eq!(seen.header_all("Connection"), vec!["close"]);
    assert!(seen.body.is_empty());
}

#[test]
fn a_target_without_a_path_asks_for_slash() {
    let origin = Origin::fixed(no_content());
    let proxy = proxy();
    let url = format!("http://{}", origin.authority());
    assert_eq!(get(proxy, &url).status, 204);
    assert_eq!(origin.last_request().request_line(), "GET / HTTP/1.1");
    // A query right behind the authority still gets its `/`.
    assert_eq!(get(proxy, &format!("{url}?q=1")).status, 204);
    assert_eq!(origin.last_request().request_line(), "GET /?q=1 HTTP/1.1");
}

#[test]
fn hop_by_hop_request_fields_go_and_the_rest_keep_their_order() {
    let origin = Origin::fixed(Reply::ok("ok"));
    let proxy = proxy();
    let req = Req::get(&origin.url("/h"))
        .header("X-B", "2")
        .header("Connection", "X-Drop-Me")
        .header("User-Agent", "wire-test/1")
        .header("X-Drop-Me", "secret")
        .header("Proxy-Connection", "keep-alive")
        .header("Keep-Alive", "timeout=5")
        .header("TE", "trailers")
        .header("Trailer", "X-T")
        .header("Upgrade", "websocket")
        .header("Proxy-Authorization", "Basic dXNlcjpwdw==")
        .header("X-A", "1")
        .header("Accept", "*/*")
        .header("X-B", "3");
    let response = Client::connect(proxy).request(&req);
    assert_eq!(response.status, 200);

    let seen = origin.last_request();
    for gone in [
        "X-Drop-Me",
        "Proxy-Connection",
        "Keep-Alive",
        "TE",
        "Trailer",
        "Upgrade",
        "Proxy-Authorization",
    ] {
        assert!(!seen.has_header(gone), "{gone} reached the origin");
    }
    assert_eq!(seen.header_all("Connection"), vec!["close"]);
    let end_to_end: Vec<(&str, &str)> = seen
        .headers
        .iter()
        .filter(|(n, _)| !["Host", "Via", "Connection"].contains(&n.as_str()))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        end_to_end,
        vec![
            ("X-B", "2"),
            ("User-Agent", "wire-test/1"),
            ("X-A", "1"),
            ("Accept", "*/*"),
            ("X-B", "3"),
        ]
    );
}

#[test]
fn response_carries_via_and_no_hop_by_hop_fields() {
    let origin = Origin::fixed(
        Reply::ok("body")
            .header("X-First", "1")
            .header("Connection", "X-Origin-Hop")
            .header("X-Origin-Hop", "private")
            .header("Keep-Alive", "timeout=5")
            .header("Proxy-Authenticate", "Basic realm=\"x\"")
            .header("Upgrade", "h2c")
            .header("Set-Cookie", "a=1")
            .header("Set-Cookie", "b=2")
            .header("X-Last", "2"),
    );
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&origin.url("/r")));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"body");
    assert_eq!(response.header_all("Via"), vec!["1.1 webproxy"]);
    for gone in [
        "X-Origin-Hop",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Upgrade",
    ] {
        assert!(!response.has_header(gone), "{gone} reached the client");
    }
    // Stage 1 closes after every exchange and says so; nothing else of the
    // origin's Connection field survives.
    assert_eq!(response.header_all("Connection"), vec!["close"]);
    assert_eq!(response.header_all("Set-Cookie"), vec!["a=1", "b=2"]);
    let names: Vec<&str> = response.headers.iter().map(|(n, _)| n.as_str()).collect();
    let first = names.iter().position(|&n| n == "X-First");
    let last = names.iter().position(|&n| n == "X-Last");
    assert!(
        first < last && first.is_some(),
        "field order lost: {names:?}"
    );
    assert!(response.has_header("Date"), "the proxy adds a Date");
    client.assert_closed();
}

#[test]
fn post_is_501_and_the_origin_is_not_contacted() {
    let origin = Origin::fixed(Reply::ok("never"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::new("POST", &origin.url("/form")).body("a=1"));
    assert_eq!(response.status, 501);
    assert!(
        response.body_text().contains("POST"),
        "{}",
        response.body_text()
    );
    client.assert_closed();
    assert_eq!(origin.hits(), 0);
    assert_eq!(origin.connections(), 0);
    // The proxy still works.
    assert_eq!(get(proxy, &origin.url("/ok")).status, 200);
}

/// Sends `raw`, expects `status` and a close, then checks that the origin was
/// never asked and that the proxy still serves a good request. Returns the
/// error response.
fn refused(raw: &[u8], status: u16) -> Response {
    let origin = Origin::fixed(Reply::ok("fine"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    // The proxy may answer before it has read everything we send.
    let _ = client.try_send(raw);
    let response = client.read_response();
    assert_eq!(response.status, status, "{}", response.body_text());
    assert!(response.says_close());
    assert_eq!(response.header_all("Via"), vec!["1.1 webproxy"]);
    assert_eq!(
        response.header("Content-Length"),
        Some(&*response.body.len().to_string())
    );
    client.assert_closed();
    assert_eq!(origin.hits(), 0, "a bad request reached the origin");

    let good = get(proxy, &origin.url("/after"));
    assert_eq!(good.status, 200);
    assert_eq!(good.body, b"fine");
    response
}

fn request_with(target: &str, fields: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\n{fields}\r\n").into_bytes()
}

#[test]
fn garbage_is_400() {
    refused(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n",
        400,
    );
    refused(b"GET\r\n\r\n", 400);
}

#[test]
fn origin_form_is_400_and_says_how_to_use_a_proxy() {
    let response = refused(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400);
    assert_eq!(
        response.body_text(),
        format!("{}\n", webproxy::uri::NOT_A_PROXY_REQUEST)
    );
    assert!(response.body_text().contains("curl -x"));
}

#[test]
fn target_over_8_kib_is_414() {
    let target = format!("http://127.0.0.1:9/{}", "a".repeat(8 * KIB + 10));
    refused(&request_with(&target, "Host: 127.0.0.1:9\r\n"), 414);
}

#[test]
fn head_over_64_kib_is_431() {
    let mut fields = String::new();
    for i in 0..70 {
        fields.push_str(&format!("X-Big-{i}: {}\r\n", "b".repeat(1000)));
    }
    refused(&request_with("http://127.0.0.1:9/", &fields), 431);
}

#[test]
fn more_than_100_fields_is_431() {
    let mut fields = String::from("Host: 127.0.0.1:9\r\n");
    for i in 0..101 {
        fields.push_str(&format!("X-Many-{i}: v\r\n"));
    }
    refused(&request_with("http://127.0.0.1:9/", &fields), 431);
}

#[test]
fn whitespace_before_colon_is_400() {
    refused(
        &request_with("http://127.0.0.1:9/", "Host : 127.0.0.1:9\r\n"),
        400,
    );
}

#[test]
fn http11_without_host_is_400() {
    refused(&request_with("http://127.0.0.1:9/", ""), 400);
}

#[test]
fn two_host_fields_are_400() {
    refused(
        &request_with(
            "http://127.0.0.1:9/",
            "Host: 127.0.0.1:9\r\nHost: other.test\r\n",
        ),
        400,
    );
}

#[test]
fn https_absolute_form_is_400() {
    // Not through `refused`: its last check relays a body, and this test
    // grades the target parser alone.
    let origin = Origin::fixed(no_content());
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let target = format!("https://{}/", origin.authority());
    let _ = client.try_send(request_with(
        &target,
        &format!("Host: {}\r\n", origin.authority()),
    ));
    let response = client.read_response();
    assert_eq!(response.status, 400, "{}", response.body_text());
    assert!(
        response.body_text().contains("CONNECT"),
        "{}",
        response.body_text()
    );
    assert!(response.says_close());
    client.assert_closed();
    assert_eq!(
        origin.connections(),
        0,
        "an https:// target reached the origin"
    );
}

#[test]
fn http10_without_host_is_served() {
    let origin = Origin::fixed(Reply::ok("old"));
    let proxy = proxy();
    let req = Req::get(&origin.url("/")).version("HTTP/1.0").no_host();
    let response = Client::connect(proxy).request(&req);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"old");
    // We speak HTTP/1.1 ourselves, upstream too.
    assert_eq!(origin.last_request().version, "HTTP/1.1");
    assert_eq!(
        origin.last_request().header("Host"),
        Some(&*origin.authority())
    );
}

// ANCHOR: byte_by_byte
#[test]
fn a_head_arriving_byte_by_byte_still_works() {
    let origin = Origin::fixed(Reply::ok(binary(3000, 3)));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let req = Req::get(&origin.url("/slowly")).header("X-Pad", &"p".repeat(100));
    // One byte per write, with a pause now and then so the proxy sees the
    // head in many reads, not one.
    for (i, byte) in req.to_bytes().iter().enumerate() {
        client.send([*byte]);
        if i % 16 == 15 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert!(response.body == binary(3000, 3));
    assert_eq!(
        origin.last_request().header("X-Pad"),
        Some(&*"p".repeat(100))
    );
}
// ANCHOR_END: byte_by_byte

#[test]
fn refused_origin_is_502() {
    let proxy = proxy();
    let dead = closed_port();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&format!("http://{dead}/")));
    assert_eq!(response.status, 502);
    assert!(response.says_close());
    client.assert_closed();
}

#[test]
fn silent_origin_is_504() {
    let origin = Origin::fixed(Reply::silent());
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&origin.url("/quiet")));
    assert_eq!(response.status, 504);
    assert_eq!(origin.hits(), 1);
    client.assert_closed();
}

#[test]
fn chunked_response_is_relayed_intact() {
    let body = binary(70 * KIB, 4);
    let chunks = vec![
        body[..1].to_vec(),
        body[1..100].to_vec(),
        body[100..65636].to_vec(),
        body[65636..].to_vec(),
    ];
    let origin = Origin::fixed(Reply::chunked(chunks).trailer("X-Checksum", "abc"));
    let proxy = proxy();
    let response = get(proxy, &origin.url("/chunks"));
    assert_eq!(response.status, 200);
    assert!(response.complete);
    assert!(response.body == body, "chunked body changed");
    assert!(!response.has_header("Content-Length"));
}

#[test]
fn close_delimited_response_is_relayed_intact() {
    let body = binary(200 * KIB, 5);
    let origin = Origin::fixed(Reply::close_delimited(body.clone()).split(10_000));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&origin.url("/stream")));
    assert_eq!(response.status, 200);
    assert!(response.body == body, "close-delimited body changed");
    client.assert_closed();
}

#[test]
fn slow_response_is_relayed_intact() {
    let body = text(5000);
    let origin = Origin::fixed(
        Reply::ok(body.clone())
            .split(1000)
            .pace(Duration::from_millis(30)),
    );
    let proxy = proxy();
    let response = get(proxy, &origin.url("/slow"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, body);
}

// ANCHOR: cut_short
#[test]
fn origin_closing_mid_body_does_not_look_complete() {
    let origin = Origin::fixed(Reply::truncated(10_000, binary(4000, 6)));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    client.send(Req::get(&origin.url("/cut")).to_bytes());
    let response = client.try_read_response("GET").expect("a response head");
    assert_eq!(response.status, 200);
    assert_eq!(response.framing, common::client::Framing::Length(10_000));
    assert!(!response.complete, "a truncated body looked complete");
    assert!(response.body.len() <= 4000);
    assert!(response.body[..] == binary(4000, 6)[..response.body.len()]);
}
// ANCHOR_END: cut_short

#[test]
fn chunked_origin_closing_mid_body_does_not_look_complete() {
    let origin = Origin::fixed(Reply::raw(
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nonly six"[..],
    ));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    client.send(Req::get(&origin.url("/cut")).to_bytes());
    let response = client.try_read_response("GET").expect("a response head");
    assert_eq!(response.status, 200);
    assert!(
        !response.complete,
        "a truncated chunked body looked complete"
    );
    // The chunk that did arrive is relayed, and no last chunk follows it.
    assert!(
        response.raw_body.starts_with(b"5\r\nhello\r\n"),
        "the first chunk did not arrive: {:?}",
        String::from_utf8_lossy(&response.raw_body)
    );
    assert!(!response.raw_body.ends_with(b"0\r\n\r\n"));
}

#[test]
fn the_relay_streams_the_body_before_the_origin_has_finished() {
    let body = binary(64 * KIB, 7);
    let half = body.len() / 2;
    // The origin sends its head and the first half of the body, then waits
    // until this test has seen that half arrive through the proxy. A proxy
    // that reads the whole body before sending any of it never gets the
    // second half, and this test never sees the first.
    let gate = Gate::new();
    let origin = Origin::fixed(Reply::ok(body.clone()).split(half).hold_after(2, &gate));
    let proxy = proxy();
    let client = Client::connect(proxy);
    let mut stream = client.stream();
    stream
        .write_all(&Req::get(&origin.url("/stream")).to_bytes())
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let body_start = loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n")
            && seen.len() >= end + 4 + half
        {
            break end + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("the proxy closed after {} bytes", seen.len()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "the first half of the body did not reach the client while the origin \
                 waited to send the second ({e}; {} bytes came): the relay does not stream",
                seen.len()
            ),
        }
    };
    assert!(seen[body_start..body_start + half] == body[..half]);
    gate.open();
    let mut rest = seen[body_start..].to_vec();
    while rest.len() < body.len() {
        let n = stream.read(&mut buf).expect("the rest of the body");
        assert!(n > 0, "the proxy closed after {} body bytes", rest.len());
        rest.extend_from_slice(&buf[..n]);
    }
    assert!(rest == body, "the body changed on its way");
}

#[test]
fn bad_upstream_content_length_is_502() {
    let origin = Origin::fixed(Reply::ok("abc").header("Content-Length", "abc"));
    let proxy = proxy();
    let response = get(proxy, &origin.url("/bad"));
    assert_eq!(response.status, 502);
}

#[test]
fn conflicting_upstream_content_lengths_are_502() {
    let origin = Origin::fixed(Reply::raw(
        &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
    ));
    let proxy = proxy();
    assert_eq!(get(proxy, &origin.url("/bad")).status, 502);
}

#[test]
fn garbage_from_the_origin_is_502() {
    let origin = Origin::fixed(Reply::raw(&b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..]));
    let proxy = proxy();
    assert_eq!(get(proxy, &origin.url("/ssh")).status, 502);
}

#[test]
fn origin_closing_without_an_answer_is_502() {
    let origin = Origin::fixed(Reply::raw(Vec::new()));
    let proxy = proxy();
    assert_eq!(get(proxy, &origin.url("/gone")).status, 502);
}

#[test]
fn every_exchange_closes_the_connection() {
    let origin = Origin::fixed(Reply::ok("one"));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    let response = client.request(&Req::get(&origin.url("/")).header("Connection", "keep-alive"));
    assert_eq!(response.body, b"one");
    assert!(response.says_close());
    client.assert_closed();
}

#[test]
fn stage1_binary_smoke_test() {
    let origin = Origin::fixed(Reply::ok("from the binary"));
    let running = RunningBinary::start(env!("CARGO_BIN_EXE_stage1"), &["--port", "0"]);
    let response = get(running.addr, &origin.url("/smoke"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"from the binary");
    assert_eq!(response.header("Via"), Some("1.1 webproxy"));
    assert_eq!(origin.last_request().request_line(), "GET /smoke HTTP/1.1");
}

#[test]
fn a_response_with_both_framings_is_relayed_by_its_chunks() {
    // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3), and the
    // stale Content-Length must not reach the client.
    let origin = Origin::fixed(Reply::raw(
        &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
           6\r\nchunks\r\n0\r\n\r\n"[..],
    ));
    let proxy = proxy();
    let response = get(proxy, &origin.url("/both"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"chunks");
    assert!(!response.has_header("Content-Length"));
}

#[test]
fn odd_but_legal_response_fields_are_cleaned_up() {
    // RFC 9112 §5.1 and §5.2: a proxy strips whitespace before the colon
    // and unfolds obsolete line folding in responses instead of refusing.
    let origin = Origin::fixed(Reply::raw(
        &b"HTTP/1.1 200 OK\r\nX-Spaced : yes\r\nX-Folded: one\r\n  two\r\n\
           Content-Length: 2\r\n\r\nok"[..],
    ));
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    client.send(Req::get(&origin.url("/odd")).to_bytes());
    let response = client.read_response();
    assert_eq!(response.body, b"ok");
    assert_eq!(response.header("X-Spaced"), Some("yes"));
    let folded = response.header("X-Folded").expect("X-Folded kept");
    assert!(
        folded.starts_with("one") && folded.ends_with("two") && !folded.contains('\n'),
        "{folded:?}"
    );
}

#[test]
fn a_fragment_is_not_sent_to_the_origin() {
    let origin = Origin::fixed(no_content());
    let proxy = proxy();
    get(proxy, &origin.url("/page?x=1#section"));
    assert_eq!(origin.last_request().target, "/page?x=1");
    // A fragment right behind the authority: the path is still `/`.
    get(proxy, &format!("http://{}#top", origin.authority()));
    assert_eq!(origin.last_request().target, "/");
}

#[test]
fn a_204_or_1xx_reaches_the_client_without_framing_fields() {
    // RFC 9110 §8.6 and RFC 9112 §6.1: no Content-Length or
    // Transfer-Encoding in a 1xx or 204. The origin sends both anyway, and
    // five stray bytes after its 204.
    let origin = Origin::routes([
        (
            "/204",
            Reply::raw(
                &b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\
                   Transfer-Encoding: chunked\r\nX-A: 1\r\n\r\nhello"[..],
            ),
        ),
        (
            "/103",
            Reply::raw(
                &b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\nContent-Length: 3\r\n\
                   Transfer-Encoding: chunked\r\n\r\n\
                   HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
            ),
        ),
    ]);
    let proxy = proxy();
    let mut client = Client::connect(proxy);
    client.send(Req::get(&origin.url("/204")).to_bytes());
    let response = client.read_response();
    assert_eq!(response.status, 204);
    assert_eq!(response.header("X-A"), Some("1"));
    for name in ["Content-Length", "Transfer-Encoding"] {
        assert!(!response.has_header(name), "the 204 carries {name}");
    }
    client.assert_closed();

    let mut client = Client::connect(proxy);
    client.send(Req::get(&origin.url("/103")).to_bytes());
    let interim = client.read_response();
    assert_eq!(interim.status, 103);
    assert_eq!(interim.header("Link"), Some("</s.css>"));
    for name in ["Content-Length", "Transfer-Encoding"] {
        assert!(!interim.has_header(name), "the 103 carries {name}");
    }
    let last = client.read_response();
    assert_eq!((last.status, last.body.as_slice()), (200, &b"ok"[..]));
}

#[test]
fn an_invalid_host_field_is_400() {
    // RFC 9112 §3.2: a Host whose value is not `host[:port]` is a 400, even
    // though the absolute-form target decides where the request goes.
    for host in [
        "exa mple",
        "a.test:http",
        "user@a.test",
        "a.test/path",
        "[::1",
        "a\"b.test",
        "a.test:1:2",
    ] {
        let response = refused(
            &request_with("http://127.0.0.1:9/", &format!("Host: {host}\r\n")),
            400,
        );
        assert!(response.body_text().contains("Host"), "{host}");
    }
}

#[test]
fn odd_but_valid_host_fields_are_served() {
    let origin = Origin::fixed(Reply::ok("ok"));
    let proxy = proxy();
    for host in [
        "",
        "A.Test",
        "a.test:",
        "[::1]:8080",
        "10.0.0.1",
        "x_y.test",
    ] {
        let req = Req::get(&origin.url("/")).host(host);
        let response = Client::connect(proxy).request(&req);
        assert_eq!(response.status, 200, "Host: {host:?}");
        // The origin gets the Host of the target, not the client's.
        assert_eq!(
            origin.last_request().header("Host"),
            Some(&*origin.authority())
        );
    }
}

#[test]
fn http_1_2_is_served_as_http_1_1() {
    // RFC 9110 §2.5: a later minor version is handled as the highest minor
    // version the recipient implements.
    let origin = Origin::fixed(Reply::ok("ok"));
    let proxy = proxy();
    let response = Client::connect(proxy).request(&Req::get(&origin.url("/v")).version("HTTP/1.2"));
    assert_eq!(response.status, 200);
    assert_eq!(response.version, "HTTP/1.1");
    assert_eq!(origin.last_request().request_line(), "GET /v HTTP/1.1");
}

#[test]
fn other_major_versions_are_505() {
    // RFC 9110 §15.6.6. httparse refuses any version but 1.0 and 1.1; the
    // proxy looks at what it refused.
    for version in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9"] {
        let response = refused(
            &format!("GET http://127.0.0.1:9/ {version}\r\nHost: 127.0.0.1:9\r\n\r\n").into_bytes(),
            505,
        );
        assert!(response.body_text().contains(version), "{version}");
    }
    // Not `HTTP/DIGIT.DIGIT` at all: malformed.
    for version in ["HTTP/1.10", "HTTP/2", "http/1.1"] {
        refused(
            &format!("GET http://127.0.0.1:9/ {version}\r\nHost: 127.0.0.1:9\r\n\r\n").into_bytes(),
            400,
        );
    }
}
