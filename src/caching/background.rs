//! Stale-while-revalidate: answer now, check with the origin afterwards
//! (RFC 5861 §3).
//!
//! `Cache-Control: max-age=60, stale-while-revalidate=30` says: fresh for
//! a minute, and for half a minute after that a cache may still answer with
//! it at once, provided it asks the origin in the background. The client
//! that happens to arrive first after expiry does not pay for the round
//! trip; the next one gets the revalidated response.
//!
//! The background work needs a thread of its own, since the worker that
//! served the stale response goes back to the server. Three rules keep it
//! in bounds:
//!
//! - at most one revalidation per stored variant at a time: a hundred
//!   requests for a stale entry start one, not a hundred (the in-flight set
//!   below, keyed by the variant's id);
//! - at most [`MAX_RUNNING`] at once for the whole proxy: when they are all
//!   busy, the request validates in the foreground, as without the
//!   directive, which is always allowed;
//! - the job reaches the origin on a connection of its own, through the
//!   same next hop as the request (a parent proxy, if there is one): the
//!   request's connector is only lent to the request, so the job gets a
//!   [`Connector::detached`] one. Every socket it opens has the proxy's
//!   timeouts, so a job ends even when the origin is silent.
//!
//! No lock is held during the exchange: the in-flight set is locked to
//! check and insert an id, and again to remove it.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use super::storing;
use crate::body::{self, BodyReader, Framing};
use crate::cache::control::RequestDirectives;
use crate::cache::not_modified::validators_agree;
use crate::cache::variant::variant_id;
use crate::cache::{Cache, Capture, StoredResponse, conditional, policy};
use crate::dial::Connector;
use crate::forward;
use crate::message::RequestHead;
use crate::uri::AbsoluteUri;

/// Background revalidations running at once, at most.
pub const MAX_RUNNING: usize = 4;

/// What became of a request to revalidate in the background.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// A job started for this entry.
    Now,
    /// One is already running for this entry: nothing more to do.
    Already,
    /// Too many are running: validate in the foreground instead.
    Busy,
}

/// The revalidations in flight, shared with their threads.
#[derive(Default)]
struct Running {
    ids: Mutex<HashSet<u64>>,
    started: AtomicU64,
}

impl Running {
    fn lock(&self) -> MutexGuard<'_, HashSet<u64>> {
        // A set updated by single inserts and removes is never half-done.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes its id from the in-flight set when the job ends, however it
/// ends (a panic included), so an entry is never locked out for good.
struct Finished {
    running: Arc<Running>,
    id: u64,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.running.lock().remove(&self.id);
    }
}

/// One revalidation: everything the job needs, owned, since it outlives
/// the request that started it.
pub struct Job {
    pub cache: Arc<Cache>,
    pub key: String,
    pub stored: Arc<StoredResponse>,
    /// The client's request as a GET: its fields select the variant.
    pub request: RequestHead,
    pub uri: AbsoluteUri,
    /// Where the job's connection comes from: the origin, or the parent.
    pub upstream: Box<dyn Connector>,
}

/// The caching layer's background revalidations.
#[derive(Default)]
pub struct Background {
    running: Arc<Running>,
}

impl Background {
    // ANCHOR: start
    /// Starts `job` on a thread of its own, unless one is running for the
    /// same entry or too many are running.
    pub fn start(&self, job: Job) -> Started {
        let id = variant_id(&job.key, &job.stored.vary);
        {
            let mut ids = self.running.lock();
            if ids.contains(&id) {
                return Started::Already;
            }
            if ids.len() >= MAX_RUNNING {
                return Started::Busy;
            }
            ids.insert(id);
        }
        let running = Arc::clone(&self.running);
        let spawned = thread::Builder::new()
            .name("revalidate".into())
            .spawn(move || {
                let _finished = Finished { running, id };
                job.run();
            });
        match spawned {
            Ok(_) => {
                self.running.started.fetch_add(1, Ordering::Relaxed);
                Started::Now
            }
            Err(e) => {
                log::warn!("cannot start a background revalidation: {e}");
                self.running.lock().remove(&id);
                Started::Busy
            }
        }
    }
    // ANCHOR_END: start

    /// Background revalidations started so far, for the stats page.
    pub fn started(&self) -> u64 {
        self.running.started.load(Ordering::Relaxed)
    }
}

impl Job {
    fn run(self) {
        match self.exchange() {
            Ok(done) => log::info!("{}: background revalidation: {done}", self.key),
            Err(why) => log::info!("{}: background revalidation failed: {why}", self.key),
        }
    }

    // ANCHOR: exchange
    /// Asks the origin about the stored response, as the foreground does
    /// (RFC 9111 §4.3.1), and stores what it learns: a 304 freshens the
    /// entry, a storable response replaces it. A server error leaves the
    /// stale entry as it was (it may still stand in, RFC 5861 §4); any other
    /// answer means the stored response is no longer the one to serve.
    fn exchange(&self) -> Result<&'static str, String> {
        let cache = &*self.cache;
        let mut fields = policy::own_request_fields(&self.request.headers);
        let validators = conditional::validation_fields(&self.stored);
        for f in &validators {
            fields.append(&f.name, f.value.clone());
        }
        let request_time = cache.clock().now();
        let mut upstream = self
            .upstream
            .fresh(&self.uri.authority)
            .map_err(|e| e.to_string())?;
        forward::write_request_head(
            &mut upstream,
            "GET",
            &self.uri,
            &fields,
            Framing::Empty,
            false,
            self.upstream.request_form(),
        )
        .map_err(|e| format!("sending the request failed: {e}"))?;
        let head = loop {
            let head = upstream.read_response_head().map_err(|e| e.to_string())?;
            // Interim responses are for a client, and there is none.
            if head.status >= 200 {
                break head;
            }
        };
        let response_time = cache.clock().now();
        let directives = RequestDirectives::from_headers(&self.request.headers);
        let (key, stored, request) = (&self.key, &self.stored, &self.request);

        if head.status == 304 && !validators.is_empty() {
            if !validators_agree(&stored.headers, &head.headers) {
                cache.discard(key, stored);
                return Ok("a 304 for another representation; the entry is dropped");
            }
            let (rt, st) = (request_time, response_time);
            storing::confirm(
                cache,
                key,
                stored,
                request,
                &directives,
                &head.headers,
                rt,
                st,
            );
            return Ok("304, the entry is fresh again");
        }
        if (500..600).contains(&head.status) {
            return Err(format!("the origin answered {}", head.status));
        }
        if !storing::may_store(cache, request, &directives, &head) {
            cache.discard(key, stored);
            return Ok("the new response may not be stored; the entry is dropped");
        }
        let framing = body::response_framing(false, &head)?;
        let mut capture = Capture::new(cache.config().max_object_bytes);
        let mut reader = BodyReader::new(&mut upstream, framing);
        let mut buf = vec![0; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => capture.push(&buf[..n]),
                Err(e) => return Err(format!("the body broke off: {e}")),
            }
            if capture.overflowed() {
                cache.discard(key, stored);
                return Ok("the new response is too large to keep; the entry is dropped");
            }
        }
        let Some(body) = capture.finish() else {
            return Err("the body outgrew the object limit".into());
        };
        storing::keep(
            cache,
            key,
            request,
            &head,
            body,
            request_time,
            response_time,
        );
        Ok("a new response replaced the entry")
    }
    // ANCHOR_END: exchange
}
