//! Stage 2: many clients at once, every method, persistent connections.
//!
//! Run it with `cargo run --bin stage2`, then point
//! `curl -x http://127.0.0.1:8080` at any local server.

use webproxy::cli::{self, Feature};
use webproxy::handler::Relay;
use webproxy::listen::{self, Shutdown};
use webproxy::logging;
use webproxy::server::Server;

const NAME: &str = "stage2";
const ABOUT: &str = "a concurrent HTTP/1.1 forward proxy";

fn main() {
    let options = cli::parse_or_exit(NAME, ABOUT, &[Feature::Pool]);
    logging::init();
    let server = Server::new(options.server_config(), Relay);
    let listener = listen::bind_and_announce(options.listen_addr())
        .unwrap_or_else(|e| cli::fail(NAME, format!("cannot listen: {e}")));
    if let Err(e) = server.run(listener, Shutdown::new()) {
        cli::fail(NAME, e);
    }
}
