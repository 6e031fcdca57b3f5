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

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::conn::{Conn, HeadError, is_timeout};
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
}

struct Shared {
    config: Config,
    pool: PoolHandle,
    active: AtomicUsize,
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
        Server { config }
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
            config,
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

fn show(peer: Option<SocketAddr>) -> String {
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
        match handle_one(&shared, &mut client) {
            Persist::KeepAlive => client.idle_since = Instant::now(),
            Persist::Close => return client.conn.close(),
        }
    }
}
// ANCHOR_END: serve

/// Reads one request and answers it.
fn handle_one(shared: &Shared, client: &mut Client) -> Persist {
    let started = Instant::now();
    let request = match client.conn.read_request_head() {
        Ok(request) => request,
        Err(HeadError::Http(error)) => {
            respond_with_error(&mut client.conn, client.peer, None, &error, started);
            return Persist::Close;
        }
        Err(HeadError::Closed | HeadError::Idle | HeadError::Io(_)) => return Persist::Close,
    };
    let result = dispatch(shared, &mut client.conn, &request);
    finish(&mut client.conn, client.peer, &request, result, started)
}

/// Decides what kind of request this is and who answers it.
fn dispatch(
    shared: &Shared,
    conn: &mut Conn,
    request: &RequestHead,
) -> Result<Outcome, RelayError> {
    if request.method == "CONNECT" {
        return Err(HttpError::new(501, "CONNECT (HTTPS tunnelling) arrives in stage 4").into());
    }
    let target = uri::proxy_target(request)?;
    relay::forward(conn, request, &target, &shared.config.timeouts, true)
}

/// Logs the exchange and, for an error that happened before any response
/// was sent, sends the error response. Returns the connection's fate.
pub(crate) fn finish(
    conn: &mut Conn,
    peer: Option<SocketAddr>,
    request: &RequestHead,
    result: Result<Outcome, RelayError>,
    started: Instant,
) -> Persist {
    match result {
        Ok(outcome) => {
            access(peer, request, outcome.status, outcome.bytes, started, None);
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
            access(peer, request, status, bytes, started, Some("ABORTED"));
            Persist::Close
        }
    }
}

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

fn access(
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
