//! A short-lived cache of "this user may act on this event": the event row and the
//! caller's role in its organization, kept for `ttl` after a store read.
//!
//! Why: authorizing a booking reads the event and the membership (one PostgreSQL round
//! trip, `SeatStore::event_for`). In a flash sale that read is most of PostgreSQL's work
//! for a request that Redis turns away, and the same few (event, user) pairs repeat.
//!
//! What it trades (so it is off unless configured, `--auth-cache-ms`):
//! - A member removed, or a role lowered, keeps the old role on a server for up to `ttl`
//!   after it was last read there. Refusals are never cached: a new member gets in at once.
//! - The event row is up to `ttl` old when a request is validated against it. Nothing
//!   unsafe follows: the store checks again, atomically, everything a change could make
//!   stale (a cancelled event, seats that no longer exist); a waitlist policy or
//!   `waitlist_max` changed within `ttl` applies to a newcomer on this server a moment later.
//!
//! Bounded: at most `entries_max` entries; a full cache is emptied (entries are cheap to
//! read again, and a burst of distinct callers must not grow memory).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use happening_core::domain::{Event, Role};
use happening_core::ids::{EventId, UserId};

#[derive(Debug)]
pub struct AuthCache {
    ttl: Duration,
    entries_max: usize,
    entries: Mutex<HashMap<(EventId, UserId), Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    event: Event,
    role: Role,
    read_at: Instant,
}

impl AuthCache {
    /// `None` when `ttl` is zero (no caching).
    pub fn new(ttl: Duration, entries_max: usize) -> Option<Self> {
        assert!(entries_max > 0, "an auth cache needs room for an entry");
        (!ttl.is_zero()).then(|| Self { ttl, entries_max, entries: Mutex::new(HashMap::new()) })
    }

    /// The event and `user`'s role in its organization, if read less than `ttl` ago.
    pub fn get(&self, event: EventId, user: UserId) -> Option<(Event, Role)> {
        let mut entries = self.entries.lock().expect("auth cache lock poisoned");
        let entry = entries.get(&(event, user))?;
        if entry.read_at.elapsed() >= self.ttl {
            entries.remove(&(event, user));
            return None;
        }
        Some((entry.event.clone(), entry.role))
    }

    /// Remembers what a store read just said.
    pub fn put(&self, event: &Event, user: UserId, role: Role) {
        let mut entries = self.entries.lock().expect("auth cache lock poisoned");
        if entries.len() >= self.entries_max {
            entries.clear();
        }
        entries.insert((event.id, user), Entry { event: event.clone(), role, read_at: Instant::now() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use happening_core::domain::{EventStatus, WaitlistPolicy};
    use happening_core::ids::OrgId;

    fn event() -> Event {
        Event {
            id: EventId::new(),
            org_id: OrgId::new(),
            name: "Show".into(),
            description: None,
            category: None,
            event_date: Utc::now(),
            capacity: 10,
            status: EventStatus::Upcoming,
            policy: WaitlistPolicy::Fifo,
            waitlist_max: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn zero_ttl_is_no_cache() {
        assert!(AuthCache::new(Duration::ZERO, 10).is_none());
    }

    #[test]
    fn entries_expire_and_are_per_user() {
        let cache = AuthCache::new(Duration::from_millis(50), 10).unwrap();
        let (e, u) = (event(), UserId::new());
        assert!(cache.get(e.id, u).is_none());
        cache.put(&e, u, Role::Organizer);
        assert_eq!(cache.get(e.id, u).map(|(ev, r)| (ev.id, r)), Some((e.id, Role::Organizer)));
        assert!(cache.get(e.id, UserId::new()).is_none(), "another user's role is not this one's");
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(e.id, u).is_none(), "read too long ago");
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = AuthCache::new(Duration::from_secs(60), 2).unwrap();
        let (a, b, c) = (event(), event(), event());
        let u = UserId::new();
        cache.put(&a, u, Role::User);
        cache.put(&b, u, Role::User);
        cache.put(&c, u, Role::User);
        assert!(cache.get(a.id, u).is_none() && cache.get(b.id, u).is_none());
        assert!(cache.get(c.id, u).is_some());
    }
}
