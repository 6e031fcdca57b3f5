//! The command line every stage shares, declared with clap.
//!
//! Each capability brings its own group of flags, a `#[derive(clap::Args)]`
//! struct in a file of its own, and each stage binary flattens the groups of
//! the capabilities it has. So `--help` lists exactly a stage's flags, and
//! `stage2 --cache-size 1M` is an error rather than a flag silently ignored.
//! A group uses only modules of its own stage or earlier ones, as the rest of
//! the library does, so each stage's command line stands on its own.
//!
//! Every value is parsed into its type when the flags are read, so a typo
//! stops the proxy before it listens, with the flag and the reason. The
//! defaults are the safe ones: listen on 127.0.0.1 only, so a proxy started
//! on a laptop is not an open proxy for the whole network.

use std::fmt::Display;
use std::process;
use std::time::Duration;

// One module per capability, by stage: listen and log (1), pool and parent (2),
// cache (3), tunnel (4), filter (5). A module may use the library's modules of its own
// stage and earlier ones, never later ones, so a stage's binary needs
// nothing of a later stage.
pub mod cache;
pub mod filter;
pub mod listen;
pub mod log;
pub mod parent;
pub mod pool;
pub mod tunnel;

/// Shown after every stage's `--help`, since the log level is not a flag.
pub const LOGGING_HELP: &str = "Logging: RUST_LOG=debug for more detail (default info).";

/// Prints `PROGRAM: message` and exits with status 1: for setup errors such
/// as a port that is already in use. Usage errors are clap's, and exit 2.
pub fn fail(program: &str, message: impl Display) -> ! {
    eprintln!("{program}: {message}");
    process::exit(1);
}

/// A positive whole number: a pool or a limit of zero would refuse every
/// client, which is never what was meant.
pub fn count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above 0".into()),
    }
}

/// Seconds, possibly fractional (`30`, `0.5`). Zero is refused: no timeout
/// of no time at all is meant, and the socket calls reject it.
pub fn seconds(value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err("expected a number of seconds above 0".into()),
    }
}

/// A size with an optional binary suffix: `4096`, `512K`, `64M`, `1G`,
/// `64MiB`. Suffixes are powers of 1024 whatever their spelling, because
/// nobody sizing a cache means 64,000,000 by `64M`.
pub fn bytes(value: &str) -> Result<usize, String> {
    let v = value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, suffix) = v.split_at(digits);
    let n: usize = number.parse().map_err(|_| "expected a size such as 64M")?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err("unknown size suffix (use K, M or G)".into()),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| "size is too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes("4096"), Ok(4096));
        assert_eq!(bytes("64M"), Ok(64 << 20));
        assert_eq!(bytes("1GiB"), Ok(1 << 30));
        assert!(bytes("12X").is_err());
        assert!(bytes("M").is_err());
        assert!(bytes("99999999999999G").is_err());
    }

    #[test]
    fn seconds_and_counts() {
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "inf", "NaN", "1e10", "soon"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(count("4"), Ok(4));
        assert!(count("0").is_err());
        assert!(count("-4").is_err());
    }
}
