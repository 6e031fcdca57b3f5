//! Stage 3's flags: how big the cache is, and where it keeps its copies.

use std::path::PathBuf;
use std::sync::Arc;

use super::bytes;
use crate::cache::{Cache, CacheConfig, SystemClock};
use crate::stats::human_bytes;

#[derive(clap::Args, Clone, Debug)]
pub struct CacheArgs {
    /// total cache size, e.g. 64M
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = bytes)]
    pub cache_size: usize,
    /// largest response the cache keeps
    #[arg(long, value_name = "BYTES", default_value = "8M", value_parser = bytes)]
    pub max_object_size: usize,
    /// keep cached responses in DIR across restarts (default: memory only)
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    pub fn config(&self) -> CacheConfig {
        CacheConfig {
            max_bytes: self.cache_size,
            max_object_bytes: self.max_object_size,
            dir: self.cache_dir.clone(),
        }
    }

    /// The cache, opened (and, with `--cache-dir`, loaded from disk), and
    /// a log line that says what is in force. An object limit over the whole
    /// cache is refused: such an object could never be stored, which is not
    /// what anyone who wrote both flags meant.
    pub fn open(&self) -> Result<Cache, String> {
        if self.max_object_size > self.cache_size {
            return Err(format!(
                "--max-object-size {} is larger than --cache-size {}: no object that large \
                 could be stored; lower it, or raise --cache-size",
                human_bytes(self.max_object_size as u64),
                human_bytes(self.cache_size as u64)
            ));
        }
        let cache = Cache::new(self.config(), Arc::new(SystemClock))
            .map_err(|e| format!("cannot open the cache: {e}"))?;
        let kept = match &self.cache_dir {
            Some(dir) => match cache.stats().loaded {
                1 => format!("kept in {}, 1 entry loaded", dir.display()),
                n => format!("kept in {}, {n} entries loaded", dir.display()),
            },
            None => "in memory only".to_string(),
        };
        log::info!(
            "cache: {}, objects up to {}, {kept}",
            human_bytes(self.cache_size as u64),
            human_bytes(self.max_object_size as u64)
        );
        Ok(cache)
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use clap::Parser;

    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        cache: CacheArgs,
    }

    fn parse(args: &[&str]) -> Result<CacheConfig, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map(|c| c.cache.config())
    }

    #[test]
    fn defaults_match_the_library() {
        let (ours, library) = (parse(&[]).unwrap(), CacheConfig::default());
        assert_eq!(ours.max_bytes, library.max_bytes);
        assert_eq!(ours.max_object_bytes, library.max_object_bytes);
        assert_eq!(ours.dir, None);
    }

    #[test]
    fn sizes_are_parsed_when_the_flags_are_read() {
        let config = parse(&["--cache-size", "1G", "--max-object-size=512K"]).unwrap();
        assert_eq!(
            (config.max_bytes, config.max_object_bytes),
            (1 << 30, 512 << 10)
        );
        let error = parse(&["--cache-size", "12X"]).unwrap_err().to_string();
        assert!(
            error.contains("--cache-size") && error.contains("suffix"),
            "{error}"
        );
    }

    #[test]
    fn an_object_limit_over_the_cache_size_is_refused() {
        let cli = Cli::try_parse_from(["t", "--cache-size", "1M", "--max-object-size", "2M"]);
        let error = cli.unwrap().cache.open().err().unwrap();
        assert!(
            error.contains("--max-object-size 2.0 MiB is larger than --cache-size 1.0 MiB"),
            "{error}"
        );
        let equal = Cli::try_parse_from(["t", "--cache-size", "1M", "--max-object-size", "1M"]);
        assert!(equal.unwrap().cache.open().is_ok());
    }

    #[test]
    fn cache_directory_errors_name_the_directory() {
        let dir = crate::test_util::TempDir::new("cli-cache-dir");
        let file = dir.0.join("a-file");
        std::fs::write(&file, "not a directory").unwrap();
        let below = file.join("cache");
        let cli = Cli::try_parse_from([
            OsStr::new("t"),
            OsStr::new("--cache-dir"),
            below.as_os_str(),
        ]);
        let error = cli.unwrap().cache.open().err().unwrap();
        assert!(error.contains(&below.display().to_string()), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_cache_dir_need_not_be_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let dir = OsStr::from_bytes(b"/tmp/caf\xe9");
        let cli = Cli::try_parse_from([OsStr::new("t"), OsStr::new("--cache-dir"), dir]).unwrap();
        assert_eq!(cli.cache.cache_dir.as_deref(), Some(dir.as_ref()));
    }
}
