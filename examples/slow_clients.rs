//! A benchmark of slow clients (not a test): does a proxy keep answering
//! ordinary requests while hundreds of clients send their requests as
//! slowly as they can?
//!
//! It starts a tiny origin and the proxy binary (stage 5 unless told
//! otherwise), then holds open 500 connections that trickle a request head
//! one byte every 200 ms ("slowloris") and 60 uploads that announce a
//! megabyte and send a byte a second. Connections the proxy closes are
//! opened again. Meanwhile it times ordinary GETs, one after another, each
//! on a new connection, and prints their latency. The goal is that every
//! GET is answered within 100 ms.
//!
//! ```text
//! cargo build --release --bins --examples
//! target/release/examples/slow_clients [PROXY_BINARY] [SECONDS]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const SLOW_HEADS: usize = 500;
const SLOW_BODIES: usize = 60;

fn origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the origin");
    let addr = listener.local_addr().expect("origin address");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Answers every request head on the connection with a short 200; request
/// bodies are never sent to it here, since the proxy must refuse them first.
fn serve(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => {
                let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if out.write_all(reply).is_err() {
                    return;
                }
            }
            Ok(_) => {}
        }
    }
}

fn start_proxy(binary: &str) -> (std::process::Child, SocketAddr) {
    let mut child = Command::new(binary)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the address");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, addr)
}

/// One slow client: its socket and what it still has to send.
struct Slow {
    stream: Option<TcpStream>,
    script: Vec<u8>,
    sent: usize,
}

fn open(proxy: SocketAddr, script: &[u8], first: usize) -> Slow {
    let stream = TcpStream::connect(proxy).ok().and_then(|mut s| {
        s.set_nonblocking(true).ok()?;
        s.write_all(&script[..first]).ok()?;
        Some(s)
    });
    Slow {
        stream,
        script: script.to_vec(),
        sent: first,
    }
}

/// Sends the next byte; reopens a connection the proxy closed.
fn trickle(slow: &mut Slow, proxy: SocketAddr, first: usize, reopened: &mut u64) {
    let alive = slow.stream.as_mut().is_some_and(|s| {
        let mut scratch = [0u8; 512];
        // Anything readable is the proxy's answer (a 408) or its close.
        match s.read(&mut scratch) {
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                slow.sent < slow.script.len()
                    && s.write_all(&slow.script[slow.sent..slow.sent + 1]).is_ok()
            }
            Err(_) => false,
        }
    });
    if alive {
        slow.sent += 1;
    } else {
        *reopened += 1;
        let script = slow.script.clone();
        *slow = open(proxy, &script, first);
    }
}

fn timed_get(proxy: SocketAddr, origin: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let request = format!(
        "GET http://{origin}/ordinary HTTP/1.1\r\nHost: {origin}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    response
        .starts_with(b"HTTP/1.1 200")
        .then(|| started.elapsed())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .unwrap_or_else(|| "target/release/stage5".into());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);

    let origin = origin();
    let (mut child, proxy) = start_proxy(&binary);
    let head = format!(
        "GET http://{origin}/slow HTTP/1.1\r\nHost: {origin}\r\nX-Slow: {}\r\n\r\n",
        "z".repeat(4000)
    )
    .into_bytes();
    let body = format!(
        "POST http://{origin}/upload HTTP/1.1\r\nHost: {origin}\r\nContent-Length: 1000000\r\n\r\n{}",
        "b".repeat(100_000)
    )
    .into_bytes();
    let head_first = 10;
    let body_first = body.len() - 100_000;
    let mut heads: Vec<Slow> = (0..SLOW_HEADS)
        .map(|_| open(proxy, &head, head_first))
        .collect();
    let mut bodies: Vec<Slow> = (0..SLOW_BODIES)
        .map(|_| open(proxy, &body, body_first))
        .collect();
    println!(
        "{binary}: holding {SLOW_HEADS} slow heads (1 byte / 200 ms) and {SLOW_BODIES} slow bodies \
         (1 byte / s) for {seconds} s"
    );

    let (tx, rx) = std::sync::mpsc::channel();
    let measurer = thread::spawn(move || {
        let mut latencies = Vec::new();
        let mut failed = 0;
        let end = Instant::now() + Duration::from_secs(seconds);
        // Let the slow clients settle in first.
        thread::sleep(Duration::from_secs(2));
        while Instant::now() < end {
            match timed_get(proxy, origin) {
                Some(latency) => latencies.push(latency),
                None => failed += 1,
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = tx.send(());
        (latencies, failed)
    });

    let mut reopened = 0u64;
    let mut tick = 0u64;
    while rx.try_recv().is_err() {
        for slow in &mut heads {
            trickle(slow, proxy, head_first, &mut reopened);
        }
        if tick.is_multiple_of(5) {
            for slow in &mut bodies {
                trickle(slow, proxy, body_first, &mut reopened);
            }
        }
        tick += 1;
        thread::sleep(Duration::from_millis(200));
    }
    let (mut latencies, failed) = measurer.join().expect("the measuring thread");
    let _ = child.kill();
    let _ = child.wait();

    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    if latencies.is_empty() {
        println!("no GET was answered ({failed} failed)");
        std::process::exit(1);
    }
    let over = latencies
        .iter()
        .filter(|l| **l > Duration::from_millis(100))
        .count();
    println!(
        "GETs: {} answered, {failed} failed; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         {over} over 100 ms; slow connections reopened after the proxy closed them: {reopened}",
        latencies.len(),
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(pick(1.0)),
    );
    if over > 0 || failed > 0 {
        std::process::exit(1);
    }
}
