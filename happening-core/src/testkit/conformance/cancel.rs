//! Cancelling a booking or some of its seats, and the promotions that follow.

use super::*;

/// The demo: capacity 5, book 3 and 3 (one waits), cancel 2 seats: promoted.
pub async fn demo_cancel_seats_promotes(h: &Harness) {
    let e = h.event(5, Fifo).await;
    let (alice, bob) = (UserId::new(), UserId::new());
    let a = h.book(e, alice, 3).await.unwrap();
    let b = h.book(e, bob, 3).await.unwrap();
    assert_eq!(b.status, BookingStatus::Waiting);
    let a2 = h.engine.cancel_seats(a.id, alice, &[1, 2], None).await.unwrap();
    assert_eq!((a2.status, a2.seat_numbers), (BookingStatus::Confirmed, vec![3]));
    assert_eq!(status(h, &b).await, (BookingStatus::Confirmed, vec![1, 2, 4]));
    let hist: Vec<_> = h.engine.history(b.id).await.unwrap().iter().map(|e| e.action).collect();
    assert_eq!(hist, vec![HistoryAction::Created, HistoryAction::Promoted]);
    let kinds: Vec<_> = h.delivered().await.into_iter().filter(|n| n.user_id == bob).map(|n| n.kind).collect();
    assert_eq!(kinds, vec![NotificationKind::BookingWaitlisted, NotificationKind::WaitlistPromoted]);
    check(h, e).await;
}

/// Cancelling a waiting booking takes it out of the queue: the next head is promoted if it fits,
/// and the rest move up.
pub async fn cancel_waiting_leaves_queue_and_promotes_next(h: &Harness) {
    let e = h.event(4, Fifo).await;
    h.book(e, UserId::new(), 3).await.unwrap();
    let bu = UserId::new();
    let b = h.book(e, bu, 3).await.unwrap();
    let c = h.book(e, UserId::new(), 1).await.unwrap();
    let d = h.book(e, UserId::new(), 2).await.unwrap();
    assert_eq!(h.engine.booking(d.id).await.unwrap().waiting_number, Some(3));
    let cancelled = h.engine.cancel(b.id, bu, None).await.unwrap();
    assert_eq!(cancelled.status, BookingStatus::Cancelled);
    // C is now the head and fits the one free seat; D moves up.
    assert_eq!(status(h, &c).await, (BookingStatus::Confirmed, vec![4]));
    assert_eq!(h.engine.booking(d.id).await.unwrap().waiting_number, Some(1));
    let list: Vec<_> = h.engine.waitlist(e, 0, 0).await.unwrap().iter().map(|b| b.id).collect();
    assert_eq!(list, vec![d.id]);
    check(h, e).await;
}

/// A second cancellation is `Conflict(BookingCancelled)` and frees nothing; an unknown booking is
/// `NotFound(Booking)`.
pub async fn cancel_twice_conflicts(h: &Harness) {
    let e = h.event(4, Fifo).await;
    let u = UserId::new();
    let a = h.book(e, u, 2).await.unwrap();
    h.engine.cancel(a.id, u, None).await.unwrap();
    let again = h.engine.cancel(a.id, u, None).await;
    assert!(matches!(again, Err(Error::Conflict { reason: Conflict::BookingCancelled, .. })), "{again:?}");
    assert!(matches!(h.engine.cancel(BookingId::new(), u, None).await, Err(Error::NotFound(Entity::Booking))));
    assert_eq!(h.engine.event(e).await.unwrap().available(), 4);
    check(h, e).await;
}

/// Cancelling some seats: only the booking's own (`SeatsNotInBooking` names the others), only of a
/// confirmed booking, the last one cancels it, and the freed seats promote.
pub async fn cancel_seats_rules(h: &Harness) {
    let e = h.event(3, Fifo).await;
    let u = UserId::new();
    let a = h.book(e, u, 2).await.unwrap();
    let w = h.book(e, UserId::new(), 3).await.unwrap();
    let (reason, seats) = conflict_seats(h.engine.cancel_seats(a.id, u, &[2, 3], None).await);
    assert_eq!((reason, seats), (Conflict::SeatsNotInBooking, vec![3]));
    let (reason, _) = conflict_seats(h.engine.cancel_seats(w.id, u, &[1], None).await);
    assert_eq!(reason, Conflict::BookingNotConfirmed);
    let a1 = h.engine.cancel_seats(a.id, u, &[2], None).await.unwrap();
    assert_eq!((a1.status, a1.seat_numbers), (BookingStatus::Confirmed, vec![1]));
    let a0 = h.engine.cancel_seats(a.id, u, &[1], None).await.unwrap();
    assert_eq!(a0.status, BookingStatus::Cancelled);
    // All three seats free: the waiting booking of 3 got them.
    assert_eq!(status(h, &w).await, (BookingStatus::Confirmed, vec![1, 2, 3]));
    let hist: Vec<_> = h.engine.history(a.id).await.unwrap().iter().map(|e| e.action).collect();
    assert_eq!(hist, vec![HistoryAction::Created, HistoryAction::Modified, HistoryAction::Cancelled]);
    check(h, e).await;
}
