//! Booking: which seats a booking gets, partial bookings, and requests sent twice.

use super::*;

/// A booking that fits is confirmed with the lowest free seats, in order, and the counts follow.
pub async fn book_confirms_lowest_free_seats(h: &Harness) {
    let e = h.event(10, Fifo).await;
    let a = h.book(e, UserId::new(), 3).await.unwrap();
    assert_eq!((a.status, a.seat_numbers.clone()), (BookingStatus::Confirmed, vec![1, 2, 3]));
    let b = h.book(e, UserId::new(), 2).await.unwrap();
    assert_eq!(b.seat_numbers, vec![4, 5]);
    let v = h.engine.event(e).await.unwrap();
    assert_eq!((v.booked, v.held, v.available()), (5, 0, 5));
    check(h, e).await;
}

/// Seats asked for by number are given when free, ascending, and the seat map shows them taken.
pub async fn requested_seats_when_free(h: &Harness) {
    let e = h.event(10, Fifo).await;
    let a = h.book_seats(e, UserId::new(), &[7, 5], false).await.unwrap();
    assert_eq!((a.status, a.seat_numbers.clone(), a.seats_requested), (BookingStatus::Confirmed, vec![5, 7], 2));
    let map = h.engine.seat_map(e).await.unwrap();
    assert_eq!((map.total, map.taken, map.held), (10, vec![5, 7], vec![]));
    check(h, e).await;
}

/// Seats asked for by number, one of them taken: the booking gets the lowest free seats instead.
pub async fn taken_requested_seats_fall_back_to_lowest(h: &Harness) {
    let e = h.event(10, Fifo).await;
    h.book_seats(e, UserId::new(), &[1], false).await.unwrap();
    let b = h.book_seats(e, UserId::new(), &[1, 6], false).await.unwrap();
    assert_eq!(b.seat_numbers, vec![2, 3]);
    check(h, e).await;
}

/// With `strict_seats`, a taken seat is `Conflict(SeatsTaken)` naming it, and nothing changes.
pub async fn strict_seats_conflict_names_taken_seats(h: &Harness) {
    let e = h.event(10, Fifo).await;
    h.book_seats(e, UserId::new(), &[5], false).await.unwrap();
    let before = h.engine.event(e).await.unwrap();
    let (reason, seats) = conflict_seats(h.book_seats(e, UserId::new(), &[5, 6], true).await);
    assert_eq!((reason, seats), (Conflict::SeatsTaken, vec![5]));
    assert_eq!(h.engine.event(e).await.unwrap(), before, "a conflict changes nothing");
    check(h, e).await;
}

/// `accept_partial` confirms what is free, keeping the request; with nothing free it waits for all
/// of it.
pub async fn accept_partial_takes_what_is_free(h: &Harness) {
    let e = h.event(5, Fifo).await;
    h.book(e, UserId::new(), 3).await.unwrap();
    let req = BookRequest { event_id: e, user_id: UserId::new(), seats: Some(4), accept_partial: true, ..Default::default() };
    let p = h.engine.book(req.clone()).await.unwrap();
    assert_eq!((p.status, p.seat_numbers, p.seats_requested), (BookingStatus::Confirmed, vec![4, 5], 4));
    // Nothing free: it waits for the whole request.
    let w = h.engine.book(req).await.unwrap();
    assert_eq!((w.status, w.seats_requested), (BookingStatus::Waiting, 4));
    check(h, e).await;
}

/// A booking or cancellation repeated with its idempotency key answers its first result and books
/// nothing more; the key reused for another request is `IdempotencyMismatch`; keys are per user.
pub async fn idempotent_requests_replay(h: &Harness) {
    let e = h.event(3, Fifo).await;
    let u = UserId::new();
    let req = BookRequest { event_id: e, user_id: u, seats: Some(2), idempotency_key: Some("k-1".into()), ..Default::default() };
    let first = h.engine.book(req.clone()).await.unwrap();
    let again = h.engine.book(req.clone()).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(h.engine.event(e).await.unwrap().booked, 2, "booked once");
    let other = h.engine.book(BookRequest { seats: Some(1), ..req.clone() }).await;
    assert!(matches!(other, Err(Error::IdempotencyMismatch)), "{other:?}");
    // Keys are per user: another user's same key is a new request.
    let theirs = h.engine.book(BookRequest { user_id: UserId::new(), seats: Some(1), ..req.clone() }).await.unwrap();
    assert_ne!(theirs.id, first.id);
    let waits = BookRequest { idempotency_key: Some("k-2".into()), ..req.clone() };
    let waiting = h.engine.book(waits.clone()).await.unwrap();
    assert_eq!(waiting.status, BookingStatus::Waiting);
    let c1 = h.engine.cancel(first.id, u, Some("c-1")).await.unwrap();
    let c2 = h.engine.cancel(first.id, u, Some("c-1")).await.unwrap();
    assert_eq!((c1.id, c1.status), (c2.id, c2.status));
    assert_eq!(status(h, &waiting).await.0, BookingStatus::Confirmed, "promoted by the cancellation");
    // A repeated booking request answers its first result, whatever happened since.
    let again = h.engine.book(req).await.unwrap();
    assert_eq!((again.id, again.status, &again.seat_numbers), (first.id, BookingStatus::Confirmed, &first.seat_numbers));
    let again = h.engine.book(waits).await.unwrap();
    assert_eq!((again.id, again.status, again.seat_numbers.len()), (waiting.id, BookingStatus::Waiting, 0));
    assert_eq!(h.engine.event(e).await.unwrap().booked, 3, "nothing booked by the repeats");
    let kinds = h.delivered().await.into_iter().filter(|n| n.user_id == u).count();
    assert_eq!(kinds, 4, "a confirmation, a waitlisting, a cancellation, a promotion");
    check(h, e).await;
}

/// Twins of one request (a client's retry racing its original) on two engines at once:
/// one booking, and both answer it.
pub async fn twin_requests_with_one_key_book_once(h: &Harness) {
    let e = h.event(100, Fifo).await;
    let u = UserId::new();
    let other = h.replicas.first().unwrap_or(&h.engine).clone();
    for i in 0..20 {
        let req = BookRequest { event_id: e, user_id: u, seats: Some(1), idempotency_key: Some(format!("twin-{i}")), ..Default::default() };
        let (a, b) = tokio::join!(h.engine.book(req.clone()), other.book(req));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((a.id, a.status), (b.id, b.status), "twin {i}");
    }
    let v = h.engine.event(e).await.unwrap();
    assert_eq!((v.booked, v.waiting), (20, 0), "one booking per key");
    assert_eq!(h.engine.user_bookings(u, None, 0, 0).await.unwrap().len(), 20);
    check(h, e).await;
}
