//! The concurrent server of stage 2 and later: accept, admit, serve.
//!
//! Three rules shape it:
//!
//! 1. **Bounded everything.** A fixed pool of workers ([`crate::pool`]) and a
//!    hard cap on open client connections (`--max-connections`). Over the
//!    cap, a client gets a 503 at once and its connection is closed; nothing
//!    piles up in an unbounded backlog. The cap is counted by an RAII
//!    [`Slot`], so no error path can leak a connection slot.
//! 2. **Persistent connections without hogging workers.** HTTP/1.1 keeps a
//!    client connection open between requests (RFC 9112 §9.3). A worker that
//!    blocks on an idle connection is a worker nobody else can use, so an
//!    idle connection waits in short slices, and when other connections are
//!    queued it goes back to the end of the queue instead. Workers serve
//!    requests, not connections.
//! 3. **Timeouts on every socket.** A client that stops halfway, or an origin
//!    that never answers, costs one timeout and then its connection, never a
//!    thread forever.
//!
//! What a request gets is not the server's business: it hands each one to a
//! [`Handler`] ([`crate::handler`]), and later stages change the handler,
//! never this file. The server takes an already-bound `TcpListener` and a
//! [`Shutdown`], so tests can bind port 0, start a server in-process, learn
//! its address before connecting, and stop it when they are done.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::conn::{Conn, HeadError, is_timeout};
use crate::error::{HttpError, write_error};
use crate::forward::Persist;
use crate::handler::{Handled, Handler, Request};
use crate::listen::{self, Shutdown};
use crate::message::RequestHead;
use crate::pool::{PoolHandle, ThreadPool};
use crate::relay::Timeouts;
use crate::respond::{finish, log_access, respond_with_error, show};
use crate::stats::{self, Page, Stats, Value};
use crate::upstream::{Pool, PoolConfig};
use crate::uri;

/// How the server is sized and timed.
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker threads in the pool.
    pub threads: usize,
    /// Open client connections at most; more get a 503.
    pub max_connections: usize,
    pub timeouts: Timeouts,
    /// Idle upstream connections kept for reuse.
    pub upstream: PoolConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: 64,
            max_connections: 512,
            timeouts: Timeouts::default(),
            upstream: PoolConfig::default(),
        }
    }
}

/// How long an idle connection holds a worker before checking whether
/// someone else is waiting for it.
const IDLE_SLICE: Duration = Duration::from_millis(100);

/// The stage 2 server: connections in, requests handed to a [`Handler`].
pub struct Server {
    config: Config,
    handler: Box<dyn Handler>,
}

struct Shared {
    config: Config,
    pool: PoolHandle,
    active: AtomicUsize,
    local_addr: SocketAddr,
    handler: Box<dyn Handler>,
    upstream: Pool,
    shutdown: Shutdown,
    counters: Counters,
}

/// What the server itself counts, for its stats page.
struct Counters {
    started: Instant,
    requests: AtomicU64,
    /// Requests by the host they were for. One short lock per request.
    hosts: Mutex<HashMap<String, u64>>,
}

// ANCHOR: slot
/// One admitted client connection. Dropping it frees the place, whatever
/// path the connection took to its end: a normal close, an error, a panic.
struct Slot {
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}
// ANCHOR_END: slot

/// A client connection between requests: everything a worker needs to pick
/// it up, and the slot it occupies.
struct Client {
    conn: Conn,
    peer: Option<SocketAddr>,
    idle_since: Instant,
    // Held, never read: dropping the Client frees the place.
    _slot: Slot,
}

impl Server {
    /// A server that answers every request with `handler`.
    pub fn new(config: Config, handler: impl Handler) -> Server {
        Server {
            config,
            handler: Box::new(handler),
        }
    }

    // ANCHOR: run
    /// Serves connections from `listener` until `shutdown` is triggered,
    /// then waits for the requests in progress to finish.
    pub fn run(self, listener: TcpListener, shutdown: Shutdown) -> io::Result<()> {
        let config = self.config;
        // Every queued job is an admitted connection, and there are at most
        // max_connections of those, so the queue never refuses one.
        let pool = ThreadPool::new(config.threads, config.max_connections)?;
        let shared = Arc::new(Shared {
            pool: pool.handle(),
            active: AtomicUsize::new(0),
            local_addr: listener.local_addr()?,
            upstream: Pool::new(config.upstream, config.timeouts),
            config,
            handler: self.handler,
            shutdown: shutdown.clone(),
            counters: Counters {
                started: Instant::now(),
                requests: AtomicU64::new(0),
                hosts: Mutex::new(HashMap::new()),
            },
        });
        log::info!(
            "serving with {} worker threads, at most {} connections",
            pool.threads(),
            shared.config.max_connections
        );
        if !shutdown.register(&listener) {
            return Ok(());
        }
        for stream in listener.incoming() {
            if shutdown.is_triggered() {
                break;
            }
            match stream {
                Ok(stream) => admit(&shared, stream),
                Err(e) => {
                    // Out of file descriptors, usually: back off a little
                    // instead of spinning on the error.
                    log::error!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        // Dropping the pool lets the queued connections finish: idle ones
        // close at their next look at the shutdown flag.
        drop(listener);
        drop(pool);
        Ok(())
    }
    // ANCHOR_END: run
}

// ANCHOR: admit
/// Takes a new connection, or turns it away with a 503 when the proxy is
/// full.
fn admit(shared: &Arc<Shared>, stream: TcpStream) {
    let timeouts = &shared.config.timeouts;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(timeouts.write));
    let peer = stream.peer_addr().ok();
    // Count first, then check: two racing accepts can never both take the
    // last place.
    let open = shared.active.fetch_add(1, Ordering::SeqCst) + 1;
    let slot = Slot {
        shared: Arc::clone(shared),
    };
    let mut conn = Conn::new(stream);
    if let Err(error) = shared.handler.admit(peer) {
        // Nothing is read from a client we do not serve.
        let _ = conn.set_write_timeout(Duration::from_secs(1));
        let _ = write_error(&mut conn, &error);
        log::warn!("{} refused: {}", show(peer), error.detail);
        conn.close();
        return;
    }
    if open > shared.config.max_connections {
        // A short write on a fresh socket: it cannot block for long, and the
        // write timeout bounds it anyway.
        let _ = conn.set_write_timeout(Duration::from_secs(1));
        let error = HttpError::new(503, "the proxy is at its connection limit; try again later");
        let _ = write_error(&mut conn, &error);
        log::warn!("{} refused: {} connections open", show(peer), open - 1);
        conn.close();
        return;
    }
    let client = Client {
        conn,
        peer,
        idle_since: Instant::now(),
        _slot: slot,
    };
    schedule(shared, client);
}
// ANCHOR_END: admit

/// Puts a connection in the queue for the next free worker.
fn schedule(shared: &Arc<Shared>, client: Client) {
    let job_shared = Arc::clone(shared);
    if shared
        .pool
        .try_execute(move || serve(job_shared, client))
        .is_err()
    {
        // Only when the pool is shutting down: the job, and with it the
        // connection and its slot, has been dropped.
        log::warn!("pool is shutting down; connection dropped");
    }
}

/// What to do with a connection after waiting on it.
enum Wait {
    Ready,
    Yield,
    Close,
}

// ANCHOR: wait_for_request
/// Waits for the next request on a persistent connection. Gives the worker
/// back (`Yield`) when other connections are queued, and gives up (`Close`)
/// when the client has been idle for the idle timeout.
fn wait_for_request(shared: &Shared, client: &mut Client) -> Wait {
    let idle_limit = shared.config.timeouts.client_idle;
    loop {
        let idle = client.idle_since.elapsed();
        if idle >= idle_limit {
            // Look once more before closing: a request that arrived while
            // the connection waited in the queue for a worker means the
            // proxy was slow, not that the client was idle.
            let ready = client
                .conn
                .set_read_timeout(Duration::from_millis(1))
                .is_ok()
                && matches!(client.conn.wait_readable(), Ok(true));
            return if ready { Wait::Ready } else { Wait::Close };
        }
        let slice = (idle_limit - idle).min(IDLE_SLICE);
        if client.conn.set_read_timeout(slice).is_err() {
            return Wait::Close;
        }
        match client.conn.wait_readable() {
            Ok(true) => return Wait::Ready,
            Ok(false) => return Wait::Close,
            Err(e) if is_timeout(&e) => {
                if shared.shutdown.is_triggered() {
                    return Wait::Close;
                }
                if shared.pool.waiting() > 0 {
                    return Wait::Yield;
                }
            }
            Err(_) => return Wait::Close,
        }
    }
}
// ANCHOR_END: wait_for_request

// ANCHOR: serve
/// Serves requests on one connection until it closes or has to wait.
fn serve(shared: Arc<Shared>, mut client: Client) {
    loop {
        match wait_for_request(&shared, &mut client) {
            Wait::Ready => {}
            Wait::Yield => return schedule(&shared, client),
            Wait::Close => return client.conn.close(),
        }
        let timeouts = &shared.config.timeouts;
        if client.conn.set_read_timeout(timeouts.client_read).is_err() {
            return client.conn.close();
        }
        let started = Instant::now();
        let request = match client.conn.read_request_head() {
            Ok(request) => request,
            Err(HeadError::Http(error)) => {
                respond_with_error(&mut client.conn, client.peer, None, &error, started);
                return client.conn.close();
            }
            Err(HeadError::Closed | HeadError::Idle | HeadError::Io(_)) => {
                return client.conn.close();
            }
        };
        shared.count(&request);
        if let Some(page) = own_page(&request, shared.local_addr) {
            serve_page(&shared, &mut client, &request, page, started);
            return client.conn.close();
        }
        let handled = shared.handler.handle(
            &mut client.conn,
            &Request {
                head: &request,
                peer: client.peer,
                local: shared.local_addr,
                timeouts,
                upstream: &shared.upstream,
                started,
            },
        );
        let (result, note) = match handled {
            Handled::Done { result, note } => (result, note),
            Handled::TakeOver(take_over) => {
                // The connection leaves the pool; its slot goes with it and
                // is freed when the new owner drops it.
                let Client { conn, _slot, .. } = client;
                return take_over(conn, Box::new(_slot));
            }
        };
        match finish(
            &mut client.conn,
            client.peer,
            &request,
            result,
            note,
            started,
        ) {
            Persist::KeepAlive => client.idle_since = Instant::now(),
            Persist::Close => return client.conn.close(),
        }
    }
}
// ANCHOR_END: serve

/// The host a request is for, as written in its target, for the busiest
/// hosts table: no parsing beyond finding the authority.
fn host_of(target: &str) -> &str {
    let rest = target.split_once("://").map_or(target, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

impl Shared {
    fn count(&self, request: &RequestHead) {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let host = host_of(&request.target);
        if host.is_empty() {
            return;
        }
        let host: Cow<'_, str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        let mut hosts = self
            .counters
            .hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = hosts.get_mut(&*host) {
            *n += 1;
        } else if hosts.len() < 10_000 {
            // Bounded, so that a scan of random names cannot grow it without
            // limit; the busiest hosts arrive early and often.
            hosts.insert(host.into_owned(), 1);
        }
    }

    /// The figures of the server and of every layer of its handler.
    fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        let c = &self.counters;
        stats
            .section("server")
            .row(
                "uptime_seconds",
                "uptime",
                Value::Duration(c.started.elapsed()),
            )
            .row(
                "requests",
                "requests served",
                Value::Count(c.requests.load(Ordering::Relaxed)),
            )
            .row(
                "open_connections",
                "open client connections",
                Value::Count(self.active.load(Ordering::Relaxed) as u64),
            )
            .row(
                "workers",
                "worker threads",
                Value::Count(self.config.threads as u64),
            );
        let pool = self.upstream.stats();
        stats
            .section("upstream connections")
            .row("upstream_opened", "opened", Value::Count(pool.opened))
            .row(
                "upstream_reused",
                "requests on a kept connection",
                Value::Count(pool.reused),
            )
            .row(
                "upstream_reuse_ratio",
                "reuse ratio",
                stats::ratio(pool.reused, pool.opened + pool.reused),
            )
            .row(
                "upstream_idle",
                "idle, kept",
                Value::Count(self.upstream.idle() as u64),
            );
        self.handler.stats(&mut stats);
        let mut top: Vec<(String, u64)> = {
            let hosts = c.hosts.lock().unwrap_or_else(|e| e.into_inner());
            hosts.iter().map(|(h, n)| (h.clone(), *n)).collect()
        };
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(10);
        stats
            .section("hosts")
            .row("top_hosts", "busiest hosts", Value::Table(top));
        stats
    }
}

// ANCHOR: own_page
/// Is this request for one of the proxy's own pages? Either sent straight
/// to us (`GET /stats.json`), or in absolute-form naming our own address.
fn own_page(request: &RequestHead, local: SocketAddr) -> Option<Page> {
    if request.method != "GET" && request.method != "HEAD" {
        return None;
    }
    if request.target.starts_with('/') {
        return Page::for_path(&request.target);
    }
    let target = uri::parse_absolute(&request.target).ok()?;
    let authority = &target.authority;
    if !listen::is_own_address(&authority.host, authority.port, local) {
        return None;
    }
    Page::for_path(&target.path_and_query)
}
// ANCHOR_END: own_page

/// Answers a request for one of our pages, and logs it.
fn serve_page(
    shared: &Shared,
    client: &mut Client,
    request: &RequestHead,
    page: Page,
    started: Instant,
) {
    // The PAC file must name the proxy as the client reached it.
    let proxy = request
        .headers
        .get_str("Host")
        .filter(|h| !h.is_empty())
        .map_or_else(|| shared.local_addr.to_string(), str::to_string);
    let stats = shared.stats();
    let bytes = stats::write_page(&mut client.conn, page, &stats, &proxy).unwrap_or(0);
    log_access(client.peer, request, 200, bytes, started, Some("PAGE"));
}
