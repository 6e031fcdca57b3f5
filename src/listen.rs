//! Listening: binding the address, telling people where we are, and
//! stopping on request.
//!
//! Every server in this crate takes an already-bound `TcpListener` and a
//! [`Shutdown`], in the style of mini-redis's `server::run(listener,
//! shutdown)`. Binding outside the server lets tests bind port 0 and learn
//! the address before the first connection; the shutdown handle lets
//! whoever started a server stop it (a test when it ends, a binary on
//! SIGTERM) instead of leaking its threads.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::logging;
use crate::uri::Host;

/// Binds `addr` and prints the address we got, for people and for scripts
/// (`--port 0` asks the system for any free port).
pub fn bind_and_announce(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    widen_backlog(&listener);
    let local = listener.local_addr()?;
    let mut out = io::stdout().lock();
    writeln!(out, "listening on http://{local}")?;
    out.flush()?;
    Ok(listener)
}

/// Connections the kernel may hold for us before we accept them.
const BACKLOG: i32 = 1024;

/// The standard library listens with a backlog of 128. A burst of new
/// connections beyond that (a page load through a busy proxy, a benchmark
/// with 256 clients) overflows the queue, and each connection that misses
/// it waits for its SYN to be sent again: a second or more. Listening again
/// on a listening socket only changes the backlog (Linux caps it at
/// `net.core.somaxconn`).
fn widen_backlog(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on a socket we own; it reads nothing of ours.
    let result = unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) };
    if result != 0 {
        log::debug!(
            "could not widen the listen backlog: {}",
            io::Error::last_os_error()
        );
    }
}

// ANCHOR: shutdown
/// A cloneable "please stop" for a server. The server checks it between
/// connections; [`Shutdown::trigger`] also wakes an `accept` that is
/// blocked waiting for a client, by connecting to the listener once.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    stopping: AtomicBool,
    /// Where to connect to wake the accept loop, once a server runs.
    wake: Mutex<Option<SocketAddr>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks the server to stop accepting and to wind down.
    pub fn trigger(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let wake = *self.inner.wake.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(addr) = wake {
            // The accept loop sees this connection, checks the flag and ends.
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }

    /// Called by a server before it starts accepting on `listener`. Returns
    /// false when a stop was asked for already.
    ///
    /// The address is recorded before the flag is read, and `trigger` sets
    /// the flag before it reads the address, so one of the two always sees
    /// the other: a server never blocks in `accept` after a trigger.
    pub fn register(&self, listener: &TcpListener) -> bool {
        if let Ok(local) = listener.local_addr() {
            *self.inner.wake.lock().unwrap_or_else(|e| e.into_inner()) = Some(reachable(local));
        }
        !self.is_triggered()
    }
}

/// The address to connect to for a listener on `local`: a wildcard
/// address is not something one can connect to, its loopback is.
fn reachable(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}
// ANCHOR_END: shutdown

// ANCHOR: own_address
/// Would a connection to `host:port` reach this proxy, listening on
/// `local`? A request for such a target is meant for the proxy itself (its
/// own pages), or would come straight back to it if relayed: a loop
/// (RFC 9110 §7.6.3 has Via for the loops this cannot see).
pub fn is_own_address(host: &Host, port: u16, local: SocketAddr) -> bool {
    if port != local.port() {
        return false;
    }
    let listen = local.ip();
    // One spelling per address: `::ffff:127.0.0.1`, `2130706433` and
    // `0x7f.1` are all 127.0.0.1, and the resolver would connect to it.
    let target = match host.canonical() {
        Host::V4(ip) => IpAddr::V4(ip),
        Host::V6(ip) => IpAddr::V6(ip),
        Host::Name(name) => {
            // "localhost" and the names under it are loopback (RFC 6761
            // §6.3); other names would need a DNS lookup, which this check
            // must not make.
            if name != "localhost" && !name.ends_with(".localhost") {
                return false;
            }
            return listen.is_loopback() || listen.is_unspecified();
        }
    };
    if target == listen {
        return true;
    }
    // Connecting to 0.0.0.0 or :: reaches this machine's loopback.
    if target.is_unspecified() {
        return listen.is_loopback() || listen.is_unspecified();
    }
    // Listening on every address: any address of this machine is us. The
    // kernel knows which those are: only they can be bound.
    listen.is_unspecified()
        && (target.is_loopback() || UdpSocket::bind(SocketAddr::new(target, 0)).is_ok())
}
// ANCHOR_END: own_address

// ANCHOR: signals
/// How long requests in progress get to finish after SIGINT or SIGTERM.
pub const GRACE: Duration = Duration::from_secs(10);

/// Turns signals into actions, on a thread of their own: SIGINT and SIGTERM
/// trigger `shutdown` (and, should requests in progress still run after
/// [`GRACE`], end the process); SIGHUP calls `on_hangup`; SIGUSR1 reopens
/// the access-log file. A daemon's SIGHUP conventionally means "reload",
/// and must never kill it; SIGUSR1 is what `logrotate` sends after moving a
/// log away, as for nginx.
pub fn on_signals(shutdown: Shutdown, on_hangup: impl Fn() + Send + 'static) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGHUP => on_hangup(),
                    SIGUSR1 => logging::reopen_access_log(),
                    _ => stop(&shutdown),
                }
            }
        })?;
    Ok(())
}

/// SIGINT or SIGTERM: no new connections, and a deadline for the rest.
fn stop(shutdown: &Shutdown) {
    log::info!("stopping: no new connections; {GRACE:?} for requests in progress");
    shutdown.trigger();
    thread::spawn(|| {
        thread::sleep(GRACE);
        log::warn!("requests still in progress after {GRACE:?}; exiting anyway");
        std::process::exit(0);
    });
}
// ANCHOR_END: signals

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_address_is_a_loop() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let lo = Host::V4(Ipv4Addr::LOCALHOST);
        assert!(is_own_address(&lo, 8080, local));
        assert!(!is_own_address(&lo, 8081, local));
        assert!(is_own_address(&Host::Name("localhost".into()), 8080, local));
        assert!(!is_own_address(&Host::Name("a.test".into()), 8080, local));
        assert!(is_own_address(&Host::V6(Ipv6Addr::LOCALHOST), 8080, any));
        assert!(!is_own_address(
            &Host::V4(Ipv4Addr::new(10, 0, 0, 1)),
            8080,
            local
        ));
    }

    #[test]
    fn other_spellings_of_our_address_are_us() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let mapped = Host::V6("::ffff:127.0.0.1".parse().unwrap());
        assert!(is_own_address(&mapped, 8080, local));
        assert!(is_own_address(
            &Host::V4(Ipv4Addr::UNSPECIFIED),
            8080,
            local
        ));
        assert!(is_own_address(&Host::V6(Ipv6Addr::UNSPECIFIED), 8080, any));
        assert!(is_own_address(&Host::Name("LOCALHOST.".into()), 8080, any));
        assert!(is_own_address(
            &Host::Name("a.localhost".into()),
            8080,
            local
        ));
        // Loose IPv4 spellings are read as the resolver reads them.
        for loose in ["2130706433", "0x7f.1", "127.1", "0177.0.0.1"] {
            assert!(
                is_own_address(&Host::Name(loose.into()), 8080, local),
                "{loose}"
            );
        }
        assert!(!is_own_address(
            &Host::Name("localhost.test".into()),
            8080,
            local
        ));
        // Listening everywhere, another loopback address is us too.
        assert!(is_own_address(
            &Host::V4(Ipv4Addr::new(127, 0, 0, 2)),
            8080,
            any
        ));
        // An address this machine does not have (TEST-NET-1) is not.
        assert!(!is_own_address(
            &Host::V4(Ipv4Addr::new(192, 0, 2, 1)),
            8080,
            any
        ));
    }

    #[test]
    fn trigger_wakes_a_blocked_accept() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let shutdown = Shutdown::new();
        assert!(shutdown.register(&listener));
        let stopper = shutdown.clone();
        let t = std::thread::spawn(move || stopper.trigger());
        // Blocks until the trigger's wake-up connection arrives.
        let (_stream, _) = listener.accept().unwrap();
        assert!(shutdown.is_triggered());
        t.join().unwrap();
    }

    #[test]
    fn a_trigger_before_registering_is_seen() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let shutdown = Shutdown::new();
        shutdown.trigger();
        assert!(!shutdown.register(&listener));
    }

    #[test]
    fn wildcard_listeners_are_woken_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(reachable(any), "127.0.0.1:8080".parse().unwrap());
        let any6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(reachable(any6), "[::1]:8080".parse().unwrap());
    }
}
