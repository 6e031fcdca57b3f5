//! How the server is sized and timed, and the defaults: how many workers,
//! how many connections, and how long each kind of wait may last.

use std::time::Duration;

use crate::conn::MinRate;
use crate::dial::Timeouts;
use crate::upstream::PoolConfig;

/// How the server is sized and timed.
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker threads in the pool.
    pub threads: usize,
    /// Open client connections at most; more get a 503.
    pub max_connections: usize,
    pub timeouts: Timeouts,
    /// Idle upstream connections kept for reuse.
    pub upstream: PoolConfig,
    /// Open connections from one client address at most; more get a 503.
    pub max_connections_per_client: usize,
    /// How fast a request body must arrive (`None`: only the read timeout).
    pub min_body_rate: Option<MinRate>,
}

/// How many workers a server gets unless told: 16 for each core the
/// process may run on, 16 at least and 64 at most.
///
/// A worker blocked on an origin costs only memory, so more workers than
/// cores let requests wait on slow origins side by side. But every worker
/// with a request to serve is a thread the scheduler shares the cores
/// among: with 64 of them on one core, a worker taken off the CPU in the
/// middle of a response (or while it holds a lock the others need) waits
/// for all the others' turns, and a few responses in a hundred took over
/// 100 ms where the direct path took 15. Sized by cores, the same load
/// stays under 40 ms. `--threads` sets it by hand, for origins that are
/// slow enough to keep many more workers waiting.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.saturating_mul(16).clamp(16, 64)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: default_threads(),
            // Waiting connections cost a descriptor and a small buffer, not
            // a thread, so thousands are fine; `limits` fits this into the
            // descriptors the process may open.
            max_connections: 4096,
            timeouts: Timeouts::default(),
            upstream: PoolConfig::default(),
            max_connections_per_client: 1024,
            min_body_rate: Some(MinRate {
                bytes_per_sec: 500,
                grace: Duration::from_secs(10),
            }),
        }
    }
}
