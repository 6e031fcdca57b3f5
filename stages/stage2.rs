//! Stage 2: many clients at once, every method, persistent connections.
//!
//! Run it with `cargo run --bin stage2`, then point
//! `curl -x http://127.0.0.1:8080` at any local server.

use clap::Parser;
use webproxy::cli;
use webproxy::cli::listen::ListenArgs;
use webproxy::cli::pool::PoolArgs;
use webproxy::logging;
use webproxy::server::{self, Server};

const NAME: &str = "stage2";

/// a concurrent HTTP/1.1 forward proxy
#[derive(Parser)]
#[command(name = NAME, version, after_help = cli::LOGGING_HELP)]
struct Cli {
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    pool: PoolArgs,
}

fn main() {
    let args = Cli::parse();
    logging::init();
    let server = Server::new(args.pool.server_config(args.listen.timeouts()));
    let listener = server::bind_and_announce(args.listen.listen_addr())
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot listen: {e}")));
    if let Err(e) = server.run(listener) {
        cli::fail(NAME, e);
    }
}
