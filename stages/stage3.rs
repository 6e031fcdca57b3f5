//! Stage 3: stage 2 plus a shared in-memory cache that follows RFC 9111.
//!
//! Run it with `cargo run --bin stage3`, then fetch the same URL twice with
//! `curl -x http://127.0.0.1:8080 -D - http://...`: the second answer says
//! `Cache-Status: webproxy; hit`.

use clap::Parser;
use webproxy::caching::Caching;
use webproxy::cli;
use webproxy::cli::cache::CacheArgs;
use webproxy::cli::listen::{ListenArgs, nothing_to_reload};
use webproxy::cli::log::LogArgs;
use webproxy::cli::parent::ParentArgs;
use webproxy::cli::pool::PoolArgs;
use webproxy::handler::Relay;
use webproxy::server::Server;

const NAME: &str = "stage3";

/// a concurrent HTTP/1.1 forward proxy with a shared cache
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
    #[command(flatten)]
    cache: CacheArgs,
}

fn main() {
    let args = Cli::parse();
    args.log.init(NAME);
    args.listen.loopback_only(NAME);
    let cache = args.cache.open().unwrap_or_else(|e| cli::fail(NAME, e));
    let handler = Caching::new(cache, Relay);
    let parents = args.parent.parents();
    let config = args.pool.server_config(args.listen.timeouts(), parents);
    let server = Server::new(config, handler);
    let (listener, shutdown) = args.listen.start(NAME, nothing_to_reload);
    if let Err(e) = server.run(listener, shutdown) {
        cli::fail(NAME, e);
    }
}
