//! Holds: seats kept for a while, which expire, are released, or become a booking.

use super::*;

/// Held seats are not free; when the hold is due (not a millisecond before) it expires, its seats
/// promote the waitlist, and its owner is told.
pub async fn hold_expiry_frees_and_promotes(h: &Harness) {
    let e = h.event(3, Fifo).await;
    let u = UserId::new();
    let hold = h.engine.hold(hold_req(e, u, Some(2), None)).await.unwrap();
    assert_eq!(hold.seat_numbers, vec![1, 2]);
    let v = h.engine.event(e).await.unwrap();
    assert_eq!((v.held, v.available()), (2, 1));
    assert_eq!(h.engine.seat_map(e).await.unwrap().held, vec![1, 2]);
    let w = h.book(e, UserId::new(), 2).await.unwrap();
    assert_eq!(w.status, BookingStatus::Waiting);
    check(h, e).await;
    h.clock.advance_ms(59_999);
    assert_eq!(h.engine.expire_holds().await.unwrap(), 0, "not yet due");
    h.clock.advance_ms(1);
    assert_eq!(h.engine.expire_holds().await.unwrap(), 1);
    assert_eq!(status(h, &w).await, (BookingStatus::Confirmed, vec![1, 2]));
    assert!(matches!(h.engine.get_hold(hold.id).await, Err(Error::NotFound(Entity::Hold))));
    let kinds: Vec<_> = h.delivered().await.into_iter().filter(|n| n.user_id == u).map(|n| n.kind).collect();
    assert_eq!(kinds, vec![NotificationKind::HoldExpired]);
    check(h, e).await;
}

/// A hold of taken seats is `Conflict(SeatsTaken)` naming them; a held seat is taken for a strict
/// booking too (a non-strict one gets the lowest free), and a hold beyond the free seats is
/// `Capacity`.
pub async fn hold_of_taken_seats_conflicts(h: &Harness) {
    let e = h.event(5, Fifo).await;
    h.engine.hold(hold_req(e, UserId::new(), None, Some(vec![2]))).await.unwrap();
    let r = h.engine.hold(hold_req(e, UserId::new(), None, Some(vec![2, 3]))).await;
    assert!(matches!(&r, Err(Error::Conflict { reason: Conflict::SeatsTaken, seats }) if seats == &vec![2]), "{r:?}");
    let (reason, seats) = conflict_seats(h.book_seats(e, UserId::new(), &[2], true).await);
    assert_eq!((reason, seats), (Conflict::SeatsTaken, vec![2]));
    // Non-strict booking of a held seat gets the lowest free instead.
    assert_eq!(h.book_seats(e, UserId::new(), &[2], false).await.unwrap().seat_numbers, vec![1]);
    let r = h.engine.hold(hold_req(e, UserId::new(), Some(4), None)).await;
    assert!(matches!(r, Err(Error::Capacity { available: 3 })), "{r:?}");
    check(h, e).await;
}

/// Only a hold's owner may release it; its seats then promote the waitlist, and a second release is
/// `NotFound(Hold)`.
pub async fn hold_release_and_owner_checks(h: &Harness) {
    let e = h.event(2, Fifo).await;
    let u = UserId::new();
    let hold = h.engine.hold(hold_req(e, u, Some(2), None)).await.unwrap();
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    assert!(matches!(h.engine.release_hold(hold.id, UserId::new()).await, Err(Error::Forbidden(_))));
    h.engine.release_hold(hold.id, u).await.unwrap();
    assert_eq!(status(h, &w).await, (BookingStatus::Confirmed, vec![1]));
    assert!(matches!(h.engine.release_hold(hold.id, u).await, Err(Error::NotFound(Entity::Hold))));
    check(h, e).await;
}

/// A hold books its own seats once, for its owner only, and not after it is due
/// (`Conflict(HoldExpired)`).
pub async fn hold_becomes_booking(h: &Harness) {
    let e = h.event(5, Fifo).await;
    let u = UserId::new();
    let hold = h.engine.hold(hold_req(e, u, None, Some(vec![4, 2]))).await.unwrap();
    let req = BookRequest { event_id: e, user_id: u, hold_id: Some(hold.id), ..Default::default() };
    let stranger = h.engine.book(BookRequest { user_id: UserId::new(), ..req.clone() }).await;
    assert!(matches!(stranger, Err(Error::Forbidden(_))), "{stranger:?}");
    let b = h.engine.book(req.clone()).await.unwrap();
    assert_eq!((b.status, b.seat_numbers.clone(), b.hold_id), (BookingStatus::Confirmed, vec![2, 4], Some(hold.id)));
    let v = h.engine.event(e).await.unwrap();
    assert_eq!((v.booked, v.held, v.available()), (2, 0, 3));
    assert!(matches!(h.engine.book(req).await, Err(Error::NotFound(Entity::Hold))), "a hold books once");
    // An expired hold cannot be booked.
    let late = h.engine.hold(hold_req(e, u, Some(1), None)).await.unwrap();
    h.clock.advance_ms(60_000);
    let r = h.engine.book(BookRequest { event_id: e, user_id: u, hold_id: Some(late.id), ..Default::default() }).await;
    assert!(matches!(r, Err(Error::Conflict { reason: Conflict::HoldExpired, .. })), "{r:?}");
    h.engine.expire_holds().await.unwrap();
    check(h, e).await;
}
