//! Parent proxies: sending every request through another proxy (stage 2).
//!
//! A proxy need not talk to origins itself. A site often runs one big
//! cache at its edge and small ones near the users, each sending its
//! misses to the edge, its *parent*, rather than straight to the Internet.
//! With `--parent http://HOST:PORT`, ours does that: every upstream
//! connection goes to the parent, and a plain request keeps its
//! absolute-form target, `GET http://origin/path HTTP/1.1`, because the
//! parent must learn where the request goes from the target, exactly as we
//! did (RFC 9112 §3.2.2). Only two things change, so only two places know:
//! the upstream pool connects to the parent ([`crate::upstream`]) and
//! tells the relay to write absolute-form ([`RequestForm`]); CONNECT, in
//! stage 4, asks the parent for the tunnel (`crate::parent_connect`).
//!
//! Several parents are tried in the order given. One that cannot be
//! reached is skipped for [`RETRY_AFTER`], so that a dead first parent
//! costs one failed connect, not one per request; if every parent is down,
//! all are tried anyway, since one of them may be back. A parent that
//! answers, even with an error status, was reached: its answer stands.
//!
//! Loops are caught as before. We add our `Via` entry to what we send up
//! (RFC 9110 §7.6.3), the parent adds its own, and stage 5 refuses a request
//! that already carries ours. That needs every proxy in the chain to have
//! its own name: two copies of this proxy both call themselves `webproxy`,
//! so a stage 5 parent refuses what a child webproxy sends it.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::dial::{self, Timeouts};
use crate::error::HttpError;
use crate::forward::RequestForm;
use crate::uri::{self, Authority};

/// How long a parent that could not be reached is tried only after the
/// others: long enough that a dead parent does not cost a connect timeout on
/// every request, short enough that a restarted one is soon used again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

// ANCHOR: parents
/// The parent proxies, in order of preference; none means every request
/// goes straight to its origin. Cloning shares the list and what it has
/// learnt about which parents are down.
#[derive(Clone, Default)]
pub struct Parents {
    list: Arc<[Parent]>,
}

struct Parent {
    authority: Authority,
    /// When a connect to it last failed, if it has not answered since.
    down_since: Mutex<Option<Instant>>,
}
// ANCHOR_END: parents

impl Parents {
    pub fn new(authorities: impl IntoIterator<Item = Authority>) -> Parents {
        let list = authorities
            .into_iter()
            .map(|authority| Parent {
                authority,
                down_since: Mutex::new(None),
            })
            .collect();
        Parents { list }
    }

    /// No parent: connect to origins directly.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How requests name their target on connections from [`Self::open`].
    pub fn request_form(&self) -> RequestForm {
        if self.is_empty() {
            RequestForm::Origin
        } else {
            RequestForm::Absolute
        }
    }

    // ANCHOR: open
    /// A new connection to the first parent that answers, and its address.
    /// Parents known to be down come last. The error, a 502, names every
    /// parent tried and why it failed.
    pub fn open(&self, timeouts: &Timeouts) -> Result<(Conn, &Authority), HttpError> {
        let mut failures = Vec::new();
        for parent in self.in_order(Instant::now()) {
            match dial::open(&parent.authority, timeouts) {
                Ok(conn) => {
                    if parent.state().take().is_some() {
                        log::info!("parent proxy {} answers again", parent.authority);
                    }
                    return Ok((conn, &parent.authority));
                }
                Err(e) => {
                    // Warn once per outage, not once per request.
                    if parent.state().replace(Instant::now()).is_none() {
                        log::warn!(
                            "parent proxy {} cannot be reached ({}); it goes last for {}s",
                            parent.authority,
                            e.detail,
                            RETRY_AFTER.as_secs()
                        );
                    }
                    failures.push(e.detail);
                }
            }
        }
        if failures.is_empty() {
            return Err(HttpError::bad_gateway("no parent proxy is configured"));
        }
        Err(HttpError::bad_gateway(format!(
            "no parent proxy could be reached: {}",
            failures.join("; ")
        )))
    }
    // ANCHOR_END: open

    /// The parents to try, at `now`: those not known to be down, in the
    /// order given, then the others, in the order given.
    fn in_order(&self, now: Instant) -> Vec<&Parent> {
        let (down, up): (Vec<&Parent>, Vec<&Parent>) =
            self.list.iter().partition(|p| p.is_down(now));
        up.into_iter().chain(down).collect()
    }
}

impl Parent {
    /// Did a connect fail less than [`RETRY_AFTER`] before `now`?
    fn is_down(&self, now: Instant) -> bool {
        let since = *self.state();
        since.is_some_and(|t| now.duration_since(t) < RETRY_AFTER)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // An Option<Instant> is never half-written: a poisoned lock is fine.
        self.down_since.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Display for Parents {
    /// The parents as `--parent` takes them, comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, parent) in self.list.iter().enumerate() {
            let comma = if i == 0 { "" } else { ", " };
            write!(f, "{comma}http://{}", parent.authority)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Parents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Parents[{self}]")
    }
}

// ANCHOR: parse
/// Parses a parent's address: `http://HOST:PORT`, or just `HOST:PORT`, as
/// curl's `-x` takes it. The port is required, since parents listen on
/// 3128 or 8080 as often as on 80. We speak plain HTTP to the parent, so
/// `https://` is refused rather than quietly sent in clear text.
pub fn parse(text: &str) -> Result<Authority, String> {
    let rest = match text.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "a parent proxy is spoken to in plain http, not {scheme}: write http://HOST:PORT"
            ));
        }
        None => text,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err("a parent proxy is HOST:PORT, without a path".into());
    }
    if authority.contains('@') {
        return Err("parent proxies that ask for a password are not supported".into());
    }
    if !authority.contains(':') || authority.ends_with(':') || authority.ends_with(']') {
        return Err("give the parent's port, as in http://proxy.example:3128".into());
    }
    uri::parse_authority_form(authority).map_err(|e| e.detail)
}
// ANCHOR_END: parse

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn parents(ports: &[u16]) -> Parents {
        Parents::new(
            ports
                .iter()
                .map(|p| parse(&format!("127.0.0.1:{p}")).unwrap()),
        )
    }

    fn ports(list: Vec<&Parent>) -> Vec<u16> {
        list.iter().map(|p| p.authority.port).collect()
    }

    #[test]
    fn addresses_are_parsed_with_or_without_the_scheme() {
        let a = parse("http://Proxy.Example:3128/").unwrap();
        assert_eq!(a.to_string(), "proxy.example:3128");
        assert_eq!(
            parse("HTTP://[::1]:8080").unwrap().to_string(),
            "[::1]:8080"
        );
        assert_eq!(parse("10.0.0.1:3128").unwrap().port, 3128);
        for (bad, why) in [
            ("https://p.example:3128", "plain http"),
            ("socks5://p.example:1080", "plain http"),
            ("http://p.example", "port, as in"),
            ("http://[::1]", "port, as in"),
            ("http://p.example:3128/x", "without a path"),
            ("http://user:pw@p.example:3128", "password"),
            ("http://p.example:99999", "invalid port"),
            ("", "port, as in"),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn a_parent_that_failed_goes_last_until_it_is_time_to_retry() {
        let list = parents(&[1, 2, 3]);
        let now = Instant::now();
        assert_eq!(ports(list.in_order(now)), [1, 2, 3]);
        *list.list[0].state() = Some(now);
        *list.list[1].state() = Some(now);
        assert_eq!(ports(list.in_order(now)), [3, 1, 2]);
        let later = now + RETRY_AFTER;
        assert_eq!(ports(list.in_order(later)), [1, 2, 3]);
    }

    #[test]
    fn the_first_parent_that_answers_is_used_and_dead_ones_are_marked() {
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_port = dead.local_addr().unwrap().port();
        drop(dead);
        let list = parents(&[dead_port, live.local_addr().unwrap().port()]);
        let (_conn, used) = list.open(&Timeouts::default()).unwrap();
        assert_eq!(used, &list.list[1].authority);
        assert!(list.list[0].state().is_some());
        assert!(list.list[1].state().is_none());
        // Both down: both are named in the 502.
        drop(live);
        let Err(error) = list.open(&Timeouts::default()) else {
            panic!("a parent answered on a closed port");
        };
        assert_eq!(error.status, 502);
        assert_eq!(error.detail.matches("cannot connect").count(), 2, "{error}");
    }

    #[test]
    fn the_form_follows_the_parents() {
        assert_eq!(Parents::default().request_form(), RequestForm::Origin);
        assert_eq!(parents(&[3128]).request_form(), RequestForm::Absolute);
        assert_eq!(
            parents(&[3128, 8080]).to_string(),
            "http://127.0.0.1:3128, http://127.0.0.1:8080"
        );
    }
}
