//! Keeping upstream connections open between requests (stage 2).
//!
//! Opening a TCP connection costs a round trip before the first request
//! byte can go out, and a busy proxy talks to the same few origins over and
//! over. HTTP/1.1 connections are persistent by default (RFC 9112 §9.3), so
//! after a complete exchange the proxy can keep the connection and send the
//! next request for that origin on it. This module is the place they wait:
//! a [`Pool`] of idle connections keyed by host and port, implementing
//! [`dial::Connector`].
//!
//! Three things keep it honest:
//!
//! - **Only clean connections come back.** The relay hands a connection
//!   back only after the response was read to its end and neither side
//!   asked to close ([`relay::Exchange`]); anything else is closed.
//! - **Bounded.** At most `max_per_origin` idle connections for one origin
//!   and `max_idle` in all; an idle connection older than `idle_timeout` is
//!   closed instead of used, since origins close idle connections too.
//! - **Stale connections are expected.** An origin may close a kept
//!   connection at any moment (RFC 9112 §9.6), and the proxy finds out only
//!   when it writes. Before use, a connection is checked for a close that
//!   already arrived; if the request then gets no answer at all, the relay
//!   retries an idempotent request once on a new connection (§9.3.1).
//!
//! With parent proxies ([`crate::parent`]), every connection goes to a
//! parent instead, whatever the origin, and is kept under one key: a
//! connection to a parent can carry the next request for any origin.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::dial::{self, Connector, Timeouts};
use crate::error::HttpError;
use crate::forward::RequestForm;
use crate::parent::Parents;
use crate::uri::Authority;

/// How many idle connections to keep, for how long, and where they go.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Idle connections kept for one origin; with parents, for all of
    /// them together, since they share one key.
    pub max_per_origin: usize,
    pub max_idle: usize,
    pub idle_timeout: Duration,
    /// Parent proxies to connect to instead of origins; none by default.
    pub parents: Parents,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_per_origin: 64,
            max_idle: 256,
            // Shorter than most origins' own keep-alive timeouts, so we
            // rarely send on a connection the origin is about to close.
            idle_timeout: Duration::from_secs(4),
            parents: Parents::default(),
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// The key of every connection to a parent. Not an authority (it has a
/// space), so it cannot collide with an origin's.
const PARENT_KEY: &str = "parent proxy";

/// Idle upstream connections, by origin.
pub struct Pool {
    config: PoolConfig,
    timeouts: Timeouts,
    idle: Mutex<Idles>,
    opened: AtomicU64,
    reused: AtomicU64,
}

#[derive(Default)]
struct Idles {
    by_origin: HashMap<String, Vec<Idle>>,
    total: usize,
}

/// How many connections were opened and how many requests went out on a
/// kept one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub opened: u64,
    pub reused: u64,
}

impl Pool {
    pub fn new(config: PoolConfig, timeouts: Timeouts) -> Pool {
        Pool {
            config,
            timeouts,
            idle: Mutex::new(Idles::default()),
            opened: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            opened: self.opened.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
        }
    }

    /// Idle connections held right now.
    pub fn idle(&self) -> usize {
        self.lock().total
    }

    // ANCHOR: key
    /// Which idle connections may carry a request for `authority`.
    fn key(&self, authority: &Authority) -> String {
        if self.config.parents.is_empty() {
            authority.to_string()
        } else {
            PARENT_KEY.to_string()
        }
    }
    // ANCHOR_END: key

    fn lock(&self) -> std::sync::MutexGuard<'_, Idles> {
        // Nothing here panics while holding the lock, and the map stays
        // consistent even if something did.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection to `key` that is not too old,
    /// if any. The lock is held only to take it out of the map.
    fn take(&self, key: &str) -> Option<Conn> {
        let now = Instant::now();
        let mut idles = self.lock();
        let Idles { by_origin, total } = &mut *idles;
        let list = by_origin.get_mut(key)?;
        let before = list.len();
        // Too old to trust: dropped, which closes them.
        list.retain(|i| now.duration_since(i.since) < self.config.idle_timeout);
        let found = list.pop();
        *total -= before - list.len();
        if list.is_empty() {
            by_origin.remove(key);
        }
        found.map(|i| i.conn)
    }
}

// ANCHOR: still_open
/// Has the origin closed this idle connection, or sent something it should
/// not have? A peek that would block means nothing arrived: still good.
fn still_open(conn: &Conn) -> bool {
    let stream = conn.stream();
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let quiet =
        matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).is_ok() && quiet
}
// ANCHOR_END: still_open

impl Connector for Pool {
    fn checkout(&self, authority: &Authority) -> Result<(Conn, bool), HttpError> {
        let key = self.key(authority);
        while let Some(conn) = self.take(&key) {
            if still_open(&conn) {
                self.reused.fetch_add(1, Ordering::Relaxed);
                log::debug!("{key}: reusing a kept connection");
                return Ok((conn, true));
            }
            log::debug!("{key}: a kept connection was closed by the origin");
        }
        Ok((self.fresh(authority)?, false))
    }

    fn fresh(&self, authority: &Authority) -> Result<Conn, HttpError> {
        let conn = if self.config.parents.is_empty() {
            dial::open(authority, &self.timeouts)?
        } else {
            let (conn, parent) = self.config.parents.open(&self.timeouts)?;
            log::debug!("{authority}: through parent proxy {parent}");
            conn
        };
        self.opened.fetch_add(1, Ordering::Relaxed);
        log::debug!("{authority}: opened a new upstream connection");
        Ok(conn)
    }

    fn checkin(&self, authority: &Authority, conn: Conn) {
        let mut idles = self.lock();
        if idles.total >= self.config.max_idle {
            return; // dropped after the lock is released: closed
        }
        let list = idles.by_origin.entry(self.key(authority)).or_default();
        if list.len() >= self.config.max_per_origin {
            return;
        }
        list.push(Idle {
            conn,
            since: Instant::now(),
        });
        idles.total += 1;
    }

    fn detached(&self) -> Box<dyn Connector> {
        // The same parents, if any; a pool that keeps no connection.
        let config = PoolConfig {
            max_idle: 0,
            ..self.config.clone()
        };
        Box::new(Pool::new(config, self.timeouts))
    }

    fn keeps_connections(&self) -> bool {
        true
    }

    fn request_form(&self) -> RequestForm {
        self.config.parents.request_form()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::parse_authority_form;
    use std::io::Write;
    use std::net::TcpListener;

    fn pool(config: PoolConfig) -> Pool {
        Pool::new(config, Timeouts::default())
    }

    #[test]
    fn a_returned_connection_is_used_again() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = parse_authority_form(&listener.local_addr().unwrap().to_string()).unwrap();
        let pool = pool(PoolConfig::default());
        let (conn, reused) = pool.checkout(&authority).unwrap();
        assert!(!reused);
        let _server_side = listener.accept().unwrap();
        pool.checkin(&authority, conn);
        assert_eq!(pool.idle(), 1);
        let (_conn, reused) = pool.checkout(&authority).unwrap();
        assert!(reused);
        assert_eq!(
            pool.stats(),
            PoolStats {
                opened: 1,
                reused: 1
            }
        );
    }

    #[test]
    fn a_connection_the_origin_closed_is_not_used() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = parse_authority_form(&listener.local_addr().unwrap().to_string()).unwrap();
        let pool = pool(PoolConfig::default());
        let (conn, _) = pool.checkout(&authority).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        pool.checkin(&authority, conn);
        drop(server_side);
        // Wait until the close has reached our side, then ask again.
        std::thread::sleep(Duration::from_millis(50));
        let (_conn, reused) = pool.checkout(&authority).unwrap();
        assert!(!reused, "a closed connection was handed out");
    }

    #[test]
    fn stray_bytes_make_a_connection_unusable() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = parse_authority_form(&listener.local_addr().unwrap().to_string()).unwrap();
        let pool = pool(PoolConfig::default());
        let (conn, _) = pool.checkout(&authority).unwrap();
        let (mut server_side, _) = listener.accept().unwrap();
        server_side.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!still_open(&conn));
    }

    #[test]
    fn limits_are_kept() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = parse_authority_form(&listener.local_addr().unwrap().to_string()).unwrap();
        let config = PoolConfig {
            max_per_origin: 2,
            max_idle: 8,
            idle_timeout: Duration::from_secs(60),
            ..PoolConfig::default()
        };
        let pool = pool(config);
        let conns: Vec<_> = (0..3)
            .map(|_| pool.checkout(&authority).unwrap().0)
            .collect();
        for conn in conns {
            pool.checkin(&authority, conn);
        }
        assert_eq!(pool.idle(), 2);
    }

    #[test]
    fn a_parent_connection_carries_requests_for_any_origin() {
        let parent = TcpListener::bind("127.0.0.1:0").unwrap();
        let config = PoolConfig {
            parents: Parents::new([parse_authority_form(
                &parent.local_addr().unwrap().to_string(),
            )
            .unwrap()]),
            ..PoolConfig::default()
        };
        let pool = pool(config);
        let a = parse_authority_form("a.test:80").unwrap();
        let b = parse_authority_form("b.test:8080").unwrap();
        let (conn, _) = pool.checkout(&a).unwrap();
        let (_parent_side, _) = parent.accept().unwrap();
        assert_eq!(pool.request_form(), RequestForm::Absolute);
        pool.checkin(&a, conn);
        let (_conn, reused) = pool.checkout(&b).unwrap();
        assert!(reused, "the parent connection was not used for b.test");
    }

    #[test]
    fn old_idle_connections_are_not_used() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = parse_authority_form(&listener.local_addr().unwrap().to_string()).unwrap();
        let config = PoolConfig {
            idle_timeout: Duration::ZERO,
            ..PoolConfig::default()
        };
        let pool = pool(config);
        let (conn, _) = pool.checkout(&authority).unwrap();
        pool.checkin(&authority, conn);
        let (_conn, reused) = pool.checkout(&authority).unwrap();
        assert!(!reused);
        assert_eq!(pool.idle(), 0);
    }
}
