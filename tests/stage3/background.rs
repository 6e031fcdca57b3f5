//! stale-while-revalidate (RFC 5861 §3): inside the window a stale entry is
//! served at once while one background request revalidates it; outside the
//! window the client waits for the validation as usual.

use std::sync::Condvar;

use super::*;

const SERVED_STALE: &str = "webproxy; hit; fwd=stale";

/// Holds the origin's answers to validations until opened.
#[derive(Default)]
struct Hold {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Hold {
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

/// An origin whose first answer is version 1, with a 30 s window, and
/// whose validations (held until `hold` opens) confirm it as version 2.
fn swr_origin(bench: &Bench, hold: &Arc<Hold>) -> Origin {
    let hold = Arc::clone(hold);
    bench.origin(move |request| {
        let reply = if request.header("If-None-Match") == Some("\"s1\"") {
            hold.wait();
            Reply::with_status(304, "").header("X-Version", "2")
        } else {
            Reply::ok("version one").header("X-Version", "1")
        };
        reply
            .header("Cache-Control", "max-age=60, stale-while-revalidate=30")
            .header("ETag", "\"s1\"")
    })
}

fn background_started(bench: &Bench) -> String {
    let page = bench.get(&format!("http://{}/stats.json", bench.proxy));
    let text = page.body_text();
    let at = text
        .find("\"cache_background_revalidations\": ")
        .expect("the figure is on the page");
    text[at..]
        .split([',', '\n'])
        .next()
        .unwrap_or("")
        .to_string()
}

// ANCHOR: swr_test
#[test]
fn stale_while_revalidate_answers_at_once_and_revalidates_once_in_the_background() {
    let bench = Bench::new();
    let hold = Arc::new(Hold::default());
    let origin = swr_origin(&bench, &hold);
    let url = origin.url("/feed");
    assert_eq!(cache_status(&bench.get(&url)), MISS_STORED);

    bench.advance(70); // 10 s stale: inside the 30 s window
    // The origin holds its answer, yet every request is answered at once
    // from the stale entry, and only one validation goes out.
    for _ in 0..5 {
        let stale = bench.get(&url);
        assert_eq!(stale.status, 200);
        assert_eq!(cache_status(&stale), SERVED_STALE);
        assert_eq!(stale.header("Age"), Some("70"));
        assert_eq!(stale.body, b"version one");
    }
    assert!(origin.wait_for_hits(2, Duration::from_secs(5)));
    assert_eq!(
        origin.last_request().header("If-None-Match"),
        Some("\"s1\"")
    );
    assert_eq!(
        background_started(&bench),
        "\"cache_background_revalidations\": 1"
    );

    // The 304 arrives; the entry is fresh again and carries its fields.
    hold.open();
    let freshened = eventually(Duration::from_secs(5), || {
        cache_status(&bench.get(&url)) == HIT
    });
    assert!(freshened, "the background revalidation never landed");
    let hit = bench.get(&url);
    assert_eq!(
        (hit.header("X-Version"), hit.header("Age")),
        (Some("2"), Some("0"))
    );
    assert_eq!(origin.hits(), 2);
    assert_eq!(
        background_started(&bench),
        "\"cache_background_revalidations\": 1"
    );
}
// ANCHOR_END: swr_test

#[test]
fn outside_the_window_the_client_waits_for_the_validation() {
    let bench = Bench::new();
    let hold = Arc::new(Hold::default());
    hold.open();
    let origin = swr_origin(&bench, &hold);
    let url = origin.url("/feed");
    bench.get(&url);
    bench.advance(91); // 31 s stale: past the window
    let checked = bench.get(&url);
    assert_eq!(cache_status(&checked), REVALIDATED);
    assert_eq!(checked.header("X-Version"), Some("2"));
    // A client that asks for a fresh answer gets one, window or not.
    bench.advance(70);
    let asked = bench.request(&Req::get(&url).header("Cache-Control", "no-cache"));
    assert_eq!(cache_status(&asked), REVALIDATED);
    assert_eq!(
        background_started(&bench),
        "\"cache_background_revalidations\": 0"
    );
    assert_eq!(origin.hits(), 3);
}
