//! When the admission backend (counter and waitlist: Redis in production) fails after the
//! store has committed a change, the change stands, the caller is answered, and
//! `reconcile_dirty` repairs the derived state from the store. Before the store writes,
//! such a failure fails the request and changes nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use happening::core::domain::{BookingStatus, WaitlistPolicy};
use happening::core::error::BackendError;
use happening::core::ids::{BookingId, EventId, UserId};
use happening::core::memory::{MemoryAdmission, MemoryStore};
use happening::core::ports::*;
use happening::core::testkit::{invariants, Harness};
use happening::core::Error;

/// The in-memory admission, with chosen methods failing like a backend that is down.
#[derive(Clone, Default)]
struct Flaky {
    inner: MemoryAdmission,
    failing: Arc<Mutex<HashSet<&'static str>>>,
    /// What `generation` answers (a Redis failover changes it).
    generation: Arc<Mutex<Option<String>>>,
}

impl Flaky {
    fn fail(&self, methods: &[&'static str]) {
        *self.failing.lock().unwrap() = methods.iter().copied().collect();
    }

    fn check(&self, method: &'static str) -> Result<(), AdmissionError> {
        if self.failing.lock().unwrap().contains(method) {
            return Err(AdmissionError::Backend(BackendError::msg(format!("{method}: connection refused"))));
        }
        Ok(())
    }
}

#[async_trait]
impl SlotCounter for Flaky {
    async fn set_free(&self, e: EventId, free: u32) -> Result<(), AdmissionError> {
        self.check("set_free")?;
        self.inner.set_free(e, free).await
    }
    async fn take(&self, e: EventId, req: TakeRequest) -> Result<Take, AdmissionError> {
        self.check("take")?;
        self.inner.take(e, req).await
    }
    async fn give(&self, e: EventId, n: u32) -> Result<(), AdmissionError> {
        self.check("give")?;
        self.inner.give(e, n).await
    }
    async fn free(&self, e: EventId) -> Result<u32, AdmissionError> {
        self.check("free")?;
        self.inner.free(e).await
    }
    async fn forget(&self, e: EventId) -> Result<(), AdmissionError> {
        self.check("forget")?;
        self.inner.forget(e).await
    }
    async fn generation(&self) -> Result<Option<String>, AdmissionError> {
        self.check("generation")?;
        Ok(self.generation.lock().unwrap().clone())
    }
}

#[async_trait]
impl Waitlist for Flaky {
    async fn push(&self, e: EventId, entry: WaitEntry) -> Result<Pushed, AdmissionError> {
        self.check("push")?;
        self.inner.push(e, entry).await
    }
    async fn remove(&self, e: EventId, b: BookingId) -> Result<bool, AdmissionError> {
        self.check("remove")?;
        self.inner.remove(e, b).await
    }
    async fn position(&self, e: EventId, b: BookingId) -> Result<Option<u32>, AdmissionError> {
        self.check("position")?;
        self.inner.position(e, b).await
    }
    async fn len(&self, e: EventId) -> Result<u32, AdmissionError> {
        self.check("len")?;
        self.inner.len(e).await
    }
    async fn list(&self, e: EventId, limit: u32) -> Result<Vec<WaitEntry>, AdmissionError> {
        self.check("list")?;
        self.inner.list(e, limit).await
    }
    async fn pop_fitting(&self, e: EventId, p: happening::core::domain::WaitlistPolicy) -> Result<Option<Promotion>, AdmissionError> {
        self.check("pop_fitting")?;
        self.inner.pop_fitting(e, p).await
    }
    fn pop_removes(&self) -> bool {
        self.inner.pop_removes()
    }
    async fn version(&self, e: EventId) -> Result<u64, AdmissionError> {
        self.check("version")?;
        self.inner.version(e).await
    }
    async fn restore(&self, e: EventId, version: u64, free: u32, entries: Vec<WaitEntry>) -> Result<bool, AdmissionError> {
        self.check("restore")?;
        self.inner.restore(e, version, free, entries).await
    }
}

const ALL: &[&str] = &[
    "set_free",
    "take",
    "give",
    "free",
    "forget",
    "generation",
    "push",
    "remove",
    "position",
    "len",
    "list",
    "pop_fitting",
    "version",
    "restore",
];

fn harness() -> (Harness, Flaky) {
    let store = MemoryStore::new();
    let flaky = Flaky::default();
    let f = flaky.clone();
    (Harness::new(0, move || (Arc::new(store.clone()), Arc::new(f.clone()))), flaky)
}

#[tokio::test]
async fn a_failure_before_the_store_writes_fails_the_request_and_changes_nothing() {
    let (h, flaky) = harness();
    let e = h.event(1, WaitlistPolicy::Fifo).await;
    h.book(e, UserId::new(), 1).await.unwrap();
    flaky.fail(ALL);
    let r = h.book(e, UserId::new(), 1).await;
    assert!(matches!(r, Err(Error::Backend(_))), "{r:?}");
    assert_eq!(h.engine.store().event_bookings(e).await.unwrap().len(), 1, "nothing written");
    flaky.fail(&[]);
    invariants::check(&h.engine, e).await.unwrap();
}

#[tokio::test]
async fn a_failure_after_the_store_commits_is_repaired_by_reconcile_dirty() {
    let (h, flaky) = harness();
    let e = h.event(1, WaitlistPolicy::Fifo).await;
    let u = UserId::new();
    let a = h.book(e, u, 1).await.unwrap();

    // The queue fails after the waiting booking is written: the booking stands.
    flaky.fail(&["push"]);
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!((w.status, w.waiting_number), (BookingStatus::Waiting, Some(1)), "its number is the store's");
    assert!(invariants::check(&h.engine, e).await.is_err(), "the queue lacks the booking until repaired");

    // The counter fails after a cancellation is written: the cancellation stands.
    flaky.fail(&["give", "pop_fitting"]);
    let c = h.engine.cancel(a.id, u, None).await.unwrap();
    assert_eq!(c.status, BookingStatus::Cancelled);
    assert_eq!(h.engine.booking(w.id).await.unwrap().status, BookingStatus::Waiting, "not promoted yet");

    // Still down: reconcile keeps the event for later.
    flaky.fail(ALL);
    assert!(h.engine.reconcile_dirty().await.is_err());
    flaky.fail(&[]);
    assert_eq!(h.engine.reconcile_dirty().await.unwrap(), 1);
    let w = h.engine.booking(w.id).await.unwrap();
    assert_eq!((w.status, w.seat_numbers), (BookingStatus::Confirmed, vec![1]), "queued from the store and promoted");
    invariants::check(&h.engine, e).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.engine.reconcile_dirty().await.unwrap(), 0, "nothing left to repair");
}

/// A backend that may have lost acknowledged writes (a Redis replica that took over a
/// primary: replication is asynchronous) says so by a new generation; its state looks fine
/// otherwise. `reconcile_dirty` then rebuilds every live event from the store.
#[tokio::test]
async fn a_new_generation_of_the_admission_rebuilds_every_event() {
    let (h, flaky) = harness();
    *flaky.generation.lock().unwrap() = Some("primary-1".into());
    let e = h.event(2, WaitlistPolicy::Fifo).await;
    let other = h.event(3, WaitlistPolicy::Fifo).await;
    h.book(e, UserId::new(), 2).await.unwrap();
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    h.book(other, UserId::new(), 1).await.unwrap();
    assert_eq!(h.engine.reconcile_dirty().await.unwrap(), 0, "the first look only notes the generation");

    // What a failover can lose: the queue's last push, a take (the counter too high).
    assert!(flaky.inner.remove(e, w.id).await.unwrap());
    flaky.inner.set_free(other, 3).await.unwrap();
    assert!(invariants::check(&h.engine, e).await.is_err() && invariants::check(&h.engine, other).await.is_err());
    assert_eq!(h.engine.reconcile_dirty().await.unwrap(), 0, "the same generation: nothing to suspect");

    *flaky.generation.lock().unwrap() = Some("primary-2".into());
    // Still unreadable: tried again on the next call.
    flaky.fail(&["list"]);
    assert!(h.engine.reconcile_dirty().await.is_err());
    flaky.fail(&[]);
    assert_eq!(h.engine.reconcile_dirty().await.unwrap(), 2, "both events rebuilt");
    for ev in [e, other] {
        invariants::check(&h.engine, ev).await.unwrap_or_else(|b| panic!("{b}"));
    }
    assert_eq!(h.engine.booking(w.id).await.unwrap().waiting_number, Some(1));
    assert_eq!(h.engine.reconcile_dirty().await.unwrap(), 0, "seen: nothing more");
}
