//! For CONNECT tunnels (stage 4): an echo server to tunnel to, and a client
//! helper that opens a tunnel through the proxy.
//!
//! Behind a tunnel there is no HTTP, only bytes, so the far end is an echo
//! server: every byte it reads goes straight back. It records, per
//! connection, how many bytes arrived, their hash and whether it saw end of
//! file, so a test can check the upstream direction on its own. Started
//! with [`EchoServer::with_farewell`], it also writes one more line *after*
//! the client's end of file, which is how a test sees a reply that crosses a
//! half-closed tunnel.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::client::{Client, Req, Response};

/// How long an echo connection waits for bytes before giving up.
const ECHO_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What one echo connection has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EchoConn {
    /// Bytes read from the proxy (and written back).
    pub received: u64,
    /// FNV-1a of those bytes, see [`fnv1a`].
    pub hash: u64,
    /// The proxy passed on an end of file (or closed).
    pub saw_eof: bool,
}

/// FNV-1a over `data`, starting from the empty hash: the value does not
/// depend on how the bytes were split into reads.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    fnv_update(&mut hash, data);
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv_update(hash: &mut u64, data: &[u8]) {
    for &b in data {
        *hash = (*hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
}

/// The line a farewell echo server sends after end of file.
pub fn farewell(received: u64) -> Vec<u8> {
    format!("echo: end of file after {received} bytes\n").into_bytes()
}

struct EchoState {
    conns: Vec<EchoConn>,
    shutdown: bool,
}

struct EchoShared {
    state: Mutex<EchoState>,
    changed: Condvar,
    farewell: bool,
}

impl EchoShared {
    fn lock(&self) -> MutexGuard<'_, EchoState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, id: usize, f: impl FnOnce(&mut EchoConn)) {
        f(&mut self.lock().conns[id]);
        self.changed.notify_all();
    }
}

/// A TCP echo server on 127.0.0.1; stops accepting when dropped.
pub struct EchoServer {
    addr: SocketAddr,
    shared: Arc<EchoShared>,
    acceptor: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Echoes every byte; at end of file it shuts down its sending side.
    pub fn start() -> EchoServer {
        EchoServer::spawn(false)
    }

    /// Echoes every byte; at end of file it then sends [`farewell`] before
    /// shutting down its sending side.
    pub fn with_farewell() -> EchoServer {
        EchoServer::spawn(true)
    }

    fn spawn(farewell: bool) -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo server");
        let addr = listener.local_addr().expect("echo address");
        let shared = Arc::new(EchoShared {
            state: Mutex::new(EchoState {
                conns: Vec::new(),
                shutdown: false,
            }),
            changed: Condvar::new(),
            farewell,
        });
        let accept_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("echo-accept".into())
            .spawn(move || echo_accept_loop(listener, accept_shared))
            .expect("spawn the echo server");
        EchoServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`: the authority-form target of a CONNECT.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.lock().conns.len()
    }

    /// What connection `i` (in accept order) has seen; panics if there is
    /// no such connection.
    pub fn conn(&self, i: usize) -> EchoConn {
        self.shared.lock().conns[i].clone()
    }

    /// Waits until `check` holds for the connections; false on timeout.
    pub fn wait_for(&self, timeout: Duration, check: impl Fn(&[EchoConn]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while !check(&state.conns) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Waits until connection `i` has seen end of file (or was closed);
    /// false on timeout.
    pub fn wait_for_eof(&self, i: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |c| c.get(i).is_some_and(|c| c.saw_eof))
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn echo_accept_loop(listener: TcpListener, shared: Arc<EchoShared>) {
    for stream in listener.incoming() {
        let id = {
            let mut state = shared.lock();
            if state.shutdown {
                return;
            }
            state.conns.push(EchoConn {
                hash: FNV_OFFSET,
                ..EchoConn::default()
            });
            state.conns.len() - 1
        };
        shared.changed.notify_all();
        let Ok(stream) = stream else { continue };
        let conn_shared = Arc::clone(&shared);
        let _ = thread::Builder::new()
            .name(format!("echo-conn-{id}"))
            .spawn(move || echo_connection(stream, id, &conn_shared));
    }
}

fn echo_connection(mut stream: TcpStream, id: usize, shared: &EchoShared) {
    let _ = stream.set_read_timeout(Some(ECHO_IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(ECHO_IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut received, mut hash) = (0u64, FNV_OFFSET);
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                received += n as u64;
                fnv_update(&mut hash, &buf[..n]);
                shared.update(id, |c| {
                    c.received = received;
                    c.hash = hash;
                });
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            // A reset or a timeout ends the connection like end of file.
            Err(_) => break,
        }
    }
    shared.update(id, |c| c.saw_eof = true);
    if shared.farewell {
        let _ = stream.write_all(&farewell(received));
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// The raw CONNECT request for `authority`, with a Host field.
pub fn connect_request(authority: &str) -> Req {
    Req::new("CONNECT", authority).host(authority)
}

/// Sends `CONNECT authority` to the proxy on a new connection and reads the
/// answer. On a 2xx the client is a tunnel: the bytes it sends and reads
/// from now on are the far end's.
pub fn open_tunnel(proxy: SocketAddr, authority: &str) -> (Client, Response) {
    let mut client = Client::connect(proxy);
    let response = client.request(&connect_request(authority));
    (client, response)
}

/// Sends `bytes` through a tunnel to an echo server and checks that the
/// same bytes come back.
pub fn assert_echoes(client: &mut Client, bytes: &[u8]) {
    client.send(bytes);
    let back = client.read_bytes(bytes.len());
    assert!(back == bytes, "the echo came back changed");
}
