//! The end of every exchange: the error response, if one is due, and the
//! access-log line.
//!
//! Stage 1's relay and stage 2's server finish a request the same way, so
//! the rule lives here once: an error that happened before any response
//! byte was sent becomes a real HTTP error response ([`crate::error`]); an
//! error after that can only close the connection (RFC 9112 §9.6), and
//! either way exactly one access line is written ([`crate::logging`]). A
//! refusal (403) is a decision rather than a fault: its access line is the
//! only line at the default level.

use std::net::SocketAddr;
use std::time::Instant;

use crate::conn::Conn;
use crate::error::{HttpError, write_error};
use crate::forward::Persist;
use crate::logging::{Access, Note};
use crate::message::RequestHead;
use crate::relay::{Outcome, RelayError};

pub use crate::logging::show;

// ANCHOR: finish
/// Logs the exchange and, for an error that happened before any response
/// was sent, sends the error response. Returns the connection's fate.
/// `note` is what a later stage did (HIT, BLOCKED, ...), for the log.
pub fn finish(
    conn: &mut Conn,
    peer: Option<SocketAddr>,
    request: &RequestHead,
    result: Result<Outcome, RelayError>,
    note: Option<Note>,
    started: Instant,
) -> Persist {
    match result {
        Ok(outcome) => {
            let (status, bytes) = (outcome.status, outcome.bytes);
            log_access(peer, request, status, bytes, started, note);
            outcome.persist
        }
        Err(RelayError::Http(error)) => {
            error_response(conn, peer, Some(request), &error, started, note);
            Persist::Close
        }
        Err(RelayError::Aborted { status, bytes, why }) => {
            log::warn!(
                "{} {} {}: response aborted: {why}",
                show(peer),
                request.method,
                request.target
            );
            Access {
                client: peer,
                request: Some(request),
                status,
                bytes,
                elapsed: started.elapsed(),
                note: note.unwrap_or(Note::RELAYED),
                aborted: true,
                detail: None,
            }
            .log();
            Persist::Close
        }
    }
}
// ANCHOR_END: finish

/// Writes an error response and logs it: one access line, and one line
/// that says what went wrong.
pub fn respond_with_error(
    conn: &mut Conn,
    peer: Option<SocketAddr>,
    request: Option<&RequestHead>,
    error: &HttpError,
    started: Instant,
) {
    error_response(conn, peer, request, error, started, None);
}

/// A refusal by the proxy's policy (a port, a client address, a rule):
/// the only 403 the proxy writes itself. It is a decision, not a fault, so
/// its access line is all the log shows; why is detail, for `RUST_LOG=debug`.
fn is_refusal(error: &HttpError) -> bool {
    error.status == 403
}

fn error_response(
    conn: &mut Conn,
    peer: Option<SocketAddr>,
    request: Option<&RequestHead>,
    error: &HttpError,
    started: Instant,
    note: Option<Note>,
) {
    let bytes = write_error(conn, error).unwrap_or(0);
    let (method, target) = request.map_or(("-", "-"), |r| (r.method.as_str(), r.target.as_str()));
    let note = note.unwrap_or(if is_refusal(error) {
        Note::DENIED
    } else if request.is_none() {
        Note::NO_REQUEST
    } else {
        Note::ERROR
    });
    if is_refusal(error) {
        log::debug!("{} {method} {target}: {error}", show(peer));
    } else {
        log::warn!("{} {method} {target}: {error}", show(peer));
    }
    Access {
        client: peer,
        request,
        status: error.status,
        bytes,
        elapsed: started.elapsed(),
        note,
        aborted: false,
        detail: None,
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
    note: Option<Note>,
) {
    Access {
        client: peer,
        request: Some(request),
        status,
        bytes,
        elapsed: started.elapsed(),
        note: note.unwrap_or(Note::RELAYED),
        aborted: false,
        detail: None,
    }
    .log();
}
