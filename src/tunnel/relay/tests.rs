//! Unit tests of the tunnel relay, on loopback socket pairs: both
//! directions, half-close, the idle timeout, and the ways a read or a
//! write can fail (a signal, a slow reader, a reset).

use super::*;
use crate::test_util::{TEST_TIMEOUT, read_to_end, socket_pair, with_timeouts};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

const IDLE: Duration = Duration::from_secs(5);

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
fn the_buffer_doubles_after_a_full_read_up_to_its_limit() {
    assert_eq!(grown(BUF_SIZE, BUF_SIZE), 2 * BUF_SIZE);
    assert_eq!(grown(BUF_SIZE, BUF_SIZE - 1), BUF_SIZE);
    assert_eq!(grown(BUF_SIZE, 1), BUF_SIZE);
    assert_eq!(grown(MAX_BUF_SIZE / 2, MAX_BUF_SIZE / 2), MAX_BUF_SIZE);
    assert_eq!(grown(MAX_BUF_SIZE, MAX_BUF_SIZE), MAX_BUF_SIZE);
    assert_eq!(
        grown(3 * MAX_BUF_SIZE / 4, 3 * MAX_BUF_SIZE / 4),
        MAX_BUF_SIZE
    );
}

// The C library's `pthread_kill`, declared here because the crate has no
// `libc` dependency: the one way to deliver a signal to one chosen thread.
unsafe extern "C" {
    fn pthread_kill(
        thread: std::os::unix::thread::RawPthread,
        signal: std::ffi::c_int,
    ) -> std::ffi::c_int;
}

/// Sends SIGUSR1 to `thread` many times. On Linux a read or write on a
/// socket with a timeout fails with `EINTR` (`Interrupted`) when a signal
/// handler runs, SA_RESTART or not (signal(7)): that is how a tunnel sees
/// one.
fn interrupt_often(thread: std::os::unix::thread::RawPthread) {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    HANDLER.call_once(|| {
        let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, seen)
            .expect("install a SIGUSR1 handler");
    });
    for _ in 0..300 {
        // SAFETY: `thread` is a live thread of this process (its
        // JoinHandle is held by the caller) and SIGUSR1 has a handler.
        let sent = unsafe { pthread_kill(thread, signal_hook::consts::SIGUSR1) };
        assert_eq!(sent, 0, "pthread_kill failed");
        thread::yield_now();
    }
}

#[test]
fn a_signal_interrupting_a_read_or_a_write_does_not_end_the_tunnel() {
    use std::os::unix::thread::JoinHandleExt;
    let (client, proxy_client) = socket_pair();
    let (proxy_upstream, upstream) = socket_pair();
    let (tx, done) = mpsc::channel();
    // The up direction runs on the thread that calls `relay`. Nothing moves
    // while the signals fly, so the idle timeout must outlast them.
    let relay_thread = thread::spawn(move || {
        let idle = Duration::from_secs(60);
        let _ = tx.send(relay(proxy_client, b"", proxy_upstream, idle));
    });
    // Waiting in a read.
    interrupt_often(relay_thread.as_pthread_t());
    // Waiting in a write: the upstream reads nothing until the signals
    // are over, so the client's bytes pile up and the relay's write blocks.
    let sender = send_pattern(&client, 3);
    interrupt_often(relay_thread.as_pthread_t());
    let at_upstream = receive(&upstream);
    sender.join().unwrap();
    assert_eq!(at_upstream.join().unwrap(), (BIG, pattern_hash(3)));
    upstream.shutdown(Shutdown::Write).unwrap();
    let stats = done.recv_timeout(TEST_TIMEOUT).expect("the relay ended");
    relay_thread.join().unwrap();
    assert_eq!(stats.ended_by, End::Closed);
    assert_eq!(stats.client_to_upstream, BIG as u64);
}

#[test]
fn a_slow_reader_makes_writes_wait_but_is_not_an_error() {
    // A slice of 250 ms. The upstream first reads a little every 300 ms, so
    // the relay's writes, blocked behind full socket buffers, time out again
    // and again while the tunnel as a whole never goes idle for a second.
    let idle = Duration::from_secs(1);
    let h = Harness::start(b"", idle);
    let sender = send_pattern(&h.client, 4);
    let mut upstream = h.upstream.try_clone().unwrap();
    let mut hash = Fnv::new();
    let mut total = 0;
    let mut buf = vec![0; 64 * 1024];
    for _ in 0..4 {
        // Slow on purpose: this is the behaviour under test, not a wait
        // for the relay.
        thread::sleep(Duration::from_millis(300));
        let n = upstream.read(&mut buf).unwrap();
        hash.update(&buf[..n]);
        total += n;
    }
    let (rest, rest_hash) = {
        // The rest at full speed; `receive` hashes from scratch, so hash
        // the rest here too.
        let mut n_total = 0;
        loop {
            let n = upstream.read(&mut buf).unwrap();
            if n == 0 {
                break (n_total, hash.0);
            }
            hash.update(&buf[..n]);
            n_total += n;
        }
    };
    sender.join().unwrap();
    assert_eq!((total + rest, rest_hash), (BIG, pattern_hash(4)));
    h.upstream.shutdown(Shutdown::Write).unwrap();
    let stats = h.stats();
    assert_eq!(stats.ended_by, End::Closed);
    assert_eq!(stats.client_to_upstream, BIG as u64);
}

#[test]
fn a_write_to_a_peer_that_has_gone_ends_the_tunnel_with_an_error_at_once() {
    // The upstream reads what it was sent and closes. The FIN goes on to
    // the client (half-close), but the client keeps sending: the relay's
    // writes to the upstream now fail. That is an error to end the tunnel
    // on, not a timeout to sit out, nor an interruption to retry.
    let h = Harness::start(b"", IDLE);
    let mut client = h.client.try_clone().unwrap();
    client.write_all(b"hello").unwrap();
    let mut upstream = h.upstream.try_clone().unwrap();
    let mut hello = [0u8; 5];
    upstream.read_exact(&mut hello).unwrap();
    drop(upstream);
    drop(h.upstream);
    assert_eq!(read_to_end(&h.client), b"", "the FIN is passed on");
    let chunk = vec![7u8; 64 * 1024];
    while client.write_all(&chunk).is_ok() {}
    let stats = h.done.recv_timeout(TEST_TIMEOUT).expect("the relay ended");
    assert!(
        matches!(stats.ended_by, End::Error(_)),
        "ended by {}",
        stats.ended_by
    );
    assert!(stats.duration < IDLE, "waited {:?}", stats.duration);
}
