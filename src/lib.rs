//! # webproxy
//!
//! A small HTTP/1.1 forward proxy, built in stages for teaching. Each stage
//! binary in `stages/` wires together pieces of this library; later stages
//! add modules without changing the earlier ones.
//!
//! ## Module map
//!
//! Each module belongs to the stage that introduces it, and imports only
//! modules of its own stage or earlier ones (`.ci/layering` checks this).
//! The servers know a request handler only through a trait, and each later
//! stage wraps the handler before it, so no stage's code mentions a later
//! one.
//!
//! ### Stage 1: a GET relay
//! - [`headers`]: an ordered, case-insensitive list of header fields.
//! - [`message`]: request and response heads, parsed with `httparse`, with limits.
//! - [`uri`]: request targets: absolute-form, authority-form, hosts and ports.
//! - [`conn`]: a TCP connection with a read buffer that reads whole heads.
//! - [`body`]: message framing (Content-Length, chunked, close) and streaming copies.
//! - [`forward`]: what a proxy changes in a message: hop-by-hop fields, Host, Via.
//! - [`error`]: the error responses the proxy writes itself.
//! - [`dial`]: reaching the next hop: connecting, the `Connector` seam, timeouts.
//! - [`relay`]: one request to the origin and its response back.
//! - [`logging`]: logger setup and the access-log line.
//! - [`respond`]: the end of an exchange: the error response and the access line.
//! - [`listen`]: binding, announcing the address, and stopping a server.
//! - [`simple`]: stage 1's server, one client at a time.
//! - [`cli`]: the command line: shared helpers, and stage 1's flags in
//!   [`cli::listen`] (where to listen) and [`cli::log`] (access lines).
//!
//! ### Stage 2: many clients, persistent connections
//! - [`pool`]: a fixed-size thread pool with a bounded queue.
//! - [`upstream`]: idle upstream connections kept for the next request to the same origin.
//! - [`parent`]: parent proxies: where upstream connections go instead of origins, with failover.
//! - [`handler`]: the trait between the server and what answers requests; the plain relay.
//! - [`limits`]: descriptor limits and connections per client.
//! - [`waiting`]: the waiting room: idle and slow connections wait without a worker.
//! - [`server`]: the concurrent server with persistent connections.
//! - [`stats`]: the proxy's own pages: live figures, as HTML and JSON, and a PAC file.
//! - [`cli::pool`]: stage 2's flags: threads, connection limit, idle timeout.
//! - [`cli::parent`]: the `--parent` flag, for stages 2 to 5.
//!
//! ### Stage 3: a shared cache
//! - [`cache`]: what RFC 9111 lets a shared cache store, for how long, and the store itself.
//! - [`caching`]: the handler that puts the cache in front of the relay; in it,
//!   `caching::ranges` (byte ranges from a stored response),
//!   `caching::collapse` (concurrent misses share one fetch),
//!   `caching::background` (stale-while-revalidate), `caching::storing`
//!   (what an exchange leaves in the store) and `caching::report` (log
//!   words and figures).
//! - [`cli::cache`]: stage 3's flags: cache size, object size, directory.
//!
//! ### Stage 4: HTTPS through CONNECT
//! - [`tunnel`]: CONNECT tunnels: the byte relay, the port policy and the tunnel limit.
//! - [`connect`]: the handler that answers CONNECT: checks, the upstream connection, the 200.
//! - [`parent_connect`]: CONNECT through a parent proxy: the handshake and the parent's answer.
//! - [`cli::tunnel`]: stage 4's flags: CONNECT ports, tunnel limit and idle timeout.
//!
//! ### Stage 5: filtering
//! - [`filter`]: domain rules (block and allow lists), reloaded while the proxy runs.
//! - [`acl`]: which client addresses may use the proxy.
//! - [`access`]: the handler that guards the rest: client ACL, domain rules, loop protection.
//! - [`cli::filter`]: stage 5's flags: rules files, client networks; `block` and `unblock`.
//!
//! Coursework: each graded exercise has a cargo feature (`ex-1-1` to
//! `ex-5-3`). With it, the module that holds the reference answer compiles
//! the student's file from `exercises/stageN/` as a child module and uses
//! its functions instead of the reference ones, which are compiled out;
//! nothing else changes (see `exercises/README.md`).
pub mod access;
pub mod acl;
pub mod body;
pub mod cache;
pub mod caching;
pub mod cli;
pub mod conn;
pub mod connect;
pub mod dial;
pub mod error;
pub mod filter;
pub mod forward;
pub mod handler;
pub mod headers;
pub mod limits;
pub mod listen;
pub mod logging;
pub mod message;
pub mod parent;
pub mod parent_connect;
pub mod pool;
pub mod relay;
pub mod respond;
pub mod server;
pub mod simple;
pub mod stats;
pub mod tunnel;
pub mod upstream;
pub mod uri;
pub mod waiting;

/// The proxy's name, wherever it names itself: its `Via` entry (RFC 9110
/// §7.6.3), its error pages and its cache files. One constant, so the
/// loop check that looks for our `Via` can never disagree with what we send.
pub const NAME: &str = "webproxy";

#[cfg(test)]
mod test_util;
