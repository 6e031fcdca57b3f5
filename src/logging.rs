//! Logging: one access line per request, one line per error.
//!
//! Everything but the access lines goes through the `log` facade, so the
//! library never decides where output goes; the stage binaries start
//! `env_logger`. An operator reading the log should be able to answer "who
//! asked for what, what did they get, and how long did it take" from the
//! access lines alone.
//!
//! Access lines come in three formats (`--log-format`, [`Format`]):
//!
//! - `webproxy`, the default, for people:
//!   `127.0.0.1:5000 "GET http://a.test/" 200 512 3ms HIT`;
//! - `squid`, squid's native format, which squid's own tools and log
//!   analysers read: `time elapsed client code/status bytes method URL user
//!   hierarchy/peer type`, with squid's result codes (`TCP_HIT`, `TCP_MISS`,
//!   `TCP_DENIED`, `TCP_TUNNEL`, ...);
//! - `combined`, Apache's and nginx's combined log format.
//!
//! They go to the log (stderr) under the target `access`, or, with
//! `--access-log FILE`, to a file of their own, one bare line each, which
//! [`reopen_access_log`] reopens on SIGUSR1 so that `logrotate` can move it
//! away. What a later stage did with a request (a cache hit, a refusal, a
//! tunnel) reaches the line as a [`Note`], which carries both its word and
//! its squid code, so this stage 1 module needs to know nothing of them.

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::message::RequestHead;

/// Starts `env_logger`, at level `info` unless `RUST_LOG` says otherwise.
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info");
    // A second call (tests start several servers) is harmless.
    let _ = env_logger::Builder::from_env(env).try_init();
}

/// The shape of an access line (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// client "METHOD URI" status bytes time note: for people
    #[default]
    Webproxy,
    /// squid's native format, for squid's tools and log analysers
    Squid,
    /// Apache's and nginx's combined log format
    Combined,
}

// ANCHOR: note
/// What a layer did with a request, for the access log: the word the
/// webproxy format shows (none if empty), the result code the squid format
/// shows, and whether an upstream server was asked, which squid's format
/// tells apart as `HIER_DIRECT/host` from the proxy answering alone,
/// `HIER_NONE/-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note {
    pub word: &'static str,
    pub squid: &'static str,
    pub upstream: bool,
}

impl Note {
    /// Relayed to the origin, with nothing more to say (stages 1 and 2).
    pub const RELAYED: Note = Note::new("", "TCP_MISS", true);
    /// An error the proxy answered itself.
    pub const ERROR: Note = Note::new("", "TCP_MISS", false);
    /// Nothing usable was read: no request to speak of.
    pub const NO_REQUEST: Note = Note::new("", "NONE_NONE", false);
    /// The proxy's policy refused (a CONNECT port, a client address).
    pub const DENIED: Note = Note::new("DENIED", "TCP_DENIED", false);

    pub const fn new(word: &'static str, squid: &'static str, upstream: bool) -> Note {
        Note {
            word,
            squid,
            upstream,
        }
    }
}
// ANCHOR_END: note

// ANCHOR: access_line
/// One access-log line.
pub struct Access<'a> {
    pub client: Option<SocketAddr>,
    /// `None` when no request head was read (a refused client, a bad head).
    pub request: Option<&'a RequestHead>,
    pub status: u16,
    /// Bytes sent to the client, head included.
    pub bytes: u64,
    /// From the first byte of the request head to the last byte sent.
    pub elapsed: Duration,
    pub note: Note,
    /// The response was cut short: the client did not get all of it.
    pub aborted: bool,
    /// More for the webproxy format (a tunnel's byte counts and its end).
    pub detail: Option<&'a str>,
}

impl Access<'_> {
    /// The line in `format`, for a request that ended at `now`.
    pub fn line(&self, format: Format, now: SystemTime) -> String {
        match format {
            Format::Webproxy => self.webproxy(),
            Format::Squid => self.squid(now),
            Format::Combined => self.combined(now),
        }
    }

    fn webproxy(&self) -> String {
        let (method, target) = self.method_and_target();
        let mut line = format!(
            "{} \"{method} {}\" {} {} {}ms",
            show(self.client),
            // Escaped: a target with control characters cannot forge lines.
            target.escape_debug(),
            self.status,
            self.bytes,
            self.elapsed.as_millis()
        );
        let words = [self.note.word, if self.aborted { "ABORTED" } else { "" }];
        for word in words.into_iter().chain(self.detail) {
            if !word.is_empty() {
                line.push(' ');
                line.push_str(word);
            }
        }
        line
    }
    // ANCHOR_END: access_line

    // ANCHOR: squid
    /// `time elapsed client code/status bytes method URL user hierarchy/peer
    /// type`, as squid's `logformat squid` writes it: seconds with
    /// milliseconds, elapsed milliseconds right-aligned in six columns, the
    /// client's address without its port.
    fn squid(&self, now: SystemTime) -> String {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let (method, target) = self.method_and_target();
        let aborted = if self.aborted { "_ABORTED" } else { "" };
        let host = self.request.map_or("", |r| host_of(&r.target));
        let hierarchy = if self.note.upstream && !host.is_empty() {
            format!("HIER_DIRECT/{}", url_safe(host))
        } else {
            "HIER_NONE/-".to_string()
        };
        format!(
            "{}.{:03} {:>6} {} {}{aborted}/{:03} {} {} {} - {hierarchy} -",
            since_epoch.as_secs(),
            since_epoch.subsec_millis(),
            self.elapsed.as_millis(),
            self.client
                .map_or_else(|| "-".to_string(), |c| c.ip().to_string()),
            self.note.squid,
            self.status,
            self.bytes,
            url_safe(method),
            url_safe(target),
        )
    }
    // ANCHOR_END: squid

    /// `client - - [time] "request line" status bytes "referer" "agent"`,
    /// the time being when the request arrived, in UTC.
    fn combined(&self, now: SystemTime) -> String {
        let arrived = now.checked_sub(self.elapsed).unwrap_or(now);
        let request_line = match self.request {
            Some(r) => format!("{} {} HTTP/1.{}", r.method, r.target, r.minor_version),
            None => "-".to_string(),
        };
        let field = |name| {
            self.request
                .and_then(|r| r.headers.get(name))
                .map_or_else(|| "-".to_string(), quoted)
        };
        format!(
            "{} - - [{}] \"{}\" {} {} \"{}\" \"{}\"",
            self.client
                .map_or_else(|| "-".to_string(), |c| c.ip().to_string()),
            clf_time(arrived),
            quoted(request_line.as_bytes()),
            self.status,
            self.bytes,
            field("Referer"),
            field("User-Agent"),
        )
    }

    fn method_and_target(&self) -> (&str, &str) {
        self.request
            .map_or(("-", "-"), |r| (r.method.as_str(), r.target.as_str()))
    }

    /// Writes the line where `--access-log` and `--log-format` say.
    pub fn log(&self) {
        match SINK.get() {
            Some(sink) => sink.write(self),
            None => log::info!(target: "access", "{}", self.webproxy()),
        }
    }
}

/// A client address for the log, or `-` when the socket no longer knows it.
pub fn show(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "-".to_string(), |p| p.to_string())
}

/// The host a target names (absolute-form or authority-form), without
/// scheme, user information or port; empty for origin-form.
fn host_of(target: &str) -> &str {
    let rest = target.split_once("://").map_or(target, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.split(':').next().unwrap_or(host)
}

/// A field of the squid format, which is separated by spaces: anything but
/// visible ASCII is percent-encoded, so no field can split or forge a line.
fn url_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A quoted field of the combined format, escaped as Apache does: `"` and
/// `\` with a backslash, anything else outside visible ASCII as `\xHH`.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            b' ' => out.push(' '),
            b if b.is_ascii_graphic() => out.push(b as char),
            b => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// `10/Oct/2000:13:55:36 +0000`, from the HTTP date of the same instant
/// (`Tue, 10 Oct 2000 13:55:36 GMT`), so no calendar arithmetic is needed.
fn clf_time(t: SystemTime) -> String {
    // httpdate knows no time before 1970; a clock that far off gets 1970.
    let http = httpdate::fmt_http_date(t.max(UNIX_EPOCH));
    let parts: Vec<&str> = http.split(' ').collect();
    match parts[..] {
        [_, day, month, year, time, _] => format!("{day}/{month}/{year}:{time} +0000"),
        _ => http,
    }
}

/// Where access lines go once `--log-format` or `--access-log` is given.
static SINK: OnceLock<AccessLog> = OnceLock::new();

/// Sets the format of access lines and, with `path`, the file they go to.
/// Called once, by a stage binary, before it serves: a second call is an
/// error. Without it, lines go to the log in the webproxy format.
pub fn set_access_log(format: Format, path: Option<&Path>) -> io::Result<()> {
    let sink = AccessLog::open(format, path)?;
    SINK.set(sink)
        .map_err(|_| io::Error::other("the access log is set already"))
}

/// Reopens the access-log file under its name, for `logrotate`: it moves
/// the file away and sends SIGUSR1, and the lines after that go to a new
/// file. Without `--access-log` there is nothing to reopen.
pub fn reopen_access_log() {
    match SINK.get() {
        Some(sink) => sink.reopen(),
        None => log::info!("SIGUSR1: no --access-log file to reopen"),
    }
}

// ANCHOR: access_log
/// Access lines in one format, to the log or to a file.
pub struct AccessLog {
    format: Format,
    file: Option<LogFile>,
}

struct LogFile {
    path: PathBuf,
    /// Swapped by a reopen; held only for one write.
    file: Mutex<File>,
    /// Set while writes fail, so a full disk is reported once, not per line.
    failing: AtomicBool,
}

impl AccessLog {
    /// Opens `path` for appending (creating it), or sends lines to the log
    /// when there is no path. The error names the file.
    pub fn open(format: Format, path: Option<&Path>) -> io::Result<AccessLog> {
        let file = match path {
            Some(path) => Some(LogFile {
                path: path.to_path_buf(),
                file: Mutex::new(append_to(path)?),
                failing: AtomicBool::new(false),
            }),
            None => None,
        };
        Ok(AccessLog { format, file })
    }

    /// Writes one line. A line is one `write` call on a file opened for
    /// appending, so lines from different threads never interleave.
    pub fn write(&self, access: &Access<'_>) {
        let line = access.line(self.format, SystemTime::now());
        let Some(log) = &self.file else {
            return log::info!(target: "access", "{line}");
        };
        let result = {
            let mut file = log.file.lock().unwrap_or_else(|e| e.into_inner());
            file.write_all(format!("{line}\n").as_bytes())
        };
        match result {
            Ok(()) => log.failing.store(false, Ordering::Relaxed),
            Err(e) => {
                if !log.failing.swap(true, Ordering::Relaxed) {
                    log::error!("cannot write the access log {}: {e}", log.path.display());
                }
            }
        }
    }

    /// Opens the file's name anew and writes there from now on. If that
    /// fails, lines keep going to the file already open.
    pub fn reopen(&self) {
        let Some(log) = &self.file else {
            return log::info!("SIGUSR1: no --access-log file to reopen");
        };
        match append_to(&log.path) {
            Ok(new) => {
                *log.file.lock().unwrap_or_else(|e| e.into_inner()) = new;
                log.failing.store(false, Ordering::Relaxed);
                log::info!("SIGUSR1: reopened the access log {}", log.path.display());
            }
            Err(e) => log::error!("SIGUSR1: {e}; still writing to the file open before"),
        }
    }
}
// ANCHOR_END: access_log

fn append_to(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open the access log {}: {e}", path.display()),
            )
        })
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Webproxy => "webproxy",
            Format::Squid => "squid",
            Format::Combined => "combined",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Parsed, parse_request};
    use crate::test_util::TempDir;

    fn request(raw: &str) -> RequestHead {
        match parse_request(raw.as_bytes()) {
            Ok(Parsed::Complete(h, _)) => h,
            other => panic!("{other:?}"),
        }
    }

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    const HIT: Note = Note::new("HIT", "TCP_HIT", false);

    fn access<'a>(request: Option<&'a RequestHead>, note: Note) -> Access<'a> {
        Access {
            client: Some("127.0.0.1:5000".parse().unwrap()),
            request,
            status: 200,
            bytes: 512,
            elapsed: Duration::from_millis(1234),
            note,
            aborted: false,
            detail: None,
        }
    }

    #[test]
    fn webproxy_format() {
        let get = request("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let line = access(Some(&get), HIT).line(Format::Webproxy, at(0, 0));
        assert_eq!(
            line,
            "127.0.0.1:5000 \"GET http://a.test/x\" 200 512 1234ms HIT"
        );
        let mut cut = access(Some(&get), Note::RELAYED);
        cut.aborted = true;
        cut.detail = Some("more");
        let line = cut.line(Format::Webproxy, at(0, 0));
        assert!(line.ends_with("1234ms ABORTED more"), "{line}");
    }

    #[test]
    fn squid_format() {
        let get = request("GET http://a.test:8080/x?y HTTP/1.1\r\n\r\n");
        let now = at(1_700_000_000, 42);
        let hit = access(Some(&get), HIT).line(Format::Squid, now);
        assert_eq!(
            hit,
            "1700000000.042   1234 127.0.0.1 TCP_HIT/200 512 GET http://a.test:8080/x?y \
             - HIER_NONE/- -"
        );
        let connect = request("CONNECT [::1]:443 HTTP/1.1\r\n\r\n");
        let mut tunnel = access(Some(&connect), Note::new("TUNNEL", "TCP_TUNNEL", true));
        tunnel.aborted = true;
        let line = tunnel.line(Format::Squid, now);
        assert!(
            line.contains(" TCP_TUNNEL_ABORTED/200 512 CONNECT [::1]:443 - HIER_DIRECT/[::1] -"),
            "{line}"
        );
        let mut none = access(None, Note::NO_REQUEST);
        none.status = 400;
        let line = none.line(Format::Squid, now);
        assert!(
            line.contains(" NONE_NONE/400 512 - - - HIER_NONE/- -"),
            "{line}"
        );
        assert_eq!(line.split(' ').filter(|f| !f.is_empty()).count(), 10);
    }

    #[test]
    fn combined_format() {
        let get = request(
            "GET http://a.test/ HTTP/1.0\r\nUser-Agent: curl \"8\"\r\nReferer: http://r.test/\r\n\r\n",
        );
        // The request arrived 1.234 s before it ended.
        let line = access(Some(&get), HIT).line(Format::Combined, at(1_700_000_001, 234));
        assert_eq!(
            line,
            "127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET http://a.test/ HTTP/1.0\" \
             200 512 \"http://r.test/\" \"curl \\\"8\\\"\""
        );
        let line = access(None, Note::NO_REQUEST).line(Format::Combined, at(0, 0));
        assert!(line.contains("] \"-\" 200 512 \"-\" \"-\""), "{line}");
    }

    #[test]
    fn hosts_for_the_hierarchy_field() {
        assert_eq!(host_of("http://a.test:80/x"), "a.test");
        assert_eq!(host_of("http://u:p@a.test/"), "a.test");
        assert_eq!(host_of("a.test:443"), "a.test");
        assert_eq!(host_of("http://[::1]:80/"), "[::1]");
        assert_eq!(host_of("/stats.json"), "");
    }

    #[test]
    fn nothing_from_the_client_can_forge_a_line() {
        assert_eq!(url_safe("a b\r\nc"), "a%20b%0D%0Ac");
        assert_eq!(quoted(b"a\"\\\n\xff"), "a\\\"\\\\\\x0a\\xff");
    }

    #[test]
    fn a_file_is_appended_to_and_reopened_after_a_move() {
        let dir = TempDir::new("access-log");
        let path = dir.0.join("access.log");
        std::fs::write(&path, "old line\n").unwrap();
        let log = AccessLog::open(Format::Squid, Some(&path)).unwrap();
        let get = request("GET http://a.test/ HTTP/1.1\r\n\r\n");
        log.write(&access(Some(&get), HIT));
        let rotated = dir.0.join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.write(&access(Some(&get), Note::RELAYED));
        log.reopen();
        log.write(&access(Some(&get), Note::DENIED));
        let old = std::fs::read_to_string(&rotated).unwrap();
        let lines: Vec<&str> = old.lines().collect();
        assert_eq!(lines.len(), 3, "{old}");
        assert!(lines[1].contains("TCP_HIT/200") && lines[2].contains("TCP_MISS/200"));
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(new.lines().count(), 1, "{new}");
        assert!(new.contains("TCP_DENIED/200"), "{new}");
    }

    #[test]
    fn an_unwritable_file_is_named() {
        let error = AccessLog::open(Format::Squid, Some(Path::new("/nonexistent/dir/a.log")))
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("/nonexistent/dir/a.log"),
            "{error}"
        );
    }
}
