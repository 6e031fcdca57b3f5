//! Stage 2: many clients at once, every method, persistent connections.
//!
//! Run it with `cargo run --bin stage2`, then point
//! `curl -x http://127.0.0.1:8080` at any local server.

use clap::Parser;
use webproxy::cli;
use webproxy::cli::listen::{ListenArgs, nothing_to_reload};
use webproxy::cli::log::LogArgs;
use webproxy::cli::parent::ParentArgs;
use webproxy::cli::pool::PoolArgs;
use webproxy::handler::Relay;
use webproxy::server::Server;

const NAME: &str = "stage2";

/// a concurrent HTTP/1.1 forward proxy
#[derive(Parser)]
#[command(name = NAME, version, after_help = cli::LOGGING_HELP)]
struct Cli {
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    log: LogArgs,
    #[command(flatten)]
    pool: PoolArgs,
    #[command(flatten)]
    parent: ParentArgs,
}

fn main() {
    let args = Cli::parse();
    args.log.init(NAME);
    args.listen.loopback_only(NAME);
    let handler = Relay;
    let parents = args.parent.parents();
    let config = args.pool.server_config(args.listen.timeouts(), parents);
    let server = Server::new(config, handler);
    let (listener, shutdown) = args.listen.start(NAME, nothing_to_reload);
    if let Err(e) = server.run(listener, shutdown) {
        cli::fail(NAME, e);
    }
}
