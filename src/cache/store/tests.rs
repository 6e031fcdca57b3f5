//! Unit tests of the store: lookups, Vary, LRU eviction, size limits,
//! invalidation and freshening, without a network or a disk.

use super::*;
use crate::cache::clock::ManualClock;
use std::time::{Duration, UNIX_EPOCH};

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn headers(lines: &[(&str, &str)]) -> Headers {
    let mut h = Headers::new();
    for (n, v) in lines {
        h.append(n, *v);
    }
    h
}

fn response(body: &[u8], resp: &[(&str, &str)], req: &[(&str, &str)], at: u64) -> StoredResponse {
    StoredResponse::new(
        200,
        "OK",
        headers(resp),
        body.to_vec(),
        &headers(req),
        t(at),
        t(at),
    )
}

fn cache(max_bytes: usize, max_object_bytes: usize) -> Cache {
    let config = CacheConfig {
        max_bytes,
        max_object_bytes,
        dir: None,
    };
    Cache::new(config, Arc::new(ManualClock::new(t(0)))).unwrap()
}

#[test]
fn insert_then_lookup() {
    let c = cache(10_000, 10_000);
    assert!(c.lookup("http://a.test:80/", &Headers::new()).is_none());
    assert!(c.insert("http://a.test:80/", response(b"hello", &[], &[], 0)));
    let got = c.lookup("http://a.test:80/", &Headers::new()).unwrap();
    assert_eq!(&*got.body, b"hello");
    assert!(c.lookup("http://a.test:80/?q", &Headers::new()).is_none());
    let s = c.stats();
    assert_eq!((s.entries, s.found, s.missed, s.inserted), (1, 1, 2, 1));
}

#[test]
fn vary_keeps_variants_apart() {
    let c = cache(10_000, 10_000);
    let key = "http://a.test:80/v";
    let vary = [("Vary", "Accept-Encoding")];
    c.insert(
        key,
        response(b"gzip", &vary, &[("Accept-Encoding", "gzip")], 0),
    );
    c.insert(key, response(b"plain", &vary, &[], 1));
    assert_eq!(c.len(), 2);
    let gz = c
        .lookup(key, &headers(&[("accept-encoding", "  gzip ")]))
        .unwrap();
    assert_eq!(&*gz.body, b"gzip");
    let plain = c.lookup(key, &Headers::new()).unwrap();
    assert_eq!(&*plain.body, b"plain");
    assert!(
        c.lookup(key, &headers(&[("Accept-Encoding", "br")]))
            .is_none()
    );
    // An empty value is present, so it does not match "absent".
    assert!(
        c.lookup(key, &headers(&[("Accept-Encoding", "")]))
            .is_none()
    );
}

#[test]
fn vary_star_never_matches() {
    let stored = response(b"x", &[("Vary", "*")], &[], 0);
    assert!(!vary_matches(&stored, &Headers::new()));
    let c = cache(10_000, 10_000);
    c.insert("http://a.test:80/", stored);
    assert!(c.lookup("http://a.test:80/", &Headers::new()).is_none());
}

#[test]
fn same_variant_is_replaced() {
    let c = cache(10_000, 10_000);
    let key = "http://a.test:80/";
    c.insert(key, response(b"old", &[], &[], 0));
    c.insert(key, response(b"new", &[], &[], 5));
    assert_eq!(c.len(), 1);
    assert_eq!(&*c.lookup(key, &Headers::new()).unwrap().body, b"new");
    let expected = entry_bytes(key, &response(b"new", &[], &[], 5));
    assert_eq!(c.bytes(), expected);
}

// ANCHOR: lru_test
#[test]
fn lru_evicts_least_recently_used_and_reads_count_as_use() {
    let one = entry_bytes("http://a.test:80/1", &response(&[b'x'; 100], &[], &[], 0));
    // Room for exactly three entries of this size.
    let c = cache(3 * one, one);
    for i in 1..=3 {
        assert!(c.insert(
            &format!("http://a.test:80/{i}"),
            response(&[b'x'; 100], &[], &[], i)
        ));
    }
    // Reading /1 makes /2 the least recently used.
    assert!(c.lookup("http://a.test:80/1", &Headers::new()).is_some());
    c.insert("http://a.test:80/4", response(&[b'x'; 100], &[], &[], 4));
    assert!(c.lookup("http://a.test:80/2", &Headers::new()).is_none());
    for kept in [1, 3, 4] {
        assert!(
            c.lookup(&format!("http://a.test:80/{kept}"), &Headers::new())
                .is_some()
        );
    }
    assert_eq!(c.bytes(), 3 * one);
    assert_eq!(c.stats().evicted, 1);
}
// ANCHOR_END: lru_test

#[test]
fn objects_over_the_limit_are_not_stored() {
    let small = entry_bytes("http://a.test:80/", &response(b"", &[], &[], 0));
    let c = cache(100_000, small + 10);
    assert!(c.insert("http://a.test:80/", response(&[0; 10], &[], &[], 0)));
    assert!(!c.insert("http://a.test:80/", response(&[0; 11], &[], &[], 0)));
    assert_eq!(c.stats().too_large, 1);
    // The refused insert leaves the earlier entry alone.
    assert_eq!(
        c.lookup("http://a.test:80/", &Headers::new())
            .unwrap()
            .body
            .len(),
        10
    );
}

#[test]
fn an_object_larger_than_the_cache_is_refused_before_anything_is_evicted() {
    let one = entry_bytes("http://a.test:80/1", &response(&[b'x'; 100], &[], &[], 0));
    // The per-object limit would let it in; the whole budget cannot.
    let c = cache(2 * one, 10 * one);
    for i in 1..=2 {
        assert!(c.insert(
            &format!("http://a.test:80/{i}"),
            response(&[b'x'; 100], &[], &[], i)
        ));
    }
    assert!(!c.insert("http://a.test:80/big", response(&[b'x'; 300], &[], &[], 3)));
    let s = c.stats();
    assert_eq!((s.too_large, s.evicted, s.entries), (1, 0, 2));
    assert_eq!(c.bytes(), 2 * one);
    // An entry exactly the size of the budget fits, alone.
    let whole = cache(one, 10 * one);
    assert!(whole.insert("http://a.test:80/1", response(&[b'x'; 100], &[], &[], 0)));
    assert_eq!(whole.bytes(), one);
    for kept in [1, 2] {
        assert!(
            c.lookup(&format!("http://a.test:80/{kept}"), &Headers::new())
                .is_some()
        );
    }
}

#[test]
fn replacing_or_evicting_one_variant_keeps_the_others() {
    let key = "http://a.test:80/v";
    let vary = [("Vary", "Accept-Language")];
    let en = || response(b"english", &vary, &[("Accept-Language", "en")], 0);
    let fr = || response(b"french", &vary, &[("Accept-Language", "fr")], 1);
    let c = cache(10_000, 10_000);
    c.insert(key, en());
    c.insert(key, fr());
    // A newer English answer replaces the old one, and only that one.
    c.insert(
        key,
        response(b"english 2", &vary, &[("Accept-Language", "en")], 2),
    );
    assert_eq!(c.len(), 2);
    let lookup = |lang: &str| {
        c.lookup(key, &headers(&[("Accept-Language", lang)]))
            .map(|r| r.body.to_vec())
    };
    assert_eq!(lookup("fr").as_deref(), Some(&b"french"[..]));
    assert_eq!(lookup("en").as_deref(), Some(&b"english 2"[..]));
    let both = entry_bytes(key, &fr())
        + entry_bytes(
            key,
            &response(b"english 2", &vary, &[("Accept-Language", "en")], 2),
        );
    assert_eq!(c.bytes(), both);

    // With room for one variant, the older one is evicted and the newer
    // one is still found under the same key.
    let small = cache(entry_bytes(key, &fr()) + 10, 10_000);
    small.insert(key, en());
    small.insert(key, fr());
    assert_eq!(small.len(), 1);
    assert_eq!(small.stats().evicted, 1);
    assert!(
        small
            .lookup(key, &headers(&[("Accept-Language", "fr")]))
            .is_some()
    );
    assert_eq!(small.invalidate(key), 1);
    assert_eq!(small.bytes(), 0);
}

#[test]
fn invalidate_removes_every_variant() {
    let c = cache(10_000, 10_000);
    let key = "http://a.test:80/x";
    let vary = [("Vary", "Accept")];
    c.insert(key, response(b"1", &vary, &[("Accept", "a")], 0));
    c.insert(key, response(b"2", &vary, &[("Accept", "b")], 0));
    c.insert("http://a.test:80/y", response(b"3", &[], &[], 0));
    assert_eq!(c.invalidate(key), 2);
    assert_eq!(c.invalidate(key), 0);
    assert_eq!(c.len(), 1);
    assert_eq!(c.stats().invalidated, 2);
    assert!(c.lookup(key, &headers(&[("Accept", "a")])).is_none());
}

#[test]
fn freshen_merges_headers_and_times() {
    let c = cache(10_000, 10_000);
    let key = "http://a.test:80/f";
    let stored = response(
        b"body",
        &[
            ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("ETag", "\"v1\""),
            ("Cache-Control", "max-age=60"),
            ("X-Kept", "yes"),
            ("Content-Length", "4"),
            ("Age", "30"),
        ],
        &[],
        0,
    );
    c.insert(key, stored);
    let old = c.lookup(key, &Headers::new()).unwrap();
    let not_modified = headers(&[
        ("Date", "Tue, 14 Nov 2023 22:23:20 GMT"),
        ("ETag", "\"v1\""),
        ("cache-control", "max-age=120"),
        ("Content-Length", "0"),
        ("Connection", "close"),
    ]);
    let new = c.freshen(key, &old, &not_modified, t(600), t(601)).unwrap();
    assert_eq!(new.headers.get_str("Cache-Control"), Some("max-age=120"));
    assert_eq!(
        new.headers.get_str("Date"),
        Some("Tue, 14 Nov 2023 22:23:20 GMT")
    );
    assert_eq!(new.headers.get_str("X-Kept"), Some("yes"));
    assert_eq!(new.headers.get_str("Content-Length"), Some("4"));
    assert!(!new.headers.contains("Connection"));
    assert!(!new.headers.contains("Age"), "the old Age must not survive");
    assert_eq!(new.response_time, t(601));
    assert_eq!(&*new.body, b"body");
    // The store now holds the freshened copy.
    let again = c.lookup(key, &Headers::new()).unwrap();
    assert!(Arc::ptr_eq(&again, &new));
    // Field order is kept: Date still comes first.
    assert_eq!(new.headers.iter().next().unwrap().name, "Date");
}

#[test]
fn freshen_refuses_another_representation() {
    let c = cache(10_000, 10_000);
    let key = "http://a.test:80/f";
    c.insert(key, response(b"b", &[("ETag", "\"v1\"")], &[], 0));
    let old = c.lookup(key, &Headers::new()).unwrap();
    let other = headers(&[("ETag", "\"v2\"")]);
    assert!(c.freshen(key, &old, &other, t(1), t(1)).is_none());
}

#[test]
fn freshen_keeps_a_newer_response() {
    let c = cache(10_000, 10_000);
    let key = "http://a.test:80/f";
    c.insert(key, response(b"old", &[], &[], 0));
    let old = c.lookup(key, &Headers::new()).unwrap();
    c.insert(key, response(b"newer", &[], &[], 5));
    let served = c.freshen(key, &old, &Headers::new(), t(6), t(6)).unwrap();
    assert_eq!(&*served.body, b"old");
    assert_eq!(&*c.lookup(key, &Headers::new()).unwrap().body, b"newer");
}

#[test]
fn cache_is_shared_between_threads() {
    let c = Arc::new(cache(1_000_000, 10_000));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let key = format!("http://a.test:80/{}", i % 10);
                    if c.lookup(&key, &Headers::new()).is_none() {
                        c.insert(&key, response(format!("{w}").as_bytes(), &[], &[], i));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(c.len(), 10);
}

#[test]
fn discard_drops_only_the_variant_it_was_given() {
    let c = cache(10_000, 10_000);
    let key = "http://a.test:80/d";
    c.insert(key, response(b"old", &[], &[], 0));
    let old = c.lookup(key, &Headers::new()).unwrap();
    c.insert(key, response(b"newer", &[], &[], 5));
    assert!(!c.discard(key, &old), "a newer response replaced it");
    let newer = c.lookup(key, &Headers::new()).unwrap();
    assert!(c.discard(key, &newer));
    assert!(c.lookup(key, &Headers::new()).is_none());
}
