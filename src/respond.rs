//! The end of every exchange: the error response, if one is due, and the
//! access-log line.
//!
//! Stage 1's relay and stage 2's server finish a request the same way, so
//! the rule lives here once: an error that happened before any response
//! byte was sent becomes a real HTTP error response ([`crate::error`]); an
//! error after that can only close the connection (RFC 9112 §9.6), and
//! either way exactly one access line is written ([`crate::logging`]).

use std::net::SocketAddr;
use std::time::Instant;

use crate::conn::Conn;
use crate::error::{HttpError, write_error};
use crate::forward::Persist;
use crate::logging::Access;
use crate::message::RequestHead;
use crate::relay::{Outcome, RelayError};

/// A client address for the log, or `-` when the socket no longer knows it.
pub fn show(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "-".to_string(), |p| p.to_string())
}

// ANCHOR: finish
/// Logs the exchange and, for an error that happened before any response
/// was sent, sends the error response. Returns the connection's fate.
/// `note` is what a later stage did (HIT, BLOCKED, ...), for the log.
pub fn finish(
    conn: &mut Conn,
    peer: Option<SocketAddr>,
    request: &RequestHead,
    result: Result<Outcome, RelayError>,
    note: Option<&str>,
    started: Instant,
) -> Persist {
    match result {
        Ok(outcome) => {
            let (status, bytes) = (outcome.status, outcome.bytes);
            log_access(peer, request, status, bytes, started, note);
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
            log_access(peer, request, status, bytes, started, Some("ABORTED"));
            Persist::Close
        }
    }
}
// ANCHOR_END: finish

/// Writes an error response and logs it: one access line, one error line.
pub fn respond_with_error(
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

/// One access line for a request that got an answer.
pub fn log_access(
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
