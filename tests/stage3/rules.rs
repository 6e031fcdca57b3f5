//! The smaller rules of issue 12: a HEAD response updates the stored GET
//! (RFC 9111 §4.3.5), Vary values are compared after normalisation (§4.1),
//! conditionals (RFC 9110 §13.1), a request's `no-store`, `Set-Cookie`
//! kept out of the shared store, and a response with two framings.

use super::*;

// ------------------------------------------------------------ HEAD, §4.3.5

#[test]
fn a_head_response_updates_the_stored_get() {
    let bench = Bench::new();
    let origin = bench.origin(|request| {
        let reply = match request.method.as_str() {
            "HEAD" => Reply::ok("body")
                .header("Cache-Control", "max-age=600")
                .header("X-Version", "2"),
            _ => Reply::ok("body")
                .header("Cache-Control", "max-age=60")
                .header("X-Version", "1"),
        };
        reply.header("ETag", "\"h\"")
    });
    let url = origin.url("/described");
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);
    bench.advance(61);
    // Stale: the HEAD goes to the origin, and its answer describes the
    // same representation (same ETag, same length).
    let head = bench.request(&Req::new("HEAD", &url));
    assert_eq!((head.status, head.header("X-Version")), (200, Some("2")));
    assert_eq!(origin.last_request().method, "HEAD");

    bench.advance(500); // fresh under the HEAD's max-age=600 only
    let get = bench.get(&url);
    assert_eq!(cache_status(&get), HIT);
    assert_eq!(get.header("X-Version"), Some("2"));
    assert_eq!(get.body, b"body");
    assert_eq!(origin.hits(), 2);
}

#[test]
fn a_head_response_for_another_version_makes_the_stored_get_go() {
    let bench = Bench::new();
    let (origin, script) = Script::new(
        &bench,
        Reply::ok("old body")
            .header("Cache-Control", "max-age=600")
            .header("ETag", "\"old\""),
    );
    let url = origin.url("/changed");
    bench.get(&url);
    script.set(
        Reply::ok("a newer, longer body")
            .header("Cache-Control", "max-age=600")
            .header("ETag", "\"new\""),
    );
    let head = bench.request(&Req::new("HEAD", &url).header("Cache-Control", "no-cache"));
    assert_eq!(head.header("ETag"), Some("\"new\""));
    // The stored GET is out of date: the next GET fetches the new one.
    let get = bench.get(&url);
    assert_eq!(
        (cache_status(&get), get.body_text()),
        (MISS_STORED, "a newer, longer body".into())
    );
    assert_eq!(origin.hits(), 3);
}

// ------------------------------------------------------------- Vary, §4.1

#[test]
fn vary_values_are_compared_after_normalisation() {
    let bench = Bench::new();
    let origin = bench.origin(|request| {
        Reply::ok(format!("for {:?}", request.header("Accept-Language")))
            .header("Cache-Control", "max-age=60")
            .header("Vary", "Accept-Language, Accept-Encoding")
    });
    let url = origin.url("/negotiated");
    let ask = |lang: &str, enc: &str| {
        bench.request(
            &Req::get(&url)
                .header("Accept-Language", lang)
                .header("Accept-Encoding", enc),
        )
    };
    let first = ask("en-US,fr;q=0.5", "gzip, br");
    assert_eq!(cache_status(&first), MISS_STORED);
    // The same lists in other spacing and case select the same variant.
    for (lang, enc) in [
        ("EN-us , FR;q=0.5", "GZIP,br"),
        ("en-us,\tfr ; q=0.5,", "gzip , BR"),
    ] {
        let again = ask(lang, enc);
        assert_eq!(cache_status(&again), HIT, "{lang:?} {enc:?}");
        assert_eq!(again.body, first.body);
    }
    // Another order is another preference: a miss.
    assert_eq!(
        cache_status(&ask("fr;q=0.5, en-US", "gzip, br")),
        MISS_STORED
    );
    assert_eq!(origin.hits(), 2);
}

// ----------------------------------------------------- conditionals, §13.1

#[test]
fn if_none_match_compares_weakly() {
    let bench = Bench::new();
    let origin = bench.fixed(
        Reply::ok("weakly tagged")
            .header("Cache-Control", "max-age=60")
            .header("ETag", "W/\"w1\""),
    );
    let url = origin.url("/weak");
    bench.get(&url);
    for matching in ["\"w1\"", "W/\"w1\"", "\"a\", \"w1\"", "*"] {
        let r = bench.request(&Req::get(&url).header("If-None-Match", matching));
        assert_eq!((r.status, cache_status(&r)), (304, HIT), "{matching}");
        assert_eq!(r.header("ETag"), Some("W/\"w1\""));
    }
    let other = bench.request(&Req::get(&url).header("If-None-Match", "\"w2\""));
    assert_eq!(
        (other.status, &other.body[..]),
        (200, &b"weakly tagged"[..])
    );
    assert_eq!(origin.hits(), 1);
}

#[test]
fn validators_go_to_the_origin_byte_for_byte() {
    let bench = Bench::new();
    // A weak tag with a comma and a semicolon, and an obsolete date format.
    let etag = "W/\"v;1, 2\"";
    let modified = "Sunday, 06-Nov-94 08:49:37 GMT";
    let origin = bench.fixed(
        Reply::ok("odd validators")
            .header("Cache-Control", "max-age=60")
            .header("ETag", etag)
            .header("Last-Modified", modified),
    );
    let url = origin.url("/odd");
    // A miss: the client's own validators pass through untouched.
    let theirs = "\"a\" ,W/\"b\"";
    bench.request(&Req::get(&url).header("If-None-Match", theirs));
    assert_eq!(origin.last_request().header("If-None-Match"), Some(theirs));
    bench.get(&url);
    // A validation: ours are the origin's, exactly as it sent them.
    bench.advance(61);
    bench.get(&url);
    let asked = origin.last_request();
    assert_eq!(asked.header("If-None-Match"), Some(etag));
    assert_eq!(asked.header("If-Modified-Since"), Some(modified));
}

#[test]
fn if_modified_since_needs_a_stored_last_modified() {
    let bench = Bench::new();
    let modified = bench.date(-3600);
    let origin = Origin::routes([
        (
            "/undated",
            Reply::ok("no modification date").header("Cache-Control", "max-age=60"),
        ),
        (
            "/dated",
            Reply::ok("modified an hour ago")
                .header("Cache-Control", "max-age=60")
                .header("Last-Modified", &modified),
        ),
    ]);
    let since = bench.date(10);
    for path in ["/undated", "/dated"] {
        bench.get(&origin.url(path));
    }
    // The stored Date is not a modification date (RFC 9110 §13.1.3).
    let undated =
        bench.request(&Req::get(&origin.url("/undated")).header("If-Modified-Since", &since));
    assert_eq!((undated.status, cache_status(&undated)), (200, HIT));
    assert_eq!(undated.body, b"no modification date");
    let dated = bench.request(&Req::get(&origin.url("/dated")).header("If-Modified-Since", &since));
    assert_eq!((dated.status, cache_status(&dated)), (304, HIT));
    assert_eq!(origin.hits(), 2);
}

// ------------------------------------------------- request no-store, §5.2.1.5

#[test]
fn a_request_with_no_store_leaves_the_stored_entry_as_it_was() {
    let bench = Bench::new();
    let (origin, script) = Script::new(
        &bench,
        Reply::ok("kept")
            .header("Cache-Control", "max-age=60")
            .header("ETag", "\"n\"")
            .header("X-Version", "1"),
    );
    let url = origin.url("/untouched");
    bench.get(&url);
    script.set(
        Reply::with_status(304, "")
            .header("Cache-Control", "max-age=600")
            .header("ETag", "\"n\"")
            .header("X-Version", "2"),
    );
    bench.advance(61);
    let no_store = bench.request(&Req::get(&url).header("Cache-Control", "no-store"));
    assert_eq!(cache_status(&no_store), REVALIDATED);
    assert_eq!(no_store.header("X-Version"), Some("2"));
    // Nothing of that exchange was kept: the entry is still stale.
    let next = bench.get(&url);
    assert_eq!(cache_status(&next), REVALIDATED);
    assert_eq!(origin.hits(), 3);
    assert_eq!(cache_status(&bench.get(&url)), HIT);
}

// ------------------------------------------------------------- Set-Cookie

// ANCHOR: set_cookie_test
#[test]
fn a_response_with_set_cookie_is_shared_only_when_the_origin_says_so() {
    let bench = Bench::new();
    let served = Arc::new(AtomicUsize::new(0));
    let origin = bench.origin({
        let served = Arc::clone(&served);
        move |request| {
            let n = served.fetch_add(1, Ordering::SeqCst);
            let cc = match request.path() {
                "/shared" => "public, max-age=60",
                _ => "max-age=60",
            };
            Reply::ok("welcome")
                .header("Cache-Control", cc)
                .header("Set-Cookie", &format!("session={n}"))
        }
    });
    // Alice and Bob each get their own session cookie.
    let alice = bench.get(&origin.url("/welcome"));
    let bob = bench.get(&origin.url("/welcome"));
    assert_eq!(cache_status(&alice), MISS);
    assert_eq!(cache_status(&bob), MISS);
    assert_ne!(alice.header("Set-Cookie"), bob.header("Set-Cookie"));
    // `public` says the response, cookie and all, is the same for all.
    assert_eq!(
        cache_status(&bench.get(&origin.url("/shared"))),
        MISS_STORED
    );
    assert_eq!(cache_status(&bench.get(&origin.url("/shared"))), HIT);
    assert_eq!(origin.hits(), 3);
}
// ANCHOR_END: set_cookie_test

#[test]
fn a_cookie_that_arrives_with_a_304_is_not_shared() {
    let bench = Bench::new();
    let (origin, script) = Script::new(
        &bench,
        Reply::ok("page")
            .header("Cache-Control", "max-age=60")
            .header("ETag", "\"c\""),
    );
    let url = origin.url("/page");
    bench.get(&url);
    script.set(
        Reply::with_status(304, "")
            .header("ETag", "\"c\"")
            .header("Set-Cookie", "session=alice"),
    );
    bench.advance(61);
    let alice = bench.get(&url);
    assert_eq!(alice.header("Set-Cookie"), Some("session=alice"));
    script.set(
        Reply::ok("page")
            .header("Cache-Control", "max-age=60")
            .header("ETag", "\"c\""),
    );
    let bob = bench.get(&url);
    assert!(!bob.has_header("Set-Cookie"), "Bob got Alice's cookie");
    assert_eq!(cache_status(&bob), MISS_STORED);
}

// ----------------------------------------------- two framings, RFC 9112 §6.1

#[test]
fn a_response_with_both_framings_is_relayed_chunked_and_never_stored() {
    let bench = Bench::new();
    let chunks = vec![b"hello".to_vec(), b" world".to_vec()];
    let origin = bench.fixed(
        Reply::chunked(chunks)
            .header("Transfer-Encoding", "chunked")
            .header("Content-Length", "5")
            .header("Cache-Control", "max-age=60"),
    );
    let url = origin.url("/smuggled");
    for _ in 0..2 {
        let response = bench.get(&url);
        // The chunked framing decides, and the Content-Length is gone.
        assert_eq!(
            (response.status, &response.body[..]),
            (200, &b"hello world"[..])
        );
        assert_eq!(response.framing, Framing::Chunked);
        assert!(!response.has_header("Content-Length"));
        assert_eq!(cache_status(&response), MISS);
    }
    assert_eq!(origin.hits(), 2, "stored although its framing was suspect");
    assert_eq!(
        origin.connections(),
        2,
        "its upstream connection was reused"
    );
}
