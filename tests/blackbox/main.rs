//! The black-box suite: any proxy binary, checked on the wire, stage by
//! stage.
//!
//! ```text
//! WEBPROXY_BIN=path/to/your/proxy WEBPROXY_STAGE=2 cargo test --test blackbox
//! ```
//!
//! The stage suites (`tests/stageN.rs`) start this crate's servers
//! in-process and look inside them; these checks only talk to a running
//! binary, the way a client and an origin would, so they can judge a proxy
//! written from scratch in any language. A binary must take `--port N`
//! and listen on 127.0.0.1 there; the stage 5 checks also pass `--block
//! FILE`, a rules file with one host name per line. `WEBPROXY_STAGE`
//! (default 5) says how far the binary goes; the checks are cumulative, so
//! stage 3 also runs the checks of stages 1 and 2. Each check is named after
//! its stage (`stage2::a_slow_origin_does_not_block_another_client`), so
//! `cargo test --test blackbox stage2::` runs one stage's checks.
//!
//! Without `WEBPROXY_BIN`, every check runs against each of this crate's
//! stage binaries from its own stage up.
//!
//! Every failure prints a transcript (see `common::wire`): what the client
//! sent, what came back, what the origin received, the proxy's last lines
//! of output, and a command to replay the exchange by hand.

#[path = "../common/mod.rs"]
mod common;
mod subject;

mod stage1;
mod stage2;
mod stage3;
mod stage4;
mod stage5;
