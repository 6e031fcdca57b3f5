//! What the stage binaries log, run for real: access lines in each format
//! and where they go, the lines that say what is in force at start, and
//! what `RUST_LOG=debug` adds.
//!
//! The formatting itself is unit-tested in `src/logging.rs`; what only the
//! binaries show is that every kind of request reaches the line with the
//! right code, that the file follows SIGUSR1, and that each layer speaks up.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::child::Log;
use common::{
    CacheDir, Client, EchoServer, Origin, Reply, Req, RunningBinary, TempDir, assert_echoes,
    eventually, open_tunnel,
};

const STAGE2: &str = env!("CARGO_BIN_EXE_stage2");
const STAGE3: &str = env!("CARGO_BIN_EXE_stage3");
const STAGE4: &str = env!("CARGO_BIN_EXE_stage4");
const STAGE5: &str = env!("CARGO_BIN_EXE_stage5");

const WAIT: Duration = Duration::from_secs(5);

/// Info lines are what these tests read, whatever RUST_LOG the run has.
const INFO: &[(&str, &str)] = &[("RUST_LOG", "info")];

fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// The lines of an access-log file once it has `n` of them: a line is
/// written just after its response is sent.
fn lines(path: &Path, n: usize) -> Vec<String> {
    let read = || fs::read_to_string(path).unwrap_or_default();
    let complete = eventually(WAIT, || read().lines().count() >= n);
    let text = read();
    assert!(
        complete,
        "expected {n} lines in {}:\n{text}",
        path.display()
    );
    text.lines().map(str::to_string).collect()
}

/// Waits for a log line with every one of `parts`.
fn logged(log: &Log, parts: &[&str]) -> String {
    log.wait_for(parts, WAIT)
        .unwrap_or_else(|| panic!("no line with {parts:?} in {:#?}", log.lines()))
}

/// A cacheable page, a page that may not be stored, and a tunnel's far end.
fn origin() -> Origin {
    Origin::routes([
        (
            "/page",
            Reply::ok("a cacheable page").header("Cache-Control", "max-age=3600"),
        ),
        (
            "/private",
            Reply::ok("not for a shared cache").header("Cache-Control", "no-store"),
        ),
    ])
}

// ANCHOR: squid_fields
/// The fields of a squid-format line, checked for shape: `time elapsed
/// client code/status bytes method URL user hierarchy/peer type`. Returns
/// (code/status, method, URL, hierarchy).
fn squid_fields(line: &str) -> (String, String, String, String) {
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 10, "{line}");
    let (secs, millis) = f[0].split_once('.').expect("seconds.millis");
    assert!(secs.len() >= 10 && millis.len() == 3, "{line}");
    assert!(f[0].replace('.', "").bytes().all(|b| b.is_ascii_digit()));
    assert!(
        f[1].parse::<u64>().is_ok() && f[4].parse::<u64>().is_ok(),
        "{line}"
    );
    assert_eq!((f[2], f[7], f[9]), ("127.0.0.1", "-", "-"), "{line}");
    let [code, method, url, hierarchy] = [f[3], f[5], f[6], f[8]].map(str::to_string);
    (code, method, url, hierarchy)
}
// ANCHOR_END: squid_fields

#[test]
fn squid_format_names_hits_misses_refusals_and_tunnels() {
    let origin = origin();
    let echo = EchoServer::start();
    let dir = TempDir::new("logs-squid");
    let block = dir.write("block.txt", "blocked.test\n");
    let log_file = dir.path().join("access.log");
    let ports = format!("443,{}", echo.port());
    let (running, _log) = RunningBinary::start_logged_with(
        STAGE5,
        &[
            "--port=0",
            "--log-format=squid",
            "--access-log",
            arg(&log_file),
            "--block",
            arg(&block),
            "--connect-ports",
            &ports,
        ],
        INFO,
    );
    let page = origin.url("/page");
    let mut client = Client::connect(running.addr);
    assert_eq!(client.request(&Req::get(&page)).status, 200);
    assert_eq!(client.request(&Req::get(&page)).status, 200);
    lines(&log_file, 2);
    let refused = Client::connect(running.addr).request(&Req::get("http://blocked.test/ad"));
    assert_eq!(refused.status, 403);
    lines(&log_file, 3);
    let (mut tunnel, established) = open_tunnel(running.addr, &echo.authority());
    assert_eq!(established.status, 200);
    assert_echoes(&mut tunnel, b"hello");
    drop(tunnel);

    let seen: Vec<_> = lines(&log_file, 4)
        .iter()
        .map(|l| squid_fields(l))
        .collect();
    let expect = |code: &str, method: &str, url: &str, hierarchy: &str| {
        [code, method, url, hierarchy].map(str::to_string).into()
    };
    let expected: Vec<(String, String, String, String)> = vec![
        expect("TCP_MISS/200", "GET", &page, "HIER_DIRECT/127.0.0.1"),
        expect("TCP_HIT/200", "GET", &page, "HIER_NONE/-"),
        expect(
            "TCP_DENIED/403",
            "GET",
            "http://blocked.test/ad",
            "HIER_NONE/-",
        ),
        expect(
            "TCP_TUNNEL/200",
            "CONNECT",
            &echo.authority(),
            "HIER_DIRECT/127.0.0.1",
        ),
    ];
    assert_eq!(seen, expected);
    // A tunnel's bytes are what the client got: the 200's head and the echo.
    let tunnel_line = lines(&log_file, 4).pop().unwrap_or_default();
    let bytes = tunnel_line.split_whitespace().nth(4).unwrap_or_default();
    let head = "HTTP/1.1 200 Connection established\r\n\r\n".len();
    assert_eq!(bytes, (head + 5).to_string(), "{tunnel_line}");
}

#[test]
fn squid_format_says_when_a_validation_brought_a_new_response() {
    // max-age=0 and an ETag that changes every time: every use validates,
    // and the origin answers 200 with the new version.
    let version = std::sync::atomic::AtomicUsize::new(0);
    let origin = Origin::start(move |_| {
        let n = version.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Reply::ok(format!("version {n}"))
            .header("Cache-Control", "max-age=0")
            .header("ETag", &format!("\"v{n}\""))
    });
    let dir = TempDir::new("logs-refresh");
    let log_file = dir.path().join("access.log");
    let running = RunningBinary::start(
        STAGE3,
        &[
            "--port=0",
            "--log-format=squid",
            "--access-log",
            arg(&log_file),
        ],
    );
    let mut client = Client::connect(running.addr);
    let url = origin.url("/changing");
    assert_eq!(client.request(&Req::get(&url)).body, b"version 0");
    assert_eq!(client.request(&Req::get(&url)).body, b"version 1");
    let codes: Vec<String> = lines(&log_file, 2)
        .iter()
        .map(|l| squid_fields(l).0)
        .collect();
    assert_eq!(codes, ["TCP_MISS/200", "TCP_REFRESH_MODIFIED/200"]);
}

#[test]
fn sigusr1_reopens_the_access_log_for_logrotate() {
    let origin = origin();
    let dir = TempDir::new("logs-rotate");
    let log_file = dir.path().join("access.log");
    let (running, log) = RunningBinary::start_logged_with(
        STAGE2,
        &[
            "--port=0",
            "--log-format=squid",
            "--access-log",
            arg(&log_file),
        ],
        INFO,
    );
    let mut client = Client::connect(running.addr);
    assert_eq!(client.request(&Req::get(&origin.url("/page"))).status, 200);
    lines(&log_file, 1);
    // What logrotate does: move the file away, then signal.
    let rotated = dir.path().join("access.log.1");
    fs::rename(&log_file, &rotated).expect("rotate");
    running.signal("USR1");
    logged(&log, &["SIGUSR1", "reopened", arg(&log_file)]);
    assert_eq!(client.request(&Req::get(&origin.url("/other"))).status, 404);
    let new = lines(&log_file, 1);
    assert!(new[0].contains("/other"), "{new:?}");
    let old = lines(&rotated, 1);
    assert_eq!(old.len(), 1);
    assert!(old[0].contains("/page"), "{old:?}");
}

#[test]
fn combined_format_is_apaches() {
    let origin = origin();
    let dir = TempDir::new("logs-combined");
    let log_file = dir.path().join("access.log");
    let running = RunningBinary::start(
        STAGE2,
        &[
            "--port=0",
            "--log-format=combined",
            "--access-log",
            arg(&log_file),
        ],
    );
    let url = origin.url("/page");
    let req = Req::get(&url)
        .header("User-Agent", "test \"agent\"/1")
        .header("Referer", "http://referrer.test/");
    assert_eq!(Client::connect(running.addr).request(&req).status, 200);
    let line = lines(&log_file, 1).remove(0);
    let (start, rest) = line.split_once(" [").expect("a time in brackets");
    assert_eq!(start, "127.0.0.1 - -");
    // 01/Dec/2026:23:22:44 +0000
    let (time, rest) = rest.split_once("] ").expect("the time's end");
    let shape: String = time
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape.len(), "99/Mon/9999:99:99:99 +9999".len(), "{time}");
    assert!(shape.starts_with("99/") && shape.ends_with("/9999:99:99:99 +9999"));
    let (request, rest) = rest.split_once(" 200 ").expect("the status");
    assert_eq!(request, format!("\"GET {url} HTTP/1.1\""));
    let (bytes, agents) = rest.split_once(' ').expect("bytes");
    assert!(bytes.parse::<u64>().is_ok_and(|n| n > 0), "{line}");
    assert_eq!(agents, r#""http://referrer.test/" "test \"agent\"/1""#);
}

#[test]
fn a_tunnel_logs_in_the_same_shape_as_a_request() {
    let origin = origin();
    let echo = EchoServer::start();
    let ports = format!("443,{}", echo.port());
    let (running, log) =
        RunningBinary::start_logged_with(STAGE4, &["--port=0", "--connect-ports", &ports], INFO);
    assert_eq!(
        Client::connect(running.addr)
            .request(&Req::get(&origin.url("/page")))
            .status,
        200
    );
    let (mut tunnel, _) = open_tunnel(running.addr, &echo.authority());
    assert_echoes(&mut tunnel, b"12345");
    drop(tunnel);
    let get = logged(&log, &["\"GET ", "/page\" 200 "]);
    let connect = logged(&log, &["\"CONNECT ", "TUNNEL"]);
    // CLIENT "METHOD TARGET" STATUS BYTES TIMEms NOTE...
    let shape = |line: &str| -> Vec<String> {
        let fields: Vec<&str> = line
            .split("INFO  access] ")
            .nth(1)
            .unwrap_or("")
            .split(' ')
            .collect();
        assert!(fields.len() >= 6, "{line}");
        assert!(fields[4].parse::<u64>().is_ok(), "{line}");
        assert!(fields[5].ends_with("ms"), "{line}");
        fields[6..].iter().map(|s| s.to_string()).collect()
    };
    assert_eq!(shape(&get), ["MISS"]);
    assert_eq!(shape(&connect), ["TUNNEL", "up=5", "down=5", "end=closed"]);
    let target = format!("\"CONNECT {}\" 200 ", echo.authority());
    assert!(connect.contains(&target), "{connect}");
}

#[test]
fn a_refusal_is_one_access_line_and_no_warning() {
    let dir = TempDir::new("logs-refusal");
    let block = dir.write("block.txt", "blocked.test\n");
    let (running, log) =
        RunningBinary::start_logged_with(STAGE5, &["--port=0", "--block", arg(&block)], INFO);
    let refused = Client::connect(running.addr).request(&Req::get("http://blocked.test/"));
    assert_eq!(refused.status, 403);
    let (_, port_refused) = open_tunnel(running.addr, "127.0.0.1:25");
    assert_eq!(port_refused.status, 403);
    logged(&log, &["\"GET http://blocked.test/\" 403 ", "BLOCKED"]);
    logged(&log, &["\"CONNECT 127.0.0.1:25\" 403 ", "DENIED"]);
    // The warning, if any, would have come before the access line.
    let about = |needle: &str| {
        log.lines()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect::<Vec<_>>()
    };
    assert_eq!(about("blocked.test").len(), 1, "{:#?}", log.lines());
    assert_eq!(about("127.0.0.1:25").len(), 1, "{:#?}", log.lines());
    assert!(about("WARN").is_empty(), "{:#?}", log.lines());

    // A client outside --allow-clients: one line, though nothing was read.
    let (running, log) = RunningBinary::start_logged_with(
        STAGE5,
        &["--port=0", "--allow-clients", "192.0.2.0/24"],
        INFO,
    );
    // Nothing is read from a refused client: it gets its 403 unasked.
    assert_eq!(Client::connect(running.addr).read_response().status, 403);
    logged(&log, &["\"- -\" 403 ", "DENIED"]);
    assert!(
        log.lines().iter().all(|l| !l.contains("WARN")),
        "{:#?}",
        log.lines()
    );
}

#[test]
fn debug_says_why() {
    let origin = Origin::routes([
        (
            "/no-store",
            Reply::ok("x").header("Cache-Control", "no-store"),
        ),
        (
            "/big1",
            Reply::ok("1".repeat(3000)).header("Cache-Control", "max-age=60"),
        ),
        (
            "/big2",
            Reply::ok("2".repeat(3000)).header("Cache-Control", "max-age=60"),
        ),
    ]);
    let (running, log) = RunningBinary::start_logged_with(
        STAGE3,
        &["--port=0", "--cache-size=5K", "--max-object-size=4K"],
        &[("RUST_LOG", "debug")],
    );
    let mut client = Client::connect(running.addr);
    for path in ["/no-store", "/big1", "/big2"] {
        assert_eq!(client.request(&Req::get(&origin.url(path))).status, 200);
    }
    let authority = origin.authority();
    logged(&log, &["/no-store: not stored: response says no-store"]);
    logged(&log, &[&authority, "opened a new upstream connection"]);
    logged(&log, &[&authority, "reusing a kept connection"]);
    logged(&log, &["/big1: stored"]);
    logged(&log, &["cache: evicted ", "/big1", "least recently used"]);

    // Which rule decided, in stage 5.
    let dir = TempDir::new("logs-debug-rules");
    let allow = dir.write("allow.txt", "127.0.0.1\n");
    let block = dir.write("block.txt", "127.0.0.1/no-store\n");
    let (running, log) = RunningBinary::start_logged_with(
        STAGE5,
        &["--port=0", "--allow", arg(&allow), "--block", arg(&block)],
        &[("RUST_LOG", "debug")],
    );
    let mut client = Client::connect(running.addr);
    assert_eq!(client.request(&Req::get(&origin.url("/big1"))).status, 200);
    let refused = Client::connect(running.addr).request(&Req::get(&origin.url("/no-store")));
    assert_eq!(refused.status, 403);
    logged(
        &log,
        &[
            "127.0.0.1 is allowed by the rule \"127.0.0.1\"",
            "allow.txt:1",
        ],
    );
    logged(
        &log,
        &[
            "is blocked by the rule \"127.0.0.1/no-store\"",
            "block.txt:1",
        ],
    );
}

#[test]
fn the_start_says_what_is_in_force() {
    let origin = origin();
    let cache = CacheDir::new("logs-start");
    // A first run stores one response in the cache directory.
    let first = RunningBinary::start(STAGE3, &["--port=0", "--cache-dir", cache.to_str()]);
    assert_eq!(
        Client::connect(first.addr)
            .request(&Req::get(&origin.url("/page")))
            .status,
        200
    );
    assert!(eventually(WAIT, || cache.entry_files().len() == 1));
    drop(first);

    let dir = TempDir::new("logs-start-rules");
    let block = dir.write("block.txt", "ads.test\n# comment\ntracker.test\n");
    let access_log = dir.path().join("access.log");
    let (running, log) = RunningBinary::start_logged_with(
        STAGE5,
        &[
            "--port=0",
            "--threads=3",
            "--cache-size=2M",
            "--max-object-size=512K",
            "--cache-dir",
            cache.to_str(),
            "--connect-ports=443,8443",
            "--block",
            arg(&block),
            "--log-format=squid",
            "--access-log",
            arg(&access_log),
        ],
        INFO,
    );
    let address = format!("listening on http://{}", running.addr);
    logged(&log, &[&address, "10s to connect", "30s between reads"]);
    logged(
        &log,
        &["serving with 3 worker threads, at most 4096 connections"],
    );
    let cache_line = format!(
        "cache: 2.0 MiB, objects up to 512.0 KiB, kept in {}, 1 entry loaded",
        cache.to_str()
    );
    logged(&log, &[&cache_line]);
    logged(&log, &["CONNECT to ports 443, 8443 only, at most 256 open"]);
    logged(&log, &[&format!("rules: block {} (2 rules)", arg(&block))]);
    logged(&log, &["clients allowed: 127.0.0.0/8"]);
    logged(&log, &["access lines: squid format, in", arg(&access_log)]);
}
