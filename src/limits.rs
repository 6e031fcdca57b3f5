//! Limits that keep one client, or the operating system, from taking the
//! proxy down (stage 2).
//!
//! - **File descriptors.** Every client connection is a descriptor, and so
//!   is every upstream connection. A process that runs out gets `accept`
//!   errors ("Too many open files") and its clients time out with no answer
//!   at all. So at start we raise the soft limit to the hard one, and fit
//!   `--max-connections` into what that allows: a client over the limit then
//!   gets a 503 at once instead of silence.
//! - **Connections per client.** One address that opens hundreds of
//!   connections (a misbehaving script, or an attack) should not take the
//!   places of everyone else: `--max-connections-per-client`.
//!
//! A slow request *body* is bounded in [`crate::conn`] (a minimum rate, in
//! the manner of Apache's `mod_reqtimeout`), and a slow *head* waits in the
//! [`crate::waiting`] room without a worker.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Descriptors kept aside for everything but client connections: the
/// listener, log files, the cache directory, the waiting room's epoll.
const RESERVED_FDS: u64 = 64;

/// Raises the soft limit on open descriptors to the hard limit, and returns
/// the limit now in force.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we
    // pass, which lives on our stack for the whole call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    // rlim_t is u64 here, but not on every platform.
    #[allow(clippy::unnecessary_cast)]
    Ok(limit.rlim_cur as u64)
}

// ANCHOR: fit
/// How many client connections `fds` descriptors can carry: each may need
/// a second one upstream, and `idle_upstream` kept connections need theirs.
pub fn connections_for(fds: u64, idle_upstream: usize) -> usize {
    let spare = fds.saturating_sub(RESERVED_FDS + idle_upstream as u64);
    usize::try_from(spare / 2).unwrap_or(usize::MAX).max(1)
}
// ANCHOR_END: fit

/// Open connections by client address, bounded per address.
#[derive(Clone)]
pub struct PerClient {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One counted connection; dropping it frees its place.
pub struct ClientPlace {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerClient {
    pub fn new(max: usize) -> PerClient {
        PerClient {
            max,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes a place for a connection from `ip`, or says how many that
    /// address has open already.
    pub fn admit(&self, ip: IpAddr) -> Result<ClientPlace, usize> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return Err(*n);
        }
        *n += 1;
        Ok(ClientPlace {
            ip,
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                // Forget addresses with nothing open: the map stays as
                // small as the set of clients connected right now.
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_address_and_freed_on_drop() {
        let limit = PerClient::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limit.admit(a).unwrap();
        let _second = limit.admit(a).unwrap();
        assert_eq!(limit.admit(a).err(), Some(2));
        let _other = limit.admit(b).expect("another address is not affected");
        drop(first);
        assert!(limit.admit(a).is_ok());
    }

    #[test]
    fn the_fd_limit_can_be_read_and_raised() {
        let fds = raise_fd_limit().unwrap();
        assert!(fds >= 16, "{fds}");
    }

    #[test]
    fn connections_fit_the_descriptors() {
        assert_eq!(connections_for(1024, 256), (1024 - 64 - 256) / 2);
        assert_eq!(connections_for(10, 256), 1);
    }
}
