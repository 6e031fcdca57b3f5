//! Stage 4 on the wire: CONNECT tunnels.
//!
//! Every test starts its own echo server (the far end of the tunnel) and its
//! own proxy on free ports, sends a raw `CONNECT`, and checks what a client
//! would see: the status, the error body, then the bytes that come back
//! through the tunnel. The echo server records what it received, so the
//! upstream direction is checked on its own, and whether it was contacted at
//! all.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::tunnel::{connect_request, farewell, fnv1a};
use common::*;
use webproxy::cache::{Cache, CacheConfig, SystemClock};
use webproxy::connect::TunnelConfig;
use webproxy::server::Config;
use webproxy::tunnel::{PortPolicy, Tunnels};

/// Long enough that no test tunnel is cut by it unless the test wants that.
const LONG_IDLE: Duration = Duration::from_secs(30);

fn small_cache() -> Cache {
    let config = CacheConfig {
        max_bytes: 4 * MIB,
        max_object_bytes: MIB,
        dir: None,
    };
    Cache::new(config, Arc::new(SystemClock)).expect("a memory-only cache")
}

fn tunnels(ports: &str, max_tunnels: usize, idle: Duration) -> TunnelConfig {
    TunnelConfig {
        tunnels: Tunnels::new(max_tunnels, idle),
        ports: PortPolicy::parse(ports).expect("a valid port list"),
        parents: Default::default(),
    }
}

/// A stage 4 proxy that tunnels to `ports` only.
fn proxy_for(ports: &str) -> SocketAddr {
    start_stage4(test_config(), small_cache(), tunnels(ports, 16, LONG_IDLE))
}

/// A stage 4 proxy that tunnels to the echo server's port.
fn proxy_to(echo: &EchoServer) -> SocketAddr {
    proxy_for(&echo.port().to_string())
}

/// Opens a tunnel to the echo server and insists on the 200.
fn tunnel_to(proxy: SocketAddr, echo: &EchoServer) -> Client {
    let (client, response) = open_tunnel(proxy, &echo.authority());
    assert_eq!(response.status, 200, "{}", response.body_text());
    client
}

/// Sends a CONNECT for `target` and expects the proxy to refuse it with
/// `status` and close the connection. Returns the error body.
fn refused_connect(proxy: SocketAddr, target: &str, status: u16) -> String {
    let mut client = Client::connect(proxy);
    client.send(format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"
    ));
    let response = client.read_response_to("CONNECT");
    assert_eq!(
        response.status,
        status,
        "CONNECT {target}: {}",
        response.body_text()
    );
    // An error is an ordinary HTTP response: framed, and the end of the
    // connection, not the start of a tunnel.
    assert_eq!(
        response.header("Content-Length"),
        Some(response.body.len().to_string().as_str())
    );
    assert!(response.says_close(), "CONNECT {target}");
    client.assert_closed();
    response.body_text()
}

/// The proxy still relays a plain GET.
fn assert_plain_http_works(proxy: SocketAddr) {
    let origin = Origin::fixed(Reply::ok("plain HTTP still works"));
    let response = get(proxy, &origin.url("/after"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"plain HTTP still works");
}

// ANCHOR: relays_both_ways
#[test]
fn connect_relays_bytes_both_ways() {
    let echo = EchoServer::start();
    let proxy = proxy_to(&echo);
    let (mut client, response) = open_tunnel(proxy, &echo.authority());

    // RFC 9110 §9.3.6: a 2xx to CONNECT has no content and no framing
    // fields; the next bytes on the connection belong to the tunnel.
    assert_eq!(response.status, 200);
    assert_eq!(response.reason, "Connection established");
    assert!(!response.has_header("Content-Length"));
    assert!(!response.has_header("Transfer-Encoding"));

    let first: &[u8] = b"hello through the tunnel";
    // Bytes that mean something to HTTP mean nothing here.
    let second: &[u8] = b"GET / HTTP/1.1\r\n\r\n\x00\xff\r\n";
    assert_echoes(&mut client, first);
    assert_echoes(&mut client, second);
    assert_eq!(echo.connections(), 1);
    assert_eq!(echo.conn(0).received, (first.len() + second.len()) as u64);
}
// ANCHOR_END: relays_both_ways

#[test]
fn sixteen_mib_each_way_arrive_intact() {
    const BIG: usize = 16 * MIB;
    let echo = EchoServer::start();
    let proxy = proxy_to(&echo);
    let mut client = tunnel_to(proxy, &echo);
    let data = Arc::new(binary(BIG, 44));

    // Write and read at the same time: 16 MiB do not fit in the socket
    // buffers, so writing everything first would deadlock.
    let mut writer = client.stream().try_clone().expect("clone the socket");
    let to_send = Arc::clone(&data);
    let sender = thread::spawn(move || {
        use std::io::Write;
        for piece in to_send.chunks(100_000) {
            writer.write_all(piece).expect("write into the tunnel");
        }
    });
    let back = client.read_bytes(BIG);
    sender.join().expect("the sender thread");

    // Down: the echo came back unchanged. Up: the echo server read exactly
    // the bytes we sent (its own count and hash).
    assert!(back == *data, "the bytes coming back were changed");
    let seen = echo.conn(0);
    assert_eq!(seen.received, BIG as u64);
    assert_eq!(seen.hash, fnv1a(&data));

    // Still a working tunnel afterwards.
    assert_echoes(&mut client, b"and one more");
}

// ANCHOR: half_close
#[test]
fn half_close_still_delivers_the_reply() {
    let echo = EchoServer::with_farewell();
    let proxy = proxy_to(&echo);
    let mut client = tunnel_to(proxy, &echo);

    client.send(b"last words");
    // We are done sending, but not done listening.
    client.shutdown_write();

    // The upstream sees the end of file ...
    assert!(echo.wait_for_eof(0, Duration::from_secs(5)));
    // ... and what it sends after that still reaches us, then the close.
    let mut expected = b"last words".to_vec();
    expected.extend(farewell(10));
    assert_eq!(client.read_to_close(), expected);
}
// ANCHOR_END: half_close

#[test]
fn bytes_right_behind_the_connect_head_are_not_lost() {
    let echo = EchoServer::start();
    let proxy = proxy_to(&echo);
    let mut client = Client::connect(proxy);

    // A client may send its first bytes (a TLS ClientHello) without waiting
    // for the 200; they can reach the proxy in the same read as the head.
    let mut burst = connect_request(&echo.authority()).to_bytes();
    burst.extend_from_slice(b"early bytes");
    client.send(&burst);
    let response = client.read_response_to("CONNECT");
    assert_eq!(response.status, 200);
    assert_eq!(client.read_bytes(11), b"early bytes");

    // More than fits in one read, right behind the head.
    let early = binary(300 * KIB, 45);
    let mut burst = connect_request(&echo.authority()).to_bytes();
    burst.extend_from_slice(&early);
    let mut client = Client::connect(proxy);
    let mut writer = client.stream().try_clone().expect("clone the socket");
    let sender = thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&burst).expect("write the burst");
    });
    let response = client.read_response_to("CONNECT");
    assert_eq!(response.status, 200);
    assert!(
        client.read_bytes(early.len()) == early,
        "early bytes changed"
    );
    sender.join().expect("the sender thread");
    assert_eq!(echo.conn(1).hash, fnv1a(&early));
}

// ANCHOR: port_policy
#[test]
fn a_port_outside_the_policy_is_403_and_nothing_is_contacted() {
    let echo = EchoServer::start();
    let proxy = proxy_for("443,8443");

    let body = refused_connect(proxy, &echo.authority(), 403);
    // The body says why, and what would have been allowed.
    assert!(body.contains(&format!("port {}", echo.port())), "{body}");
    assert!(body.contains("443, 8443"), "{body}");
    assert_eq!(echo.connections(), 0, "the proxy connected anyway");

    // Port 25 is the classic abuse of an open CONNECT proxy: refused before
    // the name is even looked up.
    let body = refused_connect(proxy, "mail.test:25", 403);
    assert!(body.contains("port 25"), "{body}");

    assert_plain_http_works(proxy);
}
// ANCHOR_END: port_policy

#[test]
fn a_refused_connection_is_502() {
    let closed = closed_port();
    let proxy = proxy_for(&closed.port().to_string());
    let body = refused_connect(proxy, &closed.to_string(), 502);
    assert!(body.contains("cannot connect"), "{body}");
    assert_plain_http_works(proxy);
}

#[test]
fn malformed_authorities_are_400() {
    let echo = EchoServer::start();
    let proxy = proxy_to(&echo);
    let port = echo.port();
    let targets = [
        "nohostport".to_string(),
        "[::1".to_string(),
        "127.0.0.1".to_string(),
        "127.0.0.1:".to_string(),
        format!(":{port}"),
        "127.0.0.1:0".to_string(),
        "127.0.0.1:99999".to_string(),
        format!("user@127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}/"),
        format!("127.0.0.1:{port}/path"),
    ];
    for target in &targets {
        let body = refused_connect(proxy, target, 400);
        assert!(!body.trim().is_empty(), "CONNECT {target}: empty body");
    }
    assert_eq!(echo.connections(), 0);

    // The proxy is fine: a good CONNECT still works.
    let mut client = tunnel_to(proxy, &echo);
    assert_echoes(&mut client, b"still here");
}

#[test]
fn a_connect_with_a_body_is_400_and_nothing_is_relayed() {
    let echo = EchoServer::start();
    let proxy = proxy_to(&echo);
    let target = echo.authority();
    let mut client = Client::connect(proxy);
    client.send(format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nContent-Length: 5\r\n\r\nhello"
    ));
    let response = client.read_response_to("CONNECT");
    assert_eq!(response.status, 400, "{}", response.body_text());
    assert!(
        response.body_text().contains("body"),
        "{}",
        response.body_text()
    );
    assert_eq!(
        echo.connections(),
        0,
        "the echo server must not be contacted"
    );
}

// ANCHOR: idle_timeout
#[test]
fn an_idle_tunnel_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let echo = EchoServer::start();
    let ports = echo.port().to_string();
    let proxy = start_stage4(test_config(), small_cache(), tunnels(&ports, 4, idle));
    let mut client = tunnel_to(proxy, &echo);
    // The tunnel works: a tunnel that closes at once for another reason
    // must not pass for one that timed out.
    assert_echoes(&mut client, b"one round trip");
    let opened = Instant::now();

    // Then say nothing. The proxy must close within a bounded wait.
    client.set_read_timeout(Duration::from_secs(5));
    client.assert_closed();
    let waited = opened.elapsed();
    // The idle clock starts a moment before we see the 200; allow for that.
    assert!(
        waited >= idle - Duration::from_millis(50),
        "closed early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "closed late: {waited:?}");
    // The upstream side is closed too.
    assert!(echo.wait_for_eof(0, Duration::from_secs(5)));
}
// ANCHOR_END: idle_timeout

#[test]
fn traffic_keeps_a_tunnel_open_past_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let echo = EchoServer::start();
    let ports = echo.port().to_string();
    let proxy = start_stage4(test_config(), small_cache(), tunnels(&ports, 4, idle));
    let mut client = tunnel_to(proxy, &echo);
    // Six round trips 100 ms apart: twice the idle timeout in all, but the
    // tunnel is never idle for long.
    for i in 0..6u8 {
        thread::sleep(Duration::from_millis(100));
        assert_echoes(&mut client, &[b'0' + i]);
    }
    client.set_read_timeout(Duration::from_secs(5));
    client.assert_closed();
}

// ANCHOR: capacity
#[test]
fn full_tunnel_limit_is_503_and_plain_http_is_still_served() {
    let echo = EchoServer::start();
    let config = Config {
        threads: 2,
        ..test_config()
    };
    let ports = echo.port().to_string();
    let proxy = start_stage4(config, small_cache(), tunnels(&ports, 3, LONG_IDLE));

    // Three open, idle tunnels: more than the pool has workers.
    let mut open: Vec<Client> = (0..3).map(|_| tunnel_to(proxy, &echo)).collect();
    for (i, client) in open.iter_mut().enumerate() {
        assert_echoes(client, format!("tunnel {i}").as_bytes());
    }

    // A fourth is over the tunnel limit: a clean HTTP 503, no connection.
    let body = refused_connect(proxy, &echo.authority(), 503);
    assert!(body.contains("all 3 tunnels are in use"), "{body}");
    assert_eq!(echo.connections(), 3);

    // The tunnels hold no workers, so both workers are free for plain HTTP.
    let origin = Origin::fixed(Reply::ok("served"));
    for i in 0..4 {
        let mut client = Client::connect(proxy);
        client.set_read_timeout(Duration::from_secs(3));
        let response = client.request(&Req::get(&origin.url(&format!("/{i}"))));
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"served");
    }
    for client in &mut open {
        assert_echoes(client, b"still open");
    }

    // Closing one tunnel frees its slot for the next CONNECT.
    let mut first = open.remove(0);
    first.shutdown_write();
    assert_eq!(first.read_to_close(), b"");
    let mut next = None;
    let freed = eventually(Duration::from_secs(5), || {
        let (client, response) = open_tunnel(proxy, &echo.authority());
        next = Some(client);
        response.status == 200
    });
    assert!(freed, "the closed tunnel's slot was not released");
    assert_echoes(next.as_mut().expect("a tunnel"), b"a new tunnel");
}
// ANCHOR_END: capacity

#[test]
fn stages_without_tunnels_answer_connect_with_501() {
    let echo = EchoServer::start();
    let stage2 = start_stage2(test_config());
    let stage3 = start_stage3(test_config(), small_cache());
    for proxy in [stage2, stage3] {
        let body = refused_connect(proxy, &echo.authority(), 501);
        assert!(body.contains("stage 4"), "{body}");
        assert_plain_http_works(proxy);
    }
    assert_eq!(echo.connections(), 0);
}

#[test]
fn stage4_binary_smoke_test() {
    let echo = EchoServer::start();
    let port = echo.port().to_string();
    let running = RunningBinary::start(
        env!("CARGO_BIN_EXE_stage4"),
        &["--port", "0", "--connect-ports", &port],
    );
    let mut client = tunnel_to(running.addr, &echo);
    assert_echoes(&mut client, b"through the real binary");
    client.shutdown_write();
    assert_eq!(client.read_to_close(), b"");
    // The default policy is gone, replaced by the flag: 443 is refused.
    let body = refused_connect(running.addr, "secure.test:443", 403);
    assert!(body.contains(&format!("ports {port} only")), "{body}");
}
