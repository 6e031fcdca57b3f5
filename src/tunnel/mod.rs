//! CONNECT tunnels: relaying bytes the proxy cannot read.
//!
//! # Why a proxy can only tunnel HTTPS
//!
//! With `https://` the client wants TLS from its own socket all the way to the
//! origin server. TLS encrypts everything HTTP puts on the wire (request line,
//! header fields, bodies, responses) with keys only the two ends know, and the
//! client checks the server's certificate. A proxy in the middle sees the name
//! and port the client asked for, the size and timing of the traffic, and
//! nothing else. It cannot read the requests, so it cannot cache, filter or
//! rewrite them; and it cannot answer in the server's name, because it cannot
//! present that server's certificate.
//!
//! So the client asks the proxy for a plain byte pipe instead:
//! `CONNECT example.test:443 HTTP/1.1` (RFC 9110 §9.3.6). The request target
//! is in authority-form, just `host:port` with no scheme and no path
//! (RFC 9112 §3.2.3), because there is no resource for the proxy to fetch. The
//! proxy opens a TCP connection to that authority and answers with a 2xx.
//! From then on, nothing on either connection is HTTP any more: the proxy
//! copies bytes each way, unread and unchanged, until the tunnel closes. The
//! HTTP side of this (parsing the request, the port check, connecting with a
//! timeout, the `200 Connection established` reply) lives in the HTTP core
//! (`crate::connect`); this module takes over once both sockets are ready.
//!
//! # Where things are
//!
//! - [`ports`]: the port policy, which ports a CONNECT may reach at all.
//! - [`relay`](mod@relay): the byte relay, both directions, half-close and
//!   the idle timeout.
//! - [`capacity`]: the tunnel limit and the slot that runs one tunnel on its
//!   own thread.
//! - [`stats`]: what a tunnel did, for its access-log line.
//! - `threads`: the tunnel threads, kept for reuse ([`ThreadCache`]).
//!
//! The layers only point down: `capacity` uses `relay`, both use `stats` and
//! `threads`, and `ports` stands alone. Callers use the re-exports below.

pub mod capacity;
pub mod ports;
pub mod relay;
pub mod stats;
mod threads;

pub use capacity::{TunnelSlot, Tunnels};
pub use ports::{PortListError, PortPolicy};
pub use relay::relay;
pub use stats::{End, TunnelStats, summary};
pub use threads::ThreadCache;
