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
//! never this file. The server answers only what is about the proxy itself:
//! its own pages, and an OPTIONS or TRACE with no hops left (RFC 9110
//! §7.6.2). And it makes a GET or HEAD with content the connection's last,
//! since a handler may answer one without reading that content. The server takes an already-bound `TcpListener` and a
//! [`Shutdown`], so tests can bind port 0, start a server in-process, learn
//! its address before connecting, and stop it when they are done.

// While this exercise's starter stands in for the reference code, what only
// the reference used goes unused.
#![cfg_attr(feature = "ex-2-3", allow(dead_code, unused_imports))]

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak, mpsc};
use std::time::{Duration, Instant};

use crate::body::{self, Framing};
use crate::conn::{Conn, is_timeout};
use crate::error::HttpError;
use crate::forward::{self, Persist};
use crate::handler::{Handled, Handler, Request};
use crate::limits::{self, ClientPlace, PerClient};
use crate::listen::Shutdown;
use crate::logging::Note;
use crate::message::RequestHead;
use crate::pool::{self, PoolHandle, ThreadPool};
use crate::respond::{finish, log_access, respond_with_error};
use crate::stats::{self, Counters};
use crate::upstream::Pool;
use crate::waiting::{Parked, WaitingRoom};

mod config;
pub use config::{Config, default_threads};

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
    per_client: PerClient,
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
    // Held, never read: dropping the Client frees its places.
    _slot: Slot,
    _place: Option<ClientPlace>,
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
        let mut config = self.config;
        // Past the descriptor limit, accept fails and clients hear nothing;
        // under it, the one over the connection limit gets its 503.
        let fds = limits::raise_fd_limit()?;
        // Kept upstream connections get a quarter of the descriptors at most.
        let quarter = usize::try_from(fds / 4).unwrap_or(usize::MAX);
        config.upstream.max_idle = config.upstream.max_idle.min(quarter);
        let fit = limits::connections_for(fds, config.upstream.max_idle);
        if config.max_connections > fit {
            log::warn!(
                "at most {fit} connections fit in {fds} file descriptors; \
                 --max-connections {} lowered to {fit}",
                config.max_connections
            );
            config.max_connections = fit;
        }
        // Every queued job is an admitted connection, and there are at most
        // max_connections of those, so the queue never refuses one.
        let pool = ThreadPool::new(config.threads, config.max_connections)?;
        let shared = Arc::new(Shared {
            pool: pool.handle(),
            active: AtomicUsize::new(0),
            local_addr: listener.local_addr()?,
            upstream: Pool::new(config.upstream.clone(), config.timeouts),
            per_client: PerClient::new(config.max_connections_per_client),
            config,
            handler: self.handler,
            shutdown: shutdown.clone(),
            counters: Counters::new(),
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
    // A client's own limit comes before the global one, so that one
    // address cannot take every place.
    let place = peer.map(|p| shared.per_client.admit(p.ip()));
    let refusal = match (shared.handler.admit(peer), &place) {
        // Nothing is read from a client we do not serve.
        (Err(error), _) => Some(error),
        (Ok(()), Some(Err(_))) => Some(HttpError::new(
            503,
            "too many connections from your address; try again later",
        )),
        (Ok(()), _) if open > shared.config.max_connections => Some(HttpError::new(
            503,
            "the proxy is at its connection limit; try again later",
        )),
        (Ok(()), _) => None,
    };
    if let Some(error) = refusal {
        // A short write on a fresh socket: it cannot block for long, and the
        // write timeout bounds it anyway. One access line, with no request.
        let _ = conn.set_write_timeout(Duration::from_secs(1));
        respond_with_error(&mut conn, peer, None, &error, Instant::now());
        conn.close();
        return;
    }
    let client = Client {
        conn,
        peer,
        idle_since: Instant::now(),
        head_since: None,
        _slot: slot,
        _place: place.and_then(Result::ok),
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
    let mut reads = 0;
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
        // What had arrived has been read, and the head is still not whole:
        // the rest comes when it comes, and the room will say when.
        if partial && reads > 0 {
            return Next::Park;
        }
        // Handed over by the room, the socket has bytes: the read returns at
        // once. Otherwise it waits at most LINGER, or barely at all.
        let wait = read_wait(partial, shared.pool.waiting());
        if client.conn.set_read_timeout(wait).is_err() {
            return Next::Close;
        }
        reads += 1;
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
fn serve(shared: Arc<Shared>, client: Client) {
    serve_from(shared, client, None);
}

/// The loop of [`serve`]. `handed` is a request whose head a worker has
/// read and whose body this thread, one of its own, is to take.
fn serve_from(shared: Arc<Shared>, mut client: Client, mut handed: Option<(RequestHead, Instant)>) {
    let own_thread = handed.is_some();
    loop {
        let (mut request, started) = match handed.take() {
            Some(handed) => handed,
            None => {
                let started = client.head_since.unwrap_or_else(Instant::now);
                match next_request(&shared, &mut client) {
                    Next::Request(request) => (request, started),
                    Next::Park => return park(&shared, client),
                    Next::Close => return client.conn.close(),
                    Next::Error(error) => {
                        respond_with_error(&mut client.conn, client.peer, None, &error, started);
                        return client.conn.close();
                    }
                }
            }
        };
        // Most requests have no body (RFC 9112 §6.3: no framing field, or a
        // length of 0), and are spared a thread of their own and the
        // system calls below. A framing error is the handler's to answer.
        let framing = body::request_framing(&request);
        let has_body = matches!(framing, Ok(Framing::Chunked | Framing::Length(1..)));
        if has_body && !own_thread {
            return on_own_thread(&shared, client, request, started);
        }
        client.head_since = None;
        last_if_content_may_go_unread(&mut request, &framing);
        let timeouts = &shared.config.timeouts;
        // A body may take the full read timeout, and must keep up with the
        // minimum rate.
        if has_body {
            if client.conn.set_read_timeout(timeouts.client_read).is_err() {
                return client.conn.close();
            }
            client.conn.set_min_rate(shared.config.min_body_rate);
        }
        shared.counters.count(&request);
        if let Some(page) = stats::own_page(&request, shared.local_addr) {
            pages::serve_page(&shared, &mut client, &request, page, started);
            return client.conn.close();
        }
        // An OPTIONS or TRACE with `Max-Forwards: 0` stops here, whatever
        // the handler would do with it (RFC 9110 §7.6.2).
        match forward::is_last_hop(&request) {
            Ok(false) => {}
            Ok(true) => {
                let (status, bytes) = forward::answer_last_hop(&mut client.conn, &request);
                log_access(
                    client.peer,
                    &request,
                    status,
                    bytes,
                    started,
                    Some(Note::new("LAST-HOP", "TCP_MISS", false)),
                );
                return client.conn.close();
            }
            Err(e) => {
                respond_with_error(&mut client.conn, client.peer, Some(&request), &e, started);
                return client.conn.close();
            }
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
                let Client {
                    conn,
                    _slot,
                    _place,
                    ..
                } = client;
                return take_over(conn, Box::new((_slot, _place)));
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
            Persist::KeepAlive => {
                client.idle_since = Instant::now();
                // A thread of its own served one body and hands back.
                if own_thread {
                    return schedule(&shared, client);
                }
                // Fairness: a worker that kept serving the same eager client
                // would leave every queued connection waiting behind it. So
                // the connection goes to the back of the queue, not to the
                // waiting room: its next request is usually there by the
                // time a worker takes it, and if not, that worker parks it.
                if shared.pool.waiting() > 0 {
                    schedule(&shared, client);
                    return pool::end_turn();
                }
            }
            Persist::Close => return client.conn.close(),
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: own_thread
/// A request body comes as fast as its client sends it: with the minimum
/// rate, a byte a second for the first ten seconds. A worker that read it
/// would be a worker nobody else could have, and a few dozen slow uploads
/// would hold them all, so the exchange moves to a thread of its own (as a
/// tunnel does in stage 4) and the connection goes back to the pool after
/// it. The connection limit bounds these threads, as it bounds
/// connections.
fn on_own_thread(shared: &Arc<Shared>, mut client: Client, request: RequestHead, started: Instant) {
    // The exchange reaches the thread through a channel, not inside its
    // closure, so that it is still here to be answered if no thread starts.
    let (hand, take) = mpsc::sync_channel(1);
    let thread_shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("request-body".into())
        .spawn(move || {
            if let Ok((client, handed)) = take.recv() {
                serve_from(thread_shared, client, Some(handed));
            }
        });
    match spawned {
        Ok(_) => {
            let _ = hand.send((client, (request, started)));
        }
        Err(e) => {
            log::error!("cannot start a thread for a request body: {e}");
            let error = HttpError::new(
                503,
                "the proxy cannot take a request body now; try again later",
            );
            respond_with_error(
                &mut client.conn,
                client.peer,
                Some(&request),
                &error,
                started,
            );
            client.conn.close();
        }
    }
}
// ANCHOR_END: own_thread

// ANCHOR: unread_content
/// Content in a GET or HEAD has no meaning (RFC 9110 §9.3.1, §9.3.2), and a
/// layer may answer such a request without reading it: a cache hit does.
/// Whatever follows on the connection would then be read as the next
/// request, one the client smuggled inside a body, and §9.3.1 names that
/// risk. So such a request is the connection's last: marked
/// `Connection: close`, it makes every layer answer and close. The mark
/// goes no further, as `Connection` is hop-by-hop.
fn last_if_content_may_go_unread(request: &mut RequestHead, framing: &Result<Framing, HttpError>) {
    let bodiless = matches!(framing, Ok(Framing::Empty | Framing::Length(0)));
    if (request.method == "GET" || request.method == "HEAD") && !bodiless {
        request.headers.append("Connection", "close");
    }
}
// ANCHOR_END: unread_content

mod pages;

#[cfg(test)]
mod tests;
