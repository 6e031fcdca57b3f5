//! The on-the-wire test harness shared by every stage's integration tests.
//!
//! Each test file says `mod common;` and uses what it needs:
//!
//! - [`origin`]: a scriptable origin server that records what it receives;
//! - [`proxy`]: start a stage's proxy in-process on a free port;
//! - [`client`]: a raw HTTP client that reads framed responses exactly;
//! - [`request`]: the requests it sends, built field by field;
//! - [`expect`]: assertions on a response that print the wire transcript;
//! - [`child`]: run a stage binary and kill it whatever happens;
//! - [`tempdir`]: scratch directories (rule files), removed afterwards;
//! - [`data`]: deterministic test bodies;
//! - [`cache_kit`]: a hand-moved clock, HTTP dates and scratch directories for cache tests;
//! - [`tunnel`]: an echo server to CONNECT to, and tunnel helpers (stage 4);
//! - [`wire`]: transcripts of what went over the wire, for failure messages;
//! - [`panics`]: the panic hook that prints them, and folds the proxy's own
//!   panics into one line.
//!
//! Everything listens on 127.0.0.1 port 0 and hands out the address after
//! binding, so no test ever sleeps waiting for a server to come up, and every
//! socket has a timeout, so a bug makes a test fail rather than hang.

// Each test binary uses a different subset of the harness.
#![allow(dead_code, unused_imports)]

pub mod cache_kit;
pub mod child;
pub mod client;
pub mod data;
pub mod expect;
pub mod origin;
pub mod panics;
pub mod proxy;
pub mod request;
pub mod tempdir;
pub mod tunnel;
pub mod wire;

pub use cache_kit::{CacheDir, http_date, manual_clock, test_cache};
pub use child::{Finished, RunningBinary, run_to_exit};
pub use client::{Client, ReadError, Req, Response, eventually, get};
pub use data::{KIB, MIB, binary, text};
pub use origin::{Gate, Origin, RecordedRequest, Reply, closed_port};
pub use proxy::{
    bind, start_on, start_server, start_server_on, start_stage1, start_stage2, start_stage3,
    start_stage4, start_stage5, start_stage5_on, start_with, test_config, test_timeouts,
};
pub use tempdir::TempDir;
pub use tunnel::{EchoConn, EchoServer, assert_echoes, open_tunnel};
