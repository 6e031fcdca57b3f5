//! Starting a proxy in-process, on a free port, for one test.
//!
//! The listener is bound before the server thread starts, so the address is
//! ready the moment these functions return: no test waits for a server to
//! come up. The servers run until the test process ends.
//!
//! Timeouts are short so that the timeout paths (504, idle close) take about
//! a second rather than the production half-minute.

use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use webproxy::access::AccessConfig;
use webproxy::cache::Cache;
use webproxy::connect::TunnelConfig;
use webproxy::relay::Timeouts;
use webproxy::server::{Config, Server};
use webproxy::simple;

/// Timeouts for tests: short, but long enough for a loaded machine.
pub fn test_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        upstream_read: Duration::from_secs(1),
        client_read: Duration::from_secs(2),
        client_idle: Duration::from_secs(2),
        write: Duration::from_secs(5),
    }
}

/// A small server configuration with the test timeouts.
pub fn test_config() -> Config {
    Config {
        threads: 8,
        max_connections: 64,
        timeouts: test_timeouts(),
    }
}

/// Binds 127.0.0.1:0, runs `serve` with the listener on a background
/// thread, and returns the address. Later stages start their servers
/// through this.
pub fn start_with(serve: impl FnOnce(TcpListener) + Send + 'static) -> SocketAddr {
    // Logs are noise in test output; RUST_LOG=debug turns them on.
    if std::env::var_os("RUST_LOG").is_some() {
        webproxy::logging::init();
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    thread::Builder::new()
        .name(format!("proxy-{}", addr.port()))
        .spawn(move || serve(listener))
        .expect("spawn the proxy");
    addr
}

/// Starts stage 1's one-at-a-time GET relay.
pub fn start_stage1(timeouts: Timeouts) -> SocketAddr {
    start_with(move |listener| simple::serve(listener, timeouts))
}

/// Starts stage 2's concurrent server.
pub fn start_stage2(config: Config) -> SocketAddr {
    start_with(move |listener| {
        if let Err(e) = Server::new(config).run(listener) {
            panic!("stage 2 server failed: {e}");
        }
    })
}

/// Starts stage 3's server: stage 2 answering through `cache`. Build the
/// cache on a `ManualClock` (see `cache_kit`) to move time by hand.
pub fn start_stage3(config: Config, cache: Cache) -> SocketAddr {
    start_with(move |listener| {
        if let Err(e) = Server::new(config).with_cache(cache).run(listener) {
            panic!("stage 3 server failed: {e}");
        }
    })
}

/// Starts stage 4's server: the stage 2 server with a cache and tunnels.
pub fn start_stage4(config: Config, cache: Cache, tunnels: TunnelConfig) -> SocketAddr {
    start_with(move |listener| {
        let server = Server::new(config).with_cache(cache).with_tunnels(tunnels);
        if let Err(e) = server.run(listener) {
            panic!("stage 4 server failed: {e}");
        }
    })
}

/// Starts stage 5's server: stage 4 (cache and tunnels) plus the client
/// ACL, the domain rules and loop protection. The rules are watched only if
/// the caller keeps a watcher running (`access.rules.watch(...)`).
pub fn start_stage5(
    config: Config,
    cache: Cache,
    tunnels: TunnelConfig,
    access: AccessConfig,
) -> SocketAddr {
    start_with(move |listener| {
        let server = Server::new(config)
            .with_cache(cache)
            .with_tunnels(tunnels)
            .with_access(access);
        if let Err(e) = server.run(listener) {
            panic!("stage 5 server failed: {e}");
        }
    })
}
