//! Stage 1: a minimal GET relay, one client at a time.
//!
//! Run it with `cargo run --bin stage1`, then in another terminal:
//! `curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/`.

use clap::Parser;
use webproxy::cli;
use webproxy::cli::listen::ListenArgs;
use webproxy::{logging, server, simple};

/// a minimal GET relay, one client at a time
#[derive(Parser)]
#[command(name = "stage1", version, after_help = cli::LOGGING_HELP)]
struct Cli {
    #[command(flatten)]
    listen: ListenArgs,
}

fn main() {
    let args = Cli::parse();
    logging::init();
    let listener = server::bind_and_announce(args.listen.listen_addr())
        .unwrap_or_else(|e| cli::fail("stage1", format!("cannot listen: {e}")));
    simple::serve(listener, args.listen.timeouts());
}
