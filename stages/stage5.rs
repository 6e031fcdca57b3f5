//! Stage 5: stage 4 plus domain and client filtering that can change while
//! the proxy runs.
//!
//! Run it with `cargo run --release --bin stage5 -- --block blocked.txt`,
//! then add a line to blocked.txt (or run `stage5 block ads.example --file
//! blocked.txt`): within a second, requests for that domain get 403.

use std::time::Duration;

use webproxy::access::AccessControl;
use webproxy::caching::Caching;
use webproxy::cli::{self, Feature};
use webproxy::connect::Connect;
use webproxy::handler::Relay;
use webproxy::listen::{self, Shutdown};
use webproxy::logging;
use webproxy::server::Server;

const NAME: &str = "stage5";
const ABOUT: &str = "a caching, filtering HTTP/1.1 forward proxy that tunnels HTTPS";

fn main() {
    let features = [
        Feature::Pool,
        Feature::Cache,
        Feature::Tunnel,
        Feature::Filter,
    ];
    let options = cli::parse_or_exit(NAME, ABOUT, &features);
    logging::init();
    let cache = options
        .open_cache()
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot open the cache: {e}")));
    let tunnels = options
        .tunnel_config()
        .unwrap_or_else(|e| cli::fail(NAME, e));
    let access = options
        .access_config()
        .unwrap_or_else(|e| cli::fail(NAME, e));
    // Poll the rules files for edits; the watcher stops when dropped.
    let _watcher = access
        .rules
        .watch(Duration::from_millis(500))
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot watch the rules files: {e}")));
    let handler = AccessControl::new(access, Connect::new(tunnels, Caching::new(cache, Relay)));
    let server = Server::new(options.server_config(), handler);
    let listener = listen::bind_and_announce(options.listen_addr())
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot listen: {e}")));
    if let Err(e) = server.run(listener, Shutdown::new()) {
        cli::fail(NAME, e);
    }
}
