//! The proxy's own pages, served by the server itself: the figures of
//! the server and of every layer of its handler, gathered for
//! [`crate::stats`] to write as HTML, JSON or a PAC file.
//!
//! A request for one of them never reaches the handler: it names the proxy,
//! not an origin (RFC 9112 §3.2.1 lets a client send origin-form to the
//! server it means), so no later stage gets to cache or filter it.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Client, Shared};
use crate::logging::Note;
use crate::message::RequestHead;
use crate::respond::{log_access, respond_with_error};
use crate::stats::{self, Page, Stats, Value};
use crate::uri;

impl Shared {
    /// The figures of the server and of every layer of its handler.
    fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        self.counters.server_section(
            &mut stats,
            self.active.load(Ordering::Relaxed),
            self.config.threads,
        );
        let pool = self.upstream.stats();
        stats
            .section("upstream connections")
            .row("upstream_opened", "opened", Value::Count(pool.opened))
            .row(
                "upstream_reused",
                "requests on a kept connection",
                Value::Count(pool.reused),
            )
            .row(
                "upstream_reuse_ratio",
                "reuse ratio",
                stats::ratio(pool.reused, pool.opened + pool.reused),
            )
            .row(
                "upstream_idle",
                "idle, kept",
                Value::Count(self.upstream.idle() as u64),
            );
        self.handler.stats(&mut stats);
        self.counters.hosts_section(&mut stats);
        stats
    }
}

/// The access log's note for the proxy's own pages: answered without any
/// upstream, as squid's own pages are.
const PAGE: Note = Note::new("PAGE", "TCP_MEM_HIT", false);

/// Answers a request for one of our pages, and logs it.
pub(super) fn serve_page(
    shared: &Shared,
    client: &mut Client,
    request: &RequestHead,
    page: Page,
    started: Instant,
) {
    // The PAC page names the proxy by the request's Host: it must be a
    // host, not script.
    if let Err(e) = uri::check_host_field(request) {
        respond_with_error(&mut client.conn, client.peer, Some(request), &e, started);
        return;
    }
    // The PAC file must name the proxy as the client reached it.
    let proxy = request
        .headers
        .get_str("Host")
        .filter(|h| !h.is_empty())
        .map_or_else(|| shared.local_addr.to_string(), str::to_string);
    let stats = shared.stats();
    let bytes = stats::write_page(&mut client.conn, page, &stats, &proxy).unwrap_or(0);
    log_access(client.peer, request, 200, bytes, started, Some(PAGE));
}
