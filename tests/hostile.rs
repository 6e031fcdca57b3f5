//! Hostile input on the wire: requests as an attacker would send them, and
//! origins that answer with broken framing (issue 11, section 5).
//!
//! Every case runs against a whole stage 5 proxy in-process (access rules,
//! CONNECT, the cache and the relay), so a request meets every layer that
//! could misread it. The cases are tables; one runner checks each of them
//! the same way:
//!
//! 1. the status the client gets, and for the proxy's own refusals that
//!    the answer is framed, says `Connection: close`, and is followed by a
//!    close, and that the origin saw nothing;
//! 2. that the proxy still serves an ordinary request afterwards, both a
//!    fresh one and one its cache answers;
//! 3. that nothing broken was cached: the cached page still has its own
//!    body, nothing smuggled ever reached the origin, and (for the hostile
//!    origins, in `hostile/origins.rs`) the same URL fetched again from a
//!    well-behaved origin comes back whole.
//!
//! A runner collects every failing case before it fails, so one run lists
//! all of them. Each table ends by checking that every connection slot came
//! back (the stats page counts open connections).

mod common;
#[path = "hostile/origins.rs"]
mod origins;

use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use webproxy::access::AccessConfig;
use webproxy::acl::ClientAcl;
use webproxy::cache::{Cache, CacheConfig, SystemClock};
use webproxy::connect::TunnelConfig;
use webproxy::filter::LiveRules;
use webproxy::tunnel::{PortPolicy, Tunnels};

/// A stage 5 proxy as `stages/stage5.rs` builds it, with no domain rules,
/// a memory cache, loopback clients and CONNECT to port 443 only.
pub fn stage5() -> SocketAddr {
    let rules = LiveRules::load(&[], &[]).expect("no rule files load");
    let cache = Cache::new(CacheConfig::default(), Arc::new(SystemClock)).expect("cache");
    let tunnels = TunnelConfig {
        tunnels: Tunnels::new(4, Duration::from_secs(5)),
        ports: PortPolicy::parse("443").expect("port list"),
        parents: Default::default(),
    };
    let access = AccessConfig {
        rules,
        clients: ClientAcl::loopback(),
    };
    start_stage5(test_config(), cache, tunnels, access)
}

/// Runs `check` for every case, and fails once at the end with the name
/// and the reason of every case that failed.
pub fn run_all<C>(cases: &[C], name: impl Fn(&C) -> String, check: impl Fn(usize, &C)) {
    let mut failed = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| check(i, case))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {why}", name(case)));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

/// The start of a body, for a failure message: some bodies echo 10,000
/// bytes of request back.
pub fn short(response: &Response) -> String {
    response.body_text().chars().take(120).collect()
}

/// Checks that every connection slot has come back: the stats page, itself
/// on one connection, counts no other open connection.
pub fn assert_no_slot_leaked(proxy: SocketAddr) {
    let open = || {
        let page = get(proxy, &format!("http://{proxy}/stats.json")).body_text();
        let key = "\"open_connections\": ";
        let start = page.find(key).map(|i| i + key.len());
        start.and_then(|s| page[s..].split([',', '\n']).next().map(str::to_string))
    };
    assert!(
        eventually(Duration::from_secs(5), || open().as_deref() == Some("1")),
        "connections still open after every case closed: {:?}",
        open()
    );
}

/// Reads responses until a final one, and checks the rule that no 1xx or
/// 204 carries framing fields (RFC 9110 §8.6, RFC 9112 §6.1) on each.
/// Returns the final response and how many interim ones came before it.
pub fn read_final(client: &mut Client, method: &str) -> Result<(Response, usize), ReadError> {
    let mut interim = 0;
    loop {
        let response = client.try_read_response(method)?;
        if (100..200).contains(&response.status) || response.status == 204 {
            for name in ["Content-Length", "Transfer-Encoding"] {
                assert!(
                    !response.has_header(name),
                    "a {} carries {name}",
                    response.status
                );
            }
        }
        if !(100..200).contains(&response.status) {
            return Ok((response, interim));
        }
        interim += 1;
    }
}

/// What a hostile request must get.
#[derive(Clone, Debug)]
enum Expect {
    /// The proxy refuses with this status; the origin sees nothing.
    Refused(u16),
    /// The request reaches the origin with this body, and the client gets
    /// the origin's 200.
    Relayed(Vec<u8>),
    /// The client gets a 200, from the origin or the cache.
    Served,
}

fn relayed(body: impl Into<Vec<u8>>) -> Expect {
    Expect::Relayed(body.into())
}

/// One hostile request: its bytes, in writes, and what it must get.
struct Case {
    name: &'static str,
    writes: Vec<Vec<u8>>,
    /// Shut down our sending side after the last write: the proxy reads
    /// the end of the stream where it may want more.
    then_close: bool,
    expect: Expect,
}

fn case(name: &'static str, bytes: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        writes: vec![bytes.into()],
        then_close: false,
        expect,
    }
}

impl Case {
    /// The same bytes, in writes of at most `len` bytes.
    fn in_pieces(mut self, len: usize) -> Case {
        let bytes = self.writes.concat();
        self.writes = bytes.chunks(len).map(<[u8]>::to_vec).collect();
        self
    }

    fn then_close(mut self) -> Case {
        self.then_close = true;
        self
    }
}

use Expect::{Refused, Relayed, Served};

/// Nothing: the body of a relayed GET.
const NONE: &[u8] = b"";

/// The body every relayed case sends, when it sends one.
const BODY: &[u8] = b"hello";

/// A POST to the origin's `/submit` with `fields` and these body bytes.
fn post(o: &str, fields: &str, body: &str) -> Vec<u8> {
    format!("POST http://{o}/submit HTTP/1.1\r\nHost: {o}\r\n{fields}\r\n{body}").into_bytes()
}

/// A GET of the origin's `/echo` with this request line tail and fields.
fn get_echo(o: &str, fields: &str) -> Vec<u8> {
    format!("GET http://{o}/echo HTTP/1.1\r\nHost: {o}\r\n{fields}\r\n").into_bytes()
}

/// A GET of the cached `/page`, with these fields.
fn page(o: &str, fields: &str) -> Vec<u8> {
    format!("GET http://{o}/page HTTP/1.1\r\nHost: {o}\r\n{fields}\r\n").into_bytes()
}

/// `before`, these bytes, `after`: for bytes that `format!` cannot write.
fn with(before: &str, bytes: &[u8], after: &str) -> Vec<u8> {
    [before.as_bytes(), bytes, after.as_bytes()].concat()
}

const CHUNKED: &str = "5\r\nhello\r\n0\r\n\r\n";

/// The origin behind the request cases: `/page` is a cacheable page, every
/// other path answers with the method, target and body it received.
fn request_origin() -> Origin {
    Origin::start(|request| {
        if request.path() == "/page" {
            return Reply::ok("the page").header("Cache-Control", "max-age=3600");
        }
        let mut body = format!("{} {}\n", request.method, request.target).into_bytes();
        body.extend_from_slice(&request.body);
        Reply::ok(body)
    })
}

/// Sends one case, checks its answer, then checks that the proxy is still
/// whole (see the module documentation).
fn check_request(proxy: SocketAddr, origin: &Origin, i: usize, case: &Case) {
    let before = origin.hits();
    // `/smuggled` only ever travels inside another request.
    let smuggled_before = origin.hits_for("/smuggled");
    let mut client = Client::connect(proxy);
    for (n, piece) in case.writes.iter().enumerate() {
        if n > 0 {
            // Separate writes, so the proxy sees separate reads.
            thread::sleep(Duration::from_millis(20));
        }
        // The proxy may answer, and close, before it has read everything.
        if client.try_send(piece).is_err() {
            break;
        }
    }
    if case.then_close {
        client.shutdown_write();
    }
    let method = if case.writes.concat().starts_with(b"CONNECT") {
        "CONNECT"
    } else {
        "GET"
    };
    let (response, _) = read_final(&mut client, method).expect("an answer");
    match &case.expect {
        Refused(status) => {
            assert_eq!(response.status, *status, "{}", short(&response));
            assert!(response.complete && response.says_close());
            assert_eq!(
                response.header("Content-Length"),
                Some(response.body.len().to_string().as_str())
            );
            client.assert_closed();
            assert_eq!(origin.hits(), before, "the origin was asked");
        }
        Relayed(body) => {
            assert_eq!(response.status, 200, "{}", short(&response));
            assert!(response.complete);
            assert_eq!(origin.hits(), before + 1, "the origin was not asked once");
            let seen = origin.last_request();
            assert_eq!(&seen.body, body, "the origin got another body");
        }
        Served => {
            assert_eq!(response.status, 200, "{}", short(&response));
            assert!(response.complete);
        }
    }
    // Still whole: a fresh request is relayed, the cached page is intact,
    // and nothing smuggled ever reached the origin.
    let fresh = get(proxy, &origin.url(&format!("/fresh/{i}")));
    assert_eq!(fresh.body_text(), format!("GET /fresh/{i}\n"));
    let page = get(proxy, &origin.url("/page"));
    assert_eq!((page.status, page.body_text().as_str()), (200, "the page"));
    let smuggled = origin.hits_for("/smuggled") - smuggled_before;
    assert_eq!(smuggled, 0, "a smuggled request reached the origin");
}

fn run_requests(cases: impl FnOnce(&str, &str) -> Vec<Case>) -> usize {
    let origin = request_origin();
    let proxy = stage5();
    let cases = cases(&origin.authority(), &proxy.to_string());
    run_all(
        &cases,
        |c| c.name.to_string(),
        |i, c| check_request(proxy, &origin, i, c),
    );
    assert_no_slot_leaked(proxy);
    cases.len()
}

/// Request smuggling: two framings, framings spelt oddly, lengths that are
/// no numbers, chunks that lie about their size, endless trailers.
// One case a line: the tables read better unwrapped.
#[rustfmt::skip]
fn smuggling_cases(o: &str) -> Vec<Case> {
    let smuggled = format!("GET http://{o}/smuggled HTTP/1.1\r\nHost: {o}\r\n\r\n");
    let te = |value: &str| post(o, &format!("Transfer-Encoding: {value}\r\n"), CHUNKED);
    let cl = |value: &str| post(o, &format!("Content-Length: {value}\r\n"), "hello");
    let chunks = |body: &str| post(o, "Transfer-Encoding: chunked\r\n", body);
    let long_ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(8 * KIB));
    let huge_trailers = format!("5\r\nhello\r\n0\r\n{}\r\n", "X-T: t\r\n".repeat(12_000));
    vec![
        case("CL then TE", post(o, "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", CHUNKED), Refused(400)),
        case("TE then CL", post(o, "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n", CHUNKED), Refused(400)),
        case("CL with TE identity", post(o, "Content-Length: 5\r\nTransfer-Encoding: identity\r\n", "hello"), Refused(400)),
        case("TE xchunked", te("xchunked"), Refused(400)),
        case("TE chunked, identity", te("chunked, identity"), Refused(400)),
        case("TE identity, chunked", te("identity, chunked"), Refused(501)),
        case("TE chunked, chunked", te("chunked, chunked"), Refused(400)),
        case("TE chunked on two lines", post(o, "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED), Refused(400)),
        case("TE chunked then junk line", post(o, "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", CHUNKED), Refused(400)),
        case("TE with a no-break space", te("\u{a0}chunked"), Refused(400)),
        case("TE quoted", te("\"chunked\""), Refused(400)),
        case("TE with a parameter", te("chunked;q=1"), Refused(400)),
        case("TE empty", te(""), Refused(400)),
        case("TE space before colon", post(o, "Transfer-Encoding : chunked\r\n", CHUNKED), Refused(400)),
        case("TE in HTTP/1.0", format!("POST http://{o}/submit HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n{CHUNKED}"), Refused(400)),
        case("TE upper case", te("CHUNKED"), relayed(BODY)),
        case("TE after a tab", post(o, "Transfer-Encoding:\tchunked\r\n", CHUNKED), relayed(BODY)),
        case("TE with trailing spaces", te("chunked   "), relayed(BODY)),
        case("CL twice, same value", post(o, "Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), relayed(BODY)),
        case("CL twice, conflicting", post(o, "Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), Refused(400)),
        case("CL list, conflicting", cl("5, 6"), Refused(400)),
        case("CL list, same value", cl("5, 5"), relayed(BODY)),
        case("CL signed", cl("+5"), Refused(400)),
        case("CL negative", cl("-5"), Refused(400)),
        case("CL hex", cl("0x5"), Refused(400)),
        case("CL with a no-break space", cl("\u{a0}5"), Refused(400)),
        case("CL with inner space", cl("5 5"), Refused(400)),
        case("CL empty", cl(""), Refused(400)),
        case("CL overflowing", cl("99999999999999999999"), Refused(400)),
        case("CL with leading zeros", cl("005"), relayed(BODY)),
        case("CL longer than the body", cl("1000000"), Refused(400)).then_close(),
        case("chunk size not hex", chunks("zz\r\nhello\r\n0\r\n\r\n"), Refused(400)),
        case("chunk size 0x5", chunks("0x5\r\nhello\r\n0\r\n\r\n"), Refused(400)),
        case("chunk size negative", chunks("-5\r\nhello\r\n0\r\n\r\n"), Refused(400)),
        case("chunk size overflowing", chunks("10000000000000005\r\nhello\r\n0\r\n\r\n"), Refused(400)),
        case("chunk size after a space", chunks(" 5\r\nhello\r\n0\r\n\r\n"), Refused(400)),
        case("chunk extension", chunks("5;name=value\r\nhello\r\n0\r\n\r\n"), relayed(BODY)),
        case("chunk extension after a space", chunks("5 ;a=b\r\nhello\r\n0\r\n\r\n"), relayed(BODY)),
        case("chunk extension of 8 KiB", chunks(&long_ext), Refused(400)),
        case("chunk longer than its size", chunks("5\r\nhello, world\r\n0\r\n\r\n"), Refused(400)),
        case("trailers that hide a request", chunks(&format!("5\r\nhello\r\n0\r\n{smuggled}")), relayed(BODY)),
        case("chunked with bare LF", chunks("5\nhello\n0\n\n"), relayed(BODY)),
        case("trailers of 70 KiB", chunks(&huge_trailers), Refused(400)),
        case("a small trailer", chunks("5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), relayed(BODY)),
        case("Connection names Content-Length", post(o, "Connection: Content-Length\r\nContent-Length: 5\r\n", "hello"), relayed(BODY)),
        case("Connection names Transfer-Encoding", post(o, "Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n", CHUNKED), relayed(BODY)),
        case("cached GET whose body is a request", [page(o, &format!("Content-Length: {}\r\n", smuggled.len())), smuggled.clone().into_bytes()].concat(), Served),
        case("cached GET whose chunked body is a request", [page(o, "Transfer-Encoding: chunked\r\n"), format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len()).into_bytes()].concat(), Served),
        case("GET whose body is a request", [get_echo(o, &format!("Content-Length: {}\r\n", smuggled.len())), smuggled.clone().into_bytes()].concat(), relayed(smuggled.clone())),
    ]
}

#[test]
fn smuggling_attempts_are_refused_or_relayed_whole() {
    let n = run_requests(|o, _| smuggling_cases(o));
    assert!(n >= 40, "{n} cases");
}

/// Line endings, field syntax, versions and targets that servers disagree
/// about.
// One case a line: the tables read better unwrapped.
#[rustfmt::skip]
fn syntax_cases(o: &str) -> Vec<Case> {
    let line = format!("GET http://{o}/echo HTTP/1.1");
    vec![
        case("bare CR ending the request line", format!("{line}\rHost: {o}\r\n\r\n"), Refused(400)),
        case("bare CR inside a value", get_echo(o, "X-A: a\rb\r\n"), Refused(400)),
        case("bare CR ending a field", format!("{line}\r\nHost: {o}\rX-A: 1\r\n\r\n"), Refused(400)),
        case("bare LF line endings", format!("{line}\nHost: {o}\n\n"), relayed(NONE)),
        case("mixed line endings", format!("{line}\r\nHost: {o}\nX-A: 1\r\n\n"), relayed(NONE)),
        case("empty lines before the request", format!("\r\n\r\n{line}\r\nHost: {o}\r\n\r\n"), relayed(NONE)),
        case("CR CR LF", format!("{line}\r\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("a line of spaces among the fields", get_echo(o, "X-A: 1\r\n   \r\nX-B: 2\r\n"), Refused(400)),
        case("obs-fold", get_echo(o, "X-A: one\r\n two\r\n"), Refused(400)),
        case("folded first field", format!("{line}\r\n X-A: 1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("NUL in the method", with("G\0T ", format!("http://{o}/echo HTTP/1.1\r\nHost: {o}\r\n\r\n").as_bytes(), ""), Refused(400)),
        case("NUL in the target", with(&format!("GET http://{o}/e"), b"\0", &format!("cho HTTP/1.1\r\nHost: {o}\r\n\r\n")), Refused(400)),
        case("NUL in a field name", with(&format!("{line}\r\nHost: {o}\r\nX-"), b"\0", "A: 1\r\n\r\n"), Refused(400)),
        case("NUL in a field value", with(&format!("{line}\r\nHost: {o}\r\nX-A: "), b"\0", "\r\n\r\n"), Refused(400)),
        case("DEL in a field name", with(&format!("{line}\r\nHost: {o}\r\nX-"), b"\x7f", "A: 1\r\n\r\n"), Refused(400)),
        case("obs-text in a value", with(&format!("{line}\r\nHost: {o}\r\nX-A: caf"), b"\xe9 \xff", "\r\n\r\n"), relayed(NONE)),
        case("obs-text in a field name", with(&format!("{line}\r\nHost: {o}\r\nX-"), b"\xe9", ": 1\r\n\r\n"), Refused(400)),
        case("bytes that are not UTF-8 in the target", with(&format!("GET http://{o}/e"), b"\xff\xfe", &format!(" HTTP/1.1\r\nHost: {o}\r\n\r\n")), Refused(400)),
        case("a response instead of a request", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Refused(400)),
        case("space before the colon", get_echo(o, "X-A : 1\r\n"), Refused(400)),
        case("tab before the colon", get_echo(o, "X-A\t: 1\r\n"), Refused(400)),
        case("field without a colon", get_echo(o, "X-A 1\r\n"), Refused(400)),
        case("empty field name", get_echo(o, ": 1\r\n"), Refused(400)),
        case("two spaces after the method", format!("GET  http://{o}/echo HTTP/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("tab after the method", format!("GET\thttp://{o}/echo HTTP/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("no version", format!("GET http://{o}/echo\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("lower-case version", format!("GET http://{o}/echo http/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("version HTTP/1.10", format!("GET http://{o}/echo HTTP/1.10\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("version HTTP/2.0", format!("GET http://{o}/echo HTTP/2.0\r\nHost: {o}\r\n\r\n"), Refused(505)),
        case("version HTTP/1.2", format!("GET http://{o}/echo HTTP/1.2\r\nHost: {o}\r\n\r\n"), relayed(NONE)),
        case("Host with a space", format!("{line}\r\nHost: exa mple\r\n\r\n"), Refused(400)),
        case("Host with user info", format!("{line}\r\nHost: user@{o}\r\n\r\n"), Refused(400)),
        case("two Host fields", format!("{line}\r\nHost: {o}\r\nHost: other.test\r\n\r\n"), Refused(400)),
        case("no Host in HTTP/1.1", format!("{line}\r\n\r\n"), Refused(400)),
        case("user info in the target", format!("GET http://user:pw@{o}/echo HTTP/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("backslash before an @", format!("GET http://{o}\\@evil.test/ HTTP/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("port out of range", format!("GET http://127.0.0.1:99999/ HTTP/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("IPv6 zone in the target", format!("GET http://[fe80::1%25lo]/ HTTP/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("https target", format!("GET https://{o}/ HTTP/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("origin-form", format!("GET /echo HTTP/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("asterisk-form GET", format!("GET * HTTP/1.1\r\nHost: {o}\r\n\r\n"), Refused(400)),
        case("a TLS handshake", &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n"[..], Refused(400)),
        case("Max-Forwards not a number", format!("OPTIONS http://{o}/ HTTP/1.1\r\nHost: {o}\r\nMax-Forwards: x\r\n\r\n"), Refused(400)),
        case("an unknown expectation", post(o, "Expect: 100-continue-please\r\nContent-Length: 5\r\n", "hello"), Refused(417)),
    ]
}

#[test]
fn malformed_heads_get_their_status_and_nothing_else() {
    let n = run_requests(|o, _| syntax_cases(o));
    assert!(n >= 30, "{n} cases");
}

/// Heads that are too large, however their bytes arrive.
// One case a line: the tables read better unwrapped.
#[rustfmt::skip]
fn limit_cases(o: &str) -> Vec<Case> {
    let long_method = format!("{} http://{o}/echo HTTP/1.1\r\nHost: {o}\r\n\r\n", "A".repeat(10_000));
    let long_target = format!("GET http://{o}/{} HTTP/1.1\r\nHost: {o}\r\n\r\n", "t".repeat(9 * KIB));
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let wide: String = (0..90).map(|i| format!("X-{i}: {}\r\n", "w".repeat(800))).collect();
    let under: String = (0..60).map(|i| format!("X-{i}: {}\r\n", "u".repeat(1000))).collect();
    let max_method = format!("{} http://{o}/echo HTTP/1.1\r\nHost: {o}\r\n\r\n", "M".repeat(32));
    vec![
        case("method of 10,000 bytes", long_method.clone(), Refused(501)),
        case("method of 10,000 bytes in two writes", long_method.clone(), Refused(501)).in_pieces(5_000),
        case("method of 10,000 bytes in small writes", long_method, Refused(501)).in_pieces(1_000),
        case("method of 32 bytes", max_method, relayed(NONE)),
        case("target of 9 KiB", long_target.clone(), Refused(414)),
        case("target of 9 KiB in pieces", long_target, Refused(414)).in_pieces(2_000),
        case("field value of 70 KiB", get_echo(o, &format!("X-Big: {}\r\n", "b".repeat(70 * KIB))), Refused(431)),
        case("101 fields", get_echo(o, &many), Refused(431)),
        case("head of 70 KiB in 90 fields", get_echo(o, &wide), Refused(431)),
        case("64 KiB of empty lines", "\r\n".repeat(33 * KIB), Refused(431)),
        case("head of 60 KiB", get_echo(o, &under), relayed(NONE)),
    ]
}

#[test]
fn over_long_heads_are_refused_whatever_the_reads() {
    let n = run_requests(|o, _| limit_cases(o));
    assert!(n >= 10, "{n} cases");
}

/// CONNECT as an open relay would be abused: odd authorities, bodies that
/// would slip into the tunnel, ports and targets that are not allowed.
// One case a line: the tables read better unwrapped.
#[rustfmt::skip]
fn connect_cases(o: &str, p: &str) -> Vec<Case> {
    let connect = |target: &str| format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    vec![
        case("CONNECT without a port", connect("a.test"), Refused(400)),
        case("CONNECT to port 0", connect("a.test:0"), Refused(400)),
        case("CONNECT to port 99999", connect("a.test:99999"), Refused(400)),
        case("CONNECT to port 4294967739", connect("a.test:4294967739"), Refused(400)),
        case("CONNECT with user info", connect("user@a.test:443"), Refused(400)),
        case("CONNECT in absolute-form", connect("http://a.test:443/"), Refused(400)),
        case("CONNECT with a path", connect("a.test:443/x"), Refused(400)),
        case("CONNECT with an empty host", connect(":443"), Refused(400)),
        case("CONNECT to an unclosed IPv6", connect("[::1:443"), Refused(400)),
        case("CONNECT in origin-form", connect("/"), Refused(400)),
        case("CONNECT asterisk", connect("*"), Refused(400)),
        case("CONNECT with a bad Host", "CONNECT a.test:443 HTTP/1.1\r\nHost: a b\r\n\r\n", Refused(400)),
        case("CONNECT with a body", "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nContent-Length: 5\r\n\r\nhello", Refused(400)),
        case("CONNECT with a chunked body", format!("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nTransfer-Encoding: chunked\r\n\r\n{CHUNKED}"), Refused(400)),
        case("CONNECT to port 25", connect("mail.test:25"), Refused(403)),
        case("CONNECT to the origin's port", connect(o), Refused(403)),
        case("CONNECT to the proxy itself", connect(p), Refused(403)),
    ]
}

#[test]
fn connect_abuse_is_refused_before_anything_is_opened() {
    let n = run_requests(connect_cases);
    assert!(n >= 15, "{n} cases");
}
