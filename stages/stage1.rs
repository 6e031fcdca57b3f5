//! Stage 1: a minimal GET relay, one client at a time.
//!
//! Run it with `cargo run --bin stage1`, then in another terminal:
//! `curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/`.

use webproxy::listen::{self, Shutdown};
use webproxy::{cli, logging, simple};

fn main() {
    let options = cli::parse_or_exit("stage1", "a minimal GET relay, one client at a time", &[]);
    logging::init();
    let listener = listen::bind_and_announce(options.listen_addr())
        .unwrap_or_else(|e| cli::fail("stage1", format!("cannot listen: {e}")));
    simple::serve(listener, options.timeouts, Shutdown::new());
}
