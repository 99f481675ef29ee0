//! A short-lived cache of "this user may act on this event": the event row and the
//! caller's role in its organization, kept for `ttl` after a store read
//! ([`Engine::with_auth_cache`](crate::Engine::with_auth_cache); off unless asked for).
//!
//! Why: authorizing a booking reads the event and the membership (one PostgreSQL round
//! trip, `SeatStore::event_for`). In a flash sale that read is most of PostgreSQL's work
//! for a request that Redis turns away; over many events of one organization the same
//! rows and roles repeat, though (event, user) pairs seldom do: so the two are kept apart.
//!
//! What it trades (the HTTP server's `--auth-cache-ms`, one second by default):
//! - A member removed, or a role lowered, through another engine (another server) keeps the
//!   old role on this one for up to `ttl` after it was last read here. Through this engine
//!   (or a clone of it), the change drops what it kept. Refusals are never cached: a new
//!   member gets in at once.
//! - The event row is up to `ttl` old when a request is validated against it (an event
//!   changed through this engine is dropped at once). Nothing
//!   unsafe follows: the store checks again, atomically, everything a change could make
//!   stale (a cancelled event, seats that no longer exist); a waitlist policy or
//!   `waitlist_max` changed on another server within `ttl` applies to a newcomer here a
//!   moment later.
//!
//! Why on by default: in a flash sale on PostgreSQL the read was one round trip, and one
//! PostgreSQL transaction, per booking, beside a booking's own share of a group commit; the
//! sale on PostgreSQL + Redis ran at about half the rate without the cache (BENCHMARKS.md,
//! "The flash sale on each store").
//!
//! Bounded: at most `entries_max` event rows and as many roles; a full map is emptied
//! (entries are cheap to read again, and a burst of distinct callers must not grow memory).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::domain::{Event, Role};
use crate::ids::{EventId, OrgId, UserId};

/// At most this many event rows, and as many roles, per engine.
pub(crate) const ENTRIES_MAX: usize = 100_000;

/// Event rows by id and roles by (organization, user), each kept apart: a grant is an event
/// row and its organization's membership, both read less than `ttl` ago. Apart, because a
/// user booking many events of one organization (or many users one event) reuses what an
/// earlier request read, where a cache by (event, user) would read again on every new pair.
#[derive(Debug)]
pub(crate) struct AuthCache {
    ttl: Duration,
    events: Fresh<EventId, Event>,
    roles: Fresh<(OrgId, UserId), Role>,
}

impl AuthCache {
    /// `None` when `ttl` is zero (no caching). Each map holds at most `entries_max`.
    pub(crate) fn new(ttl: Duration, entries_max: usize) -> Option<Self> {
        assert!(entries_max > 0, "an auth cache needs room for an entry");
        (ttl > Duration::zero()).then(|| Self { ttl, events: Fresh::new(entries_max), roles: Fresh::new(entries_max) })
    }

    /// The event and `user`'s role in its organization, if both were read less than `ttl`
    /// before `now`.
    pub(crate) fn get(&self, event: EventId, user: UserId, now: DateTime<Utc>) -> Option<(Event, Role)> {
        let event = self.events.get(&event, now - self.ttl)?;
        let role = self.roles.get(&(event.org_id, user), now - self.ttl)?;
        Some((event, role))
    }

    /// Remembers what a store read at `now` just said.
    pub(crate) fn put(&self, event: &Event, user: UserId, role: Role, now: DateTime<Utc>) {
        self.events.put(event.id, event.clone(), now);
        self.roles.put((event.org_id, user), role, now);
    }

    /// Drops `event`'s row, changed (or deleted) through this engine.
    pub(crate) fn forget_event(&self, event: EventId) {
        self.events.forget(&event);
    }

    /// Drops `user`'s role in `org`, changed (or removed) through this engine.
    pub(crate) fn forget_role(&self, org: OrgId, user: UserId) {
        self.roles.forget(&(org, user));
    }
}

/// One map of values with the instant each was read; a full map is emptied (entries are
/// cheap to read again, and a burst of distinct keys must not grow memory).
#[derive(Debug)]
struct Fresh<K, V> {
    entries_max: usize,
    entries: Mutex<HashMap<K, (V, DateTime<Utc>)>>,
}

impl<K: Eq + Hash, V: Clone> Fresh<K, V> {
    fn new(entries_max: usize) -> Self {
        Self { entries_max, entries: Mutex::new(HashMap::new()) }
    }

    /// The value, if it was read after `stale_at`.
    fn get(&self, key: &K, stale_at: DateTime<Utc>) -> Option<V> {
        let mut entries = self.entries.lock().expect("auth cache lock poisoned");
        let (value, read_at) = entries.get(key)?;
        if *read_at <= stale_at {
            entries.remove(key);
            return None;
        }
        Some(value.clone())
    }

    fn forget(&self, key: &K) {
        self.entries.lock().expect("auth cache lock poisoned").remove(key);
    }

    fn put(&self, key: K, value: V, now: DateTime<Utc>) {
        let mut entries = self.entries.lock().expect("auth cache lock poisoned");
        if entries.len() >= self.entries_max {
            entries.clear();
        }
        entries.insert(key, (value, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventStatus, WaitlistPolicy};

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::milliseconds(ms)
    }

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
            offer_ttl_seconds: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn zero_ttl_is_no_cache() {
        assert!(AuthCache::new(Duration::zero(), 10).is_none());
    }

    #[test]
    fn entries_expire_and_are_per_user() {
        let cache = AuthCache::new(Duration::milliseconds(50), 10).unwrap();
        let (e, u) = (event(), UserId::new());
        assert!(cache.get(e.id, u, at(0)).is_none());
        cache.put(&e, u, Role::Organizer, at(0));
        assert_eq!(cache.get(e.id, u, at(49)).map(|(ev, r)| (ev.id, r)), Some((e.id, Role::Organizer)));
        assert!(cache.get(e.id, UserId::new(), at(0)).is_none(), "another user's role is not this one's");
        assert!(cache.get(e.id, u, at(50)).is_none(), "read too long ago");
    }

    #[test]
    fn an_event_read_for_one_user_serves_another_member_and_a_role_serves_the_org_s_events() {
        let cache = AuthCache::new(Duration::seconds(60), 10).unwrap();
        let (a, u, v) = (event(), UserId::new(), UserId::new());
        let b = Event { id: EventId::new(), ..a.clone() };
        cache.put(&a, u, Role::User, at(0));
        assert!(cache.get(a.id, v, at(1)).is_none(), "v's membership was never read");
        cache.put(&b, v, Role::Organizer, at(0));
        assert_eq!(cache.get(a.id, v, at(1)).map(|(e, r)| (e.id, r)), Some((a.id, Role::Organizer)), "a's row, v's role");
        assert_eq!(cache.get(b.id, u, at(1)).map(|(e, r)| (e.id, r)), Some((b.id, Role::User)), "b's row, u's role");
        let elsewhere = Event { id: EventId::new(), org_id: OrgId::new(), ..a.clone() };
        cache.put(&elsewhere, v, Role::User, at(0));
        assert!(cache.get(elsewhere.id, u, at(1)).is_none(), "a role is per organization");
    }

    #[test]
    fn a_change_through_this_server_is_forgotten_at_once() {
        let cache = AuthCache::new(Duration::seconds(60), 10).unwrap();
        let (e, u, v) = (event(), UserId::new(), UserId::new());
        cache.put(&e, u, Role::Organizer, at(0));
        cache.put(&e, v, Role::User, at(0));
        cache.forget_role(e.org_id, u);
        assert!(cache.get(e.id, u, at(1)).is_none(), "u's role read again");
        assert!(cache.get(e.id, v, at(1)).is_some(), "v's role kept");
        cache.forget_event(e.id);
        assert!(cache.get(e.id, v, at(1)).is_none(), "the event read again");
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = AuthCache::new(Duration::seconds(60), 2).unwrap();
        let (a, b, c) = (event(), event(), event());
        let u = UserId::new();
        cache.put(&a, u, Role::User, at(0));
        cache.put(&b, u, Role::User, at(0));
        cache.put(&c, u, Role::User, at(0));
        assert!(cache.get(a.id, u, at(1)).is_none() && cache.get(b.id, u, at(1)).is_none());
        assert!(cache.get(c.id, u, at(1)).is_some());
    }
}
