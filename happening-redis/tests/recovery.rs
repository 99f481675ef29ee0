//! Recovery on PostgreSQL + Redis: Redis loses an event's keys in the middle of a run (as a
//! flushed or restarted Redis would), and its counter drifts from the store (as a crash
//! between the Redis step and the store write leaves it). The engine rebuilds what is
//! missing by itself, and `reconcile_event` reports drift and restores the exact state the
//! store implies.
//!
//! The flush deletes this test's keys only (its own prefix), so that tests running beside
//! it on the same Redis are unharmed.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use happening_core::clock::Clock;
use happening_core::domain::{BookingStatus, WaitlistPolicy};
use happening_core::ids::{BookingId, EventId, UserId};
use happening_core::ports::{AdmissionError, SlotCounter, TakeRequest, WaitEntry, Waitlist};
use happening_core::testkit::{invariants, Harness};
use happening_core::{BookRequest, Engine, Error, HoldRequest, Reconciled};
use happening_redis::RedisAdmission;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What the workers saw.
#[derive(Default)]
struct Tally {
    ok: usize,
    /// A retried call met a flush again (the engine rebuilds once per call).
    missing_twice: usize,
}

/// `ops` operations: book 1 to 3 seats, cancel one of its bookings, or hold a seat and
/// release it. Every operation must succeed (or be refused by the booking rules).
async fn worker(engine: Engine, event: EventId, ops: usize, seed: u64, done: Arc<AtomicUsize>) -> Tally {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let user = UserId::new();
    let mut mine: Vec<BookingId> = Vec::new();
    let mut tally = Tally::default();
    for _ in 0..ops {
        let r = match rng.next() % 10 {
            0 | 1 if !mine.is_empty() => {
                let id = mine.swap_remove((rng.next() as usize) % mine.len());
                engine.cancel(id, user, None).await.map(drop)
            }
            2 => {
                let req = HoldRequest { event_id: event, user_id: user, seats: Some(1), seat_numbers: None, ttl_ms: 60_000 };
                match engine.hold(req).await {
                    Ok(h) => engine.release_hold(h.id, user).await.map(drop),
                    Err(Error::Capacity { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            _ => {
                let seats = 1 + (rng.next() % 3) as u32;
                let req = BookRequest { event_id: event, user_id: user, seats: Some(seats), ..Default::default() };
                engine.book(req).await.map(|b| mine.push(b.id))
            }
        };
        match r {
            Ok(()) => tally.ok += 1,
            Err(Error::Backend(e)) if e.to_string().contains("admission state missing") => tally.missing_twice += 1,
            Err(e) => panic!("task {seed}: unexpected {e}"),
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

async fn check_all(h: &Harness, event: EventId) {
    for en in h.engines() {
        invariants::check(&en, event).await.unwrap_or_else(|e| panic!("invariant broken: {e}"));
    }
}

/// The admission's queue and counter, and the store's waiting bookings and free seats.
async fn both_sides(engine: &Engine, event: EventId) -> ((u32, Vec<WaitEntry>), (u32, Vec<BookingId>)) {
    let a = engine.admission();
    let redis = (a.free(event).await.expect("counter"), a.list(event, u32::MAX).await.expect("queue"));
    let store = engine.store();
    let free = store.event_view(event).await.unwrap().available();
    let waiting = store.waiting(event, u32::MAX, 0).await.unwrap().iter().map(|b| b.id).collect();
    (redis, (free, waiting))
}

fn is_missing<T: std::fmt::Debug>(r: Result<T, AdmissionError>) -> bool {
    matches!(r, Err(AdmissionError::Missing))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flush_mid_run_is_rebuilt_and_reconcile_restores_the_exact_state() {
    let Some((h, b)) = common::setup(1, 8).await else {
        return;
    };
    for policy in [WaitlistPolicy::Fifo, WaitlistPolicy::FirstFit, WaitlistPolicy::Partial] {
        let capacity = 12;
        let event = h.event(capacity, policy).await;

        // 1. Four workers on two engines; the keys are flushed three times while they run.
        let done = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = h
            .engines()
            .into_iter()
            .cycle()
            .take(4)
            .enumerate()
            .map(|(i, en)| tokio::spawn(worker(en, event, 80, i as u64 + 1, done.clone())))
            .collect();
        let flusher = {
            let (done, finished, b_prefix) = (done.clone(), finished.clone(), b.prefix.clone());
            let conn = b.redis();
            tokio::spawn(async move {
                let mut flushed = Vec::new();
                for at in [40, 120, 200] {
                    while done.load(Ordering::Relaxed) < at && !finished.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    flushed.push(common::flush_prefix(conn.clone(), &b_prefix).await);
                }
                flushed
            })
        };
        let mut tally = Tally::default();
        for w in workers {
            let t = w.await.expect("worker");
            tally.ok += t.ok;
            tally.missing_twice += t.missing_twice;
        }
        finished.store(true, Ordering::Relaxed);
        let flushed = flusher.await.expect("flusher");
        println!("{policy:?}: {} operations, {} met a second flush; flushed {flushed:?} keys", tally.ok, tally.missing_twice);
        assert_eq!(flushed.len(), 3);
        assert!(flushed[0] > 0, "the first flush found the event's keys");
        assert!(tally.ok >= 300, "operations went on through the flushes: {}", tally.ok);

        // 2. Flushed at rest: every call on the event answers Missing, never a made-up zero...
        b.flush().await;
        for a in &b.admissions {
            assert!(is_missing(a.free(event).await));
            assert!(is_missing(a.len(event).await));
            assert!(is_missing(a.take(event, TakeRequest { want: 1, min: 1, behind_queue: false, waitlist_max: None }).await));
            assert!(is_missing(a.pop_fitting(event, policy).await));
        }
        // ...and the next operation rebuilds it from the store and goes through.
        let next = h.replicas[0].book(BookRequest { event_id: event, user_id: UserId::new(), seats: Some(1), ..Default::default() }).await;
        let next = next.expect("the first booking after the flush rebuilds and succeeds");
        assert!(matches!(next.status, BookingStatus::Confirmed | BookingStatus::Waiting));
        assert!(h.engine.admission().free(event).await.is_ok(), "rebuilt");

        // 3. Reconcile settles whatever the flushes raced with; then everything agrees.
        h.engine.reconcile_event(event).await.expect("reconcile");
        check_all(&h, event).await;
        // Make sure someone waits, so that the queue's order is part of the state.
        let mut waiting = 0;
        for _ in 0..5 {
            let big = BookRequest { event_id: event, user_id: UserId::new(), seats: Some(capacity), ..Default::default() };
            if h.engine.book(big).await.expect("book").status == BookingStatus::Waiting {
                waiting += 1;
                if waiting == 2 {
                    break;
                }
            }
        }
        assert!(waiting > 0, "{policy:?}: nobody waits");
        check_all(&h, event).await;
        let ((free, queue), (store_free, store_waiting)) = both_sides(&h.engine, event).await;
        assert_eq!(free, store_free);
        assert_eq!(queue.iter().map(|e| e.booking).collect::<Vec<_>>(), store_waiting);

        // 4. Flush, then reconcile: it reports what it found and restores the exact state.
        b.flush().await;
        let r = h.engine.reconcile_event(event).await.expect("reconcile");
        assert_eq!(r.free_before, None, "{r:?}");
        assert_eq!(r.free_after, free, "{r:?}");
        assert!(r.waitlist_repaired, "{r:?}");
        assert_eq!((r.waiting, r.promoted), (queue.len() as u32, 0), "{r:?}");
        assert!(r.drifted());
        let ((free_after, queue_after), (_, store_waiting_after)) = both_sides(&h.engine, event).await;
        assert_eq!((free_after, &queue_after), (free, &queue), "{policy:?}: the rebuilt counter and queue equal those before");
        assert_eq!(store_waiting_after, store_waiting);
        for (i, e) in queue.iter().enumerate() {
            assert_eq!(h.replicas[0].booking(e.booking).await.unwrap().waiting_number, Some(i as u32 + 1));
        }
        check_all(&h, event).await;
        assert!(!h.engine.reconcile_event(event).await.unwrap().drifted(), "nothing left to repair");
    }
}

/// Checks what reconcile found: the counter before and after, whether the queue was
/// repaired, how many wait and how many it promoted.
fn expect_drift(r: Reconciled, before: Option<u32>, after: u32, repaired: bool, waiting: u32, promoted: u32) {
    assert_eq!((r.free_before, r.free_after, r.waitlist_repaired, r.waiting, r.promoted), (before, after, repaired, waiting, promoted));
    assert!(r.drifted(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reports_and_repairs_drift() {
    let Some((h, b)) = common::setup(1, 8).await else {
        return;
    };
    let en = &h.engine;
    let event = h.event(5, WaitlistPolicy::Fifo).await;
    let first = h.book(event, UserId::new(), 3).await.unwrap();
    let w1 = h.book(event, UserId::new(), 3).await.unwrap();
    let w2 = h.book(event, UserId::new(), 1).await.unwrap();
    assert_eq!(
        [first.status, w1.status, w2.status],
        [BookingStatus::Confirmed, BookingStatus::Waiting, BookingStatus::Waiting],
        "fifo: the 1-seat request queues behind the 3-seat one"
    );
    check_all(&h, event).await;

    // A wrong counter, written in Redis behind the engine's back.
    b.set_counter(event, 42).await;
    assert_eq!(en.admission().free(event).await.unwrap(), 42);
    expect_drift(en.reconcile_event(event).await.unwrap(), Some(42), 2, false, 2, 0);
    check_all(&h, event).await;

    // Seats taken in Redis but never booked (a crash between the two steps).
    let a = &b.admissions[1];
    assert!(matches!(
        a.take(event, TakeRequest { want: 2, min: 2, behind_queue: false, waitlist_max: None }).await.unwrap(),
        happening_core::ports::Take::Taken(2)
    ));
    expect_drift(en.reconcile_event(event).await.unwrap(), Some(0), 2, false, 2, 0);
    check_all(&h, event).await;

    // Seats freed in the store but not given back (a crash after the cancellation): both
    // waiting bookings fit now, and reconcile promotes them in order.
    let c = en.store().cancel(first.id, None, h.clock.now()).await.unwrap();
    assert_eq!(c.freed.len(), 3);
    assert_eq!(en.admission().free(event).await.unwrap(), 2);
    expect_drift(en.reconcile_event(event).await.unwrap(), Some(2), 5, false, 0, 2);
    assert_eq!(h.replicas[0].booking(w1.id).await.unwrap().status, BookingStatus::Confirmed);
    assert_eq!(h.replicas[0].booking(w2.id).await.unwrap().status, BookingStatus::Confirmed);
    check_all(&h, event).await;

    // A queue that lost an entry and gained a stranger.
    let w3 = h.book(event, UserId::new(), 2).await.unwrap();
    let w4 = h.book(event, UserId::new(), 1).await.unwrap();
    assert_eq!((w3.waiting_number, w4.waiting_number), (Some(1), Some(2)));
    assert!(a.remove(event, w3.id).await.unwrap());
    let stranger = WaitEntry { booking: BookingId::new(), seats: 1, seq: u64::MAX };
    a.push(event, stranger).await.unwrap();
    assert_eq!(a.position(event, stranger.booking).await.unwrap(), Some(2));
    expect_drift(en.reconcile_event(event).await.unwrap(), Some(1), 1, true, 2, 0);
    let queue: Vec<_> = en.admission().list(event, 10).await.unwrap().iter().map(|e| e.booking).collect();
    assert_eq!(queue, vec![w3.id, w4.id]);
    check_all(&h, event).await;

    // A counter that is not a count (negative, or not a number) is missing: the next
    // operation rebuilds it by itself.
    for garbage in ["-3", "many"] {
        let mut conn = b.redis();
        redis::cmd("SET").arg(a.keys(event).slots).arg(garbage).query_async::<()>(&mut conn).await.unwrap();
        assert!(is_missing(a.free(event).await));
        assert!(is_missing(a.take(event, TakeRequest { want: 1, min: 1, behind_queue: false, waitlist_max: None }).await));
        let late = h.book(event, UserId::new(), 1).await.unwrap();
        assert_eq!((late.status, late.waiting_number), (BookingStatus::Waiting, Some(3)), "fifo keeps it behind w3");
        assert_eq!(a.free(event).await.unwrap(), 1);
        en.cancel(late.id, late.user_id, None).await.unwrap();
        check_all(&h, event).await;
    }
    assert!(!en.reconcile_event(event).await.unwrap().drifted());

    // Two admissions with different prefixes on one Redis know nothing of each other.
    let other = RedisAdmission::connect_to(&b.target, &format!("{}-other", b.prefix)).await.unwrap();
    assert!(is_missing(other.free(event).await));
    assert_eq!(other.keys(event).slots.replace("-other", ""), a.keys(event).slots);
}

/// A counter too high (as a rebuild that lost a race with a booking leaves it) lets a
/// booking through that the store then finds short: the booking waits, and the promotion
/// that follows its queueing finds the store short too and rebuilds the counter at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_found_too_high_heals_at_the_next_booking() {
    let Some((h, b)) = common::setup(0, 4).await else {
        return;
    };
    let en = &h.engine;
    let event = h.event(2, WaitlistPolicy::Fifo).await;
    assert_eq!(h.book(event, UserId::new(), 2).await.unwrap().status, BookingStatus::Confirmed);
    b.set_counter(event, 5).await;
    let late = h.book(event, UserId::new(), 1).await.unwrap();
    assert_eq!(late.status, BookingStatus::Waiting, "the store is right: no seat is free");
    assert_eq!(en.admission().free(event).await.unwrap(), 0, "the counter is rebuilt from the store");
    assert!(!en.reconcile_event(event).await.unwrap().drifted(), "nothing left to repair");
    check_all(&h, event).await;
}

/// A server starts on a Redis that lost everything (a restart without persistence): the
/// ready engine it is handed has rebuilt every live event from PostgreSQL, says which
/// events drifted, and books behind the queue the store holds at once. A Redis that does
/// not answer is a clear error within the deadline, never an engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_engine_starts_on_a_flushed_redis_rebuilt_from_the_store() {
    let Some((h, b)) = common::setup(0, 4).await else {
        return;
    };
    let event = h.event(2, WaitlistPolicy::Fifo).await;
    let book = |user| BookRequest { event_id: event, user_id: user, seats: Some(2), ..Default::default() };
    h.engine.book(book(UserId::new())).await.unwrap();
    let waiting = h.engine.book(book(UserId::new())).await.unwrap();
    assert_eq!(waiting.status, BookingStatus::Waiting);
    assert!(b.flush().await > 0, "the event's keys were there");

    let pool = happening_postgres::connect(&b.db_url, happening_postgres::testing::pool(2)).await.unwrap();
    let ready = happening_redis::ready_engine(Arc::new(happening_postgres::PgStore::new(pool)), &b.target, &b.prefix).await.unwrap();
    let drifted: Vec<EventId> = ready.reconciled.iter().map(|r| r.event_id).collect();
    assert_eq!(drifted, vec![event], "the flushed event is rebuilt and reported");
    assert_eq!(ready.admission.free(event).await.unwrap(), 0, "no seat free: both are booked");
    let queue: Vec<BookingId> = ready.admission.list(event, 10).await.unwrap().iter().map(|e| e.booking).collect();
    assert_eq!(queue, vec![waiting.id], "the queue as the store holds it");
    // On the harness' clock, so that the newcomer is booked after the others.
    let engine = ready.engine.with_clock(h.clock.clone());
    let newcomer = engine.book(BookRequest { seats: Some(1), ..book(UserId::new()) }).await.unwrap();
    assert_eq!((newcomer.status, newcomer.waiting_number), (BookingStatus::Waiting, Some(2)));
    invariants::check(&engine, event).await.unwrap_or_else(|e| panic!("{e}"));

    // Nothing listens on port 1.
    let nowhere = happening_redis::RedisTarget::Single("redis://127.0.0.1:1/".into());
    let pool = happening_postgres::connect(&b.db_url, happening_postgres::testing::pool(1)).await.unwrap();
    match happening_redis::ready_engine(Arc::new(happening_postgres::PgStore::new(pool)), &nowhere, &b.prefix).await {
        Err(e @ happening_redis::StartError::Connect(_)) => {
            assert!(e.to_string().starts_with("cannot connect to Redis"), "{e}");
            assert!(std::error::Error::source(&e).is_some(), "the driver's error is kept as the source");
        }
        Err(e) => panic!("expected a connection error, got {e}"),
        Ok(_) => panic!("an engine on a Redis that is not there"),
    }
}
