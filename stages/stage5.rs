//! Stage 5: stage 4 plus domain and client filtering that can change while
//! the proxy runs.
//!
//! Run it with `cargo run --release --bin stage5 -- --block blocked.txt`,
//! then add a line to blocked.txt (or run `stage5 block ads.example --file
//! blocked.txt`): within a second, requests for that domain get 403.

use std::time::Duration;

use clap::Parser;
use webproxy::cli;
use webproxy::cli::cache::CacheArgs;
use webproxy::cli::filter::{EditCommand, FilterArgs};
use webproxy::cli::listen::ListenArgs;
use webproxy::cli::pool::PoolArgs;
use webproxy::cli::tunnel::TunnelArgs;
use webproxy::logging;
use webproxy::server::{self, Server};

const NAME: &str = "stage5";

/// a caching, filtering HTTP/1.1 forward proxy that tunnels HTTPS
#[derive(Parser)]
#[command(name = NAME, version, after_help = cli::LOGGING_HELP)]
// Proxy flags next to `block` or `unblock` would be ignored: refuse them.
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    pool: PoolArgs,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    tunnel: TunnelArgs,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(subcommand)]
    edit: Option<EditCommand>,
}

fn main() {
    let args = Cli::parse();
    if let Some(edit) = &args.edit {
        println!("{}", edit.apply().unwrap_or_else(|e| cli::fail(NAME, e)));
        return;
    }
    logging::init();
    let cache = args
        .cache
        .open()
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot open the cache: {e}")));
    let tunnels = args.tunnel.tunnel_config();
    let access = args
        .filter
        .access_config(args.listen.bind)
        .unwrap_or_else(|e| cli::fail(NAME, e));
    // Poll the rules files for edits; the watcher stops when dropped.
    let _watcher = access
        .rules
        .watch(Duration::from_millis(500))
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot watch the rules files: {e}")));
    let server = Server::new(args.pool.server_config(args.listen.timeouts()))
        .with_cache(cache)
        .with_tunnels(tunnels)
        .with_access(access);
    let listener = server::bind_and_announce(args.listen.listen_addr())
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot listen: {e}")));
    if let Err(e) = server.run(listener) {
        cli::fail(NAME, e);
    }
}
