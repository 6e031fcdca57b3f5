//! Parent proxies on the wire (`--parent`, stages 2 to 5).
//!
//! Most tests chain two in-process proxies, a child whose parent is another
//! of ours, and check what the origin (or the echo server, for CONNECT)
//! saw. Where the bytes between the two proxies matter, the parent is a
//! recording origin or a scripted socket instead, so the test can read
//! exactly what the child sent up.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use webproxy::access::{AccessConfig, AccessControl};
use webproxy::acl::ClientAcl;
use webproxy::cache::{Cache, CacheConfig, SystemClock};
use webproxy::caching::Caching;
use webproxy::connect::{Connect, TunnelConfig};
use webproxy::filter::LiveRules;
use webproxy::handler::Relay;
use webproxy::parent::{self, Parents};
use webproxy::server::Config;
use webproxy::tunnel::{PortPolicy, Tunnels};

fn parents(addrs: &[SocketAddr]) -> Parents {
    Parents::new(
        addrs
            .iter()
            .map(|a| parent::parse(&a.to_string()).expect("parent")),
    )
}

/// The test server configuration, with upstream connections to `parents`.
fn through(parents: &Parents) -> Config {
    let mut config = test_config();
    config.upstream.parents = parents.clone();
    config
}

fn cache() -> Cache {
    Cache::new(CacheConfig::default(), Arc::new(SystemClock)).expect("a memory cache")
}

fn tunnels(ports: &str, parents: &Parents) -> TunnelConfig {
    TunnelConfig {
        tunnels: Tunnels::new(8, Duration::from_secs(30)),
        ports: PortPolicy::parse(ports).expect("port list"),
        parents: parents.clone(),
    }
}

/// A stage 2 proxy whose parents are `addrs`.
fn stage2_through(addrs: &[SocketAddr]) -> SocketAddr {
    start_stage2(through(&parents(addrs)))
}

/// A stage 4 proxy that tunnels to `ports`, through `addrs`.
fn stage4_through(ports: &str, addrs: &[SocketAddr]) -> SocketAddr {
    let parents = parents(addrs);
    start_stage4(through(&parents), cache(), tunnels(ports, &parents))
}

/// A stage 5 proxy on `listener` with no domain rules, loopback clients,
/// tunnels to `ports`, and `addrs` as parents: as `stages/stage5.rs` builds it.
fn stage5_on(listener: TcpListener, ports: &str, addrs: &[SocketAddr]) -> SocketAddr {
    let parents = parents(addrs);
    let access = AccessConfig {
        rules: LiveRules::load(&[], &[]).expect("no rules"),
        clients: ClientAcl::loopback(),
    };
    let connect = Connect::new(tunnels(ports, &parents), Caching::new(cache(), Relay));
    start_server_on(
        listener,
        through(&parents),
        AccessControl::new(access, connect),
    )
}

/// A figure from the proxy's own `/stats.json` (one flat object).
fn figure(proxy: SocketAddr, key: &str) -> String {
    let page = Client::connect(proxy).request(&Req::get("/stats.json").host(&proxy.to_string()));
    let json = page.body_text();
    let Some(start) = json.find(&format!("\"{key}\": ")) else {
        panic!("no {key} in {json}");
    };
    let rest = &json[start + key.len() + 4..];
    rest[..rest.find([',', '\n']).unwrap_or(rest.len())].to_string()
}

#[test]
fn a_request_reaches_the_parent_in_absolute_form_with_host_and_via() {
    // The "parent" is a recording origin: it shows the request line as sent.
    let parent = Origin::fixed(Reply::ok("from the parent"));
    let proxy = stage2_through(&[parent.addr()]);
    let response = get(proxy, "http://a.test:8080/p?q=1");
    assert_eq!(response.status, 200);
    assert_eq!(response.body_text(), "from the parent");
    let seen = parent.last_request();
    assert_eq!(seen.request_line(), "GET http://a.test:8080/p?q=1 HTTP/1.1");
    assert_eq!(seen.header("Host"), Some("a.test:8080"));
    // Our entry names this running proxy, for a parent that is another
    // webproxy (see forward::via_to_parent).
    assert_eq!(seen.header_all("Via"), [webproxy::forward::via_to_parent()]);
}

#[test]
fn one_kept_parent_connection_carries_requests_for_several_origins() {
    let parent = Origin::fixed(Reply::ok("ok"));
    let proxy = stage2_through(&[parent.addr()]);
    // One client connection, so each request starts after the one before
    // has given its upstream connection back.
    let mut client = Client::connect(proxy);
    for url in ["http://a.test/1", "http://b.test:8080/2", "http://a.test/3"] {
        assert_eq!(client.request(&Req::get(url)).status, 200, "{url}");
    }
    let seen: Vec<_> = parent.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        seen,
        ["http://a.test/1", "http://b.test:8080/2", "http://a.test/3"]
    );
    assert_eq!(
        parent.connections(),
        1,
        "the parent connection was not kept"
    );
}

#[test]
fn a_fetch_through_two_proxies_carries_two_via_entries() {
    let origin = Origin::fixed(Reply::ok("hello"));
    let parent = start_stage2(test_config());
    let child = stage5_on(bind(), "443", &[parent]);
    let response = get(child, &origin.url("/x"));
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.body_text(), "hello");
    let seen = origin.last_request();
    // The parent sent it on in origin-form, as to any origin.
    assert_eq!(seen.request_line(), "GET /x HTTP/1.1");
    let child = webproxy::forward::via_to_parent();
    assert_eq!(seen.header_all("Via"), [child, "1.1 webproxy"]);
    assert_eq!(response.header_all("Via"), ["1.1 webproxy", "1.1 webproxy"]);
}

#[test]
fn the_childs_cache_answers_without_asking_the_parent() {
    let origin = Origin::fixed(Reply::ok("cached").header("Cache-Control", "max-age=60"));
    let parent = start_stage2(test_config());
    let child = start_stage3(through(&parents(&[parent])), cache());
    // One connection: the copy is stored before the next request is read.
    let mut client = Client::connect(child);
    for _ in 0..2 {
        let response = client.request(&Req::get(&origin.url("/c")));
        assert_eq!(response.body_text(), "cached");
    }
    assert_eq!(origin.hits(), 1);
}

#[test]
fn a_background_revalidation_goes_through_the_parent_too() {
    // The "parent" is a recording origin whose answer is stale on arrival
    // (an age past its max-age) but inside its stale-while-revalidate
    // window: the child serves it again at once and revalidates it in the
    // background. a.test resolves nowhere, so only the parent can answer.
    let parent = Origin::fixed(
        Reply::ok("stale but usable")
            .header("Cache-Control", "max-age=10, stale-while-revalidate=600")
            .header("Age", "20")
            .header("ETag", "\"v1\""),
    );
    let child = start_stage3(through(&parents(&[parent.addr()])), cache());
    let mut client = Client::connect(child);
    for _ in 0..2 {
        let response = client.request(&Req::get("http://a.test/feed"));
        assert_eq!(response.body_text(), "stale but usable");
    }
    assert!(
        parent.wait_for_hits(2, Duration::from_secs(5)),
        "the background revalidation never reached the parent: {:?}",
        parent
            .requests()
            .iter()
            .map(|r| r.request_line())
            .collect::<Vec<_>>()
    );
    let seen = parent.last_request();
    assert_eq!(seen.request_line(), "GET http://a.test/feed HTTP/1.1");
    assert_eq!(seen.header("If-None-Match"), Some("\"v1\""));
    assert_eq!(seen.header_all("Via"), [webproxy::forward::via_to_parent()]);
}

#[test]
fn a_dead_first_parent_fails_over_to_the_second() {
    let origin = Origin::fixed(Reply::ok("hello"));
    let parent = start_stage2(test_config());
    let child = stage2_through(&[closed_port(), parent]);
    for _ in 0..2 {
        let response = get(child, &origin.url("/x"));
        assert_eq!(response.status, 200, "{}", response.body_text());
    }
    assert_eq!(origin.hits(), 2);
    assert_eq!(origin.last_request().header_all("Via").len(), 2);
}

#[test]
fn a_parent_that_answers_with_an_error_is_not_failed_over() {
    let first = Origin::fixed(Reply::with_status(503, "busy"));
    let second = Origin::fixed(Reply::ok("second"));
    let child = stage2_through(&[first.addr(), second.addr()]);
    let response = get(child, "http://a.test/");
    assert_eq!(response.status, 503);
    assert_eq!(response.body_text(), "busy");
    assert_eq!(second.hits(), 0);
}

#[test]
fn no_parent_answering_is_a_502_that_names_each() {
    let (a, b) = (closed_port(), closed_port());
    let child = stage2_through(&[a, b]);
    let response = get(child, "http://a.test/");
    assert_eq!(response.status, 502);
    let body = response.body_text();
    assert!(body.contains("no parent proxy could be reached"), "{body}");
    assert!(
        body.contains(&a.to_string()) && body.contains(&b.to_string()),
        "{body}"
    );
}

#[test]
fn connect_tunnels_through_the_parent_to_the_target() {
    let echo = EchoServer::start();
    let ports = echo.port().to_string();
    let parent = stage4_through(&ports, &[]);
    let child = stage4_through(&ports, &[closed_port(), parent]);
    let (mut client, response) = open_tunnel(child, &echo.authority());
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_echoes(&mut client, b"through two proxies and back");
    assert_eq!(echo.connections(), 1);
}

#[test]
fn a_parent_that_refuses_connect_is_a_502_that_quotes_it() {
    let echo = EchoServer::start();
    // The parent tunnels to 443 only, so it answers the echo port with 403.
    let parent = stage4_through("443", &[]);
    let child = stage4_through(&echo.port().to_string(), &[parent]);
    let (_client, response) = open_tunnel(child, &echo.authority());
    assert_eq!(response.status, 502);
    let body = response.body_text();
    assert!(body.contains(&format!("parent proxy {parent}")), "{body}");
    assert!(body.contains("403 Forbidden"), "{body}");
    assert_eq!(echo.connections(), 0);
}

/// A one-shot parent: reads one request head, sends it to the test, and
/// answers with `answer`, then waits for the other side to close; with an
/// empty answer, it hangs up at once.
fn scripted_parent(answer: &'static [u8]) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let (heads, received) = mpsc::channel();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
            head.push(byte[0]);
        }
        let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
        if !answer.is_empty() {
            let _ = stream.write_all(answer);
            let _ = stream.read(&mut byte);
        }
    });
    (addr, received)
}

#[test]
fn the_parent_gets_connect_with_host_and_via_and_its_early_bytes_reach_the_client() {
    // The target speaks first: its greeting arrives with the parent's 200.
    let (parent, heads) = scripted_parent(b"HTTP/1.1 200 Connection established\r\n\r\nhello");
    let child = stage4_through("443", &[parent]);
    let mut client = Client::connect(child);
    let request = common::tunnel::connect_request("a.test:443")
        .header("User-Agent", "t")
        .header("Proxy-Authorization", "Basic eDp5");
    let response = client.request(&request);
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(client.read_bytes(5), b"hello");
    let head = heads.recv_timeout(Duration::from_secs(5)).expect("a head");
    assert!(
        head.starts_with("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nUser-Agent: t\r\n"), "{head}");
    let via = format!("\r\nVia: {}\r\n\r\n", webproxy::forward::via_to_parent());
    assert!(head.ends_with(&via), "{head}");
    // Credentials for us are not for the parent (RFC 9110 §11.7.2).
    assert!(!head.contains("Proxy-Authorization"), "{head}");
}

#[test]
fn a_parent_that_hangs_up_on_connect_is_a_502() {
    let (parent, _heads) = scripted_parent(b"");
    let child = stage4_through("443", &[parent]);
    let (_client, response) = open_tunnel(child, "a.test:443");
    assert_eq!(response.status, 502);
    assert!(response.body_text().contains("without answering"));
}

#[test]
fn a_loop_between_two_proxies_is_refused() {
    // A (stage 5) sends to B (stage 2), whose parent is A: the request
    // comes back to A carrying A's Via entry, and A refuses it.
    let origin = Origin::fixed(Reply::ok("never"));
    let b_listener = bind();
    let b_addr = b_listener.local_addr().expect("address");
    let a = stage5_on(bind(), "443", &[b_addr]);
    start_server_on(b_listener, through(&parents(&[a])), Relay);
    let response = get(a, &origin.url("/"));
    assert_eq!(response.status, 403);
    assert!(response.body_text().contains("request loop"));
    assert_eq!(origin.hits(), 0);
    // One round: B relayed the request once (then served this figure).
    assert_eq!(figure(b_addr, "requests"), "2");
}

#[test]
fn a_connect_loop_between_two_proxies_is_refused() {
    // The same for tunnels: A (stage 5) tunnels through B (stage 4), whose
    // parent is A. A refuses the CONNECT that comes back, B tells A that
    // its parent refused, and A tells the client: every hop ends.
    let echo = EchoServer::start();
    let ports = echo.port().to_string();
    let b_listener = bind();
    let b_addr = b_listener.local_addr().expect("address");
    let a = stage5_on(bind(), &ports, &[b_addr]);
    let b_parents = parents(&[a]);
    let b_handler = Connect::new(tunnels(&ports, &b_parents), Relay);
    start_server_on(b_listener, through(&b_parents), b_handler);
    let (_client, response) = open_tunnel(a, &echo.authority());
    assert_eq!(response.status, 502, "{}", response.body_text());
    assert!(response.body_text().contains("502 Bad Gateway"));
    assert_eq!(echo.connections(), 0);
    // One round: B was asked for one tunnel, not one per trip around.
    assert_eq!(figure(b_addr, "connect_requests"), "1");
}

#[test]
fn a_webproxy_can_sit_under_another_webproxy() {
    // Two real stage 5 binaries, one the other's parent. Both call
    // themselves webproxy in Via; the child's entry carries its id, so the
    // parent does not take the request for its own loop.
    let origin = Origin::fixed(Reply::ok("through both"));
    let stage5 = env!("CARGO_BIN_EXE_stage5");
    let parent = RunningBinary::start(stage5, &["--port", "0"]);
    let parent_url = format!("http://{}", parent.addr);
    let child = RunningBinary::start(stage5, &["--port", "0", "--parent", &parent_url]);
    let response = get(child.addr, &origin.url("/chain"));
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.body_text(), "through both");
    let via = origin.last_request().header_all("Via").join(", ");
    assert!(via.starts_with("1.1 webproxy (id "), "{via}");
    assert!(via.ends_with(", 1.1 webproxy"), "{via}");
}
