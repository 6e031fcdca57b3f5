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

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::acl::ClientAcl;
use crate::conn::Conn;
use crate::error::{HttpError, write_simple};
use crate::filter::{LiveRules, Refusal, Verdict};
use crate::forward::{self, Persist};
use crate::handler::{Handled, Handler, Request};
use crate::listen;
use crate::logging::Note;
use crate::message::RequestHead;
use crate::relay::{Outcome, RelayError};
use crate::respond::show;
use crate::stats::{Stats, Value};
use crate::uri::{self, Host};

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

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Rule(refusal) => refusal.fmt(f),
            Denied::Loop(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Denied {}

// ANCHOR: layer
/// Stage 5's handler: the gate in front of everything else. It refuses
/// clients outside the ACL when they connect, and requests that the rules
/// or loop protection forbid; the rest goes to the handler it wraps.
pub struct AccessControl<H> {
    config: AccessConfig,
    inner: H,
    blocked: AtomicU64,
    refused: AtomicU64,
}

impl<H: Handler> AccessControl<H> {
    pub fn new(config: AccessConfig, inner: H) -> AccessControl<H> {
        AccessControl {
            config,
            inner,
            blocked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

impl<H: Handler> Handler for AccessControl<H> {
    fn admit(&self, peer: Option<SocketAddr>) -> Result<(), HttpError> {
        if !client_allowed(&self.config, peer) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(HttpError::new(403, "your address may not use this proxy"));
        }
        self.inner.admit(peer)
    }

    fn handle(&self, conn: &mut Conn, request: &Request<'_>) -> Handled {
        match check_target(&self.config, request) {
            Ok(()) => self.inner.handle(conn, request),
            Err(denied) => {
                self.blocked.fetch_add(1, Ordering::Relaxed);
                refuse(conn, request, &denied)
            }
        }
    }

    fn stats(&self, stats: &mut Stats) {
        self.inner.stats(stats);
        let rules = self.config.rules.current();
        stats
            .section("filtering")
            .row(
                "requests_blocked",
                "requests blocked",
                Value::Count(self.blocked.load(Ordering::Relaxed)),
            )
            .row(
                "clients_refused",
                "clients refused",
                Value::Count(self.refused.load(Ordering::Relaxed)),
            )
            .row("rules", "rules in force", Value::Count(rules.len() as u64));
    }
}
// ANCHOR_END: layer

// ANCHOR: check_target
/// Applies the rules to a request's target. Targets that do not parse pass
/// here: the handler that parses them answers with the right 400.
fn check_target(config: &AccessConfig, request: &Request<'_>) -> Result<(), Denied> {
    let head = request.head;
    if head.method == "CONNECT" {
        match uri::parse_authority_form(&head.target) {
            Ok(a) => check_request(config, head, &a.host, a.port, None, request.local),
            Err(_) => Ok(()),
        }
    } else {
        match uri::proxy_target(head) {
            Ok(t) => {
                let (host, port) = (&t.authority.host, t.authority.port);
                check_request(
                    config,
                    head,
                    host,
                    port,
                    Some(&t.path_and_query),
                    request.local,
                )
            }
            Err(_) => Ok(()),
        }
    }
}
// ANCHOR_END: check_target

/// The access log's note for a request the rules or loop protection
/// refused: squid calls every refusal `TCP_DENIED`.
const BLOCKED: Note = Note::new("BLOCKED", "TCP_DENIED", false);

/// Sends the 403 for a refused request; the access line says BLOCKED.
fn refuse(conn: &mut Conn, request: &Request<'_>, denied: &Denied) -> Handled {
    let head = request.head;
    let result = match write_refusal(conn, head, denied) {
        Ok(bytes) => Ok(Outcome {
            status: 403,
            bytes,
            persist: Persist::Close,
        }),
        Err(e) => Err(RelayError::Aborted {
            status: 403,
            bytes: 0,
            why: format!("client went away: {e}"),
        }),
    };
    // The access line says BLOCKED; which rule decided is detail.
    log::debug!(
        "{} {} {}: {}",
        show(request.peer),
        head.method,
        head.target,
        denied
    );
    Handled::Done {
        result,
        note: Some(BLOCKED),
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
    if listen::is_own_address(host, port, local) {
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
    request.headers.list("Via").any(forward::is_our_via)
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
}
