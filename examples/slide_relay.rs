//! The lecture slide's proxy, in Rust, kept as naive as the slide on
//! purpose: the problem before the fix, runnable. Do not use it.
//!
//! ```text
//! cargo run --example slide_relay -- --port 8081
//! WEBPROXY_BIN=target/debug/examples/slide_relay WEBPROXY_STAGE=1 cargo test --test blackbox
//! ```
//!
//! It serves one client at a time. For each, it makes one read of at most
//! 1024 bytes and takes that for the whole request, finds the URL as the
//! second word of it, connects to the host the URL names, forwards the
//! bytes with the request line in origin-form, makes one read of the
//! origin's answer, passes on whatever that read returned, and closes both
//! connections. Nothing has a timeout, and anything unexpected closes the
//! client's connection without a word.
//!
//! TCP delivers a stream of bytes, not messages, so each "one read" is a
//! guess about how the peer's bytes were split; the stage 1 chapter shows
//! which black-box checks that guess fails (`.ci/naive-designs`).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let port = port_from_args();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    for client in listener.incoming() {
        let Ok(mut client) = client else { continue };
        // Whatever goes wrong, the client just sees its connection close.
        let _ = relay(&mut client);
    }
}

fn relay(client: &mut TcpStream) -> io::Result<()> {
    // One read is taken for the whole request.
    let mut request = [0u8; 1024];
    let n = client.read(&mut request)?;
    let request = &request[..n];

    // The URL is the second word; the host and path come out of it.
    let text = String::from_utf8_lossy(request);
    let url = text.split_whitespace().nth(1).ok_or_else(not_http)?;
    let rest = url.strip_prefix("http://").ok_or_else(not_http)?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };

    // Forwarded as it came, but for the target.
    let line_end = text.find("\r\n").ok_or_else(not_http)?;
    let method = text.split_whitespace().next().ok_or_else(not_http)?;
    let mut origin = TcpStream::connect(address)?;
    origin.write_all(format!("{method} {path} HTTP/1.1").as_bytes())?;
    origin.write_all(&request[line_end..])?;

    // One read is taken for the whole response.
    let mut response = [0u8; 4096];
    let n = origin.read(&mut response)?;
    client.write_all(&response[..n])?;
    Ok(())
}

fn not_http() -> io::Error {
    io::Error::other("no URL in the request")
}

/// `--port N` (default 8080); the black-box suite passes nothing else at
/// stage 1.
fn port_from_args() -> u16 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => 8080,
        [flag, n] if flag == "--port" => n.parse().expect("--port takes a port number"),
        _ => {
            eprintln!("usage: slide_relay [--port N]");
            std::process::exit(2);
        }
    }
}
