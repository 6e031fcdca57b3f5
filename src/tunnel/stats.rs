//! What one tunnel did: how it ended, the bytes each way, and what its line
//! in the access log says about it.
//!
//! A tunnel carries bytes the proxy cannot read (RFC 9110 §9.3.6), so its
//! access line can only show the CONNECT that opened it and the `200` that
//! answered. What else there is to report is the byte counts, the duration,
//! and why the tunnel closed. That is shared by the relay (which measures it)
//! and the capacity code (which hands it to the caller's log callback), so
//! it lives below both.

use std::fmt;
use std::io::ErrorKind;
use std::time::Duration;

/// How a tunnel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Both sides finished sending: the normal end.
    Closed,
    /// Nothing moved in either direction for the idle timeout.
    IdleTimeout,
    /// A socket failed (reset, broken pipe, ...); the tunnel was cut.
    Error(ErrorKind),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Closed => f.write_str("closed"),
            End::IdleTimeout => f.write_str("idle timeout"),
            End::Error(kind) => write!(f, "error: {kind}"),
        }
    }
}

/// What one tunnel did, for its access-log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelStats {
    /// Bytes written to the upstream, including the pending bytes.
    pub client_to_upstream: u64,
    /// Bytes written to the client.
    pub upstream_to_client: u64,
    pub duration: Duration,
    pub ended_by: End,
}

// ANCHOR: summary
/// What the access line adds for a tunnel (in the webproxy format): `up`
/// counts bytes from the client to the upstream, `down` the other way, and
/// `end` says how it closed. The duration is the line's own.
pub fn summary(stats: &TunnelStats) -> String {
    format!(
        "up={} down={} end={}",
        stats.client_to_upstream, stats.upstream_to_client, stats.ended_by,
    )
}
// ANCHOR_END: summary

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_says_bytes_each_way_and_the_end() {
        let stats = TunnelStats {
            client_to_upstream: 1,
            upstream_to_client: 2,
            duration: Duration::from_millis(1500),
            ended_by: End::Error(ErrorKind::ConnectionReset),
        };
        assert_eq!(summary(&stats), "up=1 down=2 end=error: connection reset");
    }
}
