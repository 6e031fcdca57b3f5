//! Stage 5: stage 4 plus domain and client filtering that can change while
//! the proxy runs.
//!
//! Run it with `cargo run --release --bin stage5 -- --block blocked.txt`,
//! then add a line to blocked.txt (or run `stage5 block ads.example --file
//! blocked.txt`): within a second, requests for that domain get 403.

use std::time::Duration;

use clap::Parser;
use webproxy::access::AccessControl;
use webproxy::caching::Caching;
use webproxy::cli;
use webproxy::cli::cache::CacheArgs;
use webproxy::cli::filter::{EditCommand, FilterArgs};
use webproxy::cli::listen::ListenArgs;
use webproxy::cli::log::LogArgs;
use webproxy::cli::parent::ParentArgs;
use webproxy::cli::pool::PoolArgs;
use webproxy::cli::tunnel::TunnelArgs;
use webproxy::connect::Connect;
use webproxy::handler::Relay;
use webproxy::server::Server;

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
    log: LogArgs,
    #[command(flatten)]
    pool: PoolArgs,
    #[command(flatten)]
    parent: ParentArgs,
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
    args.log.init(NAME);
    // Listening beyond loopback is allowed once --allow-clients says who
    // may connect: access_config refuses it otherwise.
    let access = args
        .filter
        .access_config(args.listen.bind)
        .unwrap_or_else(|e| cli::fail(NAME, e));
    let cache = args.cache.open().unwrap_or_else(|e| cli::fail(NAME, e));
    // Plain requests and tunnels share the parents, and what is known
    // about which of them are down.
    let parents = args.parent.parents();
    let tunnels = args.tunnel.tunnel_config(parents.clone());
    // Poll the rules files for edits; the watcher stops when dropped.
    let _watcher = access
        .rules
        .watch(Duration::from_millis(500))
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot watch the rules files: {e}")));
    let rules = access.rules.clone();
    let handler = AccessControl::new(access, Connect::new(tunnels, Caching::new(cache, Relay)));
    let config = args.pool.server_config(args.listen.timeouts(), parents);
    let server = Server::new(config, handler);
    // SIGHUP reloads at once, without waiting for the next poll; the
    // reload logs what changed, or why the old rules stay.
    let (listener, shutdown) = args.listen.start(NAME, move || {
        log::info!("SIGHUP: reloading the rules files");
        let _ = rules.reload_now();
    });
    if let Err(e) = server.run(listener, shutdown) {
        cli::fail(NAME, e);
    }
}
