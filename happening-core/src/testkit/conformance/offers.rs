//! Offers: with `offer_ttl_seconds`, a promotion holds the seats for the next in line
//! until they accept, decline, or the time runs out.

use chrono::Duration;

use crate::clock::Clock;
use crate::domain::*;
use crate::engine::BookRequest;
use crate::error::{Conflict, Error};
use crate::ids::*;
use crate::ports::StoreError;
use crate::testkit::Harness;

use super::{check, status};
use WaitlistPolicy::*;

const TTL_S: u32 = 60;

/// An event of `capacity` seats under `policy` whose promotions are offers of `TTL_S`.
async fn offer_event(h: &Harness, capacity: u32, policy: WaitlistPolicy) -> EventId {
    let e = h.event(capacity, policy).await;
    let patch = EventPatch { offer_ttl_seconds: Some(Some(TTL_S)), ..Default::default() };
    let v = h.engine.update_event(e, patch).await.unwrap();
    assert_eq!(v.event.offer_ttl_seconds, Some(TTL_S));
    assert_eq!(h.engine.store().event(e).await.unwrap().offer_ttl_seconds, Some(TTL_S), "the store keeps the setting");
    e
}

fn conflict(r: Result<Booking, Error>) -> Conflict {
    match r {
        Err(Error::Conflict { reason, .. }) => reason,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// A sold-out event (`first` holds every seat) with `waiting` behind it, in order.
async fn sold_out(h: &Harness, e: EventId, capacity: u32, waiting: &[u32]) -> (Booking, Vec<Booking>) {
    let first = h.book(e, UserId::new(), capacity).await.unwrap();
    let mut queued = Vec::new();
    for &n in waiting {
        let b = h.book(e, UserId::new(), n).await.unwrap();
        assert_eq!(b.status, BookingStatus::Waiting);
        queued.push(b);
    }
    (first, queued)
}

/// A seat freed on an event with offers is held for the head (not free, not booked) until it
/// accepts; accepting confirms those seats, again answers the same, and the history and
/// notifications say so.
pub async fn offer_holds_seats_until_accepted(h: &Harness) {
    let e = offer_event(h, 2, Fifo).await;
    let (a, _) = sold_out(h, e, 2, &[]).await;
    let keyed =
        BookRequest { event_id: e, user_id: UserId::new(), seats: Some(2), idempotency_key: Some("offer-1".into()), ..Default::default() };
    let b = &h.engine.book(keyed.clone()).await.unwrap();
    assert_eq!(b.status, BookingStatus::Waiting);
    h.delivered().await;
    let offered_at = h.clock.now();
    h.engine.cancel(a.id, a.user_id, None).await.unwrap();
    let o = h.engine.booking(b.id).await.unwrap();
    assert_eq!((o.status, o.seat_numbers.clone()), (BookingStatus::Offered, vec![1, 2]));
    assert_eq!(o.offer_expires_at, Some(offered_at + Duration::seconds(TTL_S.into())));
    assert_eq!(o.waiting_number, None);
    // Held for it: not free, not booked, in the seat map's held seats.
    let v = h.engine.event(e).await.unwrap();
    assert_eq!((v.booked, v.held, v.waiting, v.available()), (0, 2, 0, 0));
    assert_eq!(h.engine.seat_map(e).await.unwrap().held, vec![1, 2]);
    let c = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!(c.status, BookingStatus::Waiting, "offered seats are not free");
    check(h, e).await;

    // A repeat of the booking request answers it as it was made: waiting.
    let replay = h.engine.book(keyed.clone()).await.unwrap();
    assert_eq!((replay.id, replay.status, replay.seat_numbers.clone()), (b.id, BookingStatus::Waiting, vec![]));

    let notes = h.delivered().await;
    let offer = notes.iter().find(|n| n.user_id == b.user_id).expect("the offer is notified");
    assert_eq!((offer.kind, offer.seats, offer.expires_at), (NotificationKind::WaitlistOffer, 2, o.offer_expires_at));

    h.clock.advance_ms(59_999);
    let ok = h.engine.accept_offer(b.id).await.unwrap();
    assert_eq!((ok.status, ok.seat_numbers.clone()), (BookingStatus::Confirmed, vec![1, 2]));
    assert_eq!(h.engine.book(keyed).await.unwrap().status, BookingStatus::Waiting, "still as it was made");
    assert_eq!(h.engine.accept_offer(b.id).await.unwrap(), ok, "accepting again answers the same");
    let v = h.engine.event(e).await.unwrap();
    assert_eq!((v.booked, v.held), (2, 0));
    assert_eq!(h.engine.seat_map(e).await.unwrap().taken, vec![1, 2]);
    let history: Vec<HistoryAction> = h.engine.history(b.id).await.unwrap().iter().map(|x| x.action).collect();
    assert_eq!(history, vec![HistoryAction::Created, HistoryAction::Offered, HistoryAction::Accepted]);
    let kinds: Vec<_> = h.delivered().await.into_iter().filter(|n| n.user_id == b.user_id).map(|n| n.kind).collect();
    assert_eq!(kinds, vec![NotificationKind::OfferAccepted]);
    // Nothing was due: the background step ends nothing.
    h.clock.advance_ms(10_000);
    assert_eq!(h.engine.expire_offers().await.unwrap(), 0);
    assert_eq!(conflict(h.engine.decline_offer(b.id).await), Conflict::NotOffered);
    assert_eq!(conflict(h.engine.accept_offer(c.id).await), Conflict::NotOffered, "a waiting booking has no offer");
    check(h, e).await;
}

/// A declined offer frees its seats to the next in line, ends the booking for good, and declining
/// again answers the same.
pub async fn declined_offer_passes_to_the_next_in_line(h: &Harness) {
    let e = offer_event(h, 2, Fifo).await;
    let (a, q) = sold_out(h, e, 2, &[2, 1]).await;
    let (b, c) = (&q[0], &q[1]);
    h.engine.cancel(a.id, a.user_id, None).await.unwrap();
    assert_eq!(status(h, b).await, (BookingStatus::Offered, vec![1, 2]));
    assert_eq!(status(h, c).await.0, BookingStatus::Waiting);
    let d = h.engine.decline_offer(b.id).await.unwrap();
    assert_eq!((d.status, d.seat_numbers.clone()), (BookingStatus::Declined, vec![1, 2]));
    assert_eq!(h.engine.decline_offer(b.id).await.unwrap(), d, "declining again answers the same");
    assert_eq!(conflict(h.engine.accept_offer(b.id).await), Conflict::OfferDeclined);
    assert_eq!(conflict(h.engine.cancel(b.id, b.user_id, None).await), Conflict::OfferDeclined);
    // The next in line is offered what it asked for; the other seat is free.
    assert_eq!(status(h, c).await, (BookingStatus::Offered, vec![1]));
    let v = h.engine.event(e).await.unwrap();
    assert_eq!((v.booked, v.held, v.waiting, v.available()), (0, 1, 0, 1));
    let history: Vec<HistoryAction> = h.engine.history(b.id).await.unwrap().iter().map(|x| x.action).collect();
    assert_eq!(history, vec![HistoryAction::Created, HistoryAction::Offered, HistoryAction::Declined]);
    check(h, e).await;
}

/// An offer due is no longer accepted, and the background step expires it once and offers its seats
/// to the next in line.
pub async fn expired_offer_passes_on_in_the_background_step(h: &Harness) {
    let e = offer_event(h, 1, Fifo).await;
    let (a, q) = sold_out(h, e, 1, &[1, 1]).await;
    let (b, c) = (&q[0], &q[1]);
    h.engine.cancel(a.id, a.user_id, None).await.unwrap();
    h.delivered().await;
    h.clock.advance_ms(59_999);
    assert_eq!(h.engine.expire_offers().await.unwrap(), 0, "not yet due");
    h.clock.advance_ms(1);
    // Due: it can no longer be accepted, and the refusal changes nothing.
    assert_eq!(conflict(h.engine.accept_offer(b.id).await), Conflict::OfferExpired);
    assert_eq!(status(h, b).await.0, BookingStatus::Offered);
    let ended = h.engine.expire_due().await.unwrap();
    assert_eq!((ended.holds, ended.offers), (0, 1));
    assert_eq!(status(h, b).await, (BookingStatus::Expired, vec![1]));
    assert_eq!(conflict(h.engine.accept_offer(b.id).await), Conflict::OfferExpired);
    assert_eq!(conflict(h.engine.decline_offer(b.id).await), Conflict::OfferExpired);
    let c_now = h.engine.booking(c.id).await.unwrap();
    assert_eq!((c_now.status, c_now.seat_numbers.clone()), (BookingStatus::Offered, vec![1]));
    assert_eq!(c_now.offer_expires_at, Some(h.clock.now() + Duration::seconds(TTL_S.into())));
    let kinds: Vec<_> = h.delivered().await.into_iter().filter(|n| n.user_id == b.user_id).map(|n| n.kind).collect();
    assert_eq!(kinds, vec![NotificationKind::OfferExpired]);
    let history: Vec<HistoryAction> = h.engine.history(b.id).await.unwrap().iter().map(|x| x.action).collect();
    assert_eq!(history, vec![HistoryAction::Created, HistoryAction::Offered, HistoryAction::Expired]);
    check(h, e).await;
}

/// Many offers of one event falling due together (a store may end them several at once):
/// one step ends each exactly once, and their seats go to the next in line, one each.
pub async fn offers_due_together_end_once_each(h: &Harness) {
    const N: u32 = 20;
    let e = offer_event(h, N, Fifo).await;
    let (a, q) = sold_out(h, e, N, &[1; 2 * N as usize]).await;
    h.engine.cancel(a.id, a.user_id, None).await.unwrap();
    let (first, next) = q.split_at(N as usize);
    for b in first {
        assert_eq!(status(h, b).await.0, BookingStatus::Offered);
    }
    h.delivered().await;
    h.clock.advance_ms(i64::from(TTL_S) * 1000);
    let ended = h.engine.expire_due().await.unwrap();
    assert_eq!(ended.offers, N as usize);
    assert_eq!(h.engine.expire_due().await.unwrap().offers, 0, "nothing left due");
    for b in first {
        assert_eq!(status(h, b).await.0, BookingStatus::Expired);
        let history: Vec<HistoryAction> = h.engine.history(b.id).await.unwrap().iter().map(|x| x.action).collect();
        assert_eq!(history, vec![HistoryAction::Created, HistoryAction::Offered, HistoryAction::Expired]);
    }
    let mut seats = Vec::new();
    for b in next {
        let (st, s) = status(h, b).await;
        assert_eq!((st, s.len()), (BookingStatus::Offered, 1));
        seats.extend(s);
    }
    seats.sort_unstable();
    assert_eq!(seats, (1..=N).collect::<Vec<_>>(), "each freed seat offered once");
    let expired_notes = h.delivered().await.into_iter().filter(|n| n.kind == NotificationKind::OfferExpired).count();
    assert_eq!(expired_notes, N as usize, "one notification per expiry");
    check(h, e).await;
}

/// Offers go where the policy promotes (`first_fit`: the first that fits; `partial`: what is free
/// to the head), and without offers promotions confirm again.
pub async fn offers_follow_the_waitlist_policy(h: &Harness) {
    // first_fit: the first that fits is offered, the larger head waits.
    let e = offer_event(h, 3, FirstFit).await;
    let (a, q) = sold_out(h, e, 3, &[3, 1]).await;
    h.engine.cancel_seats(a.id, a.user_id, &[2], None).await.unwrap();
    assert_eq!(status(h, &q[0]).await.0, BookingStatus::Waiting);
    assert_eq!(status(h, &q[1]).await, (BookingStatus::Offered, vec![2]));
    check(h, e).await;
    // partial: the head is offered what is free, short of its request.
    let e = offer_event(h, 3, Partial).await;
    let (a, q) = sold_out(h, e, 3, &[3]).await;
    h.engine.cancel_seats(a.id, a.user_id, &[1, 3], None).await.unwrap();
    let o = h.engine.booking(q[0].id).await.unwrap();
    assert_eq!((o.status, o.seat_numbers, o.seats_requested), (BookingStatus::Offered, vec![1, 3], 3));
    let ok = h.engine.accept_offer(q[0].id).await.unwrap();
    assert_eq!((ok.status, ok.seat_numbers), (BookingStatus::Confirmed, vec![1, 3]));
    check(h, e).await;
    // Without the setting (back to null), promotions confirm at once again.
    let patch = EventPatch { offer_ttl_seconds: Some(None), ..Default::default() };
    assert_eq!(h.engine.update_event(e, patch).await.unwrap().event.offer_ttl_seconds, None);
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!(w.status, BookingStatus::Waiting);
    h.engine.cancel(a.id, a.user_id, None).await.unwrap();
    assert_eq!(status(h, &w).await, (BookingStatus::Confirmed, vec![2]));
    check(h, e).await;
}

/// Offered seats are kept from a resize and from a cancel of some seats; a cancelled offer passes
/// its seats on, and a cancelled event ends its offers, which never expire after.
pub async fn cancels_and_resizes_respect_offered_seats(h: &Harness) {
    let e = offer_event(h, 3, Fifo).await;
    let a = h.book(e, UserId::new(), 2).await.unwrap();
    let c = h.book(e, UserId::new(), 1).await.unwrap();
    let (d, f) = (h.book(e, UserId::new(), 1).await.unwrap(), h.book(e, UserId::new(), 1).await.unwrap());
    h.engine.cancel(c.id, c.user_id, None).await.unwrap();
    assert_eq!(status(h, &d).await, (BookingStatus::Offered, vec![3]));
    // Resize cannot shrink into an offered seat.
    let shrink = EventPatch { capacity: Some(2), ..Default::default() };
    let r = h.engine.update_event(e, shrink.clone()).await;
    assert!(matches!(r, Err(Error::Capacity { available: 0 })), "the counter counts the offered seat: {r:?}");
    let r = h.engine.store().update_event(e, &shrink, h.clock.now()).await;
    assert!(
        matches!(r, Err(StoreError::Conflict { reason: Conflict::CapacityBelowTakenSeat { highest: 3 }, .. })),
        "the store keeps the offered seat: {r:?}"
    );
    assert_eq!(h.engine.event(e).await.unwrap().event.capacity, 3);
    // Seats of an offer cannot be cancelled one by one; the offer itself can be cancelled,
    // and its seats pass on.
    assert_eq!(conflict(h.engine.cancel_seats(d.id, d.user_id, &[3], None).await), Conflict::BookingNotConfirmed);
    let cancelled = h.engine.cancel(d.id, d.user_id, None).await.unwrap();
    assert_eq!((cancelled.status, cancelled.seat_numbers), (BookingStatus::Cancelled, vec![3]));
    assert_eq!(status(h, &f).await, (BookingStatus::Offered, vec![3]));
    check(h, e).await;
    // Cancelling the event cancels the open offer.
    h.engine.cancel_event(e).await.unwrap();
    assert_eq!(status(h, &f).await.0, BookingStatus::Cancelled);
    assert_eq!(status(h, &a).await.0, BookingStatus::Cancelled);
    assert_eq!(h.engine.expire_offers().await.unwrap(), 0);
    h.clock.advance_ms(i64::from(TTL_S) * 1000);
    assert_eq!(h.engine.expire_offers().await.unwrap(), 0, "a cancelled offer never expires");
    check(h, e).await;
}

/// Accept, decline and expiry of one offer, from several engines at once: exactly one of
/// them ends it, and the others are told how it ended.
pub async fn racing_answers_end_each_offer_once(h: &Harness) {
    const OFFERS: u32 = 12;
    let e = offer_event(h, OFFERS, Fifo).await;
    let (a, q) = sold_out(h, e, OFFERS, &vec![1; OFFERS as usize]).await;
    h.engine.cancel(a.id, a.user_id, None).await.unwrap();
    let offered_until = h.clock.now() + Duration::seconds(TTL_S.into());
    let engines = h.engines();
    for b in &q {
        assert_eq!(status(h, b).await.0, BookingStatus::Offered);
    }
    let mut tasks = Vec::new();
    for (i, b) in q.iter().enumerate() {
        let id = b.id;
        // An accept in time and an expiry after it reach the store at once: the store's
        // step on the offer's status decides (the owner's clock and the expiring server's
        // differ by the offer's last millisecond).
        let (en1, en2, en3) =
            (engines[i % engines.len()].clone(), engines[(i + 1) % engines.len()].clone(), engines[(i + 2) % engines.len()].clone());
        tasks.push(tokio::spawn(
            async move { en1.store().accept_offer(id, offered_until - Duration::milliseconds(1)).await.map(|b| b.status) },
        ));
        tasks.push(tokio::spawn(async move {
            en2.store().expire_offers(offered_until, 100).await.map(|v| v.len()).map(|_| BookingStatus::Expired)
        }));
        if i % 2 == 0 {
            tasks.push(tokio::spawn(async move { en3.store().decline_offer(id, offered_until).await.map(|c| c.booking.status) }));
        }
    }
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => {}
            Err(StoreError::Conflict { reason, .. }) => {
                assert!(matches!(reason, Conflict::NotOffered | Conflict::OfferDeclined | Conflict::OfferExpired), "{reason:?}")
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let mut ended = 0;
    for b in &q {
        let history: Vec<HistoryAction> = h.engine.history(b.id).await.unwrap().iter().map(|x| x.action).collect();
        assert_eq!(history.len(), 3, "{history:?}");
        assert!(matches!(history[2], HistoryAction::Accepted | HistoryAction::Declined | HistoryAction::Expired), "{history:?}");
        let now = h.engine.booking(b.id).await.unwrap();
        let want = match history[2] {
            HistoryAction::Accepted => BookingStatus::Confirmed,
            HistoryAction::Declined => BookingStatus::Declined,
            _ => BookingStatus::Expired,
        };
        assert_eq!(now.status, want);
        ended += 1;
    }
    assert_eq!(ended, OFFERS);
    // The seats of the offers that did not end accepted were freed in the store; the
    // engines' own steps were bypassed, so the counter is repaired the way a crash is.
    h.engine.reconcile_event(e).await.unwrap();
    let v = h.engine.event(e).await.unwrap();
    let confirmed =
        h.engine.store().event_bookings(e).await.unwrap().iter().filter(|b| b.status == BookingStatus::Confirmed).count() as u32;
    assert_eq!((v.booked, v.held, v.available()), (confirmed, 0, OFFERS - confirmed));
    check(h, e).await;
}
