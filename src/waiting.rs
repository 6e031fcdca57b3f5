//! The waiting room: connections between requests wait here, not on a
//! worker (stage 2).
//!
//! A persistent connection (RFC 9112 §9.3) spends most of its life idle,
//! and a client may send its request head slowly, byte by byte, on purpose
//! (a "slowloris"). If a worker thread sat on each such connection, a few
//! hundred of them would hold every worker and nobody else would be served.
//! So a connection with nothing complete to serve is *parked* here: one
//! thread watches all parked sockets at once with the operating system's
//! readiness notification (epoll on Linux, through the `mio` crate; the
//! standard library has no way to wait on many sockets), and hands a
//! connection back to the pool only when bytes have arrived. Each parked
//! connection has a deadline: its idle timeout, or, for a head that has
//! started to arrive, the time the whole head may take. When the deadline
//! passes, the connection is handed to `on_expired` instead.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

/// What can wait in the room: anything with a socket to watch.
pub trait Parked: Send + 'static {
    fn fd(&self) -> RawFd;
}

impl Parked for std::net::TcpStream {
    fn fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

const WAKE: Token = Token(0);

/// The handle the server keeps. Dropping it stops the room's thread, and
/// every connection still parked is dropped (closed) with it.
pub struct WaitingRoom<T: Parked> {
    arrivals: mpsc::Sender<(T, Instant)>,
    waker: Arc<Waker>,
    stopping: Arc<AtomicBool>,
    parked: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Parked> WaitingRoom<T> {
    /// Starts the room's thread. `on_ready` gets a connection whose socket
    /// has bytes (or a close) to read; `on_expired` one whose deadline
    /// passed. Both run on the room's thread, so they must not block.
    pub fn start(
        on_ready: impl Fn(T) + Send + 'static,
        on_expired: impl Fn(T) + Send + 'static,
    ) -> io::Result<WaitingRoom<T>> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let (arrivals, inbox) = mpsc::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let parked = Arc::new(AtomicUsize::new(0));
        let room = Room {
            poll,
            inbox,
            stopping: Arc::clone(&stopping),
            count: Arc::clone(&parked),
            parked: HashMap::new(),
            deadlines: BinaryHeap::new(),
            next_token: 1,
        };
        let thread = thread::Builder::new()
            .name("waiting-room".into())
            .spawn(move || room.run(on_ready, on_expired))?;
        Ok(WaitingRoom {
            arrivals,
            waker,
            stopping,
            parked,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Parks `item` until its socket is readable or `deadline` passes.
    pub fn park(&self, item: T, deadline: Instant) {
        // Only fails once the room has stopped: the item is dropped, which
        // closes its connection, as the room would have.
        if self.arrivals.send((item, deadline)).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Connections waiting right now.
    pub fn len(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the room's thread and waits for it: every connection still
    /// parked is dropped (closed), and later arrivals are dropped at once.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl<T: Parked> Drop for WaitingRoom<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Room<T> {
    poll: Poll,
    inbox: mpsc::Receiver<(T, Instant)>,
    stopping: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
    parked: HashMap<Token, (T, Instant)>,
    /// Earliest deadline first. An entry whose connection has left already
    /// is skipped when it comes up.
    deadlines: BinaryHeap<Reverse<(Instant, Token)>>,
    next_token: usize,
}

// ANCHOR: room_loop
impl<T: Parked> Room<T> {
    fn run(mut self, on_ready: impl Fn(T), on_expired: impl Fn(T)) {
        let mut events = Events::with_capacity(256);
        while !self.stopping.load(Ordering::SeqCst) {
            let timeout = self
                .deadlines
                .peek()
                .map(|Reverse((at, _))| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("waiting room: poll failed: {e}");
                break;
            }
            for event in &events {
                if event.token() == WAKE {
                    self.admit_arrivals();
                } else if let Some(item) = self.leave(event.token()) {
                    on_ready(item);
                }
            }
            let now = Instant::now();
            while let Some(Reverse((at, token))) = self.deadlines.peek().copied() {
                if at > now {
                    break;
                }
                self.deadlines.pop();
                // Only if it is still the same stay: the token may belong to
                // a connection that left and a new deadline since.
                if self.parked.get(&token).is_some_and(|(_, d)| *d == at)
                    && let Some(item) = self.leave(token)
                {
                    on_expired(item);
                }
            }
        }
        self.count.store(0, Ordering::Relaxed);
        // Returning drops every parked connection: closed.
    }
    // ANCHOR_END: room_loop

    fn admit_arrivals(&mut self) {
        while let Ok((item, deadline)) = self.inbox.try_recv() {
            let token = Token(self.next_token);
            self.next_token = self.next_token.wrapping_add(1).max(1);
            let fd = item.fd();
            // Edge-triggered: a socket that is readable already when it is
            // registered is reported at once, so no bytes are missed.
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut SourceFd(&fd), token, Interest::READABLE)
            {
                log::warn!("waiting room: cannot watch a connection ({e}); closing it");
                continue;
            }
            self.parked.insert(token, (item, deadline));
            self.deadlines.push(Reverse((deadline, token)));
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        self.forget_stale_deadlines();
    }

    /// Every stay leaves an entry in `deadlines`, and most connections
    /// leave long before their deadline (a busy keep-alive client parks
    /// between every two requests). Left alone, the heap would hold every
    /// stay of the last idle timeout: half a million entries, 11 MiB, at
    /// 30,000 requests a second. Once the stale entries outnumber the
    /// parked connections, the heap is rebuilt from those, which costs
    /// O(1) per stay on average.
    fn forget_stale_deadlines(&mut self) {
        if self.deadlines.len() > 2 * self.parked.len() + 64 {
            self.deadlines = self
                .parked
                .iter()
                .map(|(token, (_, deadline))| Reverse((*deadline, *token)))
                .collect();
        }
    }

    fn leave(&mut self, token: Token) -> Option<T> {
        let (item, _) = self.parked.remove(&token)?;
        let _ = self.poll.registry().deregister(&mut SourceFd(&item.fd()));
        self.count.fetch_sub(1, Ordering::Relaxed);
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn a_connection_leaves_when_bytes_arrive() {
        let (ready_tx, ready) = mpsc::channel();
        let (expired_tx, expired) = mpsc::channel();
        let room = WaitingRoom::start(
            move |s: TcpStream| ready_tx.send(s).unwrap(),
            move |s: TcpStream| expired_tx.send(s).unwrap(),
        )
        .unwrap();
        let (mut client, server) = pair();
        room.park(server, Instant::now() + Duration::from_secs(30));
        assert!(ready.recv_timeout(Duration::from_millis(100)).is_err());
        client.write_all(b"G").unwrap();
        ready
            .recv_timeout(Duration::from_secs(5))
            .expect("handed back");
        assert!(expired.try_recv().is_err());
        assert_eq!(room.len(), 0);
    }

    #[test]
    fn bytes_that_came_before_parking_are_not_missed() {
        let (ready_tx, ready) = mpsc::channel();
        let room = WaitingRoom::start(move |s: TcpStream| ready_tx.send(s).unwrap(), drop).unwrap();
        let (mut client, server) = pair();
        client.write_all(b"GET").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        room.park(server, Instant::now() + Duration::from_secs(30));
        ready
            .recv_timeout(Duration::from_secs(5))
            .expect("handed back");
    }

    #[test]
    fn a_silent_connection_expires_at_its_deadline() {
        let (expired_tx, expired) = mpsc::channel();
        let room =
            WaitingRoom::start(drop, move |s: TcpStream| expired_tx.send(s).unwrap()).unwrap();
        let (_client, server) = pair();
        let started = Instant::now();
        room.park(server, started + Duration::from_millis(50));
        expired
            .recv_timeout(Duration::from_secs(5))
            .expect("expired");
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn stale_deadlines_do_not_pile_up() {
        let (_arrivals, inbox) = mpsc::channel::<(TcpStream, Instant)>();
        let mut room = Room {
            poll: Poll::new().unwrap(),
            inbox,
            stopping: Arc::new(AtomicBool::new(false)),
            count: Arc::new(AtomicUsize::new(0)),
            parked: HashMap::new(),
            deadlines: BinaryHeap::new(),
            next_token: 1,
        };
        let (_client, server) = pair();
        let later = Instant::now() + Duration::from_secs(30);
        room.parked.insert(Token(1), (server, later));
        room.deadlines.push(Reverse((later, Token(1))));
        // A thousand stays that ended before their deadline.
        for n in 2..1002 {
            room.deadlines.push(Reverse((later, Token(n))));
            room.forget_stale_deadlines();
        }
        assert!(
            room.deadlines.len() <= 66,
            "{} entries",
            room.deadlines.len()
        );
        // The parked connection keeps its deadline.
        let kept: Vec<_> = room.deadlines.iter().map(|Reverse((_, t))| *t).collect();
        assert!(kept.contains(&Token(1)));
    }

    #[test]
    fn dropping_the_room_closes_what_waits() {
        let room = WaitingRoom::start(drop, drop).unwrap();
        let (mut client, server) = pair();
        room.park(server, Instant::now() + Duration::from_secs(30));
        drop(room);
        let mut buf = [0u8; 1];
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        use std::io::Read;
        assert_eq!(client.read(&mut buf).unwrap(), 0, "still open");
    }
}
