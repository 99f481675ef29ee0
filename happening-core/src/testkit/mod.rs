//! What every backend's tests share: a harness, the invariant checks, the conformance suite
//! of the booking rules, and the reference model for property tests. Enabled by the
//! `testkit` feature; the adapter crates run this very code against their backends.

pub mod concurrency;
pub mod conformance;
pub mod interleave;
pub mod invariants;
pub mod latency;
pub mod model;

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use crate::clock::{Clock, ManualClock};
use crate::domain::*;
use crate::engine::{BookRequest, Engine};
use crate::error::Result;
use crate::ids::*;
use crate::memory::{MemoryAdmission, MemoryNotifier, MemoryStore};
use crate::ports::{Admission, Store};

/// An engine on a manual clock, plus replicas: more engines on the same stores, as more
/// servers would be.
pub struct Harness {
    /// The engine the rules are checked through.
    pub engine: Engine,
    /// More engines over the same stores, as other servers would be.
    pub replicas: Vec<Engine>,
    /// The clock every engine of the harness reads; moving it makes holds and offers due.
    pub clock: Arc<ManualClock>,
    /// Where [`Harness::delivered`] relays the outbox.
    pub notifier: MemoryNotifier,
}

impl Harness {
    /// Engines over the stores `make` returns; `make` is called once per engine, so that an
    /// adapter can give each its own connections.
    pub fn new(replicas: usize, mut make: impl FnMut() -> (Arc<dyn Store>, Arc<dyn Admission>)) -> Self {
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()));
        let mut engines: Vec<Engine> = (0..=replicas)
            .map(|_| {
                let (store, admission) = make();
                Engine::new(store, admission).with_clock(clock.clone())
            })
            .collect();
        let engine = engines.remove(0);
        Self { engine, replicas: engines, clock, notifier: MemoryNotifier::new() }
    }

    /// In-memory stores with `replicas` extra engines sharing them.
    pub fn in_memory(replicas: usize) -> Self {
        let store = MemoryStore::new();
        let admission = MemoryAdmission::new();
        Self::new(replicas, || (Arc::new(store.clone()), Arc::new(admission.clone())))
    }

    /// The main engine followed by the replicas.
    pub fn engines(&self) -> Vec<Engine> {
        std::iter::once(self.engine.clone()).chain(self.replicas.iter().cloned()).collect()
    }

    /// A new organization (with a new orgAdmin).
    pub async fn org(&self) -> OrgId {
        let admin = self.engine.upsert_user(&format!("admin-{}", UserId::new()), None, None).await.expect("user");
        self.engine.create_org(admin.id, "Conformance").await.expect("org").id
    }

    /// A new event in a new organization.
    pub async fn event(&self, capacity: u32, policy: WaitlistPolicy) -> EventId {
        let org_id = self.org().await;
        self.event_in(org_id, capacity, policy).await.id
    }

    /// A new event in `org_id`.
    pub async fn event_in(&self, org_id: OrgId, capacity: u32, policy: WaitlistPolicy) -> Event {
        self.engine
            .create_event(NewEvent::new(org_id, "Conformance", self.clock.now(), capacity).with_policy(policy))
            .await
            .expect("create event")
            .event
    }

    /// Books `seats` of the lowest free seats of `event` for `user`, with every other
    /// option at its default.
    pub async fn book(&self, event: EventId, user: UserId, seats: u32) -> Result<Booking> {
        self.engine.book(BookRequest { event_id: event, user_id: user, seats: Some(seats), ..Default::default() }).await
    }

    /// Books exactly `seats` of `event` for `user`; `strict` refuses taken ones instead of
    /// falling back to the lowest free.
    pub async fn book_seats(&self, event: EventId, user: UserId, seats: &[SeatNo], strict: bool) -> Result<Booking> {
        self.engine
            .book(BookRequest {
                event_id: event,
                user_id: user,
                seat_numbers: Some(seats.to_vec()),
                strict_seats: strict,
                ..Default::default()
            })
            .await
    }

    /// Relays the outbox into `notifier` until it is empty and returns what arrived. A store
    /// may hold rows back for a moment (PostgreSQL's, while an older transaction of the
    /// database is still running): an empty round is tried again, for at most 30 s.
    pub async fn delivered(&self) -> Vec<Notification> {
        drain(&self.engine, &self.notifier, 1000, std::time::Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{e}"));
        self.notifier.take()
    }
}

/// Relays `engine`'s outbox into `notifier`, `batch` at a time, until the outbox is empty.
/// An empty round while rows wait is tried again (a store may hold rows back while an
/// older write runs); `Err` if the outbox is not empty within `within`.
pub(crate) async fn drain(
    engine: &Engine,
    notifier: &dyn crate::ports::Notifier,
    batch: u32,
    within: std::time::Duration,
) -> std::result::Result<(), String> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if engine.relay(notifier, batch).await.map_err(|e| format!("relay: {e}"))? > 0 {
            continue;
        }
        if engine.outbox_depth().await.map_err(|e| format!("outbox depth: {e}"))? == 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("the outbox did not drain within {within:?}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// A harness, or none when the backend is not configured (see `conformance_tests!`).
pub trait MaybeHarness {
    /// The harness, or `None` to skip the test.
    fn get(self) -> Option<Harness>;
}

impl MaybeHarness for Harness {
    fn get(self) -> Option<Harness> {
        Some(self)
    }
}

impl MaybeHarness for Option<Harness> {
    fn get(self) -> Option<Harness> {
        self
    }
}
