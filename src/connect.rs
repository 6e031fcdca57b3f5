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
//! 4. the upstream connection must succeed (else 502, or 504 on timeout);
//!    with parent proxies, it is a CONNECT to the first parent that answers
//!    ([`crate::parent_connect`]).
//!
//! Then it answers `200 Connection established` — a 2xx to CONNECT has no
//! body and no framing fields — and hands both sockets to
//! [`crate::tunnel`], together with any bytes the client sent right after
//! its CONNECT head, and the worker goes back to the pool.

// While this exercise's starter stands in for the reference code, what only
// the reference used goes unused.
#![cfg_attr(feature = "ex-4-2", allow(dead_code, unused_imports))]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::body::{self, Framing};
use crate::conn::Conn;
use crate::dial::{self, ConnectError, Timeouts};
use crate::error::HttpError;
use crate::handler::{Handled, Handler, Request};
use crate::logging::{Access, Note};
use crate::message::RequestHead;
use crate::parent::Parents;
use crate::parent_connect;
use crate::respond::respond_with_error;
use crate::stats::{Stats, Value};
use crate::tunnel::{self, PortPolicy, Tunnels};
use crate::uri::{self, Authority};

/// What stage 4 adds to the server: the tunnel limit and the port policy,
/// and the parent proxies that tunnels go through, if any.
#[derive(Clone)]
pub struct TunnelConfig {
    pub tunnels: Tunnels,
    pub ports: PortPolicy,
    pub parents: Parents,
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
    uri::check_host_field(request)?;
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

/// The tunnel's answer: a 2xx to CONNECT has no body and no framing.
const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// The access log's note for a tunnel, squid's `TCP_TUNNEL`.
const TUNNEL: Note = Note::new("TUNNEL", "TCP_TUNNEL", true);

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
/// has been sent yet and the caller answers with the error. The access line
/// is written when the tunnel closes, in the same shape as any other.
pub fn open_tunnel(
    config: &TunnelConfig,
    request: &RequestHead,
    authority: &Authority,
    mut conn: Conn,
    timeouts: &Timeouts,
    guard: impl Send + 'static,
    started: Instant,
) -> Result<(), Box<(Conn, HttpError)>> {
    let Some(slot) = config.tunnels.reserve() else {
        let why = format!(
            "all {} tunnels are in use; try again later",
            config.tunnels.max()
        );
        return Err(Box::new((conn, HttpError::new(503, why))));
    };
    let (upstream, early) = match connect_upstream(config, request, authority, timeouts) {
        Ok(connected) => connected,
        Err(e) => return Err(Box::new((conn, e))),
    };
    let peer = conn.peer_addr();
    // Bytes the target sent through a parent before we took over are the
    // first bytes of the tunnel, right after our 200.
    let mut answer = ESTABLISHED.to_vec();
    answer.extend_from_slice(&early);
    if let Err(e) = conn.write_all(&answer) {
        log::warn!("CONNECT {authority}: client went away before the tunnel opened: {e}");
        log_tunnel(peer, request, started, 0, None);
        return Ok(());
    }
    let (client, pending) = conn.into_parts();
    let request = request.clone();
    let on_close = move |stats: &tunnel::TunnelStats| {
        let bytes = answer.len() as u64 + stats.upstream_to_client;
        log_tunnel(peer, &request, started, bytes, Some(stats));
    };
    if let Err(e) = slot.spawn(client, pending, upstream, guard, on_close) {
        log::error!("CONNECT {authority}: cannot start a tunnel thread: {e}");
    }
    Ok(())
}
// ANCHOR_END: open_tunnel

// ANCHOR: connect_upstream
/// The upstream end of a tunnel, and any bytes that already came through
/// it: straight to the target, or through a parent proxy.
fn connect_upstream(
    config: &TunnelConfig,
    request: &RequestHead,
    authority: &Authority,
    timeouts: &Timeouts,
) -> Result<(TcpStream, Vec<u8>), HttpError> {
    if !config.parents.is_empty() {
        return parent_connect::open(&config.parents, request, authority, timeouts);
    }
    match dial::connect(authority, timeouts.connect) {
        Ok(stream) => Ok((stream, Vec::new())),
        // A tunnel has no response to wait for, so the connect timeout is the
        // only timeout there is: it gets the gateway-timeout status.
        Err(ConnectError::TimedOut) => Err(HttpError::gateway_timeout(format!(
            "connecting to {authority} timed out"
        ))),
        Err(e) => Err(e.to_http(authority)),
    }
}
// ANCHOR_END: connect_upstream

/// A tunnel's access line: its bytes to the client, and, in the webproxy
/// format, the bytes each way and how it ended. Without `stats` it never
/// opened: the client left before the 200 reached it.
fn log_tunnel(
    peer: Option<SocketAddr>,
    request: &RequestHead,
    started: Instant,
    bytes: u64,
    stats: Option<&tunnel::TunnelStats>,
) {
    let detail = stats.map(tunnel::summary);
    Access {
        client: peer,
        request: Some(request),
        status: 200,
        bytes,
        elapsed: started.elapsed(),
        note: TUNNEL,
        aborted: stats.is_none(),
        detail: detail.as_deref(),
    }
    .log();
}

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
        Ok(authority) => open_tunnel(config, request, &authority, conn, timeouts, guard, started),
        Err(error) => Err(Box::new((conn, error))),
    };
    if let Err(refused) = result {
        let (mut conn, error) = *refused;
        respond_with_error(&mut conn, peer, Some(request), &error, started);
        conn.close();
    }
}
// ANCHOR_END: handle
