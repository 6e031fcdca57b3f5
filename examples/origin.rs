//! A demo origin server, for trying the proxy by hand.
//!
//! ```text
//! cargo run --example origin              # http://127.0.0.1:8000/
//! cargo run --example origin -- --port 9000
//! ```
//!
//! Each page shows one thing a proxy has to get right:
//!
//! - `/cacheable`: `Cache-Control: max-age=60` with an `ETag` and a
//!   `Last-Modified`, and answers a matching `If-None-Match` or
//!   `If-Modified-Since` with `304 Not Modified` (RFC 9111 §4.3, RFC 9110
//!   §13.1). Fetched twice through stage 3 or later, the second answer is a
//!   cache hit, and this origin's log shows one request, not two.
//! - `/uncacheable`: `Cache-Control: no-store`; its body counts the requests,
//!   so every fetch shows a new number.
//! - `/chunked`: `Transfer-Encoding: chunked`, one line per chunk (RFC 9112
//!   §7.1).
//! - `/slow`: a `Content-Length` body sent in pieces, one a second: a
//!   streaming proxy shows each piece as it comes.
//! - `/large`: 8 MiB of numbered text lines, generated as they are sent.
//!
//! `/` lists them with a curl command for each. It listens on 127.0.0.1
//! only, speaks HTTP/1.1 with persistent connections, serves each
//! connection on its own thread, and logs one line per request, so you can
//! see which requests the proxy let through.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, SystemTime};

use clap::Parser;

/// a demo origin server: cacheable, uncacheable, chunked, slow and large pages
#[derive(Parser)]
#[command(name = "origin")]
struct Args {
    /// port to listen on (127.0.0.1 only)
    #[arg(long, value_name = "N", default_value_t = 8000)]
    port: u16,
}

/// How long a connection may stay idle or take to send a request.
const IDLE: Duration = Duration::from_secs(30);
/// The largest request head we read.
const MAX_HEAD: usize = 64 * 1024;
/// The size of `/large`.
const LARGE: usize = 8 * 1024 * 1024;
/// The pieces of `/slow`, one a second.
const SLOW_PIECES: usize = 5;

/// What every connection shares: when the server started (the pages'
/// `Last-Modified`) and a request counter for `/uncacheable`.
struct Site {
    port: u16,
    started: SystemTime,
    counter: AtomicU64,
}

fn main() {
    let args = Args::parse();
    let listener = TcpListener::bind(("127.0.0.1", args.port)).unwrap_or_else(|e| {
        eprintln!("origin: cannot listen on 127.0.0.1:{}: {e}", args.port);
        std::process::exit(1);
    });
    let port = listener.local_addr().map_or(args.port, |a| a.port());
    // Whole seconds: HTTP dates have no fractions, so a validator compared
    // with If-Modified-Since must not have one either.
    let started = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
    let site = Arc::new(Site {
        port,
        started,
        counter: AtomicU64::new(0),
    });
    println!("origin listening on http://127.0.0.1:{port}/");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let site = Arc::clone(&site);
        thread::spawn(move || {
            if let Err(e) = serve(stream, &site) {
                println!("origin: connection ended: {e}");
            }
        });
    }
}

/// Serves requests on one connection until the client closes it, asks to
/// close it, or sends something we do not understand.
fn serve(stream: TcpStream, site: &Site) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut fields);
        let parsed = request.parse(&head).ok().filter(|s| s.is_complete());
        let (Some(method), Some(path), Some(_)) = (
            request.method.filter(|_| parsed.is_some()),
            request.path,
            request.version,
        ) else {
            let body = "bad request\n";
            write!(
                out,
                "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            return Ok(());
        };
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
        };
        // Request bodies are not for us; one we cannot measure ends the
        // connection after the answer.
        let length: Option<u64> = header("Content-Length").and_then(|v| v.parse().ok());
        let chunked = header("Transfer-Encoding").is_some();
        if let Some(n) = length {
            io::copy(&mut (&mut reader).take(n), &mut io::sink())?;
        }
        let close = chunked
            || request.version == Some(0)
            || header("Connection").is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        let page = Page::of(path, method, site, &header);
        println!("origin: {method} {path} -> {}", page.status);
        page.send(&mut out, method == "HEAD", close)?;
        if close {
            return Ok(());
        }
    }
}

/// Reads a request head up to its empty line; None when the client closed
/// (or went quiet) between requests.
fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        match reader.read_until(b'\n', &mut head) {
            Ok(0) if head.is_empty() => return Ok(None),
            Ok(0) => return Err(io::Error::other("the client closed inside a request")),
            Ok(_) => {}
            Err(e) if head.is_empty() && e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // An empty line before a request is allowed (RFC 9112 §2.2).
                head.clear();
                continue;
            }
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
    }
}

/// A response: status, fields and a body that is written when it is sent.
struct Page {
    status: &'static str,
    fields: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Empty,
    Text(String),
    Chunked(Vec<String>),
    Slow(Vec<String>),
    Large,
}

impl Page {
    fn of(path: &str, method: &str, site: &Site, header: &dyn Fn(&str) -> Option<String>) -> Page {
        if method != "GET" && method != "HEAD" {
            let mut page = Page::text(
                "405 Method Not Allowed",
                "this origin serves GET and HEAD\n",
            );
            page.fields.push(("Allow", "GET, HEAD".into()));
            return page;
        }
        match path.split('?').next().unwrap_or("") {
            "/" => {
                let mut page = Page::text("200 OK", &index(site.port));
                page.fields[0].1 = "text/html; charset=utf-8".into();
                page
            }
            "/cacheable" => cacheable(site, header),
            "/uncacheable" => {
                let n = site.counter.fetch_add(1, Ordering::Relaxed) + 1;
                let mut page = Page::text(
                    "200 OK",
                    &format!("This page must not be stored. It is answer number {n}.\n"),
                );
                page.fields.push(("Cache-Control", "no-store".into()));
                page
            }
            "/chunked" => Page {
                status: "200 OK",
                fields: vec![("Content-Type", "text/plain; charset=utf-8".into())],
                body: Body::Chunked(
                    (1..=5)
                        .map(|i| {
                            format!("chunk {i} of 5: a chunked body ends with a chunk of size 0\n")
                        })
                        .collect(),
                ),
            },
            "/slow" => Page {
                status: "200 OK",
                fields: vec![("Content-Type", "text/plain; charset=utf-8".into())],
                body: Body::Slow(
                    (1..=SLOW_PIECES)
                        .map(|i| format!("piece {i} of {SLOW_PIECES}, one a second\n"))
                        .collect(),
                ),
            },
            "/large" => Page {
                status: "200 OK",
                fields: vec![("Content-Type", "text/plain; charset=utf-8".into())],
                body: Body::Large,
            },
            _ => Page::text("404 Not Found", "no such page; / lists them\n"),
        }
    }

    fn text(status: &'static str, body: &str) -> Page {
        Page {
            status,
            fields: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Body::Text(body.to_string()),
        }
    }

    /// Writes the page; `head_only` for HEAD (the fields a GET would get,
    /// no body: RFC 9110 §9.3.2).
    fn send(&self, out: &mut TcpStream, head_only: bool, close: bool) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {}\r\n", self.status);
        head.push_str(&format!(
            "Date: {}\r\nServer: webproxy-demo-origin\r\n",
            httpdate::fmt_http_date(SystemTime::now())
        ));
        for (name, value) in &self.fields {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let framing = match &self.body {
            Body::Empty => String::new(),
            Body::Text(text) => format!("Content-Length: {}\r\n", text.len()),
            Body::Slow(pieces) => format!("Content-Length: {}\r\n", pieces.concat().len()),
            Body::Large => format!("Content-Length: {LARGE}\r\n"),
            Body::Chunked(_) => "Transfer-Encoding: chunked\r\n".into(),
        };
        head.push_str(&framing);
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if head_only {
            return out.flush();
        }
        match &self.body {
            Body::Empty => {}
            Body::Text(text) => out.write_all(text.as_bytes())?,
            Body::Chunked(chunks) => {
                for chunk in chunks {
                    write!(out, "{:x}\r\n{chunk}\r\n", chunk.len())?;
                }
                out.write_all(b"0\r\n\r\n")?;
            }
            Body::Slow(pieces) => {
                for (i, piece) in pieces.iter().enumerate() {
                    if i > 0 {
                        thread::sleep(Duration::from_secs(1));
                    }
                    out.write_all(piece.as_bytes())?;
                    out.flush()?;
                }
            }
            Body::Large => write_large(out)?,
        }
        out.flush()
    }
}

/// `/cacheable`, or a 304 when the client's validator still matches.
fn cacheable(site: &Site, header: &dyn Fn(&str) -> Option<String>) -> Page {
    let etag = "\"demo-v1\"";
    let modified = httpdate::fmt_http_date(site.started);
    let fields = vec![
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
        ("Cache-Control", "max-age=60".to_string()),
        ("ETag", etag.to_string()),
        ("Last-Modified", modified),
    ];
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    let not_modified = match header("If-None-Match") {
        Some(tags) => tags.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        }),
        None => header("If-Modified-Since")
            .and_then(|d| httpdate::parse_http_date(&d).ok())
            .is_some_and(|since| since >= site.started),
    };
    if not_modified {
        return Page {
            status: "304 Not Modified",
            fields: fields.into_iter().skip(1).collect(),
            body: Body::Empty,
        };
    }
    Page {
        status: "200 OK",
        fields,
        body: Body::Text(
            "This page may be stored for 60 seconds (Cache-Control: max-age=60).\n\
             Fetch it twice through the proxy: the second answer says\n\
             Cache-Status: webproxy; hit, and the origin logs one request.\n"
                .into(),
        ),
    }
}

/// 8 MiB of numbered lines, made as they are written.
fn write_large(out: &mut TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut sent = 0;
    let mut line = 0u64;
    while sent < LARGE {
        buf.clear();
        while buf.len() < 60 * 1024 {
            line += 1;
            buf.extend_from_slice(
                format!("{line:09} the large page, one numbered line after another\n").as_bytes(),
            );
        }
        let take = buf.len().min(LARGE - sent);
        out.write_all(&buf[..take])?;
        sent += take;
    }
    Ok(())
}

fn index(port: u16) -> String {
    let pages = [
        (
            "/cacheable",
            "Cache-Control: max-age=60, ETag and Last-Modified: fetch it twice",
        ),
        (
            "/uncacheable",
            "Cache-Control: no-store: a new answer every time",
        ),
        ("/chunked", "Transfer-Encoding: chunked"),
        ("/slow", "a body in pieces, one a second"),
        ("/large", "8 MiB of text"),
    ];
    let mut html = String::from(
        "<!doctype html>\n<title>webproxy demo origin</title>\n<h1>webproxy demo origin</h1>\n\
         <p>Fetch these through the proxy, e.g. with the command under each.</p>\n<ul>\n",
    );
    for (path, what) in pages {
        html.push_str(&format!(
            "<li><a href=\"{path}\">{path}</a>: {what}<br>\
             <code>curl -s -D - -o /dev/null -x http://127.0.0.1:8080 http://127.0.0.1:{port}{path}</code></li>\n"
        ));
    }
    html.push_str("</ul>\n");
    html
}
