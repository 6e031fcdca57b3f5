//! Stage 1: a GET relay that serves one client at a time.
//!
//! This is the lecture-slide proxy — accept, read a request, fetch the URL,
//! send back what came, close — with the slide's shortcuts removed. The slide
//! reads the request with one `recv(1024)`; we read until the head is
//! complete ([`crate::conn`]). The slide sends back whatever bytes arrived;
//! we follow the response's framing ([`crate::body`]) and stream it, so a
//! body is never cut short, never padded, and never held whole in memory.
//! The slide forwards the client's header fields blindly; we rewrite them
//! as RFC 9110 §7.6 asks ([`crate::forward`]).
//!
//! What stays simple on purpose: one client at a time (stage 2 adds
//! threads), GET only (any other method gets 501 Not Implemented, RFC 9110
//! §15.6.2), and every connection, to the client and to the origin, is
//! closed after one exchange.

use std::net::TcpListener;
use std::time::Instant;

use crate::conn::{Conn, HeadError};
use crate::dial::{Direct, Timeouts};
use crate::error::HttpError;
use crate::listen::Shutdown;
use crate::relay::{self, RelayError};
use crate::respond::{finish, respond_with_error};
use crate::uri;

// ANCHOR: serve
/// Serves clients one after another, until `shutdown` is triggered.
pub fn serve(listener: TcpListener, timeouts: Timeouts, shutdown: Shutdown) {
    if !shutdown.register(&listener) {
        return;
    }
    for stream in listener.incoming() {
        if shutdown.is_triggered() {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                log::error!("accept failed: {e}");
                continue;
            }
        };
        // A client that never sends anything must not block everyone
        // behind it forever.
        let _ = stream.set_read_timeout(Some(timeouts.client_read));
        let _ = stream.set_write_timeout(Some(timeouts.write));
        let mut conn = Conn::new(stream);
        serve_one(&mut conn, &timeouts);
        conn.close();
    }
}
// ANCHOR_END: serve

// ANCHOR: serve_one
/// Answers one request on `conn`.
fn serve_one(conn: &mut Conn, timeouts: &Timeouts) {
    let started = Instant::now();
    let peer = conn.peer_addr();
    let request = match conn.read_request_head() {
        Ok(request) => request,
        Err(HeadError::Http(error)) => {
            return respond_with_error(conn, peer, None, &error, started);
        }
        Err(HeadError::Closed | HeadError::Idle | HeadError::Io(_)) => return,
    };
    let result = if request.method != "GET" {
        let why = format!("stage 1 relays GET only, not {}", request.method);
        Err(RelayError::Http(HttpError::new(501, why)))
    } else {
        match uri::proxy_target(&request) {
            Ok(target) => relay::forward(conn, &request, &target, &Direct(*timeouts), false),
            Err(error) => Err(RelayError::Http(error)),
        }
    };
    finish(conn, peer, &request, result, None, started);
}
// ANCHOR_END: serve_one
