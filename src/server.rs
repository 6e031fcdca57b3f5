//! The concurrent server of stage 2 and later: accept, admit, serve.
//!
//! Three rules shape it:
//!
//! 1. **Bounded everything.** A fixed pool of workers ([`crate::pool`]) and a
//!    hard cap on open client connections (`--max-connections`). Over the
//!    cap, a client gets a 503 at once and its connection is closed; nothing
//!    piles up in an unbounded backlog. The cap is counted by an RAII
//!    [`Slot`], so no error path can leak a connection slot.
//! 2. **Workers serve requests, not connections.** HTTP/1.1 keeps a client
//!    connection open between requests (RFC 9112 §9.3), and a client may
//!    send its head slowly. A worker that waited on such a connection would
//!    be a worker nobody else could use, so a connection with no complete
//!    request waits in the [`crate::waiting`] room, where one thread
//!    watches them all, and comes back to the pool when bytes arrive.
//! 3. **Timeouts on every socket.** A client that stops halfway, or an origin
//!    that never answers, costs one timeout and then its connection, never a
//!    thread forever.
//!
//! What a request gets is not the server's business: it hands each one to a
//! [`Handler`] ([`crate::handler`]), and later stages change the handler,
//! never this file. The server takes an already-bound `TcpListener` and a
//! [`Shutdown`], so tests can bind port 0, start a server in-process, learn
//! its address before connecting, and stop it when they are done.

// While this exercise's starter stands in for the reference code, what only
// the reference used goes unused.
#![cfg_attr(feature = "ex-2-3", allow(dead_code, unused_imports))]

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::conn::{Conn, is_timeout};
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
use crate::waiting::{Parked, WaitingRoom};

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

/// How long a worker that just answered a request waits for the next one on
/// the same connection before parking it, when no other connection needs a
/// worker. Clients that send their next request at once (pipelines,
/// benchmarks, page loads) then skip the waiting room's round trip.
const LINGER: Duration = Duration::from_millis(2);
/// How long a read waits when it should only take what has already arrived.
const BRIEF: Duration = Duration::from_micros(100);

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
    /// Set once the room's thread runs; it needs a handle on this struct.
    room: OnceLock<WaitingRoom<Client>>,
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
    /// When the first byte of a head that is not complete yet arrived: the
    /// whole head must arrive within the read timeout from then.
    head_since: Option<Instant>,
    // Held, never read: dropping the Client frees the place.
    _slot: Slot,
}

impl Parked for Client {
    fn fd(&self) -> RawFd {
        self.conn.stream().as_raw_fd()
    }
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
            room: OnceLock::new(),
        });
        // The room holds only a weak handle on the server, so that nothing
        // keeps the server alive in a cycle.
        let ready = Arc::downgrade(&shared);
        let room = WaitingRoom::start(
            move |client| {
                if let Some(shared) = Weak::upgrade(&ready) {
                    schedule(&shared, client);
                }
            },
            expire,
        )?;
        let _ = shared.room.set(room);
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
        // Waiting connections are closed, queued ones finish their request
        // and close (a stopping server parks nobody), then the workers end.
        drop(listener);
        if let Some(room) = shared.room.get() {
            room.stop();
        }
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
        head_since: None,
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

/// Where a connection stands after a look for its next request.
enum Next {
    /// A whole head: serve it.
    Request(RequestHead),
    /// Nothing complete yet: wait in the room, without a worker.
    Park,
    /// The client closed, or the connection failed: nobody to answer.
    Close,
    /// The client sent something that deserves an error response.
    Error(HttpError),
}

// ANCHOR: next_request
/// How long the next read on a connection may wait. `LINGER` only for a
/// client that has sent nothing of its next head (`partial` is false) while
/// no other connection waits for a worker (`waiting` is 0); anything else
/// gets `BRIEF`, just long enough to take what is there.
#[cfg(not(feature = "ex-2-3"))]
fn read_wait(partial: bool, waiting: usize) -> Duration {
    if !partial && waiting == 0 {
        LINGER
    } else {
        BRIEF
    }
}

/// Looks for the next request on `client`: takes it from what is buffered,
/// else reads once. A worker waits for bytes only briefly (`LINGER`), only
/// for a client that has sent nothing of its next head yet, and only when
/// no other connection is queued for a worker; anything slower is parked.
#[cfg(not(feature = "ex-2-3"))]
fn next_request(shared: &Shared, client: &mut Client) -> Next {
    loop {
        match client.conn.take_request_head() {
            Ok(Some(request)) => return Next::Request(request),
            Ok(None) => {}
            Err(error) => return Next::Error(error),
        }
        let partial = !client.conn.buffered().is_empty();
        if partial && client.head_since.is_none() {
            client.head_since = Some(Instant::now());
        }
        // Handed over by the room, the socket has bytes: the read returns at
        // once. Otherwise it waits at most LINGER, or barely at all.
        let wait = read_wait(partial, shared.pool.waiting());
        if client.conn.set_read_timeout(wait).is_err() {
            return Next::Close;
        }
        match client.conn.read_some() {
            Ok(0) if partial => {
                let why = "connection closed in the middle of the request head";
                return Next::Error(HttpError::bad_request(why));
            }
            Ok(0) => return Next::Close,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Next::Park,
            Err(_) => return Next::Close,
        }
    }
}
// ANCHOR_END: next_request

// Exercise 2.3: with its feature, the student's `next_request` replaces the
// one above.
#[cfg(feature = "ex-2-3")]
#[path = "../exercises/stage2/next_request.rs"]
mod ex_2_3;
#[cfg(feature = "ex-2-3")]
use ex_2_3::{next_request, read_wait};

/// Sends `client` to the waiting room until its next bytes, or its
/// deadline: the idle timeout, or the time left for a head it started.
fn park(shared: &Shared, client: Client) {
    let timeouts = &shared.config.timeouts;
    let deadline = match client.head_since {
        Some(since) => since + timeouts.client_read,
        None => client.idle_since + timeouts.client_idle,
    };
    match shared.room.get() {
        Some(room) if !shared.shutdown.is_triggered() => room.park(client, deadline),
        // Stopping: a connection between requests is simply closed.
        _ => client.conn.close(),
    }
}

/// A parked connection's deadline passed. Idle: close it. In the middle of
/// a head: that is the 408 the read timeout promises (RFC 9110 §15.5.9),
/// written without waiting, since this runs on the room's thread.
fn expire(mut client: Client) {
    if client.head_since.is_some() {
        let _ = client.conn.stream().set_nonblocking(true);
        let error = HttpError::new(408, "timed out waiting for the rest of the request head");
        let started = client.head_since.unwrap_or_else(Instant::now);
        respond_with_error(&mut client.conn, client.peer, None, &error, started);
    }
    client.conn.close();
}

// ANCHOR: serve
/// Serves requests on one connection until it closes or has to wait.
fn serve(shared: Arc<Shared>, mut client: Client) {
    loop {
        let started = client.head_since.unwrap_or_else(Instant::now);
        let request = match next_request(&shared, &mut client) {
            Next::Request(request) => request,
            Next::Park => return park(&shared, client),
            Next::Close => return client.conn.close(),
            Next::Error(error) => {
                respond_with_error(&mut client.conn, client.peer, None, &error, started);
                return client.conn.close();
            }
        };
        client.head_since = None;
        let timeouts = &shared.config.timeouts;
        // The body, if any, may take the full read timeout.
        if client.conn.set_read_timeout(timeouts.client_read).is_err() {
            return client.conn.close();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_lingers_only_for_an_idle_client_nobody_waits_behind() {
        assert_eq!(read_wait(false, 0), LINGER);
        // Part of a head has come: the rest waits in the room.
        assert_eq!(read_wait(true, 0), BRIEF);
        // Others wait for a worker: this one must not keep it.
        assert_eq!(read_wait(false, 1), BRIEF);
        assert_eq!(read_wait(true, 3), BRIEF);
    }
}
