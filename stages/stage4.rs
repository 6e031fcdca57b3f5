//! Stage 4: stage 3 plus HTTPS through CONNECT tunnels.
//!
//! Run it with `cargo run --bin stage4`, then
//! `curl -x http://127.0.0.1:8080 https://...`; only port 443 is tunnelled
//! unless `--connect-ports` says otherwise.

use clap::Parser;
use webproxy::caching::Caching;
use webproxy::cli;
use webproxy::cli::cache::CacheArgs;
use webproxy::cli::listen::{ListenArgs, nothing_to_reload};
use webproxy::cli::log::LogArgs;
use webproxy::cli::parent::ParentArgs;
use webproxy::cli::pool::PoolArgs;
use webproxy::cli::tunnel::TunnelArgs;
use webproxy::connect::Connect;
use webproxy::handler::Relay;
use webproxy::server::Server;

const NAME: &str = "stage4";

/// a caching HTTP/1.1 forward proxy that tunnels HTTPS
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
    #[command(flatten)]
    tunnel: TunnelArgs,
}

fn main() {
    let args = Cli::parse();
    args.log.init(NAME);
    args.listen.loopback_only(NAME);
    let cache = args.cache.open().unwrap_or_else(|e| cli::fail(NAME, e));
    // Plain requests and tunnels share the parents, and what is known
    // about which of them are down.
    let parents = args.parent.parents();
    let tunnels = args.tunnel.tunnel_config(parents.clone());
    let handler = Connect::new(tunnels, Caching::new(cache, Relay));
    let config = args.pool.server_config(args.listen.timeouts(), parents);
    let server = Server::new(config, handler);
    let (listener, shutdown) = args.listen.start(NAME, nothing_to_reload);
    if let Err(e) = server.run(listener, shutdown) {
        cli::fail(NAME, e);
    }
}
