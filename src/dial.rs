//! Reaching the next hop: a TCP connection to the origin, or to whatever a
//! [`Connector`] chooses instead, and the timeouts every socket gets.
//!
//! Connecting has its own failures, and they are not the relay's: the name
//! does not resolve, every address refuses, or none answers in time. For a
//! plain HTTP request each of them is a 502 Bad Gateway (RFC 9110 §15.6.3),
//! since the origin never answered at all; a CONNECT (stage 4) words them
//! its own way, so [`ConnectError`] keeps them apart. A name may resolve to
//! several addresses (RFC 9110 §4.3.1 leaves the choice to the client); the
//! first that accepts wins.
//!
//! [`Connector`] is the seam later code plugs into: stage 1 opens a new
//! connection per request ([`Direct`]), stage 2 keeps them for reuse
//! ([`crate::upstream`]) or sends them to a parent proxy
//! ([`crate::parent`]), and the relay never knows which.

use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::conn::{Conn, is_timeout};
use crate::error::HttpError;
use crate::forward::RequestForm;
use crate::uri::Authority;

// ANCHOR: timeouts
/// Every timeout the proxy applies. Nothing waits forever: a silent peer
/// must never hold a thread.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// How long to wait for a TCP connection to the origin.
    pub connect: Duration,
    /// How long the origin may stay silent while we wait for its response.
    pub upstream_read: Duration,
    /// How long a client may take to send the rest of a request it started.
    pub client_read: Duration,
    /// How long an idle persistent client connection is kept open.
    pub client_idle: Duration,
    /// How long a write may block before we give up on the peer.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            upstream_read: Duration::from_secs(30),
            client_read: Duration::from_secs(30),
            client_idle: Duration::from_secs(15),
            write: Duration::from_secs(30),
        }
    }
}
// ANCHOR_END: timeouts

/// Why a connection to an upstream host could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// The name did not resolve.
    Resolve(String),
    /// Every address refused or failed.
    Failed(String),
    /// No address answered in time.
    TimedOut,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Resolve(e) => write!(f, "cannot resolve: {e}"),
            ConnectError::Failed(e) => write!(f, "cannot connect: {e}"),
            ConnectError::TimedOut => f.write_str("connecting timed out"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl ConnectError {
    /// The error response for a plain HTTP request: every connect failure is
    /// a 502, because the origin never answered at all.
    pub fn to_http(&self, authority: &Authority) -> HttpError {
        match self {
            ConnectError::Resolve(e) => {
                HttpError::bad_gateway(format!("cannot resolve {}: {e}", authority.host))
            }
            ConnectError::Failed(e) => {
                HttpError::bad_gateway(format!("cannot connect to {authority}: {e}"))
            }
            ConnectError::TimedOut => {
                HttpError::bad_gateway(format!("connecting to {authority} timed out"))
            }
        }
    }
}

// ANCHOR: connector
/// Where upstream connections come from, and where they go after a
/// complete exchange. Stage 1 opens a new connection for every request and
/// closes it afterwards ([`Direct`]); a connector may instead keep
/// connections open for later requests to the same origin.
pub trait Connector: Send + Sync {
    /// A connection to `authority`, and whether it carried an earlier
    /// exchange (the origin may have closed such a connection meanwhile).
    fn checkout(&self, authority: &Authority) -> Result<(Conn, bool), HttpError>;

    /// A new connection, never a kept one: for the one retry after a kept
    /// connection turned out to be closed.
    fn fresh(&self, authority: &Authority) -> Result<Conn, HttpError>;

    /// Takes back a connection whose exchange completed and that both sides
    /// left open. Dropping it closes it, which is what [`Direct`] does.
    fn checkin(&self, authority: &Authority, conn: Conn) {
        let _ = (authority, conn);
    }

    /// A connector of its own, for work that outlives the request it came
    /// with (stage 3 revalidates stale entries in the background): it
    /// reaches the same next hop, the origin or the same parent proxies,
    /// and keeps nothing for later.
    fn detached(&self) -> Box<dyn Connector>;

    /// Should requests ask the origin to keep the connection open?
    fn keeps_connections(&self) -> bool {
        false
    }

    /// How requests on these connections name their target: origin-form
    /// for an origin, absolute-form when the connections go to a parent
    /// proxy instead ([`crate::parent`]).
    fn request_form(&self) -> RequestForm {
        RequestForm::Origin
    }
}

/// Stage 1's connector: one new connection per request, closed after it.
pub struct Direct(pub Timeouts);

impl Connector for Direct {
    fn checkout(&self, authority: &Authority) -> Result<(Conn, bool), HttpError> {
        Ok((open(authority, &self.0)?, false))
    }

    fn fresh(&self, authority: &Authority) -> Result<Conn, HttpError> {
        open(authority, &self.0)
    }

    fn detached(&self) -> Box<dyn Connector> {
        Box::new(Direct(self.0))
    }
}
// ANCHOR_END: connector

/// Connects to `authority` and sets the timeouts every upstream socket has.
pub fn open(authority: &Authority, timeouts: &Timeouts) -> Result<Conn, HttpError> {
    let stream = connect(authority, timeouts.connect).map_err(|e| e.to_http(authority))?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(timeouts.upstream_read));
    let _ = stream.set_write_timeout(Some(timeouts.write));
    Ok(Conn::new(stream))
}

// ANCHOR: connect
/// Resolves `authority` and connects to the first address that answers.
pub fn connect(authority: &Authority, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<_> = (authority.host.to_lookup().as_str(), authority.port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::Resolve(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::Resolve("no addresses".into()));
    }
    let mut last = ConnectError::TimedOut;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) if is_timeout(&e) => last = ConnectError::TimedOut,
            Err(e) => last = ConnectError::Failed(e.to_string()),
        }
    }
    Err(last)
}
// ANCHOR_END: connect
