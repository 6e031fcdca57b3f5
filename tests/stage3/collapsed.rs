//! Collapsed forwarding: concurrent misses for one URI reach the origin
//! once, and the waiters are served from the stored response; when that
//! response may not be stored, each waiter asks the origin itself.
//!
//! The origin holds its first answer behind a gate until the test has seen,
//! on the proxy's stats page, every other request waiting: so the requests
//! are concurrent by construction, not by luck of timing.

use std::sync::Condvar;

use super::*;

const COLLAPSED: &str = "webproxy; fwd=miss; collapsed";

/// Holds origin answers until opened (or until a cap, so no test hangs).
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            let (next, timeout) = self
                .opened
                .wait_timeout(open, Duration::from_secs(20))
                .unwrap();
            open = next;
            if timeout.timed_out() {
                return;
            }
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// A bench with enough workers for every client and the stats page at once.
fn roomy_bench() -> Bench {
    let server = webproxy::server::Config {
        threads: 32,
        ..test_config()
    };
    Bench::with_server(CacheConfig::default(), server)
}

/// The proxy's figure `key` from its stats page (which closes the
/// connection after it).
fn figure(proxy: SocketAddr, key: &str) -> Option<u64> {
    let page = get(proxy, &format!("http://{proxy}/stats.json")).body_text();
    let at = page.find(&format!("\"{key}\": "))? + key.len() + 4;
    page[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Sends `n` GETs for `url` at once, each on its own connection, waits
/// until one reached the origin and the others wait in the proxy, then
/// opens the gate and returns the responses.
fn concurrent_gets(
    bench: &Bench,
    origin: &Origin,
    gate: &Gate,
    url: &str,
    n: usize,
) -> Vec<Response> {
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let (proxy, url) = (bench.proxy, url.to_string());
            thread::spawn(move || Client::connect(proxy).request(&Req::get(&url)))
        })
        .collect();
    let all_waiting = eventually(Duration::from_secs(10), || {
        let waiting = figure(bench.proxy, "cache_collapse_waiting");
        origin.hits() == 1 && waiting == Some(n as u64 - 1)
    });
    gate.open();
    assert!(all_waiting, "the requests did not line up behind one fetch");
    clients
        .into_iter()
        .map(|c| c.join().expect("a client panicked"))
        .collect()
}

// ANCHOR: collapsed_test
#[test]
fn twenty_concurrent_misses_reach_the_origin_once() {
    let bench = roomy_bench();
    let gate = Arc::new(Gate::default());
    let body = binary(64 * KIB, 20);
    let origin = bench.origin({
        let (gate, body) = (Arc::clone(&gate), body.clone());
        move |_| {
            gate.wait(); // a slow origin
            Reply::ok(body.clone()).header("Cache-Control", "max-age=60")
        }
    });
    let url = origin.url("/popular");
    let responses = concurrent_gets(&bench, &origin, &gate, &url, 20);
    let mut statuses: Vec<&str> = responses.iter().map(cache_status).collect();
    statuses.sort();
    assert_eq!(statuses[0], COLLAPSED);
    assert_eq!(statuses.iter().filter(|s| **s == COLLAPSED).count(), 19);
    assert!(statuses.contains(&MISS_STORED), "{statuses:?}");
    for response in &responses {
        assert_eq!(response.status, 200);
        assert!(response.body == body, "a waiter got another body");
    }
    assert_eq!(origin.hits(), 1, "the misses were not collapsed");
}
// ANCHOR_END: collapsed_test

#[test]
fn when_the_response_may_not_be_stored_each_waiter_asks_the_origin() {
    let bench = roomy_bench();
    let gate = Arc::new(Gate::default());
    let served = Arc::new(AtomicUsize::new(0));
    let origin = bench.origin({
        let (gate, served) = (Arc::clone(&gate), Arc::clone(&served));
        move |_| {
            gate.wait();
            let n = served.fetch_add(1, Ordering::SeqCst);
            Reply::ok(format!("for request {n}")).header("Cache-Control", "private, max-age=60")
        }
    });
    let url = origin.url("/mine");
    let responses = concurrent_gets(&bench, &origin, &gate, &url, 5);
    let went_alone = responses
        .iter()
        .filter(|r| cache_status(r) == "webproxy; fwd=miss; collapsed=?0")
        .count();
    assert_eq!(went_alone, 4);
    for response in &responses {
        assert_eq!(response.status, 200);
        assert!(response.body_text().starts_with("for request"));
    }
    // Five different answers: nobody got another client's private one.
    let mut bodies: Vec<String> = responses.iter().map(Response::body_text).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 5);
    assert_eq!(origin.hits(), 5);
}
