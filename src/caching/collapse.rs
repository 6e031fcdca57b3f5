//! Collapsed forwarding: concurrent misses for one URI send one request.
//!
//! When a popular response expires or a new one appears (the front page
//! after a news item, a release file), many clients miss at the same moment.
//! Without collapsing, every one of them goes to the origin for the same
//! bytes: a hundred misses are a hundred requests, at the moment the origin
//! is busiest (a "cache stampede"). Collapsing lets the first miss go
//! (the *leader*) and has the others (the *followers*) wait for it; once
//! the leader's response is stored, they are served from the store.
//!
//! Two things keep waiting safe. A follower waits at most a short,
//! fixed time ([`WAIT`]): a leader stuck on a slow origin must not hold
//! everyone else forever. And a follower that finds nothing usable when it
//! wakes (the response was `private`, too large, or failed) goes to the
//! origin itself, without waiting again, so one uncacheable URI costs each
//! client one wait at most. RFC 9211 §2.6 names the outcome: `collapsed`
//! when the follower was served from the leader's response, `collapsed=?0`
//! when it had to ask the origin after all.
//!
//! The flights are kept in a map under a lock that is held for a lookup or
//! an insert, never while anyone waits or talks to the network: followers
//! wait on their flight's own condition variable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a follower waits for its leader. A leader that takes longer is
/// probably stuck on a slow origin or a large body; the followers then go
/// on their own.
pub const WAIT: Duration = Duration::from_secs(5);

/// One request in flight to the origin, that others may wait for.
#[derive(Default)]
pub struct Flight {
    landed: Mutex<bool>,
    signal: Condvar,
}

impl Flight {
    fn lock(&self) -> MutexGuard<'_, bool> {
        // A bool cannot be left half-written by a panic.
        self.landed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The flights in progress, by cache key.
#[derive(Default)]
pub struct Flights {
    by_key: Mutex<HashMap<String, Arc<Flight>>>,
    /// Followers waiting right now, for the stats page.
    waiting: AtomicUsize,
}

/// What a request that missed should do.
pub enum Role<'a> {
    /// Go to the origin; the others wait until this is dropped.
    Leader(Lead<'a>),
    /// Wait for this flight, then look in the store again.
    Follower(Arc<Flight>),
    /// Go to the origin, and let nobody wait: this request may not lead.
    Alone,
}

/// The leader's side of a flight. Dropping it, however the leader's fetch
/// ended (a stored response, an error, even a panic), lets the followers
/// go: they must never wait for a leader that is gone.
pub struct Lead<'a> {
    flights: &'a Flights,
    key: String,
    flight: Arc<Flight>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        {
            let mut map = self.flights.lock();
            if map
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                map.remove(&self.key);
            }
        }
        *self.flight.lock() = true;
        self.flight.signal.notify_all();
    }
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        // Every update of the map is one insert or remove: always whole.
        self.by_key.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ANCHOR: join
    /// Joins the flight for `key`, or starts it if there is none and this
    /// request `may_lead` (its response could be stored for the others).
    pub fn join(&self, key: &str, may_lead: bool) -> Role<'_> {
        let mut map = self.lock();
        if let Some(flight) = map.get(key) {
            return Role::Follower(Arc::clone(flight));
        }
        if !may_lead {
            return Role::Alone;
        }
        let flight = Arc::new(Flight::default());
        map.insert(key.to_string(), Arc::clone(&flight));
        Role::Leader(Lead {
            flights: self,
            key: key.to_string(),
            flight,
        })
    }

    /// Waits until the leader of `flight` is done, for at most `limit`.
    /// True when it is; false when the wait ran out.
    pub fn wait(&self, flight: &Flight, limit: Duration) -> bool {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + limit;
        let mut landed = flight.lock();
        while !*landed {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            landed = flight
                .signal
                .wait_timeout(landed, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let done = *landed;
        drop(landed);
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        done
    }
    // ANCHOR_END: join

    /// How many followers are waiting right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn one_leader_and_its_followers() {
        let flights = Flights::default();
        let lead = match flights.join("k", true) {
            Role::Leader(lead) => lead,
            _ => panic!("the first request must lead"),
        };
        let Role::Follower(flight) = flights.join("k", true) else {
            panic!("the second request must follow");
        };
        assert!(matches!(flights.join("other", false), Role::Alone));
        assert!(
            !flights.wait(&flight, Duration::from_millis(1)),
            "still flying"
        );
        drop(lead);
        assert!(flights.wait(&flight, Duration::ZERO), "landed");
        // The next miss leads a new flight.
        assert!(matches!(flights.join("k", true), Role::Leader(_)));
    }

    #[test]
    fn followers_wake_when_the_leader_lands() {
        let flights = Arc::new(Flights::default());
        let Role::Leader(lead) = flights.join("k", true) else {
            panic!("the first request must lead");
        };
        let followers: Vec<_> = (0..4)
            .map(|_| {
                let Role::Follower(flight) = flights.join("k", true) else {
                    panic!("a later request must follow");
                };
                let flights = Arc::clone(&flights);
                thread::spawn(move || flights.wait(&flight, Duration::from_secs(30)))
            })
            .collect();
        drop(lead);
        for f in followers {
            assert!(f.join().expect("a follower panicked"));
        }
        assert_eq!(flights.waiting(), 0);
    }
}
