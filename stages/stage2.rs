//! Stage 2: many clients at once, every method, persistent connections.
//!
//! Run it with `cargo run --bin stage2 -- --threads 8`, then point
//! `curl -x http://127.0.0.1:8080` at any local server.

use webproxy::cli::{self, Feature};
use webproxy::logging;
use webproxy::server::{self, Server};

fn main() {
    let about = "a concurrent HTTP/1.1 proxy";
    let options = cli::parse_or_exit("stage2", about, &[Feature::Pool]);
    logging::init();
    let listener = server::bind_and_announce(options.listen_addr())
        .unwrap_or_else(|e| cli::fail("stage2", format!("cannot listen: {e}")));
    let server = Server::new(options.server_config());
    if let Err(e) = server.run(listener) {
        cli::fail("stage2", e);
    }
}
