//! Stage 4: stage 3 plus HTTPS through CONNECT tunnels.
//!
//! Run it with `cargo run --bin stage4`, then
//! `curl -x http://127.0.0.1:8080 https://...`; only port 443 is tunnelled
//! unless `--connect-ports` says otherwise.

use webproxy::caching::Caching;
use webproxy::cli::{self, Feature};
use webproxy::connect::Connect;
use webproxy::handler::Relay;
use webproxy::listen::{self, Shutdown};
use webproxy::logging;
use webproxy::server::Server;

const NAME: &str = "stage4";
const ABOUT: &str = "a caching HTTP/1.1 forward proxy that tunnels HTTPS";

fn main() {
    let features = [Feature::Pool, Feature::Cache, Feature::Tunnel];
    let options = cli::parse_or_exit(NAME, ABOUT, &features);
    logging::init();
    let cache = options
        .open_cache()
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot open the cache: {e}")));
    let tunnels = options
        .tunnel_config()
        .unwrap_or_else(|e| cli::fail(NAME, e));
    let handler = Connect::new(tunnels, Caching::new(cache, Relay));
    let server = Server::new(options.server_config(), handler);
    let listener = listen::bind_and_announce(options.listen_addr())
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot listen: {e}")));
    if let Err(e) = server.run(listener, Shutdown::new()) {
        cli::fail(NAME, e);
    }
}
