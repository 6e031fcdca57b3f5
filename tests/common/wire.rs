//! Wire transcripts: when a test fails, what went over the wire.
//!
//! A failing assertion such as `left: 502, right: 200` says that something
//! is wrong but not what the proxy was given or what it did. So every
//! [`Client`](super::client::Client) connection keeps a log of what it sent
//! and what came back (bounded: the first bytes of each run of writes or
//! reads, and the last events of a long conversation), and every origin
//! records what it received. A transcript puts them together: what the
//! client sent, escaped so that `\r\n` shows, the first 300 bytes of what
//! came back, how the connection ended, what each origin received, and a
//! command that replays the exchange by hand (`curl -x`, or `printf | nc`).
//!
//! Transcripts appear only when a test fails, in two ways:
//! - the client's own failures ("no response", "incomplete response") and
//!   the response assertions ([`Response::expect_status`] and friends) put
//!   the transcript of their connection into the panic message;
//! - any other panic in test code (a plain `assert_eq!`) gets the
//!   transcripts of the connections its thread used last, printed by the
//!   panic hook in [`super::panics`].
//!
//! [`Response::expect_status`]: super::client::Response::expect_status

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How many bytes of one run of reads a transcript shows.
pub const SHOWN_RECEIVED: usize = 300;
/// How many bytes of one run of writes a transcript shows (a request head
/// is what a reader needs to see whole).
const SHOWN_SENT: usize = 1024;
/// How many bytes of one run of writes are kept for the replay command.
const KEPT_SENT: usize = 16 * 1024;
/// The events of a connection kept from its start and from its end.
const FIRST_EVENTS: usize = 4;
const LAST_EVENTS: usize = 12;
/// The connections per thread whose logs a panic can show.
const RECENT_CONNECTIONS: usize = 8;
/// The connections a panic in test code shows.
const SHOWN_CONNECTIONS: usize = 2;
/// The text that marks a message that already carries a transcript.
pub const MARK: &str = "--- wire transcript";

/// One thing that happened on a client connection.
#[derive(Clone, Debug)]
enum Event {
    /// A run of writes by the client: the first bytes, the total, how many
    /// writes.
    Sent {
        kept: Vec<u8>,
        total: usize,
        writes: usize,
    },
    /// A run of reads: the first bytes and the total.
    Received { kept: Vec<u8>, total: usize },
    /// The proxy ended its side of the connection.
    Closed,
    /// The connection was reset.
    Reset,
    /// A read waited this long and nothing came.
    Silence(Duration),
    /// A read or write failed otherwise.
    Failed(String),
}

/// What one client connection did, in order.
#[derive(Debug)]
pub struct ConnLog {
    proxy: SocketAddr,
    /// 1, 2, ... per thread, in connect order.
    number: usize,
    first: Vec<Event>,
    last: VecDeque<Event>,
    skipped: usize,
}

/// A connection's log, shared by the client and the thread's registry.
pub type SharedLog = Arc<Mutex<ConnLog>>;

impl ConnLog {
    fn push(&mut self, event: Event) {
        let Some(event) = self.merge(event) else {
            return;
        };
        if self.first.len() < FIRST_EVENTS {
            self.first.push(event);
            return;
        }
        if self.last.len() == LAST_EVENTS {
            self.last.pop_front();
            self.skipped += 1;
        }
        self.last.push_back(event);
    }

    /// Adds `event` to the last event when both go the same way, so that a
    /// body read in 64 KiB pieces is one event; gives it back otherwise.
    fn merge(&mut self, event: Event) -> Option<Event> {
        let last = match self.last.back_mut() {
            Some(last) => last,
            None => match self.first.last_mut() {
                Some(last) => last,
                None => return Some(event),
            },
        };
        match (last, event) {
            (
                Event::Sent {
                    kept,
                    total,
                    writes,
                },
                Event::Sent {
                    kept: more,
                    total: n,
                    ..
                },
            ) => {
                extend_capped(kept, &more, KEPT_SENT);
                *total += n;
                *writes += 1;
                None
            }
            (
                Event::Received { kept, total },
                Event::Received {
                    kept: more,
                    total: n,
                },
            ) => {
                extend_capped(kept, &more, SHOWN_RECEIVED);
                *total += n;
                None
            }
            (_, event) => Some(event),
        }
    }

    fn events(&self) -> impl Iterator<Item = &Event> {
        self.first.iter().chain(self.last.iter())
    }

    /// Everything the client sent, when all of it was kept.
    fn sent_bytes(&self) -> Option<Vec<u8>> {
        if self.skipped > 0 {
            return None;
        }
        let mut out = Vec::new();
        for event in self.events() {
            if let Event::Sent { kept, total, .. } = event {
                if kept.len() < *total {
                    return None;
                }
                out.extend_from_slice(kept);
            }
        }
        Some(out)
    }
}

fn extend_capped(kept: &mut Vec<u8>, more: &[u8], cap: usize) {
    let room = cap.saturating_sub(kept.len());
    kept.extend_from_slice(&more[..more.len().min(room)]);
}

thread_local! {
    static CONNECTIONS: RefCell<(usize, VecDeque<SharedLog>)> =
        const { RefCell::new((0, VecDeque::new())) };
    static ORIGINS: RefCell<Vec<Weak<dyn OriginRecord>>> = const { RefCell::new(Vec::new()) };
    static CONTEXT: RefCell<Vec<Box<dyn Fn() -> String>>> = const { RefCell::new(Vec::new()) };
}

/// A new, registered log for a connection to `proxy`.
pub fn new_log(proxy: SocketAddr) -> SharedLog {
    super::panics::install_panic_hook();
    CONNECTIONS.with(|c| {
        let (count, recent) = &mut *c.borrow_mut();
        *count += 1;
        let log = Arc::new(Mutex::new(ConnLog {
            proxy,
            number: *count,
            first: Vec::new(),
            last: VecDeque::new(),
            skipped: 0,
        }));
        if recent.len() == RECENT_CONNECTIONS {
            recent.pop_front();
        }
        recent.push_back(Arc::clone(&log));
        log
    })
}

fn record(log: &SharedLog, event: Event) {
    log.lock().unwrap_or_else(|e| e.into_inner()).push(event);
}

pub fn sent(log: &SharedLog, bytes: &[u8]) {
    record(
        log,
        Event::Sent {
            kept: bytes[..bytes.len().min(KEPT_SENT)].to_vec(),
            total: bytes.len(),
            writes: 1,
        },
    );
}

pub fn received(log: &SharedLog, bytes: &[u8]) {
    record(
        log,
        Event::Received {
            kept: bytes[..bytes.len().min(SHOWN_RECEIVED)].to_vec(),
            total: bytes.len(),
        },
    );
}

pub fn closed(log: &SharedLog) {
    record(log, Event::Closed);
}

pub fn reset(log: &SharedLog) {
    record(log, Event::Reset);
}

pub fn silence(log: &SharedLog, waited: Duration) {
    record(log, Event::Silence(waited));
}

pub fn failed(log: &SharedLog, what: String) {
    record(log, Event::Failed(what));
}

/// What a transcript needs from an origin: its address and what it
/// received, already rendered.
pub trait OriginRecord: Send + Sync {
    fn addr(&self) -> SocketAddr;
    /// Requests and connections so far, and the last request as it would
    /// look on the wire.
    fn received(&self) -> (usize, usize, Option<Vec<u8>>);
}

/// Registers an origin started on this thread, so that this thread's
/// transcripts say what it received. A weak reference: an origin that was
/// dropped is left out.
pub fn register_origin(origin: Weak<dyn OriginRecord>) {
    super::panics::install_panic_hook();
    ORIGINS.with(|o| o.borrow_mut().push(origin));
}

/// Adds a paragraph that this thread's transcripts end with, such as which
/// proxy binary was under test and what it last logged.
pub fn add_context(describe: impl Fn() -> String + 'static) {
    super::panics::install_panic_hook();
    CONTEXT.with(|c| c.borrow_mut().push(Box::new(describe)));
}

/// Forgets this thread's context paragraphs (a new proxy is under test).
pub fn clear_context() {
    CONTEXT.with(|c| c.borrow_mut().clear());
}

/// The transcript of one connection, with what this thread's origins
/// received and a command that replays it.
pub fn transcript(log: &SharedLog) -> String {
    let mut out = format!("{MARK} ---\n");
    let conn = log.lock().unwrap_or_else(|e| e.into_inner());
    render_connection(&mut out, &conn);
    drop(conn);
    render_origins(&mut out);
    render_replay(&mut out, log);
    render_context(&mut out);
    out
}

/// The transcripts of the connections this thread used last, or None when
/// it used none and started no origin.
pub fn transcripts_here() -> Option<String> {
    let recent: Vec<SharedLog> = CONNECTIONS.with(|c| {
        let (_, recent) = &*c.borrow();
        recent
            .iter()
            .rev()
            .take(SHOWN_CONNECTIONS)
            .rev()
            .cloned()
            .collect()
    });
    let origins = ORIGINS.with(|o| o.borrow().iter().any(|w| w.strong_count() > 0));
    if recent.is_empty() && !origins {
        return None;
    }
    let mut out = format!("{MARK}s of this thread's last connections ---\n");
    for log in &recent {
        if let Ok(conn) = log.try_lock() {
            render_connection(&mut out, &conn);
        }
    }
    render_origins(&mut out);
    if let Some(log) = recent.last() {
        render_replay(&mut out, log);
    }
    render_context(&mut out);
    Some(out)
}

fn render_connection(out: &mut String, conn: &ConnLog) {
    let _ = writeln!(
        out,
        "connection {} from the client to the proxy at {}:",
        conn.number, conn.proxy
    );
    if conn.first.is_empty() {
        out.push_str("  (nothing was sent or received)\n");
    }
    for (index, event) in conn.events().enumerate() {
        if index == conn.first.len() && conn.skipped > 0 {
            let _ = writeln!(out, "  ... {} more events ...", conn.skipped);
        }
        match event {
            Event::Sent {
                kept,
                total,
                writes,
            } => {
                let pieces = if *writes > 1 {
                    format!(" in {writes} writes")
                } else {
                    String::new()
                };
                let shown = kept.len().min(SHOWN_SENT);
                let part = if shown < *total {
                    format!(", the first {shown}")
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  client sent {}{pieces}{part}:", bytes(*total));
                out.push_str(&escaped(&kept[..shown], "    | "));
            }
            Event::Received { kept, total } => {
                let part = if kept.len() < *total {
                    format!(", the first {}", kept.len())
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  proxy sent {}{part}:", bytes(*total));
                out.push_str(&escaped(kept, "    | "));
            }
            Event::Closed => out.push_str("  proxy closed the connection\n"),
            Event::Reset => out.push_str("  the connection was reset\n"),
            Event::Silence(waited) => {
                let _ = writeln!(out, "  nothing came for {}", seconds(*waited));
            }
            Event::Failed(what) => {
                let _ = writeln!(out, "  {what}");
            }
        }
    }
    if !conn.events().any(|e| matches!(e, Event::Received { .. })) && !conn.first.is_empty() {
        out.push_str("  (no byte came back)\n");
    }
}

fn render_origins(out: &mut String) {
    let origins: Vec<Arc<dyn OriginRecord>> =
        ORIGINS.with(|o| o.borrow().iter().filter_map(Weak::upgrade).collect());
    for origin in origins {
        let (requests, connections, last) = origin.received();
        match last {
            None => {
                let _ = writeln!(
                    out,
                    "origin at {} received no request (on {})",
                    origin.addr(),
                    plural(connections, "connection")
                );
            }
            Some(last) => {
                let _ = writeln!(
                    out,
                    "origin at {} received {} on {}, the last:",
                    origin.addr(),
                    plural(requests, "request"),
                    plural(connections, "connection"),
                );
                let shown = last.len().min(SHOWN_RECEIVED);
                out.push_str(&escaped(&last[..shown], "    | "));
                if shown < last.len() {
                    let _ = writeln!(out, "    ({} in all)", bytes(last.len()));
                }
            }
        }
    }
}

fn render_replay(out: &mut String, log: &SharedLog) {
    let (proxy, sent) = {
        let conn = log.lock().unwrap_or_else(|e| e.into_inner());
        (conn.proxy, conn.sent_bytes())
    };
    let Some(sent) = sent.filter(|s| !s.is_empty()) else {
        return;
    };
    let _ = writeln!(
        out,
        "to replay it by hand, run a proxy on {proxy} (and the origins above), then:"
    );
    let _ = writeln!(out, "    {}", replay_command(proxy, &sent));
}

fn render_context(out: &mut String) {
    CONTEXT.with(|c| {
        for describe in c.borrow().iter() {
            out.push_str(&describe());
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
    });
}

/// `curl -x` for one plain GET, otherwise the exact bytes through `nc`.
pub fn replay_command(proxy: SocketAddr, sent: &[u8]) -> String {
    if let Some(command) = as_curl(proxy, sent) {
        return command;
    }
    format!(
        "printf '{}' | nc {} {}",
        printf_escaped(sent),
        proxy.ip(),
        proxy.port()
    )
}

/// The curl command for `sent` when it is exactly one GET of an http://
/// URL with HTTP/1.1, a Host that matches it, no body, and fields curl can
/// pass on with `-H`.
fn as_curl(proxy: SocketAddr, sent: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(sent).ok()?;
    let head = text.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, url, version) = (parts.next()?, parts.next()?, parts.next()?);
    if method != "GET" || version != "HTTP/1.1" || parts.next().is_some() {
        return None;
    }
    let authority = super::request::authority_of(url)?;
    if !url.starts_with("http://") || url.contains(['\'', '\\']) {
        return None;
    }
    let mut command = format!("curl -i -x http://{proxy}");
    let mut host_seen = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("Host") && value == authority && !host_seen {
            host_seen = true;
            continue;
        }
        let plain = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\'');
        if name.is_empty() || !plain(name) || !plain(value) || value.is_empty() {
            return None;
        }
        let _ = write!(command, " -H '{name}: {value}'");
    }
    let url = if url
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/:.-_~".contains(&b))
    {
        url.to_string()
    } else {
        format!("'{url}'")
    };
    host_seen.then(|| format!("{command} {url}"))
}

/// `bytes` for a single-quoted printf format: `%`, `\` and `'` escaped,
/// control bytes and bytes above ASCII as octal escapes.
fn printf_escaped(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'%' => out.push_str("%%"),
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("'\\''"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

/// `bytes` escaped so that every byte shows (`\r`, `\n`, `\t`, `\\`,
/// `\xHH`), one wire line per text line, long lines wrapped, each line
/// after `indent`.
pub fn escaped(bytes: &[u8], indent: &str) -> String {
    const WIDTH: usize = 96;
    let mut out = String::new();
    let mut line = String::new();
    for &b in bytes {
        match b {
            b'\r' => line.push_str("\\r"),
            b'\n' => line.push_str("\\n"),
            b'\t' => line.push_str("\\t"),
            b'\\' => line.push_str("\\\\"),
            0x20..=0x7e => line.push(b as char),
            _ => {
                let _ = write!(line, "\\x{b:02x}");
            }
        }
        if b == b'\n' || line.len() >= WIDTH {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

fn bytes(n: usize) -> String {
    plural(n, "byte")
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
