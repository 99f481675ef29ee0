//! The audit on PostgreSQL + Redis: Redis' counter and waitlist changed behind the engine's
//! back (raw commands on the event's keys) are reported as `CounterDrift` and
//! `AdmissionWaitlist`; a flushed Redis is noted (rebuilt on first use), not a breach; and
//! `reconcile_event` brings the audit back to clean.

mod common;

use happening_core::domain::{BookingStatus, WaitlistPolicy};
use happening_core::engine::{AuditOptions, Breach};
use happening_core::ids::{EventId, UserId};
use happening_core::ports::WaitEntry;
use happening_core::testkit::Harness;
use redis::AsyncCommands;

/// A waitlist member as `keys.rs` writes it: `<seq, 20 digits>:<booking>:<seats>`.
fn member(e: &WaitEntry) -> String {
    format!("{:020}:{}:{}", e.seq, e.booking, e.seats)
}

async fn breaches(h: &Harness, event: EventId) -> Vec<Breach> {
    let a = h.engine.audit_event(event, &AuditOptions::default()).await.expect("audit");
    assert!(!a.admission_missing);
    a.breaches
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_drift_is_reported_and_reconcile_clears_it() {
    let Some((h, redis)) = common::setup(0, 2).await else { return };
    let event = h.event(3, WaitlistPolicy::Fifo).await;
    h.book(event, UserId::new(), 2).await.unwrap();
    let w1 = h.book(event, UserId::new(), 2).await.unwrap();
    let w2 = h.book(event, UserId::new(), 2).await.unwrap();
    assert_eq!((w1.status, w2.status), (BookingStatus::Waiting, BookingStatus::Waiting));
    let r = h.engine.audit_all(&AuditOptions::default()).await.unwrap();
    assert!(r.is_clean() && r.admission_missing.is_empty(), "{r:?}");
    assert_eq!((r.events_checked, r.bookings_checked), (1, 3));

    // The counter, above and below the store's one free seat.
    redis.set_counter(event, 3).await;
    assert_eq!(breaches(&h, event).await, vec![Breach::CounterDrift { event, counter: 3, store: 1 }]);
    redis.set_counter(event, 0).await;
    assert_eq!(breaches(&h, event).await, vec![Breach::CounterDrift { event, counter: 0, store: 1 }]);
    h.engine.reconcile_event(event).await.unwrap();
    assert_eq!(breaches(&h, event).await, vec![]);

    // The waitlist: reordered (w2 given w1's seq and back), an entry dropped, a bogus one.
    let keys = h.engine.admission().list(event, 10).await.unwrap();
    let (e1, e2) = (keys[0], keys[1]);
    let store = vec![e1, e2];
    let swapped = vec![WaitEntry { seq: e1.seq, ..e2 }, WaitEntry { seq: e2.seq, ..e1 }];
    let mut conn = redis.redis();
    let k = redis.admissions[0].keys(event);
    let _: () = conn.zrem(&k.waitlist, &[member(&e1), member(&e2)]).await.unwrap();
    let _: () = conn.zadd_multiple(&k.waitlist, &[(0, member(&swapped[0])), (0, member(&swapped[1]))]).await.unwrap();
    let _: () = conn
        .hset_multiple(&k.seats, &[(e2.booking.to_string(), member(&swapped[0])), (e1.booking.to_string(), member(&swapped[1]))])
        .await
        .unwrap();
    assert_eq!(breaches(&h, event).await, vec![Breach::AdmissionWaitlist { event, admission: swapped, store: store.clone() }]);
    h.engine.reconcile_event(event).await.unwrap();
    assert_eq!(breaches(&h, event).await, vec![]);

    let _: () = conn.zrem(&k.waitlist, member(&e1)).await.unwrap();
    assert_eq!(breaches(&h, event).await, vec![Breach::AdmissionWaitlist { event, admission: vec![e2], store: store.clone() }]);
    h.engine.reconcile_event(event).await.unwrap();

    let bogus = WaitEntry { booking: happening_core::ids::BookingId::new(), seats: 1, seq: e2.seq + 1 };
    let _: () = conn.zadd(&k.waitlist, member(&bogus), 0).await.unwrap();
    assert_eq!(breaches(&h, event).await, vec![Breach::AdmissionWaitlist { event, admission: vec![e1, e2, bogus], store }]);
    h.engine.reconcile_event(event).await.unwrap();
    assert_eq!(breaches(&h, event).await, vec![]);

    // Flushed: noted, no breach; the audit does not rebuild it (it only reads).
    redis.flush().await;
    let r = h.engine.audit_all(&AuditOptions::default()).await.unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(r.admission_missing, vec![event]);
    let exists: bool = conn.exists(&k.slots).await.unwrap();
    assert!(!exists, "the audit wrote the counter");
}
