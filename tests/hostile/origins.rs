//! Hostile origins: responses with broken or doubled framing, floods of
//! interim responses, status lines that are no status lines, heads that
//! never end, bodies cut short.
//!
//! Every response is marked cacheable (`max-age=3600`), so a proxy that
//! stored what it should not would show it: after each case the origin
//! turns well-behaved, and the same URL, fetched again, must come back as
//! the good response, or (where the hostile one was sound) as exactly what
//! the client got the first time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use crate::{assert_no_slot_leaked, read_final, run_all, short, stage5};

/// What the client must get from a hostile origin.
#[derive(Clone, Copy, Debug)]
enum Got {
    /// A whole response with this status.
    Whole(u16),
    /// A head with this status, then a body that ends too early.
    CutShort(u16),
}

/// What the same URL may give afterwards.
#[derive(Clone, Copy, Debug, PartialEq)]
enum After {
    /// The good response: nothing was stored.
    Good,
    /// The good response, or the first answer again, whole.
    MayKeep,
}

use After::{Good, MayKeep};
use Got::{CutShort, Whole};

struct OriginCase {
    name: &'static str,
    reply: Reply,
    got: Got,
    after: After,
}

fn case(name: &'static str, reply: Reply, got: Got, after: After) -> OriginCase {
    OriginCase {
        name,
        reply,
        got,
        after,
    }
}

/// A cacheable 200 head with these fields, then these body bytes, then
/// the origin closes.
fn ok(fields: &str, body: &str) -> Reply {
    raw(&format!("HTTP/1.1 200 OK\r\n{CACHEABLE}{fields}\r\n{body}"))
}

fn raw(text: &str) -> Reply {
    Reply::raw(text.as_bytes().to_vec())
}

/// These bytes one at a time, 50 ms apart: a head that takes longer than
/// the proxy's upstream read timeout (1 s in tests), though every byte comes
/// well within it.
fn drip(text: &str) -> Reply {
    let bytes = text.bytes().map(|b| vec![b]).collect();
    Reply::raw_pieces(bytes).pace(Duration::from_millis(50))
}

const CACHEABLE: &str = "Cache-Control: max-age=3600\r\n";
const TE: &str = "Transfer-Encoding: chunked\r\n";

// One case a line: the table reads better unwrapped.
#[rustfmt::skip]
fn origin_cases() -> Vec<OriginCase> {
    let flood = "HTTP/1.1 102 Processing\r\n\r\n".repeat(1000);
    let trailers = "X-T: t\r\n".repeat(12_000);
    let wide: String = (0..70).map(|i| format!("X-{i}: {}\r\n", "w".repeat(1000))).collect();
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    vec![
        case("Content-Length and chunked", ok(&format!("Content-Length: 3\r\n{TE}"), "5\r\nhello\r\n0\r\n\r\n"), Whole(200), MayKeep),
        case("conflicting Content-Length", ok("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), Whole(502), Good),
        case("Content-Length list 5, 6", ok("Content-Length: 5, 6\r\n", "hello!"), Whole(502), Good),
        case("negative Content-Length", ok("Content-Length: -5\r\n", "hello"), Whole(502), Good),
        case("hex Content-Length", ok("Content-Length: 0x5\r\n", "hello"), Whole(502), Good),
        case("Content-Length with a no-break space", ok("Content-Length: \u{a0}5\r\n", "hello"), Whole(502), Good),
        case("overflowing Content-Length", ok("Content-Length: 99999999999999999999\r\n", "hello"), Whole(502), Good),
        case("chunk size not hex", ok(TE, "zz\r\nhello\r\n0\r\n\r\n"), CutShort(200), Good),
        case("overflowing chunk size", ok(TE, "10000000000000005\r\nhello\r\n0\r\n\r\n"), CutShort(200), Good),
        case("chunk longer than its size", ok(TE, "5\r\nhello, world\r\n0\r\n\r\n"), CutShort(200), Good),
        case("trailers of 70 KiB", ok(TE, &format!("5\r\nhello\r\n0\r\n{trailers}\r\n")), CutShort(200), Good),
        case("close in the middle of the body", ok("Content-Length: 100\r\n", "hello"), CutShort(200), Good),
        case("close in the middle of a chunk", ok(TE, "a\r\nhel"), CutShort(200), Good),
        case("close before the last chunk", ok(TE, "5\r\nhello\r\n"), CutShort(200), Good),
        case("a flood of 1xx", raw(&format!("{flood}HTTP/1.1 200 OK\r\n{CACHEABLE}Content-Length: 2\r\n\r\nok")), Whole(502), Good),
        case("101 unasked", raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nxxxx"), Whole(502), Good),
        case("status 2000", raw(&format!("HTTP/1.1 2000 OK\r\n{CACHEABLE}Content-Length: 2\r\n\r\nok")), Whole(502), Good),
        case("status 099", raw(&format!("HTTP/1.1 099 Low\r\n{CACHEABLE}Content-Length: 2\r\n\r\nok")), Whole(502), Good),
        case("status 600", raw(&format!("HTTP/1.1 600 High\r\n{CACHEABLE}Content-Length: 2\r\n\r\nok")), Whole(502), Good),
        case("an HTTP/2.0 status line", raw(&format!("HTTP/2.0 200 OK\r\n{CACHEABLE}Content-Length: 2\r\n\r\nok")), Whole(502), Good),
        case("an ICY status line", raw(&format!("ICY 200 OK\r\n{CACHEABLE}Content-Length: 2\r\n\r\nok")), Whole(502), Good),
        case("no status line", raw("hello\r\n\r\n"), Whole(502), Good),
        case("nothing at all", raw(""), Whole(502), Good),
        case("a head of 70 KiB", ok(&wide, ""), Whole(502), Good),
        case("101 fields", ok(&many, ""), Whole(502), Good),
        case("NUL in a field", ok("X-A: a\0b\r\nContent-Length: 2\r\n", "ok"), Whole(502), Good),
        case("bare CR in a field", ok("X-A: a\rb\r\nContent-Length: 2\r\n", "ok"), Whole(502), Good),
        case("204 with framing and stray bytes", raw(&format!("HTTP/1.1 204 No Content\r\n{CACHEABLE}Content-Length: 5\r\n{TE}\r\nhello")), Whole(204), MayKeep),
        case("103 with framing fields", raw(&format!("HTTP/1.1 103 Early Hints\r\nContent-Length: 3\r\n{TE}\r\nHTTP/1.1 200 OK\r\n{CACHEABLE}Content-Length: 2\r\n\r\nok")), Whole(200), MayKeep),
        case("a second response after the body", ok("Content-Length: 2\r\n", &format!("okHTTP/1.1 200 OK\r\n{CACHEABLE}Content-Length: 8\r\n\r\npoisoned")), Whole(200), MayKeep),
        case("a final coding other than chunked", ok("Transfer-Encoding: gzip\r\n", "not really gzip"), Whole(200), Good),
        case("a reason phrase in obs-text", Reply::raw([&b"HTTP/1.1 200 Caf\xe9 \xff\r\n"[..], CACHEABLE.as_bytes(), b"Content-Length: 2\r\n\r\nok"].concat()), Whole(200), MayKeep),
        case("a reason phrase with a NUL", Reply::raw(format!("HTTP/1.1 200 O\0K\r\n{CACHEABLE}Content-Length: 2\r\n\r\nok").into_bytes()), Whole(502), Good),
        case("obs-fold", ok("X-A: one\r\n two\r\nContent-Length: 2\r\n", "ok"), Whole(200), MayKeep),
        case("space before a colon", ok("X-A : 1\r\nContent-Length: 2\r\n", "ok"), Whole(200), MayKeep),
        case("silence", Reply::silent(), Whole(504), Good),
        case("a head dripping in", drip(&format!("HTTP/1.1 200 OK\r\n{CACHEABLE}Content-Length: 2\r\n\r\nok")), Whole(504), Good),
        case("a body that stalls", Reply::raw_pieces(vec![format!("HTTP/1.1 200 OK\r\n{CACHEABLE}Content-Length: 4\r\n\r\nok").into_bytes(), b"ok".to_vec()]).pace(Duration::from_secs(3)), CutShort(200), Good),
    ]
}

/// Fetches `url` once from the hostile origin and once more from the good
/// one, and checks both answers and a fresh request (see the module
/// documentation).
fn check_origin(
    proxy: std::net::SocketAddr,
    origin: &Origin,
    hostile: &Mutex<Option<Reply>>,
    i: usize,
    case: &OriginCase,
) {
    let path = format!("/c/{i}");
    *hostile.lock().unwrap_or_else(|e| e.into_inner()) = Some(case.reply.clone());
    let mut client = Client::connect(proxy);
    client.send(Req::get(&origin.url(&path)).to_bytes());
    let result = read_final(&mut client, "GET");
    *hostile.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let (first, interim) = result.expect("an answer");
    assert!(interim <= 32, "{interim} interim responses relayed");
    match case.got {
        Whole(status) => {
            assert_eq!(first.status, status, "{}", short(&first));
            assert!(first.complete, "the body was cut short");
        }
        CutShort(status) => {
            assert_eq!(first.status, status);
            assert!(!first.complete, "a broken body looked complete");
        }
    }
    // The same URL again, now that the origin behaves.
    let again = get(proxy, &origin.url(&path));
    let good = (200, format!("good {path}"));
    let seen = (again.status, again.body_text());
    let kept = (first.status, first.body_text());
    assert!(
        seen == good || (case.after == MayKeep && first.complete && seen == kept),
        "afterwards: {seen:?}"
    );
    let fresh = get(proxy, &origin.url(&format!("/fresh/{i}")));
    assert_eq!(fresh.body_text(), format!("good /fresh/{i}"));
}

#[test]
fn hostile_origins_never_reach_the_cache_broken() {
    let hostile = Arc::new(Mutex::new(None::<Reply>));
    let slot = Arc::clone(&hostile);
    let origin = Origin::start(move |request| {
        let reply = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match reply {
            Some(reply) if request.path().starts_with("/c/") => reply,
            _ => Reply::ok(format!("good {}", request.target))
                .header("Cache-Control", "max-age=3600"),
        }
    });
    let proxy = stage5();
    let cases = origin_cases();
    assert!(cases.len() >= 15, "{} cases", cases.len());
    run_all(
        &cases,
        |c| c.name.to_string(),
        |i, c| check_origin(proxy, &origin, &hostile, i, c),
    );
    assert_no_slot_leaked(proxy);
}
