//! The cache directory end to end: what the store writes, a restarted store
//! reads back.
//!
//! These tests need both the store ([`super::store::Cache`]) and the files of
//! [`super::disk`], so they live beside both rather than in the disk module,
//! which must not depend on the store above it. They check the promises of
//! `--cache-dir`: memory stays the truth (one file per entry, no orphans,
//! even when writers race), a restart keeps the newest entries that fit, and
//! a damaged or misnamed file is deleted, never served (RFC 9111 §3.3: a
//! cache must not serve a response it did not receive whole).

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::clock::ManualClock;
use super::disk::file_name;
use super::store::{Cache, CacheConfig, entry_bytes};
use super::variant::{StoredResponse, variant_id};
use crate::headers::Headers;
use crate::test_util::TempDir;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn sample(body: &[u8], at: u64) -> StoredResponse {
    let mut h = Headers::new();
    h.append("Content-Type", "text/plain");
    h.append("Set-Cookie", "a=1");
    h.append("Set-Cookie", "b=2");
    h.append("Vary", "Accept-Encoding, Accept");
    h.append("X-Bin", &b"\xff\x00\n"[..]);
    let mut req = Headers::new();
    req.append("Accept-Encoding", "gzip");
    let mut r = StoredResponse::new(200, "OK", h, body.to_vec(), &req, t(at), t(at));
    r.request_time = t(at) - Duration::from_millis(250);
    r
}

fn config(dir: &Path, max_bytes: usize) -> CacheConfig {
    CacheConfig {
        max_bytes,
        max_object_bytes: 100_000,
        dir: Some(dir.to_path_buf()),
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t(0)))
}

#[test]
fn restart_reloads_what_was_stored() {
    let dir = TempDir::new("reload");
    let key = "http://a.test:80/page";
    {
        let c = Cache::new(config(&dir.0, 1_000_000), clock()).unwrap();
        assert!(c.insert(key, sample(b"persisted", 3)));
    }
    let c = Cache::new(config(&dir.0, 1_000_000), clock()).unwrap();
    assert_eq!(c.stats().loaded, 1);
    let mut req = Headers::new();
    req.append("Accept-Encoding", "gzip");
    let got = c.lookup(key, &req).unwrap();
    assert_eq!(*got, sample(b"persisted", 3));
}

#[test]
fn corrupt_and_truncated_files_are_removed_and_ignored() {
    let dir = TempDir::new("corrupt");
    {
        let c = Cache::new(config(&dir.0, 1_000_000), clock()).unwrap();
        c.insert("http://a.test:80/flip", sample(b"flip me", 1));
        c.insert("http://a.test:80/cut", sample(b"cut me", 2));
        c.insert("http://a.test:80/good", sample(b"good", 3));
    }
    let file_of = |key: &str| {
        let r = sample(b"", 0);
        dir.0.join(file_name(variant_id(key, &r.vary)))
    };
    let flip = file_of("http://a.test:80/flip");
    let mut bytes = fs::read(&flip).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(&flip, bytes).unwrap();
    let cut = file_of("http://a.test:80/cut");
    let bytes = fs::read(&cut).unwrap();
    fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    // Debris from an interrupted write, and a file that is not ours.
    fs::write(dir.0.join("0123456789abcdef.wpc.tmp"), b"half").unwrap();
    fs::write(dir.0.join("notes.txt"), b"keep me").unwrap();

    let c = Cache::new(config(&dir.0, 1_000_000), clock()).unwrap();
    assert_eq!(c.len(), 1);
    let mut req = Headers::new();
    req.append("Accept-Encoding", "gzip");
    assert!(c.lookup("http://a.test:80/good", &req).is_some());
    assert!(c.lookup("http://a.test:80/flip", &req).is_none());
    assert!(!flip.exists() && !cut.exists());
    assert!(!dir.0.join("0123456789abcdef.wpc.tmp").exists());
    assert!(dir.0.join("notes.txt").exists());
}

#[test]
fn a_renamed_file_is_rejected() {
    let dir = TempDir::new("renamed");
    {
        let c = Cache::new(config(&dir.0, 1_000_000), clock()).unwrap();
        c.insert("http://a.test:80/a", sample(b"a", 1));
    }
    let from = fs::read_dir(&dir.0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let to = dir.0.join(file_name(12345));
    fs::rename(&from, &to).unwrap();
    let c = Cache::new(config(&dir.0, 1_000_000), clock()).unwrap();
    assert!(c.is_empty());
    assert!(!to.exists());
}

#[test]
fn restart_keeps_the_newest_within_the_limit() {
    let dir = TempDir::new("limits");
    let keys = [
        "http://a.test:80/1",
        "http://a.test:80/2",
        "http://a.test:80/3",
    ];
    let one = entry_bytes(keys[0], &sample(&[7; 500], 0));
    {
        let c = Cache::new(config(&dir.0, 10 * one), clock()).unwrap();
        for (i, k) in keys.iter().enumerate() {
            c.insert(k, sample(&[7; 500], i as u64));
        }
    }
    // Restart with room for two: /1 (the oldest response) must go.
    let c = Cache::new(config(&dir.0, 2 * one), clock()).unwrap();
    let mut req = Headers::new();
    req.append("Accept-Encoding", "gzip");
    assert!(c.lookup(keys[0], &req).is_none());
    assert!(c.lookup(keys[1], &req).is_some());
    assert!(c.lookup(keys[2], &req).is_some());
    let files = fs::read_dir(&dir.0).unwrap().count();
    assert_eq!(files, 2, "the entry that did not fit is deleted");
}

#[test]
fn racing_inserts_and_evictions_leave_disk_equal_to_memory() {
    let dir = TempDir::new("race");
    let one = entry_bytes("http://a.test:80/00", &sample(&[1; 200], 0));
    let c = Arc::new(Cache::new(config(&dir.0, 5 * one), clock()).unwrap());
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for i in 0..40u64 {
                    let key = format!("http://a.test:80/{:02}", (i * 7 + w) % 12);
                    c.insert(&key, sample(&[w as u8; 200], i));
                    if i % 5 == 0 {
                        c.invalidate(&key);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let files = fs::read_dir(&dir.0).unwrap().count();
    assert_eq!(files, c.len(), "one file per entry, no orphans");
    let reloaded = Cache::new(config(&dir.0, 5 * one), clock()).unwrap();
    assert_eq!(reloaded.len(), c.len());
}

#[test]
fn eviction_and_invalidation_remove_files() {
    let dir = TempDir::new("evict");
    let one = entry_bytes("http://a.test:80/1", &sample(&[1; 100], 0));
    let c = Cache::new(config(&dir.0, 2 * one), clock()).unwrap();
    for i in 1..=3 {
        c.insert(&format!("http://a.test:80/{i}"), sample(&[1; 100], i));
    }
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 2);
    assert_eq!(c.invalidate("http://a.test:80/3"), 1);
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);
}
