//! The proxy's own page: what it is doing, for the person running it.
//!
//! A request aimed at the proxy itself, rather than through it, is answered
//! here instead of relayed: `GET /` sent straight to the proxy's port (an
//! origin-form target, RFC 9112 §3.2.1), or an absolute-form target that
//! names the proxy's own listen address. Three pages:
//!
//! - `/`: an HTML page that refreshes itself, with the short explanation a
//!   person who opened the proxy's address in a browser by mistake needs;
//! - `/stats.json`: the same figures, for scripts;
//! - `/proxy.pac`: a proxy auto-config file that points browsers here.
//!
//! The figures come from every layer: the server counts connections and
//! requests, and each [`crate::handler::Handler`] adds its own section
//! through `Handler::stats`, so the server never learns what a later
//! stage's layer counts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::write_simple_with;
use crate::headers::Headers;
use crate::listen;
use crate::message::RequestHead;
use crate::uri;

/// One figure on the page.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Count(u64),
    Bytes(u64),
    /// A share between 0 and 1, shown as a percentage; `None` before there
    /// is anything to divide.
    Ratio(Option<f64>),
    Duration(Duration),
    /// Named counts, largest first (the busiest hosts).
    Table(Vec<(String, u64)>),
}

/// A titled group of figures, one per layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub title: &'static str,
    pub rows: Vec<(&'static str, &'static str, Value)>,
}

/// Everything the page shows, filled in by the server and each layer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub sections: Vec<Section>,
}

impl Stats {
    /// Starts a section; `row` adds to the newest one.
    pub fn section(&mut self, title: &'static str) -> &mut Self {
        self.sections.push(Section {
            title,
            rows: Vec::new(),
        });
        self
    }

    /// Adds a figure: `key` for JSON, `label` for people.
    pub fn row(&mut self, key: &'static str, label: &'static str, value: Value) -> &mut Self {
        if self.sections.is_empty() {
            self.section("proxy");
        }
        if let Some(section) = self.sections.last_mut() {
            section.rows.push((key, label, value));
        }
        self
    }

    /// A value by its JSON key, for tests and for layers that compare.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.sections
            .iter()
            .flat_map(|s| &s.rows)
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| v)
    }
}

/// `part / whole`, or `None` when there is no whole yet.
pub fn ratio(part: u64, whole: u64) -> Value {
    Value::Ratio((whole > 0).then(|| part as f64 / whole as f64))
}

/// Which of the proxy's own pages a path asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Html,
    Json,
    Pac,
}

impl Page {
    pub fn for_path(path: &str) -> Option<Page> {
        match path.split('?').next().unwrap_or("") {
            "/" | "/index.html" => Some(Page::Html),
            "/stats.json" => Some(Page::Json),
            "/proxy.pac" => Some(Page::Pac),
            _ => None,
        }
    }
}

// ANCHOR: own_page
/// Is this request for one of the proxy's own pages? Either sent straight
/// to us (`GET /stats.json`), or in absolute-form naming our own address.
pub fn own_page(request: &RequestHead, local: SocketAddr) -> Option<Page> {
    if request.method != "GET" && request.method != "HEAD" {
        return None;
    }
    if request.target.starts_with('/') {
        return Page::for_path(&request.target);
    }
    // Almost every request is for somewhere else: rule those out before
    // parsing, by the port their authority names (80 when it names none).
    let authority = host_of(&request.target);
    let port_matches = match authority.rsplit_once(':') {
        Some((_, port)) if !port.ends_with(']') => port.parse() == Ok(local.port()),
        _ => local.port() == 80,
    };
    if !port_matches {
        return None;
    }
    let target = uri::parse_absolute(&request.target).ok()?;
    let authority = &target.authority;
    if !listen::is_own_address(&authority.host, authority.port, local) {
        return None;
    }
    Page::for_path(&target.path_and_query)
}
// ANCHOR_END: own_page

/// What the server itself counts: since when, how many requests, and for
/// which hosts.
pub struct Counters {
    started: Instant,
    requests: AtomicU64,
    /// Requests by the host they were for. One short lock per request.
    hosts: Mutex<HashMap<String, u64>>,
}

/// Hosts remembered at most, so that a scan of random names cannot grow the
/// table without limit; the busiest hosts arrive early and often.
const MAX_HOSTS: usize = 10_000;

impl Default for Counters {
    fn default() -> Self {
        Counters::new()
    }
}

impl Counters {
    pub fn new() -> Counters {
        Counters {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request, and the host it is for.
    pub fn count(&self, request: &RequestHead) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let host = host_of(&request.target);
        if host.is_empty() {
            return;
        }
        let host: Cow<'_, str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = hosts.get_mut(&*host) {
            *n += 1;
        } else if hosts.len() < MAX_HOSTS {
            hosts.insert(host.into_owned(), 1);
        }
    }

    /// The server's own section.
    pub fn server_section(&self, stats: &mut Stats, open: usize, workers: usize) {
        stats
            .section("server")
            .row(
                "uptime_seconds",
                "uptime",
                Value::Duration(self.started.elapsed()),
            )
            .row(
                "requests",
                "requests served",
                Value::Count(self.requests.load(Ordering::Relaxed)),
            )
            .row(
                "open_connections",
                "open client connections",
                Value::Count(open as u64),
            )
            .row("workers", "worker threads", Value::Count(workers as u64));
    }

    /// The ten busiest hosts.
    pub fn hosts_section(&self, stats: &mut Stats) {
        let mut top: Vec<(String, u64)> = {
            let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            hosts.iter().map(|(h, n)| (h.clone(), *n)).collect()
        };
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(10);
        stats
            .section("hosts")
            .row("top_hosts", "busiest hosts", Value::Table(top));
    }
}

/// The host a request is for, as written in its target: no parsing beyond
/// finding the authority.
fn host_of(target: &str) -> &str {
    let rest = target.split_once("://").map_or(target, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

// ANCHOR: write_page
/// Writes one of the proxy's pages. `proxy` is how the client reached us
/// (`host:port`), which is what the PAC file must name.
pub fn write_page(
    out: &mut impl io::Write,
    page: Page,
    stats: &Stats,
    proxy: &str,
) -> io::Result<u64> {
    let mut fields = Headers::new();
    // Figures change every second; nobody should keep a copy.
    fields.append("Cache-Control", "no-store");
    let (content_type, body) = match page {
        Page::Html => ("text/html; charset=utf-8", html(stats, proxy)),
        Page::Json => ("application/json", json(stats)),
        Page::Pac => ("application/x-ns-proxy-autoconfig", pac(proxy)),
    };
    write_simple_with(out, 200, content_type, &fields, body.as_bytes())
}
// ANCHOR_END: write_page

fn pac(proxy: &str) -> String {
    format!(
        "// Proxy auto-config for webproxy: every request goes through it.\n\
         function FindProxyForURL(url, host) {{\n  return \"PROXY {proxy}\";\n}}\n"
    )
}

fn show(value: &Value) -> String {
    match value {
        Value::Count(n) => n.to_string(),
        Value::Bytes(n) => human_bytes(*n),
        Value::Ratio(Some(r)) => format!("{:.1}%", r * 100.0),
        Value::Ratio(None) => "–".to_string(),
        Value::Duration(d) => human_duration(*d),
        Value::Table(_) => String::new(),
    }
}

/// A size as people read it: `512 B`, `1.5 MiB`. Also used by the startup
/// log, which says what is in force.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(stats: &Stats, proxy: &str) -> String {
    let mut page = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"5\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>webproxy</title>\n<style>\n\
         body{font:15px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em;color:#222}\n\
         h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.05em;margin:1.4em 0 .3em;color:#555;\
         text-transform:uppercase;letter-spacing:.05em}\n\
         table{border-collapse:collapse;width:100%}td{padding:.25em .5em;border-bottom:1px solid #eee}\n\
         td.v{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n\
         .note{background:#f6f6f2;border-left:3px solid #bba;padding:.6em 1em}\n\
         code{background:#f0f0f0;padding:0 .2em}\n</style></head><body>\n\
         <h1>webproxy</h1>\n",
    );
    let proxy = escape(proxy);
    let _ = writeln!(
        page,
        "<p class=\"note\">This is a proxy, not a web site: to browse through it, point your \
         browser or <code>curl -x http://{proxy}</code> at it, or use the \
         <a href=\"/proxy.pac\">auto-config file</a>. Figures as \
         <a href=\"/stats.json\">JSON</a>; this page refreshes every 5 s.</p>"
    );
    for section in &stats.sections {
        let _ = writeln!(page, "<h2>{}</h2>\n<table>", escape(section.title));
        for (_, label, value) in &section.rows {
            match value {
                Value::Table(rows) => {
                    let _ = writeln!(
                        page,
                        "<tr><td colspan=\"2\"><b>{}</b></td></tr>",
                        escape(label)
                    );
                    if rows.is_empty() {
                        page.push_str("<tr><td>none yet</td><td></td></tr>\n");
                    }
                    for (name, n) in rows {
                        let _ = writeln!(
                            page,
                            "<tr><td>{}</td><td class=\"v\">{n}</td></tr>",
                            escape(name)
                        );
                    }
                }
                other => {
                    let _ = writeln!(
                        page,
                        "<tr><td>{}</td><td class=\"v\">{}</td></tr>",
                        escape(label),
                        show(other)
                    );
                }
            }
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body></html>\n");
    page
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_value(value: &Value) -> String {
    match value {
        Value::Count(n) | Value::Bytes(n) => n.to_string(),
        Value::Ratio(Some(r)) => format!("{r:.4}"),
        Value::Ratio(None) => "null".to_string(),
        Value::Duration(d) => d.as_secs().to_string(),
        Value::Table(rows) => {
            let items: Vec<String> = rows
                .iter()
                .map(|(name, n)| format!("[{}, {n}]", json_string(name)))
                .collect();
            format!("[{}]", items.join(", "))
        }
    }
}

/// One flat object: keys are unique across sections.
fn json(stats: &Stats) -> String {
    let items: Vec<String> = stats
        .sections
        .iter()
        .flat_map(|s| &s.rows)
        .map(|(key, _, value)| format!("  {}: {}", json_string(key), json_value(value)))
        .collect();
    format!("{{\n{}\n}}\n", items.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stats {
        let mut stats = Stats::default();
        stats
            .section("server")
            .row("requests", "requests served", Value::Count(12))
            .row(
                "uptime_seconds",
                "uptime",
                Value::Duration(Duration::from_secs(75)),
            )
            .row("hit_ratio", "hit ratio", ratio(1, 4))
            .row("byte_ratio", "by bytes", ratio(0, 0))
            .row(
                "top_hosts",
                "busiest hosts",
                Value::Table(vec![("a.test:80".into(), 3), ("<b>".into(), 1)]),
            );
        stats
    }

    #[test]
    fn json_is_one_flat_object() {
        let text = json(&sample());
        assert!(text.contains("\"requests\": 12"), "{text}");
        assert!(text.contains("\"uptime_seconds\": 75"), "{text}");
        assert!(text.contains("\"hit_ratio\": 0.2500"), "{text}");
        assert!(text.contains("\"byte_ratio\": null"), "{text}");
        assert!(
            text.contains("\"top_hosts\": [[\"a.test:80\", 3], [\"<b>\", 1]]"),
            "{text}"
        );
    }

    #[test]
    fn html_escapes_names_and_explains_itself() {
        let text = html(&sample(), "127.0.0.1:8080");
        assert!(text.contains("&lt;b&gt;"), "{text}");
        assert!(!text.contains("<b>\n"));
        assert!(text.contains("This is a proxy"), "{text}");
        assert!(text.contains("1 min 15 s"), "{text}");
        assert!(text.contains("25.0%"), "{text}");
        assert!(!text.contains("http://") || text.contains("curl -x http://127.0.0.1:8080"));
    }

    #[test]
    fn pages_by_path() {
        assert_eq!(Page::for_path("/"), Some(Page::Html));
        assert_eq!(Page::for_path("/stats.json?x=1"), Some(Page::Json));
        assert_eq!(Page::for_path("/proxy.pac"), Some(Page::Pac));
        assert_eq!(Page::for_path("/other"), None);
    }

    #[test]
    fn pac_names_the_proxy() {
        assert!(pac("10.0.0.1:3128").contains("return \"PROXY 10.0.0.1:3128\";"));
    }

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
    }
}
