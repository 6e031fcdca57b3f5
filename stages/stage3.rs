//! Stage 3: stage 2 plus a shared in-memory cache that follows RFC 9111.
//!
//! Run it with `cargo run --bin stage3`, then fetch the same URL twice with
//! `curl -x http://127.0.0.1:8080 -D - http://...`: the second answer says
//! `Cache-Status: webproxy; hit`.

use webproxy::caching::Caching;
use webproxy::cli::{self, Feature};
use webproxy::handler::Relay;
use webproxy::listen::{self, Shutdown};
use webproxy::logging;
use webproxy::server::Server;

const NAME: &str = "stage3";
const ABOUT: &str = "a concurrent HTTP/1.1 forward proxy with a shared cache";

fn main() {
    let options = cli::parse_or_exit(NAME, ABOUT, &[Feature::Pool, Feature::Cache]);
    logging::init();
    let cache = options
        .open_cache()
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot open the cache: {e}")));
    let handler = Caching::new(cache, Relay);
    let server = Server::new(options.server_config(), handler);
    let listener = listen::bind_and_announce(options.listen_addr())
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot listen: {e}")));
    if let Err(e) = server.run(listener, Shutdown::new()) {
        cli::fail(NAME, e);
    }
}
