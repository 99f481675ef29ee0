//! The waitlist: who waits, in which order, what they are told, and whom freed seats promote under each policy.

use super::*;

/// A booking that does not fit waits, numbered 1, 2, ... in the order it came, in the waitlist and
/// the event's count.
pub async fn short_booking_waits_in_order(h: &Harness) {
    let e = h.event(5, Fifo).await;
    h.book(e, UserId::new(), 3).await.unwrap();
    let w1 = h.book(e, UserId::new(), 3).await.unwrap();
    let w2 = h.book(e, UserId::new(), 5).await.unwrap();
    assert_eq!((w1.status, w1.waiting_number, w1.seat_numbers.len()), (BookingStatus::Waiting, Some(1), 0));
    assert_eq!((w2.status, w2.waiting_number), (BookingStatus::Waiting, Some(2)));
    let list = h.engine.waitlist(e, 0, 0).await.unwrap();
    assert_eq!(list.iter().map(|b| (b.id, b.waiting_number)).collect::<Vec<_>>(), vec![(w1.id, Some(1)), (w2.id, Some(2))]);
    assert_eq!(h.engine.event(e).await.unwrap().waiting, 2);
    check(h, e).await;
}

/// A burst of bookings from every engine at once, as from replicas behind a load balancer:
/// those that wait are told 1, 2, ..., N, each number once, in the order the queue holds
/// them, and the booking itself, the waitlist and the queue's length say the same. The
/// number comes from the store's step that queued the booking; one read afterwards (the
/// admission's position at the push) told two bookings "1" when the second push landed
/// before the first.
pub async fn a_burst_that_waits_is_numbered_one_to_n_in_queue_order(h: &Harness) {
    const SEATS: u32 = 10;
    const BURST: usize = 60;
    for policy in [Fifo, FirstFit] {
        let e = h.event(SEATS, policy).await;
        let engines = h.engines();
        let tasks: Vec<_> = (0..BURST)
            .map(|i| {
                let en = engines[i % engines.len()].clone();
                tokio::spawn(async move {
                    en.book(BookRequest { event_id: e, user_id: UserId::new(), seats: Some(1), ..Default::default() }).await
                })
            })
            .collect();
        let mut told = Vec::new();
        for t in tasks {
            let b = t.await.expect("task").expect("book");
            match b.status {
                BookingStatus::Waiting => told.push((b.queue_seq.expect("waiting has a place"), b.id, b.waiting_number)),
                BookingStatus::Confirmed => assert_eq!(b.waiting_number, None),
                other => panic!("a booking of the burst is {other:?}"),
            }
        }
        assert_eq!(told.len(), BURST - SEATS as usize, "{policy:?}: every seat taken, the rest waiting");
        told.sort();
        let numbers: Vec<Option<u32>> = told.iter().map(|t| t.2).collect();
        let want: Vec<Option<u32>> = (1..=told.len() as u32).map(Some).collect();
        assert_eq!(numbers, want, "{policy:?}: numbers told, in queue order");
        let list = h.engine.waitlist(e, 0, 0).await.unwrap();
        assert_eq!(
            list.iter().map(|b| (b.id, b.waiting_number)).collect::<Vec<_>>(),
            told.iter().map(|t| (t.1, t.2)).collect::<Vec<_>>(),
            "{policy:?}: the waitlist says the same"
        );
        for en in &engines {
            for &(_, id, number) in &told {
                assert_eq!(en.booking(id).await.unwrap().waiting_number, number, "{policy:?}: the booking says the same");
            }
        }
        assert_eq!(h.engine.event(e).await.unwrap().waiting, told.len() as u32);
        check(h, e).await;
    }
}

/// Under `fifo` a newcomer that fits still queues behind anyone waiting; under `partial` the short
/// head takes what is free first.
pub async fn fifo_newcomer_queues_behind_waiting(h: &Harness) {
    let e = h.event(5, Fifo).await;
    h.book(e, UserId::new(), 3).await.unwrap();
    h.book(e, UserId::new(), 3).await.unwrap();
    let small = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!((small.status, small.waiting_number), (BookingStatus::Waiting, Some(2)), "no queue-jumping");
    check(h, e).await;
    // Under `partial` nobody waits while a seat is free: the short request is the head and
    // takes the 2 free seats at once, so the newcomer after it waits.
    let e = h.event(5, Partial).await;
    h.book(e, UserId::new(), 3).await.unwrap();
    let head = h.book(e, UserId::new(), 3).await.unwrap();
    assert_eq!((head.status, head.seat_numbers, head.seats_requested), (BookingStatus::Confirmed, vec![4, 5], 3));
    let small = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!((small.status, small.waiting_number), (BookingStatus::Waiting, Some(1)));
    check(h, e).await;
}

/// The store's own check for a confirm whose admission did not look at the queue
/// (`NewBooking::behind_queue`, `SlotCounter::unchecked_take`): short while anyone waits,
/// writing nothing, not even its idempotency key; by the seats' numbers too.
pub async fn confirm_behind_the_queue_is_short_while_anyone_waits(h: &Harness) {
    let e = h.event(3, Fifo).await;
    h.book(e, UserId::new(), 2).await.unwrap();
    let w = h.book(e, UserId::new(), 2).await.unwrap();
    assert_eq!(w.status, BookingStatus::Waiting);
    let user = UserId::new();
    let key = IdempotencyKey { user_id: user, key: "behind".into(), fingerprint: 7 };
    let new = |behind_queue, seat_numbers: Vec<SeatNo>| NewBooking {
        id: BookingId::new(),
        event_id: e,
        user_id: user,
        seats_requested: 1,
        seats: 1,
        seat_numbers,
        strict_seats: false,
        idempotency: Some(key.clone()),
        behind_queue,
    };
    let (store, now) = (h.engine.store(), h.clock.now());
    let before = snapshot(h, e).await;
    for seats in [vec![], vec![3]] {
        let r = store.confirm(&new(true, seats.clone()), now).await;
        assert!(matches!(r, Err(StoreError::Short { .. })), "seats {seats:?}: {r:?}");
    }
    assert_eq!(snapshot(h, e).await, before, "a refusal writes nothing");
    assert_eq!(store.idempotency(user, &key.key).await.unwrap(), None, "nor binds its key");
    // The engine's way, as for an admission that keeps a count: take, then confirm.
    let one = TakeRequest { want: 1, min: 1, behind_queue: false, waitlist_max: None };
    assert!(matches!(h.engine.admission().take(e, one).await.unwrap(), Take::Taken(1)));
    assert_eq!(store.confirm(&new(false, vec![]), now).await.unwrap().seat_numbers, vec![3], "the flag alone decides");
    check(h, e).await;
    // Nobody waits: the flag changes nothing.
    let f = h.event(1, Fifo).await;
    assert!(matches!(h.engine.admission().take(f, one).await.unwrap(), Take::Taken(1)));
    let b = NewBooking { event_id: f, idempotency: None, ..new(true, vec![]) };
    assert_eq!(store.confirm(&b, now).await.unwrap().seat_numbers, vec![1]);
    check(h, f).await;
}

/// Under `first_fit` a newcomer that fits is confirmed while a larger request waits.
pub async fn first_fit_newcomer_that_fits_is_confirmed(h: &Harness) {
    let e = h.event(5, FirstFit).await;
    h.book(e, UserId::new(), 3).await.unwrap();
    let big = h.book(e, UserId::new(), 3).await.unwrap();
    let small = h.book(e, UserId::new(), 2).await.unwrap();
    assert_eq!(big.status, BookingStatus::Waiting);
    assert_eq!((small.status, small.seat_numbers), (BookingStatus::Confirmed, vec![4, 5]));
    check(h, e).await;
}

/// Capacity 4 full; B (3) and C (1) wait; 2 seats freed.
async fn two_waiting(h: &Harness, policy: WaitlistPolicy) -> (EventId, Booking, Booking) {
    let e = h.event(4, policy).await;
    let u = UserId::new();
    let a = h.book(e, u, 4).await.unwrap();
    let b = h.book(e, UserId::new(), 3).await.unwrap();
    let c = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!((b.status, c.status), (BookingStatus::Waiting, BookingStatus::Waiting));
    h.engine.cancel_seats(a.id, u, &[1, 2], None).await.unwrap();
    (e, b, c)
}

/// Under `fifo` promotion stops at a head that does not fit: a smaller booking behind it may not
/// pass.
pub async fn fifo_stops_at_first_that_does_not_fit(h: &Harness) {
    let (e, b, c) = two_waiting(h, Fifo).await;
    assert_eq!(status(h, &b).await.0, BookingStatus::Waiting);
    assert_eq!(status(h, &c).await.0, BookingStatus::Waiting, "C may not pass B");
    check(h, e).await;
}

/// Under `first_fit` freed seats promote the first waiting booking that fits, past a larger head.
pub async fn first_fit_promotes_every_one_that_fits(h: &Harness) {
    let (e, b, c) = two_waiting(h, FirstFit).await;
    assert_eq!(status(h, &b).await.0, BookingStatus::Waiting);
    assert_eq!(status(h, &c).await, (BookingStatus::Confirmed, vec![1]));
    check(h, e).await;
}

/// Under `partial` the head takes the free seats, short of its request, and leaves the queue.
pub async fn partial_policy_gives_head_what_is_free(h: &Harness) {
    let (e, b, c) = two_waiting(h, Partial).await;
    let b = h.engine.booking(b.id).await.unwrap();
    assert_eq!((b.status, b.seat_numbers, b.seats_requested), (BookingStatus::Confirmed, vec![1, 2], 3));
    assert_eq!(h.engine.booking(c.id).await.unwrap().waiting_number, Some(1));
    check(h, e).await;
}

/// `Event::waitlist_max`: a booking that would wait behind a full queue is refused and
/// writes nothing (no booking, history or notification); one that fits is still confirmed
/// (`first_fit`); the cap is kept by the store, changed by an update, and checked.
pub async fn full_waitlist_turns_newcomers_away_and_writes_nothing(h: &Harness) {
    let full = |r: Result<Booking, Error>| matches!(r, Err(Error::Conflict { reason: Conflict::WaitlistFull, .. }));
    let cap = |m| EventPatch { waitlist_max: Some(m), ..Default::default() };
    let e = h.event(2, Fifo).await;
    let v = h.engine.update_event(e, cap(Some(1))).await.unwrap();
    assert_eq!(v.event.waitlist_max, Some(1));
    assert_eq!(h.engine.store().event(e).await.unwrap().waitlist_max, Some(1), "the store keeps the cap");
    h.book(e, UserId::new(), 2).await.unwrap();
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!((w.status, w.waiting_number), (BookingStatus::Waiting, Some(1)));
    let before = snapshot(h, e).await;
    let u = UserId::new();
    assert!(full(h.book(e, u, 1).await), "the queue holds waitlist_max bookings");
    let partial = BookRequest { event_id: e, user_id: u, seats: Some(2), accept_partial: true, ..Default::default() };
    assert!(full(h.engine.book(partial).await));
    assert_eq!(snapshot(h, e).await, before, "a refusal writes nothing");
    assert!(h.engine.user_bookings(u, None, 10, 0).await.unwrap().is_empty());
    check(h, e).await;
    // A place in the queue frees up: the next newcomer waits again.
    h.engine.cancel(w.id, w.user_id, None).await.unwrap();
    let w2 = h.book(e, u, 1).await.unwrap();
    assert_eq!((w2.status, w2.waiting_number), (BookingStatus::Waiting, Some(1)));
    // Lowered below the queue: everyone stays queued, newcomers are refused; removed: no cap.
    // The cap concerns newcomers: the live bookings are not told of it.
    let pending = snapshot(h, e).await.3;
    h.engine.update_event(e, cap(Some(0))).await.unwrap();
    assert_eq!(snapshot(h, e).await.3, pending, "no event_updated notification for the cap alone");
    assert!(full(h.book(e, UserId::new(), 1).await));
    assert_eq!(h.engine.waitlist(e, 10, 0).await.unwrap().iter().map(|b| b.id).collect::<Vec<_>>(), vec![w2.id]);
    assert_eq!(h.engine.update_event(e, cap(None)).await.unwrap().event.waitlist_max, None);
    assert_eq!(h.book(e, UserId::new(), 1).await.unwrap().waiting_number, Some(2));
    check(h, e).await;
    // `first_fit`: a newcomer that fits is confirmed whatever the queue's length.
    let f = h.event(3, FirstFit).await;
    h.engine.update_event(f, cap(Some(0))).await.unwrap();
    h.book(f, UserId::new(), 2).await.unwrap();
    assert!(full(h.book(f, UserId::new(), 2).await), "no waitlist at all: a short request is refused");
    assert_eq!(h.book(f, UserId::new(), 1).await.unwrap().status, BookingStatus::Confirmed);
    check(h, f).await;
    // The cap is checked: too large changes nothing.
    let before = snapshot(h, e).await;
    let too_large = h.engine.limits().waitlist_max_limit + 1;
    refused(h.engine.update_event(e, cap(Some(too_large))).await, "waitlist_max", "update");
    assert_eq!(snapshot(h, e).await, before);
}
