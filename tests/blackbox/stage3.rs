//! Stage 3: a shared cache (RFC 9111). A fresh stored response is served
//! without asking the origin (§4.2), `no-store` is never served from the
//! cache (§5.2.2.5), and the whole target URI is the key (§2), query
//! included.

use crate::common::*;
use crate::subject::run;

/// Fetches `url` twice, on one connection when the proxy keeps it open,
/// and returns both responses.
fn fetch_twice(proxy: &crate::subject::Proxy, url: &str) -> (Response, Response) {
    let mut client = proxy.connect();
    let first = client.request(&Req::get(url));
    first.expect_status(200);
    if first.says_close() {
        // Wait for the close: a proxy that stores the response stores it
        // before it closes, and the second fetch must not race it.
        client.assert_closed();
        client = proxy.connect();
    }
    let second = client.request(&Req::get(url));
    second.expect_status(200);
    (first, second)
}

#[test]
fn a_fresh_response_is_served_from_the_cache() {
    run(3, |target| {
        let origin = Origin::fixed(
            Reply::ok("fresh for a minute")
                .header("Cache-Control", "max-age=60")
                .header("ETag", "\"c1\""),
        );
        let proxy = target.start(&Default::default());
        let (_, second) = fetch_twice(&proxy, &origin.url("/fresh"));
        second.expect_body(b"fresh for a minute");
        second.expect(
            origin.hits() == 1,
            format_args!(
                "the origin was asked {} times: max-age=60 lets the proxy answer the second \
                 fetch from its cache",
                origin.hits()
            ),
        );
    });
}

#[test]
fn a_no_store_response_is_not_served_from_the_cache() {
    run(3, |target| {
        // Fresh for a minute, were it not for no-store, which wins.
        let origin = Origin::start(|r| {
            Reply::ok(format!("answer {}", r.connection))
                .header("Cache-Control", "no-store, max-age=60")
        });
        let proxy = target.start(&Default::default());
        let (_, second) = fetch_twice(&proxy, &origin.url("/private"));
        second.expect(
            origin.hits() == 2,
            format_args!(
                "the origin was asked {} time(s): a no-store response must not be reused",
                origin.hits()
            ),
        );
    });
}

#[test]
fn the_query_is_part_of_the_cache_key() {
    run(3, |target| {
        let origin = Origin::start(|r| {
            Reply::ok(format!("answer for {}", r.target)).header("Cache-Control", "max-age=60")
        });
        let proxy = target.start(&Default::default());
        let mut client = proxy.connect();
        for query in ["?a=1", "?a=2"] {
            let response = client.request(&Req::get(&origin.url(&format!("/page{query}"))));
            response
                .expect_status(200)
                .expect_body(format!("answer for /page{query}").as_bytes());
            if response.says_close() {
                client.assert_closed();
                client = proxy.connect();
            }
        }
    });
}
