//! A relay that reads the response until the origin closes: the loop a
//! student writes after replacing the slide's HTTP library with a socket.
//! The problem before the fix, runnable. Do not use it.
//!
//! ```text
//! cargo run --example until_close_relay -- --port 8081
//! WEBPROXY_BIN=target/debug/examples/until_close_relay WEBPROXY_STAGE=1 cargo test --test blackbox
//! ```
//!
//! The request side is done with care: it reads the whole head however TCP
//! splits it, sends the request line in origin-form, adds a `Via`, and
//! answers `502` when the origin cannot be reached. The response side is
//! the naive part: it copies whatever the origin sends until the origin
//! closes its connection. An HTTP/1.1 origin keeps the connection open after
//! a response unless it was asked not to (RFC 9112 §9.3), so the copy loop
//! waits after the last byte, and with one client at a time, every other
//! client waits too. The stage 1 chapter shows the black-box checks this
//! fails (`.ci/naive-designs`).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

/// The largest request head it reads.
const MAX_HEAD: usize = 64 * 1024;

fn main() {
    let port = port_from_args();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    for client in listener.incoming() {
        let Ok(mut client) = client else { continue };
        if let Err(e) = relay(&mut client) {
            eprintln!("until_close_relay: {e}");
        }
    }
}

fn relay(client: &mut TcpStream) -> io::Result<()> {
    let Some(head) = read_head(client)? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let (line, fields) = text.split_once("\r\n").unwrap_or((&text, ""));
    let mut words = line.split(' ');
    let (Some(method), Some(url)) = (words.next(), words.next()) else {
        return answer(client, "400 Bad Request");
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return answer(client, "400 Bad Request");
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut origin = match TcpStream::connect(&address) {
        Ok(origin) => origin,
        Err(_) => return answer(client, "502 Bad Gateway"),
    };
    // The client's fields go on as they came, keep-alive and all.
    let fields = fields.strip_suffix("\r\n").unwrap_or(fields);
    origin.write_all(
        format!("{method} {path} HTTP/1.1\r\n{fields}Via: 1.1 relay\r\n\r\n").as_bytes(),
    )?;

    // The naive part: the response ends when the origin closes.
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = origin.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        client.write_all(&buf[..n])?;
    }
}

/// Reads up to the empty line that ends a head, however the bytes arrive;
/// None when the client sent nothing.
fn read_head(client: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
        if head.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
    }
    Ok(Some(head))
}

fn answer(client: &mut TcpStream, status: &str) -> io::Result<()> {
    let body = format!("{status}\n");
    write!(
        client,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// `--port N` (default 8080); the black-box suite passes nothing else at
/// stage 1.
fn port_from_args() -> u16 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => 8080,
        [flag, n] if flag == "--port" => n.parse().expect("--port takes a port number"),
        _ => {
            eprintln!("usage: until_close_relay [--port N]");
            std::process::exit(2);
        }
    }
}
