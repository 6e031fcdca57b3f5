//! The tunnel limit: how many tunnels may be open at once, and the slot
//! that holds one place under it.
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
//! Threads come from a small cache ([`ThreadCache`](super::ThreadCache))
//! rather than being started afresh for every tunnel. RFC 9110 §9.3.6 says
//! nothing about limits; this is what keeps a proxy that offers CONNECT
//! alive under load.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::relay::relay;
use super::stats::TunnelStats;
use super::threads::threads;

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
// ANCHOR_END: capacity

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TEST_TIMEOUT, read_to_end, socket_pair};
    use crate::tunnel::summary;
    use std::io::Write;
    use std::net::Shutdown;
    use std::sync::mpsc;

    const IDLE: Duration = Duration::from_secs(5);

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
                let _ = closed_tx.send(summary(stats));
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
        assert_eq!(line, "up=8 down=3 end=closed");
        // The guard goes after the slot, so once it is dropped the slot is free.
        guard_dropped.recv_timeout(TEST_TIMEOUT).unwrap();
        assert_eq!(tunnels.active(), 0);
        assert!(tunnels.reserve().is_some());
    }
}
