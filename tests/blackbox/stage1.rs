//! Stage 1: a GET relay. The request reaches the origin whole, in
//! origin-form, however TCP splits it (RFC 9112 §3.2.1, §2.2); the response
//! reaches the client whole, however its body is framed (RFC 9112 §6.3);
//! the proxy says it was there (`Via`, RFC 9110 §7.6.3); and it answers
//! even when the origin cannot be reached.

use std::thread;
use std::time::Duration;

use crate::common::*;
use crate::subject::run;

/// Fetches `reply`'s body through the proxy and checks it arrives byte for
/// byte.
fn relays(reply: Reply, body: &[u8]) {
    run(1, |target| {
        let origin = Origin::fixed(reply.clone());
        let proxy = target.start(&Default::default());
        proxy
            .get(&origin.url("/file"))
            .expect_status(200)
            .expect_body(body);
    });
}

#[test]
fn relays_a_content_length_body() {
    let body = text(100 * KIB);
    relays(Reply::ok(body.clone()), &body);
}

#[test]
fn relays_a_chunked_body() {
    let chunks = vec![
        b"a".to_vec(),
        binary(5000, 1),
        binary(70_000, 2),
        b"xyz".to_vec(),
    ];
    relays(Reply::chunked(chunks.clone()), &chunks.concat());
}

#[test]
fn relays_a_body_that_ends_when_the_origin_closes() {
    let body = text(100 * KIB);
    relays(Reply::close_delimited(body.clone()), &body);
}

#[test]
fn relays_a_binary_mebibyte() {
    let body = binary(MIB, 3);
    relays(Reply::ok(body.clone()), &body);
}

#[test]
fn relays_204_and_304_which_have_no_body() {
    run(1, |target| {
        let origin = Origin::routes([
            ("/empty", Reply::with_status(204, "")),
            (
                "/same",
                Reply::with_status(304, "").header("ETag", "\"v1\""),
            ),
        ]);
        let proxy = target.start(&Default::default());
        proxy.get(&origin.url("/empty")).expect_status(204);
        let req = Req::get(&origin.url("/same")).header("If-None-Match", "\"v1\"");
        proxy
            .request(&req)
            .expect_status(304)
            .expect_header("ETag", Some("\"v1\""));
    });
}

// The checks about heads answer with an empty body, so that a proxy that
// mishandles bodies fails only the checks about bodies.

#[test]
fn the_origin_gets_the_path_and_the_host() {
    run(1, |target| {
        let origin = Origin::fixed(Reply::ok(""));
        let proxy = target.start(&Default::default());
        proxy.get(&origin.url("/a/b?c=d")).expect_status(200);
        let seen = origin.last_request();
        assert_eq!(
            seen.request_line(),
            "GET /a/b?c=d HTTP/1.1",
            "the origin must get the request line in origin-form"
        );
        assert_eq!(seen.header("Host"), Some(origin.authority().as_str()));
    });
}

#[test]
fn reads_a_request_that_arrives_in_pieces() {
    run(1, |target| {
        let origin = Origin::fixed(Reply::ok(""));
        let proxy = target.start(&Default::default());
        let mut client = proxy.connect();
        let req = Req::get(&origin.url("/pieces"))
            .header("Accept", "*/*")
            .header("User-Agent", "blackbox");
        // The request line in one write, then each field line in two.
        let bytes = req.to_bytes();
        let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap_or(0) + 2;
        client.send(&bytes[..line_end]);
        for line in bytes[line_end..].split_inclusive(|&b| b == b'\n') {
            for half in line.chunks(line.len().div_ceil(2)) {
                thread::sleep(Duration::from_millis(10));
                client.send(half);
            }
        }
        client.read_response().expect_status(200);
        assert_eq!(origin.last_request().request_line(), "GET /pieces HTTP/1.1");
    });
}

#[test]
fn reads_a_request_head_larger_than_one_read() {
    run(1, |target| {
        let origin = Origin::fixed(Reply::ok("crumbs"));
        let proxy = target.start(&Default::default());
        // A browser with a few cookies sends heads this size all the time.
        let cookie = format!("session={}", "c".repeat(3000));
        let req = Req::get(&origin.url("/cookies")).header("Cookie", &cookie);
        proxy
            .request(&req)
            .expect_status(200)
            .expect_body(b"crumbs");
        assert_eq!(
            origin.last_request().header("Cookie"),
            Some(cookie.as_str()),
            "the Cookie field did not reach the origin whole"
        );
    });
}

#[test]
fn says_via_both_ways() {
    run(1, |target| {
        let origin = Origin::fixed(Reply::ok(""));
        let proxy = target.start(&Default::default());
        let response = proxy.get(&origin.url("/via"));
        response.expect_status(200);
        let via = |v: Option<&str>| v.is_some_and(|v| v.starts_with("1.1 "));
        response.expect(
            via(response.header("Via")),
            "the response has no Via: 1.1 ... field (RFC 9110 §7.6.3)",
        );
        assert!(
            via(origin.last_request().header("Via")),
            "the request reached the origin without a Via: 1.1 ... field (RFC 9110 §7.6.3)"
        );
    });
}

#[test]
fn an_origin_that_keeps_its_connection_open_does_not_hold_up_the_next_client() {
    run(1, |target| {
        // An HTTP/1.1 origin keeps its connection open after a response
        // unless asked not to (RFC 9112 §9.3); this one does.
        let origin = Origin::fixed(Reply::ok(""));
        let proxy = target.start(&Default::default());
        proxy.get(&origin.url("/first")).expect_status(200);
        proxy.get(&origin.url("/second")).expect_status(200);
    });
}

#[test]
fn an_unreachable_origin_gets_an_answer() {
    run(1, |target| {
        let proxy = target.start(&Default::default());
        let nowhere = closed_port();
        let response = proxy.get(&format!("http://{nowhere}/"));
        response.expect(
            (502..=504).contains(&response.status),
            format_args!(
                "expected 502 Bad Gateway (or 503, 504) for an origin nobody listens on, got {}",
                response.status_line()
            ),
        );
    });
}
