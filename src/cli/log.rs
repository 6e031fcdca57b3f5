//! Stage 1's logging flags: the shape of the access lines, and where they
//! go.
//!
//! Every stage writes access lines, so every stage flattens this group.
//! The level of the other lines is `RUST_LOG`'s business, as usual for
//! `env_logger`.

use std::path::PathBuf;

use super::fail;
use crate::logging::{self, Format};

#[derive(clap::Args, Clone, Debug)]
pub struct LogArgs {
    /// the access lines' format
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Webproxy)]
    pub log_format: Format,
    /// write access lines to FILE instead of the log; SIGUSR1 reopens it
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
}

impl LogArgs {
    /// Starts the logger and sends access lines where the flags say. Exits
    /// with a message that names the file when it cannot be opened.
    pub fn init(&self, program: &str) {
        logging::init();
        if let Err(e) = logging::set_access_log(self.log_format, self.access_log.as_deref()) {
            fail(program, e);
        }
        match &self.access_log {
            Some(file) => log::info!(
                "access lines: {} format, in {} (SIGUSR1 reopens it)",
                self.log_format,
                file.display()
            ),
            None => log::info!("access lines: {} format, in this log", self.log_format),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    fn parse(args: &[&str]) -> Result<LogArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|c| c.log)
    }

    #[test]
    fn formats_by_name_and_readable_by_default() {
        let default = parse(&[]).unwrap();
        assert_eq!(
            (default.log_format, default.access_log),
            (Format::Webproxy, None)
        );
        let squid = parse(&["--log-format", "squid", "--access-log", "a.log"]).unwrap();
        assert_eq!(squid.log_format, Format::Squid);
        assert_eq!(squid.access_log, Some(PathBuf::from("a.log")));
        assert_eq!(
            parse(&["--log-format=combined"]).unwrap().log_format,
            Format::Combined
        );
        let error = parse(&["--log-format", "apache"]).unwrap_err().to_string();
        assert!(
            error.contains("squid") && error.contains("combined"),
            "{error}"
        );
    }
}
