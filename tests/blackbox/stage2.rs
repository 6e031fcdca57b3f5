//! Stage 2: every method, request bodies, persistent connections, and many
//! clients at once. Bodies are relayed by their framing (RFC 9112 §6), HEAD
//! responses have none (RFC 9110 §9.3.2), a connection stays open unless a
//! side says `close` (RFC 9112 §9.3), and a slow origin holds up only its
//! own client.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::common::*;
use crate::subject::{PATIENCE, run};

#[test]
fn head_has_no_body_and_the_connection_goes_on() {
    run(2, |target| {
        let body = text(5000);
        let origin = Origin::fixed(Reply::ok(body.clone()));
        let proxy = target.start(&Default::default());
        let mut client = proxy.connect();
        let head = client.request(&Req::new("HEAD", &origin.url("/doc")));
        head.expect_status(200);
        head.expect(!head.says_close(), "the proxy closed after a HEAD");
        client
            .request(&Req::get(&origin.url("/doc")))
            .expect_status(200)
            .expect_body(&body);
    });
}

#[test]
fn relays_a_post_body() {
    run(2, |target| {
        let origin = Origin::start(|r| Reply::with_status(201, format!("{} bytes", r.body.len())));
        let proxy = target.start(&Default::default());
        let body = binary(10 * KIB, 4);
        let req = Req::new("POST", &origin.url("/upload")).body(body.clone());
        proxy
            .request(&req)
            .expect_status(201)
            .expect_body(b"10240 bytes");
        let seen = origin.last_request();
        assert_eq!(seen.method, "POST");
        assert!(seen.body == body, "the request body changed on its way");
    });
}

#[test]
fn relays_a_chunked_request_body() {
    run(2, |target| {
        let origin = Origin::start(|r| Reply::with_status(201, format!("{} bytes", r.body.len())));
        let proxy = target.start(&Default::default());
        let chunks = vec![b"one ".to_vec(), binary(3000, 5), b" three".to_vec()];
        let req = Req::new("PUT", &origin.url("/put")).chunked(chunks.clone());
        proxy.request(&req).expect_status(201);
        assert!(
            origin.last_request().body == chunks.concat(),
            "the origin did not get the decoded request body"
        );
    });
}

#[test]
fn two_requests_on_one_connection() {
    run(2, |target| {
        let origin = Origin::start(|r| Reply::ok(format!("this is {}", r.path())));
        let proxy = target.start(&Default::default());
        let mut client = proxy.connect();
        let first = client.request(&Req::get(&origin.url("/one")));
        first.expect_status(200).expect_body(b"this is /one");
        first.expect(
            !first.says_close(),
            "the proxy closed a persistent connection after one response",
        );
        client
            .request(&Req::get(&origin.url("/two")))
            .expect_status(200)
            .expect_body(b"this is /two");
    });
}

#[test]
fn connection_close_from_the_client_is_honoured() {
    run(2, |target| {
        let origin = Origin::fixed(Reply::ok("bye"));
        let proxy = target.start(&Default::default());
        let mut client = proxy.connect();
        let req = Req::get(&origin.url("/last")).header("Connection", "close");
        client.request(&req).expect_status(200).expect_body(b"bye");
        client.assert_closed();
    });
}

/// Holds an origin's answer until the test opens it (or drops it).
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, changed) = &*self.0;
        let open = open.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded, so that no origin thread outlives a failed test by long.
        let _ = changed.wait_timeout_while(open, Duration::from_secs(30), |open| !*open);
    }

    fn open(&self) {
        *self.0.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.1.notify_all();
    }
}

/// Opens the gate when the test ends, passed or failed.
struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

#[test]
fn a_slow_origin_does_not_block_another_client() {
    run(2, |target| {
        let gate = Gate::default();
        let held = gate.clone();
        let origin = Origin::start(move |r| {
            if r.path() == "/slow" {
                held.wait();
                Reply::ok("slow")
            } else {
                Reply::ok("fast")
            }
        });
        let _open = OpenOnDrop(gate.clone());
        let proxy = target.start(&Default::default());
        let mut slow = proxy.connect();
        slow.send(Req::get(&origin.url("/slow")).to_bytes());
        assert!(
            origin.wait_for_hits(1, PATIENCE),
            "the first request never reached the origin"
        );
        // The origin is still thinking about /slow: another client must
        // get its answer meanwhile.
        proxy
            .get(&origin.url("/fast"))
            .expect_status(200)
            .expect_body(b"fast");
        gate.open();
        slow.read_response().expect_status(200).expect_body(b"slow");
    });
}
