//! # webproxy
//!
//! A small HTTP/1.1 forward proxy, built in stages for teaching. Each stage
//! binary in `stages/` wires together pieces of this library; later stages
//! add modules without changing the earlier ones.
//!
//! ## Module map
//!
//! Messages on the wire (all stages):
//! - [`headers`]: an ordered, case-insensitive list of header fields.
//! - [`message`]: request and response heads, parsed with `httparse`, with limits.
//! - [`uri`]: request targets: absolute-form, authority-form, hosts and ports.
//! - [`conn`]: a TCP connection with a read buffer that reads whole heads.
//! - [`body`]: message framing (Content-Length, chunked, close) and streaming copies.
//! - [`forward`]: what a proxy changes in a message: hop-by-hop fields, Host, Via.
//! - [`error`]: the error responses the proxy writes itself.
//!
//! Relaying and serving:
//! - [`relay`]: one request to the origin and its response back; timeouts.
//! - [`simple`]: stage 1's server, one client at a time.
//! - [`pool`]: a fixed-size thread pool with a bounded queue (stage 2).
//! - [`server`]: the concurrent server with persistent connections (stage 2 on).
//!
//! Stage 3:
//! - [`cache`]: what RFC 9111 lets a shared cache store, for how long, and the store itself.
//! - [`caching`]: the request flow through the cache: hit, miss, revalidation, stale.
//!
//! Stage 4:
//! - [`connect`]: the HTTP side of CONNECT: checks, the upstream connection, the 200.
//! - [`tunnel`]: CONNECT tunnels: the byte relay, the port policy and the tunnel limit.
//!
//! Stage 5:
//! - [`filter`]: domain rules (block and allow lists), reloaded while the proxy runs.
//! - [`acl`]: which client addresses may use the proxy.
//! - [`access`]: the HTTP side: client ACL on accept, domain rules, loop protection, the 403.
//!
//! Around the edges:
//! - [`cli`]: the command line every stage shares.
//! - [`logging`]: logger setup and the access-log line.
//!
//! Coursework: with `--features starter-stageN`, the modules that stage N's
//! exercises are about come from `exercises/stageN/` instead (see the
//! `cfg_attr(..., path = ...)` lines below and `exercises/README.md`).
pub mod access;
#[cfg_attr(feature = "starter-stage5", path = "../exercises/stage5/acl.rs")]
pub mod acl;
#[cfg_attr(feature = "starter-stage1", path = "../exercises/stage1/body.rs")]
pub mod body;
pub mod cache;
pub mod caching;
pub mod cli;
pub mod conn;
#[cfg_attr(feature = "starter-stage4", path = "../exercises/stage4/connect.rs")]
pub mod connect;
pub mod error;
pub mod filter;
pub mod forward;
pub mod headers;
pub mod logging;
#[cfg_attr(feature = "starter-stage2", path = "../exercises/stage2/message.rs")]
pub mod message;
#[cfg_attr(feature = "starter-stage2", path = "../exercises/stage2/pool.rs")]
pub mod pool;
pub mod relay;
#[cfg_attr(feature = "starter-stage2", path = "../exercises/stage2/server.rs")]
pub mod server;
pub mod simple;
pub mod tunnel;
// ANCHOR: starter_module
#[cfg_attr(feature = "starter-stage1", path = "../exercises/stage1/uri.rs")]
pub mod uri;
// ANCHOR_END: starter_module

/// The proxy's name, wherever it names itself: its `Via` entry (RFC 9110
/// §7.6.3), its error pages and its cache files. One constant, so the
/// loop check that looks for our `Via` can never disagree with what we send.
pub const NAME: &str = "webproxy";

#[cfg(test)]
mod test_util;
