//! The audit against PostgreSQL: a fresh database is corrupted with raw SQL behind the
//! engine's back (a seat owned twice, a booking without history, a notification stuck in
//! the outbox, counts that disagree, the waiting order broken), and the audit reports each
//! as its own `Breach`; a clean database reports none.

mod common;

use happening_core::domain::{BookingStatus, WaitlistPolicy};
use happening_core::engine::{AuditOptions, AuditReport, Breach};
use happening_core::ids::{EventId, UserId};
use happening_core::testkit::Harness;
use happening_core::HoldRequest;
use sqlx::PgPool;

async fn setup() -> Option<(Harness, PgPool)> {
    common::setup_raw(0, 2).await
}

async fn audit(h: &Harness) -> AuditReport {
    h.engine.audit_all(&AuditOptions::default()).await.expect("audit")
}

async fn event_breaches(h: &Harness, event: EventId) -> Vec<Breach> {
    h.engine.audit_event(event, &AuditOptions::default()).await.expect("audit").breaches
}

async fn sql(pool: &PgPool, query: &str, id: uuid::Uuid) {
    let n = sqlx::query(query).bind(id).execute(pool).await.unwrap_or_else(|e| panic!("{query}: {e}")).rows_affected();
    assert!(n > 0, "{query}: no row changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_database_reports_no_breach() {
    let Some((h, _pool)) = setup().await else { return };
    let event = h.event(4, WaitlistPolicy::Fifo).await;
    let user = UserId::new();
    let a = h.book(event, user, 2).await.unwrap();
    h.book(event, user, 1).await.unwrap();
    let w = h.book(event, user, 2).await.unwrap();
    assert_eq!(w.status, BookingStatus::Waiting);
    h.engine.cancel(a.id, user, None).await.unwrap(); // promotes w
    h.engine.hold(HoldRequest { event_id: event, user_id: user, seats: Some(1), seat_numbers: None, ttl_ms: 60_000 }).await.unwrap();
    h.book(event, user, 3).await.unwrap(); // waits
    let other = h.event(2, WaitlistPolicy::FirstFit).await;
    h.book(other, user, 2).await.unwrap();
    let r = audit(&h).await;
    assert_eq!(r.breaches, vec![], "{r:?}");
    assert_eq!((r.events_checked, r.bookings_checked), (2, 5));
    assert!(r.admission_missing.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_owned_twice_is_reported() {
    let Some((h, pool)) = setup().await else { return };
    let event = h.event(4, WaitlistPolicy::Fifo).await;
    let a = h.book_seats(event, UserId::new(), &[1], true).await.unwrap();
    let b = h.book_seats(event, UserId::new(), &[2], true).await.unwrap();
    assert!(audit(&h).await.is_clean());
    sql(&pool, "UPDATE bookings SET seat_numbers = '{1}' WHERE id = $1", b.id.0).await;
    let breaches = event_breaches(&h, event).await;
    let twice = breaches.iter().find_map(|x| match x {
        Breach::SeatTwice { seat: 1, first, second, .. } => Some([*first, *second]),
        _ => None,
    });
    let mut pair = twice.unwrap_or_else(|| panic!("no seat_twice in {breaches:?}"));
    pair.sort();
    let mut want = [a.id, b.id];
    want.sort();
    assert_eq!(pair, want);
    assert!(breaches.contains(&Breach::SeatMap { event, taken: vec![1, 2], confirmed: vec![1] }), "{breaches:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_without_history_or_notifications_is_reported() {
    let Some((h, pool)) = setup().await else { return };
    let event = h.event(4, WaitlistPolicy::Fifo).await;
    let user = UserId::new();
    let a = h.book(event, user, 1).await.unwrap();
    let b = h.book(event, user, 1).await.unwrap();
    h.engine.cancel(b.id, user, None).await.unwrap();
    sql(&pool, "DELETE FROM booking_history WHERE booking_id = $1", a.id.0).await;
    assert_eq!(event_breaches(&h, event).await, vec![Breach::HistoryMissing { event, booking: a.id }]);

    // The cancellation's notification lost: the history has two entries, the outbox one.
    sql(&pool, "DELETE FROM notifications WHERE booking_id = $1 AND type = 'booking_cancelled'", b.id.0).await;
    let breaches = event_breaches(&h, event).await;
    assert!(
        breaches.iter().any(|x| matches!(x, Breach::Notifications { booking, history, notifications, .. }
            if *booking == b.id && history.len() == 2 && notifications.len() == 1)),
        "{breaches:?}"
    );

    // A history that does not end in the booking's status.
    sql(&pool, "UPDATE bookings SET status = 'confirmed', seat_numbers = '{2}' WHERE id = $1", b.id.0).await;
    let breaches = event_breaches(&h, event).await;
    assert!(breaches.iter().any(|x| matches!(x, Breach::HistoryMismatch { booking, .. } if *booking == b.id)), "{breaches:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_left_pending_is_stuck() {
    let Some((h, pool)) = setup().await else { return };
    let event = h.event(4, WaitlistPolicy::Fifo).await;
    let a = h.book(event, UserId::new(), 1).await.unwrap();
    let b = h.book(event, UserId::new(), 1).await.unwrap();
    assert!(audit(&h).await.is_clean());
    // One claimed by a relay that died (its lease a day long), one pending, each for hours.
    sql(&pool, "UPDATE notifications SET created_at = created_at - interval '2 hours' WHERE booking_id = $1", a.id.0).await;
    sql(&pool, "UPDATE notifications SET created_at = created_at - interval '1 hour' WHERE booking_id = $1", b.id.0).await;
    let now = chrono::Utc::now();
    let claimed = h.engine.store().claim_pending(1, now, now + chrono::Duration::days(1)).await.unwrap();
    assert_eq!(claimed.iter().map(|n| n.booking_id).collect::<Vec<_>>(), vec![Some(a.id)]);
    let r = audit(&h).await;
    let stuck: Vec<_> = r
        .breaches
        .iter()
        .map(|x| match x {
            Breach::OutboxStuck { event: Some(e), .. } if *e == event => x.clone(),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(stuck.len(), 2, "{r:?}");
    // Under a longer threshold, none; once sent, none.
    let lenient = AuditOptions { stuck_after: chrono::Duration::hours(3), ..Default::default() };
    assert!(h.engine.audit_all(&lenient).await.unwrap().is_clean());
    // Sent: a's once its lease ends, and b's.
    let later = now + chrono::Duration::days(2);
    for _ in 0..2 {
        let batch = h.engine.store().claim_pending(10, later, later).await.unwrap();
        let ids: Vec<_> = batch.iter().map(|n| n.id).collect();
        h.engine.store().set_delivery(&ids, happening_core::domain::DeliveryStatus::Sent).await.unwrap();
    }
    assert_eq!(h.engine.outbox_depth().await.unwrap(), 0);
    assert!(audit(&h).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_that_disagree_are_reported() {
    let Some((h, pool)) = setup().await else { return };
    let event = h.event(4, WaitlistPolicy::Fifo).await;
    let a = h.book_seats(event, UserId::new(), &[1, 2], true).await.unwrap();

    // A seat row freed behind the bookings' back: the booked count and the seat map disagree
    // with the confirmed bookings.
    sql(&pool, "UPDATE event_seats SET booking_id = NULL WHERE event_id = $1 AND seat_no = 2", event.0).await;
    let breaches = event_breaches(&h, event).await;
    assert!(breaches.contains(&Breach::BookedCount { event, booked: 1, confirmed_seats: 2 }), "{breaches:?}");
    assert!(breaches.contains(&Breach::SeatMap { event, taken: vec![1], confirmed: vec![1, 2] }), "{breaches:?}");
    sql(&pool, "UPDATE event_seats SET booking_id = $1 WHERE seat_no = 2", a.id.0).await;
    assert_eq!(event_breaches(&h, event).await, vec![]);

    // The capacity cut below what is booked: oversold, and a seat out of range.
    sql(&pool, "UPDATE events SET total_slots = 1 WHERE id = $1", event.0).await;
    let breaches = event_breaches(&h, event).await;
    assert!(breaches.contains(&Breach::Oversold { event, capacity: 1, booked: 2, held: 0 }), "{breaches:?}");
    assert!(breaches.contains(&Breach::SeatOutOfRange { event, booking: a.id, seat: 2, capacity: 1 }), "{breaches:?}");
}

/// The queue's length the store keeps (which numbers the next booking to wait), moved
/// behind the bookings' back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_count_that_disagrees_is_reported() {
    let Some((h, pool)) = setup().await else { return };
    let event = h.event(1, WaitlistPolicy::Fifo).await;
    h.book(event, UserId::new(), 1).await.unwrap();
    let w = h.book(event, UserId::new(), 1).await.unwrap();
    assert_eq!(w.waiting_number, Some(1));
    assert!(audit(&h).await.is_clean());
    sql(&pool, "UPDATE event_queues SET waiting = 3 WHERE event_id = $1", event.0).await;
    assert_eq!(event_breaches(&h, event).await, vec![Breach::WaitingCount { event, count: 3, waiting: 1 }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_waiting_order_is_reported() {
    let Some((h, pool)) = setup().await else { return };
    let event = h.event(1, WaitlistPolicy::Fifo).await;
    h.book(event, UserId::new(), 1).await.unwrap();
    let first = h.book(event, UserId::new(), 1).await.unwrap();
    h.clock.advance_ms(60_000);
    let second = h.book(event, UserId::new(), 1).await.unwrap();
    assert!(audit(&h).await.is_clean());
    let (s1, s2) = (first.queue_seq.unwrap() as i64, second.queue_seq.unwrap() as i64);
    // Swap their places in the queue (through a free seq: the waiting order is unique).
    for (id, seq) in [(first.id, -1), (second.id, s1), (first.id, s2)] {
        sqlx::query("UPDATE bookings SET queue_seq = $2 WHERE id = $1").bind(id.0).bind(seq).execute(&pool).await.unwrap();
    }
    assert_eq!(event_breaches(&h, event).await, vec![Breach::QueueOrder { event, booking: second.id, created_before: first.id }]);
}

/// The audit while another engine (as another server) keeps booking, cancelling and
/// promoting: the audit reads an event in several steps, so a change committing between
/// them can look like a breach (a booking "waiting" whose history ends "confirmed", a
/// waiting booking whose promotion pass has not run yet, counts read apart). Audited again
/// once the change is over, as `happening audit` does a moment later, none of them stays
/// (`AuditReport::confirmed_by`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_during_the_audit_are_not_confirmed_as_breaches() {
    let Some((h, _url)) = common::setup(1, 4).await else { return };
    let event = h.event(1, WaitlistPolicy::Fifo).await;
    let other = h.engines()[1].clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Held by the churn for each cycle; the test takes it to audit again between cycles.
    let gate = std::sync::Arc::new(tokio::sync::Mutex::new(()));
    let churn = tokio::spawn({
        let (stop, gate) = (stop.clone(), gate.clone());
        async move {
            let mut cycles = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _cycle = gate.lock().await;
                let (a, b) = (UserId::new(), UserId::new());
                let book = |user| happening_core::BookRequest { event_id: event, user_id: user, seats: Some(1), ..Default::default() };
                let first = other.book(book(a)).await.expect("book");
                let second = other.book(book(b)).await.expect("book");
                assert_eq!((first.status, second.status), (BookingStatus::Confirmed, BookingStatus::Waiting));
                other.cancel(first.id, a, None).await.expect("cancel, promoting the second");
                other.cancel(second.id, b, None).await.expect("cancel");
                cycles += 1;
            }
            cycles
        }
    });
    let mut unconfirmed = 0;
    for i in 0..40 {
        let first = audit(&h).await;
        if first.is_clean() {
            continue;
        }
        unconfirmed += first.breaches.len();
        let between_cycles = gate.lock().await;
        let confirmed = first.confirmed_by(audit(&h).await);
        drop(between_cycles);
        assert_eq!(confirmed.breaches, vec![], "audit {i}: first read {:?}", first.breaches);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let cycles = churn.await.expect("churn");
    assert!(cycles > 0, "the other engine changed the event during the audits");
    eprintln!("{cycles} cycles; {unconfirmed} breach(es) seen once and not confirmed");
    // At rest, audited once: clean.
    assert!(audit(&h).await.is_clean());
}
