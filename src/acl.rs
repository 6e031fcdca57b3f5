//! Which clients may use the proxy.
//!
//! A proxy that anyone can reach relays anyone's traffic under our address:
//! an open proxy. So the server checks the client's address before reading a
//! byte, against a list of networks in CIDR notation (RFC 4632 §3.1 for IPv4,
//! RFC 4291 §2.3 for IPv6). By default only loopback is allowed.
//!
//! A dual-stack socket reports IPv4 clients as IPv4-mapped IPv6 addresses
//! (`::ffff:10.1.2.3`, RFC 4291 §2.5.5.2); we check those as the IPv4
//! address they are, so `10.0.0.0/8` means the same on either kind of socket.
//!
//! A network written with bits set after the prefix (`10.1.2.3/8`) is refused
//! rather than silently masked: it is usually a typo for a single host, and
//! widening it without a word would open the proxy to more clients than meant.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One allowed network, stored with the host bits already zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    V4 { base: u32, prefix: u8 },
    V6 { base: u128, prefix: u8 },
}

// ANCHOR: cidr
/// The netmask of a /`prefix` IPv4 network.
#[cfg(not(feature = "ex-5-2"))]
fn mask_v4(prefix: u8) -> u32 {
    // A shift by the full width is an overflow, hence checked_shl: /0 masks
    // everything away.
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The netmask of a /`prefix` IPv6 network.
#[cfg(not(feature = "ex-5-2"))]
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl Net {
    /// Is `ip` inside this network?
    #[cfg(not(feature = "ex-5-2"))]
    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::V4 { base, prefix }, IpAddr::V4(a)) => u32::from(a) & mask_v4(prefix) == base,
            (Net::V6 { base, prefix }, IpAddr::V6(a)) => u128::from(a) & mask_v6(prefix) == base,
            _ => false,
        }
    }
}
// ANCHOR_END: cidr

// Exercise 5.2: with its feature, the student's `mask_v4`, `mask_v6`,
// `Net::contains` (above) and `ClientAcl::allows` (below) replace the
// reference ones.
#[cfg(feature = "ex-5-2")]
#[path = "../exercises/stage5/acl.rs"]
mod ex_5_2;
#[cfg(feature = "ex-5-2")]
use ex_5_2::{mask_v4, mask_v6};

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Net::V4 { base, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(base)),
            Net::V6 { base, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(base)),
        }
    }
}

/// The networks whose clients may use the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAcl {
    nets: Vec<Net>,
}

impl ClientAcl {
    // ANCHOR: acl_parse
    /// Parses a comma-separated list such as `127.0.0.1/32,10.0.0.0/8,::1,fd00::/8`.
    /// A bare address is one host (/32 or /128).
    pub fn parse(spec: &str) -> Result<ClientAcl, AclError> {
        let mut nets = Vec::new();
        for entry in spec.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(AclError::EmptyEntry(spec.to_string()));
            }
            nets.push(parse_net(entry)?);
        }
        Ok(ClientAcl { nets })
    }
    // ANCHOR_END: acl_parse

    /// 127.0.0.0/8 and ::1: the safe default, usable only from this machine.
    pub fn loopback() -> ClientAcl {
        ClientAcl {
            nets: vec![
                Net::V4 {
                    base: u32::from(Ipv4Addr::new(127, 0, 0, 0)),
                    prefix: 8,
                },
                Net::V6 {
                    base: u128::from(Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
        }
    }

    // ANCHOR: acl_allows
    /// Whether a client at `ip` may use the proxy.
    #[cfg(not(feature = "ex-5-2"))]
    pub fn allows(&self, ip: IpAddr) -> bool {
        // ::ffff:a.b.c.d is an IPv4 client on an IPv6 socket.
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(ip))
    }
    // ANCHOR_END: acl_allows
}

fn parse_net(entry: &str) -> Result<Net, AclError> {
    let (addr, prefix) = match entry.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (entry, None),
    };
    // Brackets are how IPv6 is written in URLs; accept them here too.
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = addr.parse().map_err(|_| AclError::NotAnAddress {
        entry: entry.to_string(),
        addr: addr.to_string(),
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        // u8's parser would accept "+8"; a prefix is digits only.
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(AclError::BadPrefix {
                    entry: entry.to_string(),
                    max,
                });
            }
        },
    };
    let net = match ip {
        IpAddr::V4(a) => Net::V4 {
            base: u32::from(a),
            prefix,
        },
        // An IPv4-mapped network is an IPv4 network in disguise; clients
        // are compared as IPv4, so it must be stored as one.
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => Net::V4 {
                base: u32::from(v4),
                prefix: prefix - 96,
            },
            _ => Net::V6 {
                base: u128::from(a),
                prefix,
            },
        },
    };
    let masked = match net {
        Net::V4 { base, prefix } => Net::V4 {
            base: base & mask_v4(prefix),
            prefix,
        },
        Net::V6 { base, prefix } => Net::V6 {
            base: base & mask_v6(prefix),
            prefix,
        },
    };
    if masked != net {
        return Err(AclError::HostBits {
            entry: entry.to_string(),
            network: masked.to_string(),
        });
    }
    Ok(net)
}

/// The networks, for the startup log: `127.0.0.0/8, ::1/128`.
impl fmt::Display for ClientAcl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// Why a client list was refused. Each case keeps the entry, so the message
/// can quote it and a caller can tell a typo from a list that is too wide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclError {
    /// An empty entry (`10.0.0.0/8,`, or no list at all); holds the list.
    EmptyEntry(String),
    /// An entry whose address part is not an IP address.
    NotAnAddress { entry: String, addr: String },
    /// A prefix length that is not a number from 0 to `max`.
    BadPrefix { entry: String, max: u8 },
    /// Bits set after the prefix; `network` is what was probably meant.
    HostBits { entry: String, network: String },
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclError::EmptyEntry(spec) => write!(f, "empty entry in the client list {spec:?}"),
            AclError::NotAnAddress { entry, addr } => {
                write!(f, "{entry:?}: {addr:?} is not an IP address")
            }
            AclError::BadPrefix { entry, max } => {
                write!(f, "{entry:?}: the prefix length must be 0 to {max}")
            }
            AclError::HostBits { entry, network } => write!(
                f,
                "{entry:?} has bits set after the prefix; write the network as {network}, \
                 or the single host without a prefix"
            ),
        }
    }
}

impl std::error::Error for AclError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn acl(spec: &str) -> ClientAcl {
        ClientAcl::parse(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"))
    }

    #[test]
    fn ipv4_networks() {
        let acl = acl("127.0.0.1/32, 10.0.0.0/8,192.168.1.0/24");
        for (addr, allowed) in [
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("10.0.0.1", true),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("9.255.255.255", false),
            ("192.168.1.77", true),
            ("192.168.2.1", false),
            ("::1", false),
        ] {
            assert_eq!(acl.allows(ip(addr)), allowed, "{addr}");
        }
    }

    #[test]
    fn ipv6_networks() {
        let acl = acl("::1/128,fd00::/8,[2001:db8::]/32,2001:db8:ffff::5");
        for (addr, allowed) in [
            ("::1", true),
            ("::2", false),
            ("fd12:3456::1", true),
            ("fe80::1", false),
            ("2001:db8:1::1", true),
            ("2001:db9::1", false),
            ("2001:db8:ffff::5", true),
            ("127.0.0.1", false),
        ] {
            assert_eq!(acl.allows(ip(addr)), allowed, "{addr}");
        }
    }

    #[test]
    fn mapped_addresses_are_checked_as_ipv4() {
        let v4 = acl("10.0.0.0/8");
        assert!(v4.allows(ip("::ffff:10.1.2.3")));
        assert!(!v4.allows(ip("::ffff:11.1.2.3")));
        assert!(ClientAcl::loopback().allows(ip("::ffff:127.0.0.1")));
        // A mapped network is stored as the IPv4 network it means.
        let mapped = acl("::ffff:10.0.0.0/104");
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
        assert!(mapped.allows(ip("10.9.9.9")));
        assert!(mapped.allows(ip("::ffff:10.9.9.9")));
    }

    #[test]
    fn loopback_default() {
        let acl = ClientAcl::loopback();
        assert!(acl.allows(ip("127.0.0.1")));
        assert!(acl.allows(ip("127.255.0.9")));
        assert!(acl.allows(ip("::1")));
        assert!(!acl.allows(ip("10.0.0.1")));
        assert!(!acl.allows(ip("::2")));
        assert_eq!(acl.to_string(), "127.0.0.0/8, ::1/128");
    }

    #[test]
    fn bare_addresses_and_zero_prefixes() {
        let acl = acl("10.1.2.3,fd00::1");
        assert_eq!(acl.to_string(), "10.1.2.3/32, fd00::1/128");
        assert!(acl.allows(ip("10.1.2.3")));
        assert!(!acl.allows(ip("10.1.2.4")));
        let everyone = self::acl("0.0.0.0/0,::/0");
        assert!(everyone.allows(ip("203.0.113.9")));
        assert!(everyone.allows(ip("2001:db8::9")));
    }

    #[test]
    fn bad_specs_are_explained() {
        for (spec, expected) in [
            ("", "empty entry"),
            ("10.0.0.0/8,", "empty entry"),
            ("10.0.0.0/33", "0 to 32"),
            ("::/129", "0 to 128"),
            ("10.0.0.0/-1", "0 to 32"),
            ("10.0.0.0/+8", "0 to 32"),
            ("10.0.0.0/", "0 to 32"),
            ("localhost", "not an IP address"),
            ("10.0.0/8", "not an IP address"),
            ("10.1.2.3/8", "write the network as 10.0.0.0/8"),
            ("fd00::1/8", "write the network as fd00::/8"),
        ] {
            match ClientAcl::parse(spec) {
                Ok(acl) => panic!("{spec:?} parsed as {acl}"),
                Err(error) => assert!(
                    error.to_string().contains(expected),
                    "{spec:?}: {error:?} does not mention {expected:?}"
                ),
            }
        }
    }

    #[test]
    fn errors_can_be_told_apart() {
        assert_eq!(
            ClientAcl::parse("10.1.2.3/8"),
            Err(AclError::HostBits {
                entry: "10.1.2.3/8".into(),
                network: "10.0.0.0/8".into()
            })
        );
        assert_eq!(
            ClientAcl::parse("::/129"),
            Err(AclError::BadPrefix {
                entry: "::/129".into(),
                max: 128
            })
        );
        assert_eq!(
            ClientAcl::parse("10.0.0.0/8,").unwrap_err().to_string(),
            "empty entry in the client list \"10.0.0.0/8,\""
        );
    }
}
