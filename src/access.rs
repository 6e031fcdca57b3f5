//! Stage 5's gatekeeping, on the HTTP side: who may use the proxy, where
//! they may go, and requests that would loop back to us.
//!
//! Three checks, all made before any DNS lookup or upstream connection, so
//! that a refused request costs the proxy nothing and tells nobody outside
//! that it was attempted:
//!
//! 1. **Client ACL**, when a connection is accepted: an address outside
//!    `--allow-clients` gets a 403 and nothing is read from it. Open proxies
//!    are found by scanners within hours and used to hide abuse behind the
//!    proxy's address; that is why the default admits loopback only.
//! 2. **Domain rules** ([`crate::filter`]) for every plain request (host and
//!    path) and every CONNECT (host only: a tunnel has no visible path). The
//!    403 names the rule and the file line that matched, as an HTML page for
//!    browsers and as text for everyone else.
//! 3. **Loop protection** (RFC 9110 §7.6.3): a request that already carries
//!    our own `Via` entry has been through us before, and a request aimed at
//!    our own listening address would come straight back. Either one,
//!    forwarded, would multiply until a limit broke.

use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::acl::ClientAcl;
use crate::error::write_simple;
use crate::filter::{LiveRules, Refusal, Verdict};
use crate::forward::VIA;
use crate::message::RequestHead;
use crate::uri::Host;

/// What stage 5 adds to the server.
#[derive(Clone)]
pub struct AccessConfig {
    pub rules: LiveRules,
    pub clients: ClientAcl,
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Denied {
    /// A domain rule, or the allow list, said no.
    Rule(Refusal),
    /// The request would loop back to this proxy.
    Loop(String),
}

impl Denied {
    /// One line for the log.
    pub fn describe(&self) -> String {
        match self {
            Denied::Rule(refusal) => refusal.to_string(),
            Denied::Loop(why) => why.clone(),
        }
    }
}

// ANCHOR: check_request
/// Checks a request for `host:port` (with its path, for plain HTTP) against
/// the loop rules and the domain rules in force right now.
pub fn check_request(
    config: &AccessConfig,
    request: &RequestHead,
    host: &Host,
    port: u16,
    path: Option<&str>,
    local: SocketAddr,
) -> Result<(), Denied> {
    if carries_our_via(request) {
        return Err(Denied::Loop(
            "request loop: it already passed through this proxy (Via)".into(),
        ));
    }
    if targets_ourselves(host, port, local) {
        return Err(Denied::Loop(format!(
            "request loop: {host}:{port} is this proxy's own address"
        )));
    }
    // One Arc clone: the rules cannot change under us during this check,
    // and a reload meanwhile does not wait for us.
    let rules = config.rules.current();
    match rules.check(host, path) {
        Verdict::Allow => Ok(()),
        Verdict::Block(refusal) => Err(Denied::Rule(refusal)),
    }
}
// ANCHOR_END: check_request

// ANCHOR: loop_checks
/// Does any `Via` entry name us? Entries look like `1.1 webproxy`,
/// possibly followed by a comment.
fn carries_our_via(request: &RequestHead) -> bool {
    request.headers.list("Via").any(|entry| {
        let mut words = entry.split_whitespace();
        let received = words.next().unwrap_or("");
        let by = words.next().unwrap_or("");
        VIA.split_once(' ')
            .is_some_and(|(_, ours)| by.eq_ignore_ascii_case(ours) && !received.is_empty())
    })
}

/// Is `host:port` the address this proxy listens on?
fn targets_ourselves(host: &Host, port: u16, local: SocketAddr) -> bool {
    if port != local.port() {
        return false;
    }
    let target: Option<IpAddr> = match host {
        Host::V4(ip) => Some(IpAddr::V4(*ip)),
        Host::V6(ip) => Some(IpAddr::V6(*ip)),
        Host::Name(name) if name == "localhost" || name == "localhost." => None,
        Host::Name(_) => return false,
    };
    let listen = local.ip();
    match target {
        // "localhost" is us if we listen on loopback or on every address.
        None => listen.is_loopback() || listen.is_unspecified(),
        Some(ip) if ip == listen => true,
        // Listening on every address means every local address is us; the
        // loopback and "any" addresses certainly are.
        Some(ip) => listen.is_unspecified() && (ip.is_loopback() || ip.is_unspecified()),
    }
}
// ANCHOR_END: loop_checks

/// Is the client at `peer` allowed in?
pub fn client_allowed(config: &AccessConfig, peer: Option<SocketAddr>) -> bool {
    peer.is_some_and(|p| config.clients.allows(p.ip()))
}

// ANCHOR: write_refusal
/// Writes the 403 for a refused request: a small HTML page when the client
/// is a browser (it asked for text/html), plain text otherwise.
pub fn write_refusal(
    out: &mut impl io::Write,
    request: &RequestHead,
    denied: &Denied,
) -> io::Result<u64> {
    let wants_html = request.headers.list("Accept").any(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
    });
    match denied {
        Denied::Rule(refusal) if wants_html => write_simple(
            out,
            403,
            "text/html; charset=utf-8",
            refusal.html_body().as_bytes(),
        ),
        Denied::Rule(refusal) => write_simple(
            out,
            403,
            "text/plain; charset=utf-8",
            refusal.text_body().as_bytes(),
        ),
        Denied::Loop(why) => write_simple(
            out,
            403,
            "text/plain; charset=utf-8",
            format!("{why}\n").as_bytes(),
        ),
    }
}
// ANCHOR_END: write_refusal

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Parsed, parse_request};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn request(raw: &str) -> RequestHead {
        match parse_request(raw.as_bytes()) {
            Ok(Parsed::Complete(h, _)) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn our_via_is_recognised() {
        let ours = request("GET http://a.test/ HTTP/1.1\r\nVia: 1.0 other, 1.1 WebProxy\r\n\r\n");
        let other = request("GET http://a.test/ HTTP/1.1\r\nVia: 1.1 squid (webproxy)\r\n\r\n");
        assert!(carries_our_via(&ours));
        assert!(!carries_our_via(&other));
    }

    #[test]
    fn own_address_is_a_loop() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let lo = Host::V4(Ipv4Addr::LOCALHOST);
        assert!(targets_ourselves(&lo, 8080, local));
        assert!(!targets_ourselves(&lo, 8081, local));
        assert!(targets_ourselves(
            &Host::Name("localhost".into()),
            8080,
            local
        ));
        assert!(!targets_ourselves(
            &Host::Name("a.test".into()),
            8080,
            local
        ));
        assert!(targets_ourselves(&Host::V6(Ipv6Addr::LOCALHOST), 8080, any));
        assert!(!targets_ourselves(
            &Host::V4(Ipv4Addr::new(10, 0, 0, 1)),
            8080,
            local
        ));
    }
}
