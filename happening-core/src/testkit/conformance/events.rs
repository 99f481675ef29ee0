//! Events: resizing, cancelling, and the pages of their lists.

use super::*;

/// A larger capacity adds seats, and the waitlist is promoted into them.
pub async fn resize_up_promotes(h: &Harness) {
    let e = h.event(2, Fifo).await;
    h.book(e, UserId::new(), 2).await.unwrap();
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    let v = h.engine.update_event(e, EventPatch { capacity: Some(3), ..Default::default() }).await.unwrap();
    assert_eq!((v.event.capacity, v.booked, v.available()), (3, 3, 0));
    assert_eq!(status(h, &w).await, (BookingStatus::Confirmed, vec![3]));
    check(h, e).await;
}

/// A resize frees more seats than one promotion pass may fill: the rest of the queue is
/// promoted by `reconcile_dirty` (the server's timer), not left waiting for free seats.
pub async fn promotion_cut_by_its_limit_is_finished_by_reconcile_dirty(h: &Harness) {
    let engine = h.engine.clone().with_limits(Limits { promotions_per_pass_max: 3, ..Limits::default() });
    let e = h.event(1, Fifo).await;
    h.book(e, UserId::new(), 1).await.unwrap();
    let mut waiting = Vec::new();
    for _ in 0..7 {
        waiting.push(h.book(e, UserId::new(), 1).await.unwrap());
    }
    let v = engine.update_event(e, EventPatch { capacity: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!((v.booked, v.waiting), (4, 4), "one pass promotes at most 3");
    for (promoted, still_waiting) in [(7, 1), (8, 0)] {
        engine.reconcile_dirty().await.unwrap();
        let v = h.engine.event(e).await.unwrap();
        assert_eq!((v.booked, v.waiting), (promoted, still_waiting));
    }
    for (i, b) in waiting.iter().enumerate() {
        // FIFO: the queue's order is the order of the seats.
        assert_eq!(status(h, b).await, (BookingStatus::Confirmed, vec![i as SeatNo + 2]));
    }
    assert_eq!(engine.reconcile_dirty().await.unwrap(), 0, "nothing left marked");
    check(h, e).await;
}

/// A smaller capacity may not drop a taken seat (`CapacityBelowTakenSeat`) nor go below the seats
/// taken; a refusal changes nothing.
pub async fn resize_down_keeps_taken_seats(h: &Harness) {
    let e = h.event(10, Fifo).await;
    h.book_seats(e, UserId::new(), &[8], false).await.unwrap();
    let r = h.engine.update_event(e, EventPatch { capacity: Some(7), ..Default::default() }).await;
    assert!(matches!(r, Err(Error::Conflict { reason: Conflict::CapacityBelowTakenSeat { highest: 8 }, .. })), "{r:?}");
    assert_eq!(h.engine.event(e).await.unwrap().event.capacity, 10);
    let v = h.engine.update_event(e, EventPatch { capacity: Some(8), ..Default::default() }).await.unwrap();
    assert_eq!((v.event.capacity, v.available()), (8, 7));
    // Below the number of taken seats: refused, nothing changed.
    h.book(e, UserId::new(), 7).await.unwrap();
    let r = h.engine.update_event(e, EventPatch { capacity: Some(1), ..Default::default() }).await;
    assert!(matches!(r, Err(Error::Capacity { .. }) | Err(Error::Conflict { .. })), "{r:?}");
    let v = h.engine.event(e).await.unwrap();
    assert_eq!((v.event.capacity, v.booked), (8, 8));
    check(h, e).await;
}

/// Cancelling an event cancels every booking, waiting ones included, drops its holds, notifies
/// everyone concerned, and refuses anything after.
pub async fn cancel_event_cancels_everything(h: &Harness) {
    let e = h.event(3, Fifo).await;
    let holder = UserId::new();
    h.engine.hold(hold_req(e, holder, Some(1), None)).await.unwrap();
    let users: Vec<UserId> = (0..3).map(|_| UserId::new()).collect();
    for &u in &users {
        h.book(e, u, 1).await.unwrap();
    }
    h.engine.hold(hold_req(e, UserId::new(), Some(1), None)).await.unwrap_err();
    h.delivered().await;
    let cancelled = h.engine.cancel_event(e).await.unwrap();
    assert_eq!(cancelled.len(), 3);
    assert!(cancelled.iter().all(|b| b.status == BookingStatus::Cancelled));
    let v = h.engine.event(e).await.unwrap();
    assert_eq!((v.event.status, v.booked, v.held, v.waiting), (EventStatus::Cancelled, 0, 0, 0));
    let notified: Vec<_> = h.delivered().await.into_iter().map(|n| (n.user_id, n.kind, n.seats)).collect();
    // Everyone: the confirmed, the waiting, and the holder of seats.
    for (u, seats) in [(users[0], 1), (users[1], 1), (users[2], 0), (holder, 1)] {
        assert!(notified.contains(&(u, NotificationKind::EventCancelled, seats)), "{u} not notified: {notified:?}");
    }
    assert_eq!(notified.len(), 4);
    let r = h.book(e, UserId::new(), 1).await;
    assert!(matches!(r, Err(Error::Conflict { reason: Conflict::EventCancelled, .. })), "{r:?}");
    assert!(matches!(h.engine.cancel_event(e).await, Err(Error::Conflict { reason: Conflict::EventCancelled, .. })));
    check(h, e).await;
}

/// Every paged list (a user's bookings, also filtered by organization; an event's waitlist; a
/// user's notifications) honors `limit` and `offset`: consecutive pages are the whole list in
/// its order, with no overlap and nothing left out, and the filter is applied before paging.
pub async fn lists_page_with_offset(h: &Harness) {
    let en = &h.engine;
    let user = en.upsert_user(&format!("pager-{}", UserId::new()), None, None).await.unwrap();
    let (org_a, org_b) = (h.org().await, h.org().await);
    let a = h.event_in(org_a, 1, Fifo).await.id;
    let b = h.event_in(org_b, 10, Fifo).await.id;
    // Interleaved, one millisecond apart (newest first must not depend on ties): a gets one
    // confirmed booking and four waiting, b three confirmed.
    let (mut all, mut of_a) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let id = h.book(a, user.id, 1).await.unwrap().id;
        all.push(id);
        of_a.push(id);
        h.clock.advance_ms(1);
        if i < 3 {
            all.push(h.book(b, user.id, 1).await.unwrap().id);
            h.clock.advance_ms(1);
        }
    }
    all.reverse();
    let waiting: Vec<BookingId> = of_a[1..].to_vec();
    of_a.reverse();

    // Pages of 3 (and an offset past the end) put together.
    async fn pages<T, F, Fut>(mut read: F) -> Vec<T>
    where
        F: FnMut(u32, u32) -> Fut,
        Fut: std::future::Future<Output = Vec<T>>,
    {
        let mut out = Vec::new();
        // Bounded: a store that ignores `offset` answers the same page forever.
        for offset in (0..).step_by(3).take(100) {
            let page = read(3, offset).await;
            assert!(page.len() <= 3, "a page is at most its limit");
            let last = page.len() < 3;
            out.extend(page);
            if last {
                assert!(read(3, offset + 3).await.is_empty(), "nothing past the end");
                return out;
            }
        }
        panic!("more than 100 pages")
    }
    let ids = |v: Vec<Booking>| v.into_iter().map(|b| b.id).collect::<Vec<_>>();
    let got = pages(|limit, offset| async move { ids(en.user_bookings(user.id, None, limit, offset).await.unwrap()) }).await;
    assert_eq!(got, all, "a user's bookings, newest first");
    let only_a = [org_a];
    let got = pages(|limit, offset| async move { ids(en.user_bookings(user.id, Some(&only_a), limit, offset).await.unwrap()) }).await;
    assert_eq!(got, of_a, "filtered by organization before the page is cut");
    let of_b: Vec<BookingId> = all.iter().filter(|id| !of_a.contains(id)).copied().collect();
    assert_eq!(ids(en.user_bookings(user.id, Some(&[org_b]), 2, 1).await.unwrap()), of_b[1..3], "the offset counts the kept rows");

    let got = pages(|limit, offset| async move { en.waitlist(a, limit, offset).await.unwrap() }).await;
    assert_eq!(got.iter().map(|b| b.id).collect::<Vec<_>>(), waiting, "the waitlist in queue order");
    assert_eq!(
        got.iter().map(|b| b.waiting_number).collect::<Vec<_>>(),
        (1..=4).map(Some).collect::<Vec<_>>(),
        "numbers count the whole queue"
    );

    let every: Vec<NotificationId> = en.notifications(user.id, 0, 0).await.unwrap().into_iter().map(|n| n.id).collect();
    assert!(every.len() >= 8, "a notification per booking");
    let got = pages(|limit, offset| async move {
        en.notifications(user.id, limit, offset).await.unwrap().into_iter().map(|n| n.id).collect::<Vec<_>>()
    })
    .await;
    assert_eq!(got, every, "a user's notifications, newest first");
    check(h, a).await;
    check(h, b).await;
}

/// An event's bookings for its organizers: oldest first, filtered by status before the page
/// is cut, paged with `offset`; and the users they name, read at once.
pub async fn event_bookings_page_by_status(h: &Harness) {
    let en = &h.engine;
    let e = h.event(2, Fifo).await;
    let mut users = Vec::new();
    let mut ids = Vec::new();
    // a and b confirmed, c and d waiting, e waiting for two; then a cancels and c is promoted.
    for (i, seats) in [1, 1, 1, 1, 2].into_iter().enumerate() {
        let u = en.upsert_user(&format!("attendee-{i}-{}", UserId::new()), Some(&format!("a{i}@example.com")), None).await.unwrap();
        ids.push(h.book(e, u.id, seats).await.unwrap().id);
        users.push(u);
        h.clock.advance_ms(1);
    }
    en.cancel(ids[0], users[0].id, None).await.unwrap();
    let page = |status: Option<BookingStatus>, limit: u32, offset: u32| async move {
        en.event_bookings(e, status, limit, offset).await.unwrap().into_iter().map(|b| (b.id, b.status)).collect::<Vec<_>>()
    };
    use BookingStatus::*;
    let all = vec![(ids[0], Cancelled), (ids[1], Confirmed), (ids[2], Confirmed), (ids[3], Waiting), (ids[4], Waiting)];
    let mut got = Vec::new();
    for offset in (0..10).step_by(2) {
        let p = page(None, 2, offset).await;
        assert!(p.len() <= 2, "a page is at most its limit");
        got.extend(p);
    }
    assert_eq!(got, all, "every booking, oldest first, in pages");
    assert_eq!(page(Some(Confirmed), 0, 0).await, all[1..3], "confirmed only");
    assert_eq!(page(Some(Confirmed), 1, 1).await, all[2..3], "the offset counts the kept rows");
    assert_eq!(page(Some(Waiting), 5, 0).await, all[3..5], "waiting only");
    assert_eq!(page(Some(Cancelled), 5, 0).await, all[0..1], "cancelled only");
    assert!(page(Some(Waiting), 5, 2).await.is_empty(), "nothing past the end");
    let seats: Vec<Vec<SeatNo>> = en.event_bookings(e, Some(Confirmed), 5, 0).await.unwrap().into_iter().map(|b| b.seat_numbers).collect();
    assert_eq!(seats, vec![vec![2], vec![1]], "who holds which seats");

    let mut wanted: Vec<UserId> = users.iter().map(|u| u.id).collect();
    wanted.push(UserId::new());
    let mut found = en.users(&wanted).await.unwrap();
    found.sort_by_key(|u| u.id);
    let mut expected = users.clone();
    expected.sort_by_key(|u| u.id);
    assert_eq!(found, expected, "the users that exist, the unknown id left out");
    check(h, e).await;
}
