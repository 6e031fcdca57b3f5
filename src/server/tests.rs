//! Unit tests of the server: the read-wait rule, and `next_request`
//! called directly on one client connection.

use super::*;
use crate::handler::Relay;
use std::io::Write;

/// A server's shared state with one worker, and a client connection
/// to it: `next_request` called directly, without the accept loop.
fn one_client() -> (ThreadPool, Client, TcpStream) {
    let config = Config {
        threads: 1,
        ..Config::default()
    };
    let pool = ThreadPool::new(1, 4).expect("pool");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let shared = Arc::new(Shared {
        pool: pool.handle(),
        active: AtomicUsize::new(1),
        local_addr: listener.local_addr().expect("address"),
        upstream: Pool::new(config.upstream.clone(), config.timeouts),
        per_client: PerClient::new(4),
        handler: Box::new(Relay),
        shutdown: Shutdown::new(),
        counters: Counters::new(),
        room: OnceLock::new(),
        config,
    });
    let peer = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    peer.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let (stream, _) = listener.accept().expect("accept");
    let client = Client {
        conn: Conn::new(stream),
        peer: None,
        idle_since: Instant::now(),
        head_since: None,
        _slot: Slot { shared },
        _place: None,
    };
    (pool, client, peer)
}

fn shared(client: &Client) -> Arc<Shared> {
    Arc::clone(&client._slot.shared)
}

#[test]
fn next_request_reads_once_then_parks_a_partial_head() {
    // More of a head than one read takes (the buffer starts at 8 KiB),
    // and no end: one read, then the rest is the room's business. A
    // worker that read on would be held by a client that keeps sending.
    let (_pool, mut client, mut peer) = one_client();
    let mut head = b"GET http://a.test/ HTTP/1.1\r\nX-Long: ".to_vec();
    head.resize(30_000, b'a');
    peer.write_all(&head).expect("send");
    let shared = shared(&client);
    assert!(matches!(next_request(&shared, &mut client), Next::Park));
    let read = client.conn.buffered().len();
    assert!(
        read > 0 && read < head.len(),
        "read {read} of {} bytes",
        head.len()
    );
    assert!(client.head_since.is_some(), "the head's clock starts");
}

#[test]
fn next_request_closes_a_connection_the_client_reset() {
    // A reset is not a timeout: nothing will ever come, so the
    // connection closes instead of waiting in the room.
    let (_pool, mut client, peer) = one_client();
    let socket = peer.as_raw_fd();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a value of the size
    // we pass.
    let set = unsafe {
        libc::setsockopt(
            socket,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_LINGER");
    drop(peer); // with linger 0: a reset, not a FIN
    let shared = shared(&client);
    assert!(matches!(next_request(&shared, &mut client), Next::Close));
}

#[test]
fn a_worker_lingers_only_for_an_idle_client_nobody_waits_behind() {
    assert_eq!(read_wait(false, 0), LINGER);
    // Part of a head has come: the rest waits in the room.
    assert_eq!(read_wait(true, 0), BRIEF);
    // Others wait for a worker: this one must not keep it.
    assert_eq!(read_wait(false, 1), BRIEF);
    assert_eq!(read_wait(true, 3), BRIEF);
}
