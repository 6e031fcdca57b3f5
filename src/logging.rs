//! Logging: one access line per request, one line per error.
//!
//! Everything goes through the `log` facade, so the library never decides
//! where output goes; the stage binaries start `env_logger`. An operator
//! reading the log should be able to answer "who asked for what, what did
//! they get, and how long did it take" from the access lines alone, in the
//! spirit of the common log format.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

/// Starts `env_logger`, at level `info` unless `RUST_LOG` says otherwise.
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info");
    // A second call (tests start several servers) is harmless.
    let _ = env_logger::Builder::from_env(env).try_init();
}

// ANCHOR: access_line
/// One access-log line.
pub struct Access<'a> {
    pub client: Option<SocketAddr>,
    pub method: &'a str,
    pub uri: &'a str,
    pub status: u16,
    pub bytes: u64,
    pub started: Instant,
    /// What the cache or the filter did (HIT, MISS, BLOCKED, ...), if
    /// anything.
    pub note: Option<&'a str>,
}

impl fmt::Display for Access<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.client {
            Some(addr) => write!(f, "{addr}")?,
            None => f.write_str("-")?,
        }
        write!(
            f,
            " \"{} {}\" {} {} {}ms",
            self.method,
            self.uri.escape_debug(),
            self.status,
            self.bytes,
            self.started.elapsed().as_millis()
        )?;
        if let Some(note) = self.note {
            write!(f, " {note}")?;
        }
        Ok(())
    }
}

impl Access<'_> {
    pub fn log(&self) {
        log::info!(target: "access", "{self}");
    }
}
// ANCHOR_END: access_line
