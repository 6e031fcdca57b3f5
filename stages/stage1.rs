//! Stage 1: a minimal GET relay, one client at a time.
//!
//! Run it with `cargo run --bin stage1`, then in another terminal:
//! `curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/`.

use clap::Parser;
use webproxy::cli::listen::{ListenArgs, nothing_to_reload};
use webproxy::cli::log::LogArgs;
use webproxy::{cli, simple};

const NAME: &str = "stage1";

/// a minimal GET relay, one client at a time
#[derive(Parser)]
#[command(name = NAME, version, after_help = cli::LOGGING_HELP)]
struct Cli {
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() {
    let args = Cli::parse();
    args.log.init(NAME);
    args.listen.loopback_only(NAME);
    let (listener, shutdown) = args.listen.start(NAME, nothing_to_reload);
    simple::serve(listener, args.listen.timeouts(), shutdown);
}
