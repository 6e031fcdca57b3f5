// Starter code for stage 4, exercises 1 and 3 (see exercises/stage4/HINTS.md).
// With `--features starter-stage4` this file replaces src/tunnel.rs. Left for
// you: the port policy (exercise 1: `PortPolicy::parse`, `allows`,
// `parse_port`) and one direction of the tunnel (exercise 3: `pump`,
// `send_all`). Everything else is the reference code.
//! CONNECT tunnels: relaying bytes the proxy cannot read.
//!
//! # Why a proxy can only tunnel HTTPS
//!
//! With `https://` the client wants TLS from its own socket all the way to the
//! origin server. TLS encrypts everything HTTP puts on the wire (request line,
//! header fields, bodies, responses) with keys only the two ends know, and the
//! client checks the server's certificate. A proxy in the middle sees the name
//! and port the client asked for, the size and timing of the traffic, and
//! nothing else. It cannot read the requests, so it cannot cache, filter or
//! rewrite them; and it cannot answer in the server's name, because it cannot
//! present that server's certificate.
//!
//! So the client asks the proxy for a plain byte pipe instead:
//! `CONNECT example.test:443 HTTP/1.1` (RFC 9110 §9.3.6). The request target
//! is in authority-form, just `host:port` with no scheme and no path
//! (RFC 9112 §3.2.3), because there is no resource for the proxy to fetch. The
//! proxy opens a TCP connection to that authority and answers with a 2xx.
//! From then on, nothing on either connection is HTTP any more: the proxy
//! copies bytes each way, unread and unchanged, until the tunnel closes. The
//! HTTP side of this (parsing the request, the port check, connecting with a
//! timeout, the `200 Connection established` reply) lives in the HTTP core;
//! this module takes over once both sockets are ready.
//!
//! # The relay loop
//!
//! A tunnel has two directions: client to upstream ("up") and upstream to
//! client ("down"). They are independent. TLS peers send whenever they like
//! (a server can push a session ticket while the client is still writing), so
//! a loop that waits on one side at a time deadlocks or stalls. With blocking
//! std sockets the simplest correct shape is one thread per direction, each
//! doing read, write everything, repeat. [`relay`] runs the down direction on
//! a second thread and the up direction on the calling thread, and returns
//! when both have finished. Each direction starts with a 64 KiB buffer and
//! doubles it, up to 1 MiB, whenever a read fills it: an interactive tunnel
//! stays small, and a bulk download costs one read and one write per MiB.
//!
//! # Half-close
//!
//! TCP lets a peer finish sending while it still receives: it sends a FIN,
//! which our read sees as end of file. When one direction reaches end of file
//! we pass the FIN on with `shutdown(Write)` on the other socket, and keep
//! relaying the other direction. A client that sends its last bytes and then
//! shuts down its write side still gets the rest of the answer.
//!
//! RFC 9110 §9.3.6 describes a stricter ending: when either side closes, the
//! intermediary delivers what that side sent and then closes both connections.
//! A read of end of file cannot tell a half-close from a full close, so
//! closing both at once would cut off a peer that is still waiting for its
//! reply. We deliver the outstanding data (the RFC's first duty) and forward
//! the FIN, and the far side normally closes too, which ends the tunnel. If the
//! closed side really has gone, our next write to it fails and ends the tunnel.
//! If the far side never closes, the idle timeout ends it.
//!
//! # The idle timeout
//!
//! An open tunnel holds two sockets and two threads. A client that opens
//! tunnels and goes quiet would hold them forever, so a tunnel closes when
//! nothing has moved in *either* direction for the idle timeout. It has to be
//! both directions together: during a long download the upload side is silent
//! but the tunnel is busy. Each socket gets a short read and write timeout (a
//! "slice", at most one second). Both directions record the time of their last
//! progress in one shared atomic. When a read or write slice runs out, the
//! direction checks that shared time and, if the whole tunnel has been idle
//! long enough, shuts both sockets down. On Linux a timed-out socket call
//! reports `WouldBlock` (EAGAIN), not `TimedOut`, so we accept both.
//!
//! # Errors
//!
//! A reset or a broken pipe in either direction ends the whole tunnel. The
//! direction that sees the error shuts down both sockets in both directions.
//! That wakes the other thread, which is probably blocked in a read, and its
//! read then returns end of file. The first reason recorded (error or idle
//! timeout) is the one the access log reports.
//!
//! # Why CONNECT needs a port policy
//!
//! A proxy that connects anywhere it is asked is a free TCP relay. Port 25 on
//! a mail server lets anyone send spam from the proxy's address. Ports such as
//! 22, 3306 or 6379 reach SSH servers and databases that trust the proxy's
//! network and that the firewall was meant to hide. Every attack also appears
//! to come from the proxy. HTTPS needs only port 443, so [`PortPolicy`] allows
//! exactly that by default. Anything else must be listed, and is refused with
//! 403 before the proxy connects anywhere. (The port list does not protect
//! internal hosts that listen on 443; that would need a separate policy on
//! destination addresses.)
//!
//! # Capacity: tunnels must not starve plain HTTP
//!
//! A plain HTTP exchange takes a worker for milliseconds; a tunnel can last an
//! hour. If tunnels ran on the HTTP worker pool, a few dozen idle browser tabs
//! would hold every worker and plain requests would queue behind them. So
//! tunnels run on their own threads, outside the pool, under their own limit:
//!
//! 1. the HTTP core calls [`Tunnels::reserve`] *before* it connects upstream
//!    or answers 200, so a CONNECT over the limit gets a clean 503 while the
//!    connection is still speaking HTTP;
//! 2. the [`TunnelSlot`] it gets back is a guard: dropping it gives the slot
//!    back, so an early return or an error on the way cannot leak a slot;
//! 3. [`TunnelSlot::spawn`] moves both sockets to a new thread that runs
//!    [`relay`], calls the access-log callback, and then releases the slot and
//!    the caller's own connection guard. The worker is free at once.
//!
//! Each tunnel costs two threads (one per direction), so the limit also caps
//! the thread count. The worker pool and the connection limit stay in the HTTP
//! core.
//!
//! Starting a thread is not free: a fresh stack and a few dozen system calls,
//! about as much work as relaying a whole short tunnel. Browsers open many
//! short tunnels, so a thread that finishes a tunnel waits a little while for
//! the next one instead of exiting (a small thread cache, [`ThreadCache`]).

// Until you write them, some arguments, imports and helpers go unused.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes read per system call in each direction, at first: plenty for the
/// back-and-forth of an interactive tunnel.
const BUF_SIZE: usize = 64 * 1024;
/// The most a direction's buffer grows to. A read that fills the buffer
/// means a bulk transfer is under way, and larger reads then let the proxy
/// sleep less often between them. In the loopback benchmark that took a
/// 100 MiB download through the tunnel from 0.67 to 1.26 times the speed of
/// a direct one (the proxy's copy runs on a second core). Only busy tunnels
/// pay for the memory.
const MAX_BUF_SIZE: usize = 1024 * 1024;

/// Bounds for the socket timeout slice. A shorter slice notices an idle tunnel
/// sooner after its deadline; a longer one wakes sleeping threads less often.
const MIN_SLICE: Duration = Duration::from_millis(10);
const MAX_SLICE: Duration = Duration::from_secs(1);

// ANCHOR: port_policy
/// The destination ports a CONNECT may reach, as inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPolicy {
    ranges: Vec<(u16, u16)>,
}

impl PortPolicy {
    /// Parses a comma-separated list of ports and ranges: `"443,8443"`,
    /// `"443, 8000-8100"`. Port 0, reversed ranges, empty entries and
    /// anything that is not a decimal number are errors: a typo in an
    /// access rule must stop the proxy from starting, not widen the rule.
    pub fn parse(spec: &str) -> Result<PortPolicy, String> {
        // TODO(exercise 1a): split `spec` on commas; each entry, trimmed, is
        // a port (`443`) or an inclusive range (`8000-8100`), read with
        // `parse_port`. An empty list, an empty entry (`443,`) or a range
        // that runs backwards (`8100-8000`) is an error that says what is
        // wrong. Never skip a bad entry: a typo in an access rule must stop
        // the proxy from starting, not quietly change the rule.
        todo!("stage 4, exercise 1a: PortPolicy::parse")
    }

    pub fn allows(&self, port: u16) -> bool {
        // TODO(exercise 1b): is `port` inside one of the ranges?
        todo!("stage 4, exercise 1b: PortPolicy::allows")
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    // TODO(exercise 1a): a decimal port from 1 to 65535, nothing else: no
    // sign, no spaces inside, no hex, not 0 (it cannot be connected to).
    // Careful: `"+443".parse::<u16>()` is `Ok(443)`.
    todo!("stage 4, exercise 1a: parse_port")
}

/// Only HTTPS: the one port a browser needs a tunnel for.
impl Default for PortPolicy {
    fn default() -> Self {
        PortPolicy {
            ranges: vec![(443, 443)],
        }
    }
}
// ANCHOR_END: port_policy

/// `443, 8000-8100`: the form the configuration uses, for logs and 403 bodies.
impl fmt::Display for PortPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(low, high)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if low == high {
                write!(f, "{low}")?;
            } else {
                write!(f, "{low}-{high}")?;
            }
        }
        Ok(())
    }
}

/// How a tunnel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Both sides finished sending: the normal end.
    Closed,
    /// Nothing moved in either direction for the idle timeout.
    IdleTimeout,
    /// A socket failed (reset, broken pipe, ...); the tunnel was cut.
    Error(ErrorKind),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Closed => f.write_str("closed"),
            End::IdleTimeout => f.write_str("idle timeout"),
            End::Error(kind) => write!(f, "error: {kind}"),
        }
    }
}

/// What one tunnel did, for its access-log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelStats {
    /// Bytes written to the upstream, including the pending bytes.
    pub client_to_upstream: u64,
    /// Bytes written to the client.
    pub upstream_to_client: u64,
    pub duration: Duration,
    pub ended_by: End,
}

// ANCHOR: access_line
/// One log line per tunnel, written when it closes. `up` counts bytes from
/// the client to the upstream, `down` the other way.
pub fn access_line(target: &str, stats: &TunnelStats) -> String {
    format!(
        "CONNECT {} up={} down={} time={:.3}s end={}",
        // The target came from the client: escape control characters so a
        // crafted authority cannot forge extra log lines.
        target.escape_debug(),
        stats.client_to_upstream,
        stats.upstream_to_client,
        stats.duration.as_secs_f64(),
        stats.ended_by,
    )
}
// ANCHOR_END: access_line

// ANCHOR: activity
/// State both directions of one tunnel share.
struct Activity {
    start: Instant,
    /// Milliseconds since `start` at which the last byte moved either way.
    last_progress: AtomicU64,
    idle_timeout: Duration,
    /// Why the tunnel was cut short, if it was. The first reason wins: the
    /// other direction only sees its socket being shut down by this one.
    cut_reason: OnceLock<End>,
}

impl Activity {
    fn new(idle_timeout: Duration) -> Self {
        Activity {
            start: Instant::now(),
            last_progress: AtomicU64::new(0),
            idle_timeout,
            cut_reason: OnceLock::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn progressed(&self) {
        // `fetch_max`: the two directions race, and time must not go back.
        self.last_progress
            .fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    /// True when nothing has moved in either direction for the idle timeout.
    fn idle_expired(&self) -> bool {
        let last = self.last_progress.load(Ordering::Relaxed);
        let idle = Duration::from_millis(self.now_ms().saturating_sub(last));
        idle >= self.idle_timeout
    }

    fn is_cut(&self) -> bool {
        self.cut_reason.get().is_some()
    }

    /// Ends the tunnel early. Shutting down both directions of both sockets
    /// wakes the other thread: its blocked read returns end of file and its
    /// blocked write fails, so it cannot sleep on a dead tunnel.
    fn cut(&self, why: End, a: &TcpStream, b: &TcpStream) {
        let _ = self.cut_reason.set(why);
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
}
// ANCHOR_END: activity

fn is_timeout(e: &io::Error) -> bool {
    // SO_RCVTIMEO and SO_SNDTIMEO expire with EAGAIN on Linux (`WouldBlock`);
    // other systems say `TimedOut`.
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// The socket timeout: a quarter of the idle timeout, within the bounds.
fn slice_for(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(MIN_SLICE, MAX_SLICE)
}

fn prepare(socket: &TcpStream, slice: Duration) -> io::Result<()> {
    socket.set_read_timeout(Some(slice))?;
    socket.set_write_timeout(Some(slice))?;
    // Each read is forwarded at once as one write; the ends have already
    // decided how to batch their data, and Nagle's algorithm holding back a
    // small TLS record would only add latency. A failure here costs speed,
    // not correctness, so it is ignored.
    let _ = socket.set_nodelay(true);
    Ok(())
}

// ANCHOR: relay
/// Relays bytes between `client` and `upstream` until both directions have
/// ended, the tunnel has been idle for `idle_timeout`, or a socket fails.
///
/// `pending` holds bytes the client sent right behind its CONNECT head (they
/// arrived in the same read as the head). They go to the upstream before
/// anything else. Never panics; every outcome is in the returned stats.
pub fn relay(
    client: TcpStream,
    pending: &[u8],
    upstream: TcpStream,
    idle_timeout: Duration,
) -> TunnelStats {
    let activity = Activity::new(idle_timeout);
    let slice = slice_for(idle_timeout);

    if let Err(e) = prepare(&client, slice).and_then(|()| prepare(&upstream, slice)) {
        // Without timeouts the tunnel might never end: refuse to run.
        activity.cut(End::Error(e.kind()), &client, &upstream);
        return activity.stats(0, 0);
    }
    // The down direction runs on another thread, which needs its own
    // handles on the sockets and the shared state.
    let shared = Arc::new((client, upstream, activity));
    let (done, down_moved) = mpsc::channel();
    let down_shared = Arc::clone(&shared);
    let started = threads().run(Box::new(move || {
        let (client, upstream, activity) = &*down_shared;
        let _ = done.send(pump(upstream, client, &[], activity));
    }));
    let (client, upstream, activity) = &*shared;
    if let Err(e) = started {
        activity.cut(End::Error(e.kind()), client, upstream);
        return activity.stats(0, 0);
    }
    let up = pump(client, upstream, pending, activity);
    // `pump` has no panicking path; if one appears, the channel closes and
    // the tunnel is reported as failed instead of taking the proxy down.
    let down = down_moved.recv().unwrap_or_else(|_| {
        activity.cut(End::Error(ErrorKind::Other), client, upstream);
        0
    });
    activity.stats(up, down)
}
// ANCHOR_END: relay

impl Activity {
    fn stats(&self, up: u64, down: u64) -> TunnelStats {
        TunnelStats {
            client_to_upstream: up,
            upstream_to_client: down,
            duration: self.start.elapsed(),
            ended_by: self.cut_reason.get().copied().unwrap_or(End::Closed),
        }
    }
}
// ANCHOR: pump
/// One direction of the tunnel: sends `pending`, then copies `from` to `to`
/// until end of file, idleness or an error. Returns the bytes written to `to`.
fn pump(from: &TcpStream, to: &TcpStream, pending: &[u8], activity: &Activity) -> u64 {
    // TODO(exercise 3a): one direction of the tunnel.
    //
    // 1. Send `pending` first (`send_all`): bytes the client sent right
    //    behind its CONNECT head must reach the upstream before anything
    //    else.
    // 2. Then loop: read from `from` into a buffer of `BUF_SIZE` bytes and
    //    send what came all to `to`. Every read that brings bytes is
    //    progress (`activity.progressed()`). A read that fills the buffer
    //    means a bulk transfer: double the buffer, up to `MAX_BUF_SIZE`.
    // 3. End of file: `from` has finished sending. Pass that on with
    //    `to.shutdown(Shutdown::Write)` and return, leaving the other
    //    direction running: the peer may still be waiting for its answer
    //    (half-close, RFC 9110 §9.3.6).
    // 4. A read timeout (`is_timeout`) is not an error: the sockets have
    //    short timeouts so that this loop can look around. If the other
    //    direction has cut the tunnel (`activity.is_cut()`), stop. If
    //    nothing has moved either way for the idle timeout
    //    (`activity.idle_expired()`), cut it with `End::IdleTimeout`.
    //    Otherwise read again. `Interrupted` means just read again.
    // 5. Any other error, here or in `send_all`, ends the whole tunnel:
    //    `activity.cut(reason, from, to)` shuts both sockets down, which
    //    also wakes the other direction.
    //
    // Return how many bytes were written to `to`, pending ones included.
    todo!("stage 4, exercise 3a: pump")
}

/// Writes all of `data`, counting progress into `moved`. Unlike
/// `write_all`, it survives write timeouts: a slow reader is fine as long as
/// something moves within the idle timeout.
fn send_all(
    to: &TcpStream,
    mut data: &[u8],
    activity: &Activity,
    moved: &mut u64,
) -> Result<(), End> {
    // TODO(exercise 3b): `write` until `data` is empty, adding what each
    // write took to `moved` and reporting progress. A write that takes 0
    // bytes is an error (`ErrorKind::WriteZero`); `Interrupted` means try
    // again. A write timeout is not an error by itself: try again, unless
    // the tunnel was cut meanwhile or has been idle for the idle timeout
    // (then `Err(End::IdleTimeout)`). Any other error is `Err(End::Error(kind))`.
    //
    // `&TcpStream` implements `Write`, so `let mut writer = to;` lets you
    // call `writer.write(...)` on a shared socket.
    todo!("stage 4, exercise 3b: send_all")
}
// ANCHOR_END: pump

// ANCHOR: capacity
/// The tunnel limit, shared by every worker (cloning shares the same count).
#[derive(Clone, Debug)]
pub struct Tunnels {
    shared: Arc<Limit>,
}

#[derive(Debug)]
struct Limit {
    max: usize,
    active: AtomicUsize,
    idle_timeout: Duration,
}

impl Tunnels {
    pub fn new(max_tunnels: usize, idle_timeout: Duration) -> Tunnels {
        Tunnels {
            shared: Arc::new(Limit {
                max: max_tunnels,
                active: AtomicUsize::new(0),
                idle_timeout,
            }),
        }
    }

    /// Tunnels open or reserved right now.
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    pub fn max(&self) -> usize {
        self.shared.max
    }

    pub fn idle_timeout(&self) -> Duration {
        self.shared.idle_timeout
    }

    // ANCHOR: reserve
    /// Takes a slot, or `None` when all are in use. Call this before
    /// connecting upstream or answering 200, so a CONNECT over the limit can
    /// still get a 503 over HTTP.
    pub fn reserve(&self) -> Option<TunnelSlot> {
        let limit = &self.shared;
        // Check and increment in one atomic step: two workers racing for the
        // last slot must not both get it.
        limit
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit.max).then_some(n + 1)
            })
            .ok()?;
        Some(TunnelSlot {
            shared: Arc::clone(limit),
        })
    }
    // ANCHOR_END: reserve
}

// ANCHOR: tunnel_slot
/// One reserved tunnel. Dropping it gives the slot back, whatever path the
/// caller leaves by.
#[must_use = "dropping the slot releases it at once"]
#[derive(Debug)]
pub struct TunnelSlot {
    shared: Arc<Limit>,
}

impl Drop for TunnelSlot {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TunnelSlot {
    /// Runs the tunnel on its own thread, so the calling worker is free at
    /// once. When the relay ends, the thread calls `on_close` with the stats
    /// (the access-log line), then releases this slot, then drops `guard`
    /// (the caller's connection-limit guard, or `()`).
    ///
    /// If no thread can be started, everything moved in (sockets, guard,
    /// slot) is dropped, so the slot is released and the error returned.
    pub fn spawn(
        self,
        client: TcpStream,
        pending: Vec<u8>,
        upstream: TcpStream,
        guard: impl Send + 'static,
        on_close: impl FnOnce(&TunnelStats) + Send + 'static,
    ) -> io::Result<()> {
        let idle_timeout = self.shared.idle_timeout;
        threads().run(Box::new(move || {
            let stats = relay(client, &pending, upstream, idle_timeout);
            on_close(&stats);
            drop(self);
            drop(guard);
        }))
    }
}
// ANCHOR_END: tunnel_slot

// ANCHOR: thread_cache
type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long a tunnel thread waits for its next tunnel before it exits.
const THREAD_KEEP: Duration = Duration::from_secs(30);

/// Tunnel threads that, once done, wait for another job instead of exiting.
/// Unlike the HTTP worker pool it has no fixed size: the tunnel limit
/// already caps how many jobs run at once, and idle threads leave after
/// [`THREAD_KEEP`].
pub struct ThreadCache {
    /// One channel per idle thread; sending a job wakes that thread.
    idle: Mutex<Vec<mpsc::Sender<Job>>>,
}

impl ThreadCache {
    /// Runs `job` on an idle thread, or on a new one if none is idle.
    fn run(self: &Arc<Self>, mut job: Job) -> io::Result<()> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(thread) = idle else { break };
            // A thread that timed out a moment ago is gone: its channel
            // hands the job back, and we try the next one.
            match thread.send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(back)) => job = back,
            }
        }
        let cache = Arc::clone(self);
        thread::Builder::new()
            .name("tunnel".to_string())
            .spawn(move || cache.work(job))
            .map(|_| ())
    }

    fn work(&self, mut job: Job) {
        loop {
            job();
            let (wake, next) = mpsc::channel();
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(wake);
            match next.recv_timeout(THREAD_KEEP) {
                Ok(next) => job = next,
                Err(_) => return,
            }
        }
    }
}

/// The process's tunnel threads, shared by every tunnel.
fn threads() -> &'static Arc<ThreadCache> {
    static THREADS: OnceLock<Arc<ThreadCache>> = OnceLock::new();
    THREADS.get_or_init(|| {
        Arc::new(ThreadCache {
            idle: Mutex::new(Vec::new()),
        })
    })
}
// ANCHOR_END: thread_cache
// ANCHOR_END: capacity

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// Generous, so a loaded machine does not fail a test, but finite, so a
    /// broken relay fails it instead of hanging.
    const TEST_TIMEOUT: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(5);

    fn with_timeouts(s: TcpStream) -> TcpStream {
        s.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TEST_TIMEOUT)).unwrap();
        s
    }

    /// A connected pair of loopback sockets.
    fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (with_timeouts(a), with_timeouts(b))
    }

    /// The test's two ends of a tunnel running on another thread:
    /// `client` is the browser, `upstream` the origin server.
    struct Harness {
        client: TcpStream,
        upstream: TcpStream,
        done: mpsc::Receiver<TunnelStats>,
    }

    impl Harness {
        fn start(pending: &[u8], idle: Duration) -> Harness {
            let (client, proxy_client) = socket_pair();
            let (proxy_upstream, upstream) = socket_pair();
            let pending = pending.to_vec();
            let (tx, done) = mpsc::channel();
            thread::spawn(move || {
                let stats = relay(proxy_client, &pending, proxy_upstream, idle);
                let _ = tx.send(stats);
            });
            Harness {
                client,
                upstream,
                done,
            }
        }

        fn stats(&self) -> TunnelStats {
            self.done
                .recv_timeout(TEST_TIMEOUT)
                .expect("the relay did not finish")
        }
    }

    fn read_to_end(mut s: &TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn relays_both_ways_through_an_echo_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let echo_addr = listener.local_addr().unwrap();
        let echo = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut s2 = with_timeouts(s.try_clone().unwrap());
            s = with_timeouts(s);
            io::copy(&mut s, &mut s2).unwrap();
            s2.shutdown(Shutdown::Write).unwrap();
        });

        let (mut client, proxy_client) = socket_pair();
        let upstream = with_timeouts(TcpStream::connect(echo_addr).unwrap());
        let (tx, done) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(relay(proxy_client, b"", upstream, IDLE));
        });

        let mut answer = [0; 5];
        client.write_all(b"hello").unwrap();
        client.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"hello");
        client.write_all(b"world").unwrap();
        client.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"world");
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&client), b"");

        let stats = done.recv_timeout(TEST_TIMEOUT).unwrap();
        echo.join().unwrap();
        assert_eq!(stats.ended_by, End::Closed);
        assert_eq!(stats.client_to_upstream, 10);
        assert_eq!(stats.upstream_to_client, 10);
    }

    /// A deterministic byte stream (xorshift), so both ends can agree on
    /// the data without sharing a 16 MiB buffer.
    struct Pattern(u64);

    impl Pattern {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                *b = (self.0 >> 32) as u8;
            }
        }
    }

    /// FNV-1a: unlike `DefaultHasher`, the result does not depend on how
    /// the bytes were split into reads.
    struct Fnv(u64);

    impl Fnv {
        fn new() -> Self {
            Fnv(0xcbf2_9ce4_8422_2325)
        }
        fn update(&mut self, data: &[u8]) {
            for &b in data {
                self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    const BIG: usize = 16 * 1024 * 1024;

    fn pattern_hash(seed: u64) -> u64 {
        let mut pattern = Pattern(seed);
        let mut hash = Fnv::new();
        let mut buf = vec![0; 64 * 1024];
        for _ in 0..BIG / buf.len() {
            pattern.fill(&mut buf);
            hash.update(&buf);
        }
        hash.0
    }

    /// Sends the pattern and then a FIN, on its own thread so that both
    /// directions flow at once (sequential writes would fill the buffers and
    /// deadlock).
    fn send_pattern(s: &TcpStream, seed: u64) -> thread::JoinHandle<()> {
        let mut s = s.try_clone().unwrap();
        thread::spawn(move || {
            let mut pattern = Pattern(seed);
            let mut buf = vec![0; 64 * 1024];
            for _ in 0..BIG / buf.len() {
                pattern.fill(&mut buf);
                s.write_all(&buf).unwrap();
            }
            s.shutdown(Shutdown::Write).unwrap();
        })
    }

    /// Reads to end of file; returns the length and hash of what came.
    fn receive(s: &TcpStream) -> thread::JoinHandle<(usize, u64)> {
        let mut s = s.try_clone().unwrap();
        thread::spawn(move || {
            let mut hash = Fnv::new();
            let mut buf = vec![0; 64 * 1024];
            let mut total = 0;
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    return (total, hash.0);
                }
                total += n;
                hash.update(&buf[..n]);
            }
        })
    }

    #[test]
    fn sixteen_mib_each_way_arrive_intact() {
        let h = Harness::start(b"", IDLE);
        let senders = [send_pattern(&h.client, 1), send_pattern(&h.upstream, 2)];
        let at_upstream = receive(&h.upstream);
        let at_client = receive(&h.client);
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(at_upstream.join().unwrap(), (BIG, pattern_hash(1)));
        assert_eq!(at_client.join().unwrap(), (BIG, pattern_hash(2)));

        let stats = h.stats();
        assert_eq!(stats.ended_by, End::Closed);
        assert_eq!(stats.client_to_upstream, BIG as u64);
        assert_eq!(stats.upstream_to_client, BIG as u64);
    }

    #[test]
    fn half_close_still_delivers_the_reply() {
        let mut h = Harness::start(b"", IDLE);
        h.client.write_all(b"last request").unwrap();
        h.client.shutdown(Shutdown::Write).unwrap();

        // The upstream sees the client's FIN as end of file ...
        assert_eq!(read_to_end(&h.upstream), b"last request");
        // ... and can still answer through the half-open tunnel.
        h.upstream.write_all(b"the answer").unwrap();
        h.upstream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&h.client), b"the answer");

        let stats = h.stats();
        assert_eq!(stats.ended_by, End::Closed);
        assert_eq!(stats.client_to_upstream, 12);
        assert_eq!(stats.upstream_to_client, 10);
    }

    #[test]
    fn pending_bytes_go_first() {
        let mut h = Harness::start(b"early ", IDLE);
        h.client.write_all(b"late").unwrap();
        h.client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&h.upstream), b"early late");
        h.upstream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&h.client), b"");
        assert_eq!(h.stats().client_to_upstream, 10);
    }

    #[test]
    fn idle_timeout_ends_a_silent_tunnel() {
        let idle = Duration::from_millis(200);
        let h = Harness::start(b"", idle);
        let stats = h.stats();
        assert_eq!(stats.ended_by, End::IdleTimeout);
        assert!(stats.duration >= idle, "closed early: {:?}", stats.duration);
        // Both ends see the tunnel close.
        assert_eq!(read_to_end(&h.client), b"");
        assert_eq!(read_to_end(&h.upstream), b"");
    }

    #[test]
    fn traffic_one_way_keeps_the_tunnel_open() {
        let idle = Duration::from_millis(400);
        let mut h = Harness::start(b"", idle);
        // 8 x 100 ms is twice the idle timeout, but the tunnel is never idle
        // for long: the down direction is silent, the up direction is not.
        let mut byte = [0];
        for _ in 0..8 {
            thread::sleep(Duration::from_millis(100));
            h.client.write_all(b"x").unwrap();
            h.upstream.read_exact(&mut byte).unwrap();
        }
        assert!(h.done.try_recv().is_err(), "closed while busy");
        let stats = h.stats();
        assert_eq!(stats.ended_by, End::IdleTimeout);
        assert_eq!(stats.client_to_upstream, 8);
        assert!(stats.duration >= Duration::from_millis(1200));
    }

    #[test]
    fn upstream_reset_ends_the_tunnel() {
        let mut h = Harness::start(b"", IDLE);
        h.client.write_all(b"unread").unwrap();
        // Wait until the bytes are in the upstream's receive buffer, then
        // close without reading them: the kernel answers with a reset.
        let mut buf = [0; 6];
        assert_eq!(h.upstream.peek(&mut buf).unwrap(), 6);
        drop(h.upstream);

        let stats = h.done.recv_timeout(TEST_TIMEOUT).unwrap();
        assert!(
            matches!(stats.ended_by, End::Error(_)),
            "ended by {}",
            stats.ended_by
        );
        // The client is told too: end of file or a reset, but no hang.
        let mut rest = Vec::new();
        let _ = h.client.read_to_end(&mut rest);
    }

    #[test]
    fn tunnel_limit_and_slot_release() {
        let tunnels = Tunnels::new(2, IDLE);
        let a = tunnels.reserve().unwrap();
        let b = tunnels.reserve().unwrap();
        assert_eq!(tunnels.active(), 2);
        assert!(tunnels.reserve().is_none());
        drop(a);
        assert_eq!(tunnels.active(), 1);
        let c = tunnels.clone().reserve().unwrap();
        assert!(tunnels.reserve().is_none());
        drop(b);
        drop(c);
        assert_eq!(tunnels.active(), 0);
        assert!(Tunnels::new(0, IDLE).reserve().is_none());
    }

    /// Signals when it is dropped, like the caller's connection guard.
    struct Guard(mpsc::Sender<()>);

    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    #[test]
    fn spawned_tunnel_logs_and_releases_its_slot() {
        let tunnels = Tunnels::new(1, IDLE);
        let slot = tunnels.reserve().unwrap();
        let (mut client, proxy_client) = socket_pair();
        let (proxy_upstream, mut upstream) = socket_pair();
        let (closed_tx, closed) = mpsc::channel();
        let (guard_tx, guard_dropped) = mpsc::channel();
        slot.spawn(
            proxy_client,
            b"hi ".to_vec(),
            proxy_upstream,
            Guard(guard_tx),
            move |stats: &TunnelStats| {
                let _ = closed_tx.send(access_line("example.test:443", stats));
            },
        )
        .unwrap();
        assert_eq!(tunnels.active(), 1);
        assert!(tunnels.reserve().is_none());

        client.write_all(b"there").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&upstream), b"hi there");
        upstream.write_all(b"bye").unwrap();
        upstream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&client), b"bye");

        let line = closed.recv_timeout(TEST_TIMEOUT).unwrap();
        assert!(line.starts_with("CONNECT example.test:443 up=8 down=3 time="));
        assert!(line.ends_with(" end=closed"), "{line}");
        // The guard goes after the slot, so once it is dropped the slot is free.
        guard_dropped.recv_timeout(TEST_TIMEOUT).unwrap();
        assert_eq!(tunnels.active(), 0);
        assert!(tunnels.reserve().is_some());
    }

    #[test]
    fn access_line_escapes_the_target() {
        let stats = TunnelStats {
            client_to_upstream: 1,
            upstream_to_client: 2,
            duration: Duration::from_millis(1500),
            ended_by: End::Error(ErrorKind::ConnectionReset),
        };
        assert_eq!(
            access_line("evil\r\nFAKE LINE:443", &stats),
            "CONNECT evil\\r\\nFAKE LINE:443 up=1 down=2 time=1.500s end=error: connection reset"
        );
    }

    #[test]
    fn port_policy_parsing() {
        let good: &[(&str, &str, &[u16], &[u16])] = &[
            ("443", "443", &[443], &[0, 80, 442, 444, 8443]),
            ("443,8443", "443, 8443", &[443, 8443], &[80, 8444]),
            (
                " 443 , 8000-8100 ",
                "443, 8000-8100",
                &[443, 8000, 8050, 8100],
                &[7999, 8101, 25],
            ),
            ("1-65535", "1-65535", &[1, 22, 65535], &[0]),
            ("563-563", "563", &[563], &[562, 564]),
        ];
        for &(spec, shown, allowed, denied) in good {
            let policy = PortPolicy::parse(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
            assert_eq!(policy.to_string(), shown, "{spec:?}");
            for &port in allowed {
                assert!(policy.allows(port), "{spec:?} should allow {port}");
            }
            for &port in denied {
                assert!(!policy.allows(port), "{spec:?} should deny {port}");
            }
        }

        let bad = [
            "",
            " ",
            "0",
            "0-443",
            "8100-8000",
            "abc",
            "443,",
            ",443",
            "443,,8443",
            "443-",
            "-443",
            "65536",
            "+443",
            "1-2-3",
            "44 3",
            "443;8443",
            "0x1bb",
        ];
        for spec in bad {
            assert!(PortPolicy::parse(spec).is_err(), "{spec:?} was accepted");
        }

        let default = PortPolicy::default();
        assert_eq!(default.to_string(), "443");
        assert!(default.allows(443));
        assert!(!default.allows(25));
        assert!(!default.allows(22));
        assert!(!default.allows(80));
    }
}
