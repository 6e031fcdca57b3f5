//! Starting a proxy in-process, on a free port, for one test.
//!
//! The listener is bound before the server thread starts, so the address is
//! ready the moment these functions return: no test waits for a server to
//! come up. Each server gets a [`Shutdown`] that is triggered when the test
//! that started it ends (its thread exits), so servers do not pile up over a
//! test run.
//!
//! Timeouts are short so that the timeout paths (504, idle close) take about
//! a second rather than the production half-minute.

use std::cell::RefCell;
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use webproxy::access::{AccessConfig, AccessControl};
use webproxy::cache::Cache;
use webproxy::caching::Caching;
use webproxy::connect::{Connect, TunnelConfig};
use webproxy::dial::Timeouts;
use webproxy::handler::{Handler, Relay};
use webproxy::listen::Shutdown;
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
        ..Config::default()
    }
}

/// The shutdowns of the servers this thread (one test) started; dropped,
/// and so triggered, when the thread ends.
struct StopAtExit(Vec<Shutdown>);

impl Drop for StopAtExit {
    fn drop(&mut self) {
        for shutdown in &self.0 {
            shutdown.trigger();
        }
    }
}

thread_local! {
    static RUNNING: RefCell<StopAtExit> = const { RefCell::new(StopAtExit(Vec::new())) };
}

/// Binds 127.0.0.1:0, runs `serve` with the listener and a shutdown handle
/// on a background thread, and returns the address. The server is asked to
/// stop when the calling test ends.
pub fn start_with(serve: impl FnOnce(TcpListener, Shutdown) + Send + 'static) -> SocketAddr {
    start_on(bind(), serve)
}

/// A listener on 127.0.0.1 port 0, for a proxy whose address must be known
/// before it starts (two proxies that are each other's parent).
pub fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind the proxy")
}

/// [`start_with`], on a listener the caller bound.
pub fn start_on(
    listener: TcpListener,
    serve: impl FnOnce(TcpListener, Shutdown) + Send + 'static,
) -> SocketAddr {
    // Logs are noise in test output; RUST_LOG=debug turns them on.
    if std::env::var_os("RUST_LOG").is_some() {
        webproxy::logging::init();
    }
    let addr = listener.local_addr().expect("proxy address");
    let shutdown = Shutdown::new();
    RUNNING.with(|running| running.borrow_mut().0.push(shutdown.clone()));
    thread::Builder::new()
        .name(format!("proxy-{}", addr.port()))
        .spawn(move || serve(listener, shutdown))
        .expect("spawn the proxy");
    addr
}

/// [`start_server`], on a listener the caller bound.
pub fn start_server_on(listener: TcpListener, config: Config, handler: impl Handler) -> SocketAddr {
    start_on(listener, move |listener, shutdown| {
        if let Err(e) = Server::new(config, handler).run(listener, shutdown) {
            panic!("server failed: {e}");
        }
    })
}

/// Starts the stage 2 server with `handler`: how every later stage starts.
pub fn start_server(config: Config, handler: impl Handler) -> SocketAddr {
    start_server_on(bind(), config, handler)
}

/// Starts stage 1's one-at-a-time GET relay.
pub fn start_stage1(timeouts: Timeouts) -> SocketAddr {
    start_with(move |listener, shutdown| simple::serve(listener, timeouts, shutdown))
}

/// Starts stage 2's concurrent server: the plain relay.
pub fn start_stage2(config: Config) -> SocketAddr {
    start_server(config, Relay)
}

/// Starts stage 3's server: the relay behind `cache`. Build the cache on a
/// `ManualClock` (see `cache_kit`) to move time by hand.
pub fn start_stage3(config: Config, cache: Cache) -> SocketAddr {
    start_server(config, Caching::new(cache, Relay))
}

/// Starts stage 4's server: stage 3 with CONNECT tunnels in front.
pub fn start_stage4(config: Config, cache: Cache, tunnels: TunnelConfig) -> SocketAddr {
    start_server(config, Connect::new(tunnels, Caching::new(cache, Relay)))
}

/// Starts stage 5's server: stage 4 behind the client ACL, the domain rules
/// and loop protection. The rules are watched only if the caller keeps a
/// watcher running (`access.rules.watch(...)`).
pub fn start_stage5(
    config: Config,
    cache: Cache,
    tunnels: TunnelConfig,
    access: AccessConfig,
) -> SocketAddr {
    start_stage5_on("127.0.0.1:0", config, cache, tunnels, access)
}

/// [`start_stage5`] listening on `bind`: `0.0.0.0:0` for the tests of a
/// proxy that listens on every address of the machine.
pub fn start_stage5_on(
    bind: &str,
    config: Config,
    cache: Cache,
    tunnels: TunnelConfig,
    access: AccessConfig,
) -> SocketAddr {
    let listener = TcpListener::bind(bind).expect("bind the proxy");
    let handler = AccessControl::new(access, Connect::new(tunnels, Caching::new(cache, Relay)));
    start_server_on(listener, config, handler)
}
