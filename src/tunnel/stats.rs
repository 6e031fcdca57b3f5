//! What one tunnel did: how it ended, the bytes each way, and its line in
//! the access log.
//!
//! A tunnel carries bytes the proxy cannot read (RFC 9110 §9.3.6), so the
//! log cannot show a method, a URI or a status as it does for plain HTTP.
//! What is left to report is the target, the byte counts, the duration, and
//! why the tunnel closed. That is shared by the relay (which measures it)
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

// ANCHOR: access_line
/// One log line per tunnel, written when it closes. `up` counts bytes from
/// the client to the upstream, `down` the other way.
pub fn access_line(target: &str, stats: &TunnelStats) -> String {
    format!(
        "CONNECT {} up={} down={} time={:.3}s end={}",
        // The target came from the client: escape control characters so a
        // crafted authority cannot forge extra log lines.
        target.escape_debug(),
        stats.client_to_upstream,
        stats.upstream_to_client,
        stats.duration.as_secs_f64(),
        stats.ended_by,
    )
}
// ANCHOR_END: access_line

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_line_escapes_the_target() {
        let stats = TunnelStats {
            client_to_upstream: 1,
            upstream_to_client: 2,
            duration: Duration::from_millis(1500),
            ended_by: End::Error(ErrorKind::ConnectionReset),
        };
        assert_eq!(
            access_line("evil\r\nFAKE LINE:443", &stats),
            "CONNECT evil\\r\\nFAKE LINE:443 up=1 down=2 time=1.500s end=error: connection reset"
        );
    }
}
