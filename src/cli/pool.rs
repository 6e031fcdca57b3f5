//! Stage 2's flags: how many workers, how many clients, how long an idle
//! connection may stay.
//!
//! They size the concurrent server, which stage 1 does not have.

use std::time::Duration;

use super::{count, seconds};
use crate::conn::MinRate;
use crate::dial::Timeouts;
use crate::parent::Parents;
use crate::server;
use crate::upstream::PoolConfig;

#[derive(clap::Args, Clone, Debug)]
pub struct PoolArgs {
    /// worker threads [default: 16 per core, from 16 to 64]
    #[arg(long, value_name = "N", value_parser = count)]
    pub threads: Option<usize>,
    /// open client connections at most (fitted to the descriptor limit);
    /// more get 503
    #[arg(long, value_name = "N", default_value = "4096", value_parser = count)]
    pub max_connections: usize,
    /// open connections from one client address at most; more get 503
    #[arg(long, value_name = "N", default_value = "1024", value_parser = count)]
    pub max_connections_per_client: usize,
    /// a request body slower than this many bytes a second, after 10 s,
    /// gets 408; 0 turns the rule off
    #[arg(long, value_name = "BYTES", default_value = "500", value_parser = bytes_per_second)]
    pub min_body_rate: u64,
    /// close idle persistent client connections after this long
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = seconds)]
    pub idle_timeout: Duration,
}

impl PoolArgs {
    /// The server's configuration, with `timeouts` from the stage 1 flags,
    /// the idle timeout from ours, and the `parents` upstream connections
    /// go to ([`crate::cli::parent`]).
    pub fn server_config(&self, timeouts: Timeouts, parents: Parents) -> server::Config {
        server::Config {
            threads: self.threads.unwrap_or_else(server::default_threads),
            max_connections: self.max_connections,
            timeouts: Timeouts {
                client_idle: self.idle_timeout,
                ..timeouts
            },
            upstream: PoolConfig {
                parents,
                ..PoolConfig::default()
            },
            max_connections_per_client: self.max_connections_per_client,
            min_body_rate: Some(MinRate {
                bytes_per_sec: self.min_body_rate,
                grace: Duration::from_secs(10),
            }),
        }
    }
}

fn bytes_per_second(value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| "not a whole number of bytes".into())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::listen::ListenArgs;

    /// Stage 2's command line.
    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        listen: ListenArgs,
        #[command(flatten)]
        pool: PoolArgs,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
    }

    fn config(cli: &Cli) -> server::Config {
        cli.pool
            .server_config(cli.listen.timeouts(), Parents::default())
    }

    #[test]
    fn defaults_match_the_library() {
        let (ours, library) = (config(&parse(&[]).unwrap()), server::Config::default());
        assert_eq!(ours.threads, library.threads);
        assert_eq!(ours.max_connections, library.max_connections);
        assert_eq!(ours.timeouts.client_idle, library.timeouts.client_idle);
    }

    #[test]
    fn flags_of_both_stages_reach_the_config() {
        let cli = parse(&[
            "--threads",
            "4",
            "--idle-timeout",
            "1",
            "--connect-timeout",
            "3",
        ]);
        let config = config(&cli.unwrap());
        assert_eq!(config.threads, 4);
        assert_eq!(config.timeouts.client_idle, Duration::from_secs(1));
        assert_eq!(config.timeouts.connect, Duration::from_secs(3));
    }

    #[test]
    fn zero_and_later_stages_are_refused() {
        let error = parse(&["--threads", "0"]).unwrap_err().to_string();
        assert!(
            error.contains("--threads") && error.contains("above 0"),
            "{error}"
        );
        let error = parse(&["--cache-size", "1M"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
