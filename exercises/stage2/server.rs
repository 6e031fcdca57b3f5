// Starter code for stage 2, exercise 3 (see exercises/stage2/HINTS.md).
// With `--features starter-stage2` this file replaces src/server.rs. Only
// `wait_for_request` is left for you; everything else is the reference code.
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
//! The server takes an already-bound `TcpListener`, so tests can bind port 0,
//! start a server in-process and learn its address before connecting.

// Until you write it, its arguments, a constant and an import go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::access::{self, AccessConfig};
use crate::cache::Cache;
use crate::caching::{self, CacheResult};
use crate::conn::{Conn, HeadError, is_timeout};
use crate::connect::{self, TunnelConfig};
use crate::error::{HttpError, write_error};
use crate::forward::Persist;
use crate::logging::Access;
use crate::message::RequestHead;
use crate::pool::{PoolHandle, ThreadPool};
use crate::relay::{self, Outcome, RelayError, Timeouts};
use crate::uri;

/// How the server is sized and timed.
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker threads in the pool.
    pub threads: usize,
    /// Open client connections at most; more get a 503.
    pub max_connections: usize,
    pub timeouts: Timeouts,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: 64,
            max_connections: 512,
            timeouts: Timeouts::default(),
        }
    }
}

/// How long an idle connection holds a worker before checking whether
/// someone else is waiting for it.
const IDLE_SLICE: Duration = Duration::from_millis(100);

/// The stage 2 server. Later stages add their pieces with `with_*` methods.
pub struct Server {
    config: Config,
    cache: Option<Arc<Cache>>,
    tunnels: Option<TunnelConfig>,
    access: Option<AccessConfig>,
}

struct Shared {
    config: Config,
    pool: PoolHandle,
    active: AtomicUsize,
    local_addr: SocketAddr,
    cache: Option<Arc<Cache>>,
    tunnels: Option<TunnelConfig>,
    access: Option<AccessConfig>,
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
    pub fn new(config: Config) -> Server {
        Server {
            config,
            cache: None,
            tunnels: None,
            access: None,
        }
    }

    /// Stage 3: answer from a cache that every worker shares.
    pub fn with_cache(mut self, cache: Cache) -> Server {
        self.cache = Some(Arc::new(cache));
        self
    }

    /// Stage 5: client ACL, domain rules and loop protection.
    pub fn with_access(mut self, access: AccessConfig) -> Server {
        self.access = Some(access);
        self
    }

    /// Stage 4: answer CONNECT by opening tunnels.
    pub fn with_tunnels(mut self, tunnels: TunnelConfig) -> Server {
        self.tunnels = Some(tunnels);
        self
    }

    // ANCHOR: run
    /// Serves connections from `listener` until the process ends.
    pub fn run(self, listener: TcpListener) -> io::Result<()> {
        let config = self.config;
        // Every queued job is an admitted connection, and there are at most
        // max_connections of those, so the queue never refuses one.
        let pool = ThreadPool::new(config.threads, config.max_connections)?;
        let shared = Arc::new(Shared {
            pool: pool.handle(),
            active: AtomicUsize::new(0),
            local_addr: listener.local_addr()?,
            config,
            cache: self.cache,
            tunnels: self.tunnels,
            access: self.access,
        });
        log::info!(
            "serving with {} worker threads, at most {} connections",
            pool.threads(),
            shared.config.max_connections
        );
        for stream in listener.incoming() {
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
    if let Some(access) = &shared.access
        && !access::client_allowed(access, peer)
    {
        // Nothing is read from a client we do not serve.
        let _ = conn.set_write_timeout(Duration::from_secs(1));
        let error = HttpError::new(403, "your address may not use this proxy");
        let _ = write_error(&mut conn, &error);
        log::warn!("{} refused: not in --allow-clients", show(peer));
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

pub(crate) fn show(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "-".to_string(), |p| p.to_string())
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
    // TODO(exercise 3): wait until the client's next request starts to
    // arrive, without holding a worker hostage.
    //
    // - `client.conn.wait_readable()` blocks until a byte is buffered
    //   (`Ok(true)`), the client closed (`Ok(false)`), or the read timeout
    //   set with `client.conn.set_read_timeout` expires (an error for which
    //   `is_timeout` is true). A timeout loses nothing.
    // - Wait in slices of at most `IDLE_SLICE`. After an empty slice, if
    //   other connections wait for a worker (`shared.pool.waiting() > 0`),
    //   give this worker back: `Wait::Yield` puts this connection at the end
    //   of the queue. Otherwise wait another slice.
    // - The client has been idle since `client.idle_since`. Once that is
    //   `shared.config.timeouts.client_idle` ago, close (`Wait::Close`)...
    // - ...but look once more first, without waiting more than a
    //   millisecond: a request that arrived while this connection sat in
    //   the queue behind busy workers means the proxy was slow, not that the
    //   client was idle. Serve it.
    // - A byte is ready: `Wait::Ready`. The client closed, or any other
    //   error: `Wait::Close`.
    todo!("stage 2, exercise 3: wait_for_request")
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
        if let Some(access) = &shared.access
            && let Err(denied) = check_access(&shared, access, &request)
        {
            refuse(&mut client.conn, client.peer, &request, &denied, started);
            return client.conn.close();
        }
        // ANCHOR: connect_branch
        if request.method == "CONNECT"
            && let Some(tunnels) = &shared.tunnels
        {
            // The connection becomes a tunnel and leaves the pool; its slot
            // goes with it and is freed when the tunnel closes.
            let Client { conn, _slot, .. } = client;
            return connect::handle(tunnels, &request, conn, timeouts, _slot, started);
        }
        // ANCHOR_END: connect_branch
        let (result, note) = dispatch(&shared, &mut client.conn, &request);
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

// ANCHOR: check_access
/// Applies stage 5's rules to a request. Targets that do not parse pass
/// here: the handler that parses them answers with the right 400.
fn check_access(
    shared: &Shared,
    access: &AccessConfig,
    request: &RequestHead,
) -> Result<(), access::Denied> {
    let local = shared.local_addr;
    if request.method == "CONNECT" {
        match uri::parse_authority_form(&request.target) {
            Ok(a) => access::check_request(access, request, &a.host, a.port, None, local),
            Err(_) => Ok(()),
        }
    } else {
        match uri::proxy_target(request) {
            Ok(t) => {
                let (host, port) = (&t.authority.host, t.authority.port);
                access::check_request(access, request, host, port, Some(&t.path_and_query), local)
            }
            Err(_) => Ok(()),
        }
    }
}
// ANCHOR_END: check_access

/// Sends the 403 for a refused request and logs it as BLOCKED.
fn refuse(
    conn: &mut Conn,
    peer: Option<SocketAddr>,
    request: &RequestHead,
    denied: &access::Denied,
    started: Instant,
) {
    let bytes = access::write_refusal(conn, request, denied).unwrap_or(0);
    log::warn!(
        "{} {} {}: {}",
        show(peer),
        request.method,
        request.target,
        denied.describe()
    );
    log_access(peer, request, 403, bytes, started, Some("BLOCKED"));
}

// ANCHOR: dispatch
/// Decides who answers a request: the cache when there is one, else the
/// origin. Returns what the cache did, for the access log.
fn dispatch(
    shared: &Shared,
    conn: &mut Conn,
    request: &RequestHead,
) -> (Result<Outcome, RelayError>, Option<CacheResult>) {
    if request.method == "CONNECT" {
        let why = "this stage does not tunnel; CONNECT (HTTPS) arrives in stage 4";
        return (Err(HttpError::new(501, why).into()), None);
    }
    let target = match uri::proxy_target(request) {
        Ok(target) => target,
        Err(e) => return (Err(e.into()), None),
    };
    let timeouts = &shared.config.timeouts;
    match &shared.cache {
        Some(cache) => {
            let (result, note) = caching::handle(cache, conn, request, &target, timeouts);
            // Errors say what the cache did too (RFC 9211): it went to the
            // origin, and the origin failed us.
            let result = result.map_err(|e| match e {
                RelayError::Http(e) => RelayError::Http(e.with_field("Cache-Status", note.fwd())),
                aborted => aborted,
            });
            (result, Some(note))
        }
        None => (relay::forward(conn, request, &target, timeouts, true), None),
    }
}
// ANCHOR_END: dispatch

// ANCHOR: finish
/// Logs the exchange and, for an error that happened before any response
/// was sent, sends the error response. Returns the connection's fate.
pub(crate) fn finish(
    conn: &mut Conn,
    peer: Option<SocketAddr>,
    request: &RequestHead,
    result: Result<Outcome, RelayError>,
    note: Option<CacheResult>,
    started: Instant,
) -> Persist {
    let note = note.map(|n| n.to_string());
    match result {
        Ok(outcome) => {
            let (status, bytes) = (outcome.status, outcome.bytes);
            log_access(peer, request, status, bytes, started, note.as_deref());
            outcome.persist
        }
        Err(RelayError::Http(error)) => {
            respond_with_error(conn, peer, Some(request), &error, started);
            Persist::Close
        }
        Err(RelayError::Aborted { status, bytes, why }) => {
            log::warn!(
                "{} {} {}: response aborted: {why}",
                show(peer),
                request.method,
                request.target
            );
            log_access(peer, request, status, bytes, started, Some("ABORTED"));
            Persist::Close
        }
    }
}
// ANCHOR_END: finish

/// Writes an error response and logs it: one access line, one error line.
pub(crate) fn respond_with_error(
    conn: &mut Conn,
    peer: Option<SocketAddr>,
    request: Option<&RequestHead>,
    error: &HttpError,
    started: Instant,
) {
    let bytes = write_error(conn, error).unwrap_or(0);
    let (method, target) = request.map_or(("-", "-"), |r| (r.method.as_str(), r.target.as_str()));
    log::warn!("{} {method} {target}: {error}", show(peer));
    Access {
        client: peer,
        method,
        uri: target,
        status: error.status,
        bytes,
        started,
        note: None,
    }
    .log();
}

fn log_access(
    peer: Option<SocketAddr>,
    request: &RequestHead,
    status: u16,
    bytes: u64,
    started: Instant,
    note: Option<&str>,
) {
    Access {
        client: peer,
        method: &request.method,
        uri: &request.target,
        status,
        bytes,
        started,
        note,
    }
    .log();
}

/// Binds `addr` and prints the address we got, for people and for scripts
/// (`--port 0` asks the system for any free port).
pub fn bind_and_announce(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let mut out = io::stdout().lock();
    writeln!(out, "listening on http://{local}")?;
    out.flush()?;
    Ok(listener)
}
