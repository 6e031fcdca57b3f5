//! What the stage 2 server asks of the code that answers requests.
//!
//! The server ([`crate::server`]) owns connections: it accepts them, counts
//! them, waits on idle ones and closes them. What to *do* with a request is
//! somebody else's business, described by one trait, [`Handler`]. Stage 2
//! answers with [`Relay`], which forwards every request to its origin.
//! Each later stage wraps the handler before it, in the way tower's layers
//! or a chain of middleware do:
//!
//! ```text
//! stage 2:                                  Relay
//! stage 3:                         Caching<Relay>
//! stage 4:                 Connect<Caching<Relay>>
//! stage 5: AccessControl<Connect<Caching<Relay>>>
//! ```
//!
//! A layer answers what it knows about and passes the rest to the handler
//! it wraps. So the server never changes after stage 2, and each stage's
//! lesson is its new layer plus the line in `stages/stageN.rs` that puts it
//! on. The server asks the same chain for figures for its stats page
//! ([`Handler::stats`]), so each layer reports what it counts.

use std::net::SocketAddr;
use std::time::Instant;

use crate::conn::Conn;
use crate::dial::{Connector, Timeouts};
use crate::error::HttpError;
use crate::logging::Note;
use crate::message::RequestHead;
use crate::relay::{self, Outcome, RelayError};
use crate::stats::Stats;
use crate::uri;

// ANCHOR: request
/// One request, with what a handler may need to know about where it came
/// from.
pub struct Request<'a> {
    pub head: &'a RequestHead,
    /// The client's address, if the socket still knows it.
    pub peer: Option<SocketAddr>,
    /// The address the proxy listens on: a request aimed at it would loop.
    pub local: SocketAddr,
    pub timeouts: &'a Timeouts,
    /// Where connections to origins come from (and go back to).
    pub upstream: &'a dyn Connector,
    /// When the request head started to arrive, for the access log.
    pub started: Instant,
}
// ANCHOR_END: request

/// A handler that needs the client's socket for itself (a CONNECT tunnel
/// does): the server calls it with the connection and the connection's
/// slot, which must be kept until the connection closes.
pub type TakeOver = Box<dyn FnOnce(Conn, Box<dyn Send>) + Send>;

// ANCHOR: handled
/// What a handler did with a request.
pub enum Handled {
    /// The exchange ran its course, or failed before a response started.
    /// The server sends the error response if one is due, writes the access
    /// line (with `note`, such as `HIT`), and keeps the connection or
    /// closes it.
    Done {
        result: Result<Outcome, RelayError>,
        note: Option<Note>,
    },
    /// The connection leaves the server's hands.
    TakeOver(TakeOver),
}

impl Handled {
    /// An exchange with nothing to add to the access log.
    pub fn done(result: Result<Outcome, RelayError>) -> Handled {
        Handled::Done { result, note: None }
    }

    /// An error before any response byte was sent.
    pub fn error(error: HttpError) -> Handled {
        Handled::done(Err(error.into()))
    }
}
// ANCHOR_END: handled

// ANCHOR: handler
/// Answers requests on client connections. Shared by every worker thread,
/// hence `Sync`.
pub trait Handler: Send + Sync + 'static {
    /// May a client at `peer` use the proxy at all? Called once, when it
    /// connects and before anything is read. An error is sent as the
    /// answer, and the connection is closed.
    fn admit(&self, peer: Option<SocketAddr>) -> Result<(), HttpError> {
        let _ = peer;
        Ok(())
    }

    /// Answers one request whose head has been read from `conn`.
    fn handle(&self, conn: &mut Conn, request: &Request<'_>) -> Handled;

    /// Adds this layer's figures to the proxy's own page ([`crate::stats`]).
    /// A layer adds those of the handler it wraps first, then its own.
    fn stats(&self, stats: &mut Stats) {
        let _ = stats;
    }
}
// ANCHOR_END: handler

// ANCHOR: relay
/// Stage 2's handler: every request goes to its origin.
pub struct Relay;

impl Handler for Relay {
    fn handle(&self, conn: &mut Conn, request: &Request<'_>) -> Handled {
        if request.head.method == "CONNECT" {
            let why = "this proxy does not tunnel; CONNECT (HTTPS) arrives in stage 4";
            return Handled::error(HttpError::new(501, why));
        }
        match uri::proxy_target(request.head) {
            Ok(target) => Handled::done(relay::forward(
                conn,
                request.head,
                &target,
                request.upstream,
                true,
            )),
            Err(e) => Handled::error(e),
        }
    }
}
// ANCHOR_END: relay
