//! The HTTP side of a CONNECT request (stage 4).
//!
//! `CONNECT host:port HTTP/1.1` asks the proxy for a raw TCP pipe
//! (RFC 9110 §9.3.6); the target is in authority-form (RFC 9112 §3.2.3).
//! Before any byte is relayed, this module decides whether to open one:
//!
//! 1. the authority must parse (else 400);
//! 2. the port must be allowed by the port policy (else 403): an open
//!    CONNECT proxy is a relay for spam (port 25) and for reaching services
//!    that trust the proxy's address;
//! 3. a tunnel place must be free (else 503): tunnels have their own limit
//!    and their own threads, so long-lived tunnels never starve plain HTTP
//!    requests of pool workers;
//! 4. the upstream connection must succeed (else 502, or 504 on timeout).
//!
//! Then it answers `200 Connection established` — a 2xx to CONNECT has no
//! body and no framing fields — and hands both sockets to
//! [`crate::tunnel`], together with any bytes the client sent right after
//! its CONNECT head, and the worker goes back to the pool.

// While this exercise's starter stands in for the reference code, what only
// the reference used goes unused.
#![cfg_attr(feature = "ex-4-2", allow(dead_code, unused_imports))]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::body::{self, Framing};
use crate::conn::Conn;
use crate::error::HttpError;
use crate::handler::{Handled, Handler, Request};
use crate::message::RequestHead;
use crate::relay::{self, ConnectError, Timeouts};
use crate::respond::{respond_with_error, show};
use crate::stats::{Stats, Value};
use crate::tunnel::{self, PortPolicy, Tunnels};
use crate::uri::{self, Authority};

/// What stage 4 adds to the server: the tunnel limit and the port policy.
#[derive(Clone)]
pub struct TunnelConfig {
    pub tunnels: Tunnels,
    pub ports: PortPolicy,
}

// ANCHOR: layer
/// Stage 4's handler: a CONNECT request takes its connection out of the
/// server and turns it into a tunnel; everything else goes to the handler
/// it wraps.
pub struct Connect<H> {
    config: TunnelConfig,
    inner: H,
    requests: AtomicU64,
}

impl<H: Handler> Connect<H> {
    pub fn new(config: TunnelConfig, inner: H) -> Connect<H> {
        Connect {
            config,
            inner,
            requests: AtomicU64::new(0),
        }
    }
}

impl<H: Handler> Handler for Connect<H> {
    fn admit(&self, peer: Option<SocketAddr>) -> Result<(), HttpError> {
        self.inner.admit(peer)
    }

    fn handle(&self, conn: &mut Conn, request: &Request<'_>) -> Handled {
        if request.head.method != "CONNECT" {
            return self.inner.handle(conn, request);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        // The tunnel needs the socket itself, so the work happens once the
        // server has handed the connection (and its slot) over.
        let config = self.config.clone();
        let head = request.head.clone();
        let timeouts = *request.timeouts;
        let started = request.started;
        Handled::TakeOver(Box::new(move |conn, slot| {
            handle(&config, &head, conn, &timeouts, slot, started);
        }))
    }

    fn stats(&self, stats: &mut Stats) {
        self.inner.stats(stats);
        let tunnels = &self.config.tunnels;
        stats
            .section("tunnels")
            .row(
                "tunnels_open",
                "open tunnels",
                Value::Count(tunnels.active() as u64),
            )
            .row(
                "tunnels_max",
                "tunnel limit",
                Value::Count(tunnels.max() as u64),
            )
            .row(
                "connect_requests",
                "CONNECT requests",
                Value::Count(self.requests.load(Ordering::Relaxed)),
            );
    }
}
// ANCHOR_END: layer

// ANCHOR: check_target
/// Checks a CONNECT request before anything is opened.
#[cfg(not(feature = "ex-4-2"))]
pub fn check_target(request: &RequestHead, ports: &PortPolicy) -> Result<Authority, HttpError> {
    let authority = uri::parse_authority_form(&request.target)?;
    // A CONNECT request has no content (RFC 9110 §9.3.6). Bytes announced
    // as a body would otherwise slip into the tunnel as its first data.
    if body::request_framing(request)? != Framing::Empty {
        return Err(HttpError::bad_request(
            "a CONNECT request cannot have a body",
        ));
    }
    if !ports.allows(authority.port) {
        return Err(HttpError::new(
            403,
            format!(
                "CONNECT to port {} is not allowed; this proxy tunnels to ports {ports} only",
                authority.port
            ),
        ));
    }
    Ok(authority)
}
// ANCHOR_END: check_target

// Exercise 4.2: with its feature, the student's `check_target` replaces the
// one above.
#[cfg(feature = "ex-4-2")]
#[path = "../exercises/stage4/check_target.rs"]
mod ex_4_2;
#[cfg(feature = "ex-4-2")]
pub use ex_4_2::check_target;

// ANCHOR: open_tunnel
/// Opens the tunnel and hands it to its own thread. `guard` is the client's
/// connection slot: it stays taken until the tunnel closes. On error, nothing
/// has been sent yet and the caller answers with the error.
pub fn open_tunnel(
    config: &TunnelConfig,
    authority: &Authority,
    mut conn: Conn,
    timeouts: &Timeouts,
    guard: impl Send + 'static,
) -> Result<(), (Conn, HttpError)> {
    let Some(slot) = config.tunnels.reserve() else {
        let why = format!(
            "all {} tunnels are in use; try again later",
            config.tunnels.max()
        );
        return Err((conn, HttpError::new(503, why)));
    };
    let upstream = match relay::connect(authority, timeouts.connect) {
        Ok(stream) => stream,
        // A tunnel has no response to wait for, so the connect timeout is the
        // only timeout there is: it gets the gateway-timeout status.
        Err(ConnectError::TimedOut) => {
            let why = format!("connecting to {authority} timed out");
            return Err((conn, HttpError::gateway_timeout(why)));
        }
        Err(e) => return Err((conn, e.to_http(authority))),
    };
    if let Err(e) = conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n") {
        log::warn!("CONNECT {authority}: client went away before the tunnel opened: {e}");
        return Ok(());
    }
    let peer = conn.peer_addr();
    let target = authority.to_string();
    let (client, pending) = conn.into_parts();
    let on_close = move |stats: &tunnel::TunnelStats| {
        log::info!(target: "access", "{} {}", show(peer), tunnel::access_line(&target, stats));
    };
    if let Err(e) = slot.spawn(client, pending, upstream, guard, on_close) {
        log::error!("CONNECT {authority}: cannot start a tunnel thread: {e}");
    }
    Ok(())
}
// ANCHOR_END: open_tunnel

// ANCHOR: handle
/// Answers one CONNECT request: opens the tunnel, or writes the error and
/// closes the connection.
pub fn handle(
    config: &TunnelConfig,
    request: &RequestHead,
    conn: Conn,
    timeouts: &Timeouts,
    guard: impl Send + 'static,
    started: Instant,
) {
    let peer = conn.peer_addr();
    let result = match check_target(request, &config.ports) {
        Ok(authority) => open_tunnel(config, &authority, conn, timeouts, guard),
        Err(error) => Err((conn, error)),
    };
    if let Err((mut conn, error)) = result {
        respond_with_error(&mut conn, peer, Some(request), &error, started);
        conn.close();
    }
}
// ANCHOR_END: handle
