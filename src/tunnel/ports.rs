//! The port policy: which destination ports a CONNECT may reach.
//!
//! A proxy that connects anywhere it is asked is a free TCP relay. Port 25 on
//! a mail server lets anyone send spam from the proxy's address. Ports such as
//! 22, 3306 or 6379 reach SSH servers and databases that trust the proxy's
//! network and that the firewall was meant to hide. Every attack also appears
//! to come from the proxy. HTTPS needs only port 443, so [`PortPolicy`] allows
//! exactly that by default. Anything else must be listed, and is refused with
//! 403 before the proxy connects anywhere. (The port list does not protect
//! internal hosts that listen on 443; that would need a separate policy on
//! destination addresses.) RFC 9110 §9.3.6 warns about exactly this: CONNECT
//! to arbitrary ports turns a proxy into a relay for other protocols.

use std::fmt;

// ANCHOR: port_policy
/// The destination ports a CONNECT may reach, as inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPolicy {
    ranges: Vec<(u16, u16)>,
}

impl PortPolicy {
    /// Parses a comma-separated list of ports and ranges: `"443,8443"`,
    /// `"443, 8000-8100"`. Port 0, reversed ranges, empty entries and
    /// anything that is not a decimal number are errors: a typo in an
    /// access rule must stop the proxy from starting, not widen the rule.
    #[cfg(not(feature = "ex-4-1"))]
    pub fn parse(spec: &str) -> Result<PortPolicy, PortListError> {
        if spec.trim().is_empty() {
            return Err(PortListError::Empty);
        }
        let mut ranges = Vec::new();
        for entry in spec.split(',') {
            let entry = entry.trim();
            let (low, high) = match entry.split_once('-') {
                Some((low, high)) => (parse_port(low)?, parse_port(high)?),
                None => {
                    let port = parse_port(entry)?;
                    (port, port)
                }
            };
            if low > high {
                return Err(PortListError::Backwards(entry.to_string()));
            }
            ranges.push((low, high));
        }
        Ok(PortPolicy { ranges })
    }

    /// Is `port` one of the ports the policy lists?
    #[cfg(not(feature = "ex-4-1"))]
    pub fn allows(&self, port: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(low, high)| low <= port && port <= high)
    }
}

/// One port of a port list: a decimal number from 1 to 65535.
#[cfg(not(feature = "ex-4-1"))]
fn parse_port(text: &str) -> Result<u16, PortListError> {
    let text = text.trim();
    // `u16::from_str` would accept "+443"; a port list has no use for signs.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortListError::NotAPort(text.to_string()));
    }
    match text.parse::<u16>() {
        Ok(0) => Err(PortListError::Zero),
        Ok(port) => Ok(port),
        Err(_) => Err(PortListError::TooLarge(text.to_string())),
    }
}

/// Only HTTPS: the one port a browser needs a tunnel for.
impl Default for PortPolicy {
    fn default() -> Self {
        PortPolicy {
            ranges: vec![(443, 443)],
        }
    }
}
// ANCHOR_END: port_policy

// Exercise 4.1: with its feature, the student's `PortPolicy::parse`,
// `allows` and `parse_port` replace the ones above.
#[cfg(feature = "ex-4-1")]
#[path = "../../exercises/stage4/ports.rs"]
mod ex_4_1;

/// `443, 8000-8100`: the form the configuration uses, for logs and 403 bodies.
impl fmt::Display for PortPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(low, high)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if low == high {
                write!(f, "{low}")?;
            } else {
                write!(f, "{low}-{high}")?;
            }
        }
        Ok(())
    }
}

/// Why a port list was refused. Each case keeps the entry that was wrong,
/// so the message can quote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortListError {
    /// Nothing but blanks.
    Empty,
    /// An entry (or one end of a range) that is not a decimal number.
    NotAPort(String),
    /// Port 0, which no connection can reach.
    Zero,
    /// A number above 65535.
    TooLarge(String),
    /// A range whose low end is above its high end.
    Backwards(String),
}

impl fmt::Display for PortListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortListError::Empty => f.write_str("the port list is empty"),
            PortListError::NotAPort(text) => write!(f, "{text:?} is not a port number"),
            PortListError::Zero => f.write_str("port 0 cannot be connected to"),
            PortListError::TooLarge(text) => {
                write!(f, "{text} is larger than the largest port, 65535")
            }
            PortListError::Backwards(entry) => write!(f, "the range {entry:?} runs backwards"),
        }
    }
}

impl std::error::Error for PortListError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_policy_parsing() {
        let good: &[(&str, &str, &[u16], &[u16])] = &[
            ("443", "443", &[443], &[0, 80, 442, 444, 8443]),
            ("443,8443", "443, 8443", &[443, 8443], &[80, 8444]),
            (
                " 443 , 8000-8100 ",
                "443, 8000-8100",
                &[443, 8000, 8050, 8100],
                &[7999, 8101, 25],
            ),
            ("1-65535", "1-65535", &[1, 22, 65535], &[0]),
            ("563-563", "563", &[563], &[562, 564]),
        ];
        for &(spec, shown, allowed, denied) in good {
            let policy = PortPolicy::parse(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
            assert_eq!(policy.to_string(), shown, "{spec:?}");
            for &port in allowed {
                assert!(policy.allows(port), "{spec:?} should allow {port}");
            }
            for &port in denied {
                assert!(!policy.allows(port), "{spec:?} should deny {port}");
            }
        }

        let bad = [
            "",
            " ",
            "0",
            "0-443",
            "8100-8000",
            "abc",
            "443,",
            ",443",
            "443,,8443",
            "443-",
            "-443",
            "65536",
            "+443",
            "1-2-3",
            "44 3",
            "443;8443",
            "0x1bb",
        ];
        for spec in bad {
            assert!(PortPolicy::parse(spec).is_err(), "{spec:?} was accepted");
        }

        let default = PortPolicy::default();
        assert_eq!(default.to_string(), "443");
        assert!(default.allows(443));
        assert!(!default.allows(25));
        assert!(!default.allows(22));
        assert!(!default.allows(80));
    }

    #[test]
    fn port_list_errors_keep_their_messages() {
        let cases = [
            ("", PortListError::Empty, "the port list is empty"),
            (
                "44 3",
                PortListError::NotAPort("44 3".into()),
                "\"44 3\" is not a port number",
            ),
            ("0", PortListError::Zero, "port 0 cannot be connected to"),
            (
                "65536",
                PortListError::TooLarge("65536".into()),
                "65536 is larger than the largest port, 65535",
            ),
            (
                "8100-8000",
                PortListError::Backwards("8100-8000".into()),
                "the range \"8100-8000\" runs backwards",
            ),
        ];
        for (spec, error, message) in cases {
            assert_eq!(PortPolicy::parse(spec), Err(error.clone()), "{spec:?}");
            assert_eq!(error.to_string(), message);
        }
    }
}
