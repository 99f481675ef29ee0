//! Bad input: refused with the field named, and nothing changed.

use super::*;

/// Bad booking and cancellation input is refused with the field named, and changes nothing.
pub async fn bad_input_changes_nothing(h: &Harness) {
    let e = h.event(10, Fifo).await;
    let u = UserId::new();
    let a = h.book(e, u, 2).await.unwrap();
    let before = snapshot(h, e).await;
    let book = |seats: Option<u32>, numbers: Option<Vec<SeatNo>>| BookRequest {
        event_id: e,
        user_id: u,
        seats,
        seat_numbers: numbers,
        ..Default::default()
    };
    let bad_books = [
        (book(Some(0), None), "seats"),
        (book(Some(51), None), "seats"),
        (book(Some(11), None), "seats"),
        (book(None, Some(vec![])), "seat_numbers"),
        (book(None, Some(vec![0])), "seat_numbers"),
        (book(None, Some(vec![11])), "seat_numbers"),
        (book(None, Some(vec![3, 3])), "seat_numbers"),
        (book(Some(3), Some(vec![3, 4])), "seats"),
        (BookRequest { idempotency_key: Some(String::new()), ..book(Some(1), None) }, "idempotency_key"),
        (BookRequest { idempotency_key: Some("x".repeat(201)), ..book(Some(1), None) }, "idempotency_key"),
        (BookRequest { idempotency_key: Some("sp ace".into()), ..book(Some(1), None) }, "idempotency_key"),
    ];
    for (req, field) in bad_books {
        match h.engine.book(req.clone()).await {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{req:?}"),
            other => panic!("{req:?}: expected invalid {field}, got {other:?}"),
        }
    }
    let unknown = h.engine.book(BookRequest { event_id: EventId::new(), ..book(Some(1), None) }).await;
    assert!(matches!(unknown, Err(Error::NotFound(Entity::Event))), "{unknown:?}");
    for seats in [vec![], vec![1, 1], (1..=51).collect()] {
        let r = h.engine.cancel_seats(a.id, u, &seats, None).await;
        assert!(matches!(r, Err(Error::Invalid { field: "seat_numbers", .. })), "{seats:?}: {r:?}");
    }
    for ttl_ms in [0, 999, 3_600_001] {
        let r = h.engine.hold(HoldRequest { event_id: e, user_id: u, seats: Some(1), seat_numbers: None, ttl_ms }).await;
        assert!(matches!(r, Err(Error::Invalid { field: "ttl", .. })), "{ttl_ms}: {r:?}");
    }
    for cap in [0, 1_000_001] {
        let r = h.engine.update_event(e, EventPatch { capacity: Some(cap), ..Default::default() }).await;
        assert!(matches!(r, Err(Error::Invalid { field: "total_slots", .. })), "{cap}: {r:?}");
    }
    let r = h.engine.update_event(e, EventPatch { name: Some("  ".into()), ..Default::default() }).await;
    assert!(matches!(r, Err(Error::Invalid { field: "name", .. })), "{r:?}");
    let r = h.engine.update_event(e, EventPatch { name: Some("x".repeat(201)), ..Default::default() }).await;
    assert!(matches!(r, Err(Error::Invalid { field: "name", .. })), "{r:?}");
    assert!(matches!(h.engine.cancel(BookingId::new(), u, None).await, Err(Error::NotFound(Entity::Booking))));
    assert!(matches!(h.engine.release_hold(HoldId::new(), u).await, Err(Error::NotFound(Entity::Hold))));
    assert_eq!(snapshot(h, e).await, before, "bad input changed the state");
    check(h, e).await;
}

/// Bad holds, bookings of a hold, event updates and new events are refused with the field named,
/// and change nothing.
pub async fn bad_holds_events_and_hold_bookings_change_nothing(h: &Harness) {
    let org = h.org().await;
    let (e, other) = (h.event_in(org, 10, Fifo).await.id, h.event_in(org, 10, Fifo).await);
    let u = UserId::new();
    h.book(e, u, 2).await.unwrap();
    let hold = |event_id, seats, seat_numbers| HoldRequest { event_id, user_id: u, seats, seat_numbers, ttl_ms: 60_000 };
    let held = h.engine.hold(hold(e, Some(1), None)).await.unwrap();
    let held_elsewhere = h.engine.hold(hold(other.id, Some(1), None)).await.unwrap();
    let before = (snapshot(h, e).await, snapshot(h, other.id).await, h.engine.store().live_event_ids().await.unwrap().len());

    for (seats, numbers, field) in [
        (Some(0), None, "seats"),
        (Some(51), None, "seats"),
        (Some(11), None, "seats"),
        (None, Some(vec![0]), "seat_numbers"),
        (None, Some(vec![11]), "seat_numbers"),
        (None, Some(vec![5, 5]), "seat_numbers"),
        (Some(2), Some(vec![5]), "seats"),
    ] {
        let what = format!("hold {seats:?} {numbers:?}");
        refused(h.engine.hold(hold(e, seats, numbers)).await, field, &what);
    }

    let from_hold = |hold_id, seats, seat_numbers| BookRequest {
        event_id: e,
        user_id: u,
        hold_id: Some(hold_id),
        seats,
        seat_numbers,
        ..Default::default()
    };
    refused(h.engine.book(from_hold(held.id, Some(2), None)).await, "seats", "more seats than the hold");
    refused(h.engine.book(from_hold(held.id, None, Some(vec![9]))).await, "seat_numbers", "other seats than the hold's");
    refused(h.engine.book(from_hold(held_elsewhere.id, None, None)).await, "hold_id", "a hold of another event");

    for (patch, field) in [
        (EventPatch { description: Some(Some("x".repeat(5_001))), ..Default::default() }, "description"),
        (EventPatch { description: Some(Some("bell \u{7}".into())), ..Default::default() }, "description"),
        (EventPatch { category: Some(Some("x".repeat(51))), ..Default::default() }, "category"),
        (EventPatch { offer_ttl_seconds: Some(Some(0)), ..Default::default() }, "offer_ttl_seconds"),
        (EventPatch { offer_ttl_seconds: Some(Some(30 * 24 * 3600 + 1)), ..Default::default() }, "offer_ttl_seconds"),
    ] {
        let what = format!("{patch:?}");
        refused(h.engine.update_event(e, patch).await, field, &what);
    }

    let new = |name: &str, capacity| NewEvent::new(org, name, h.clock.now(), capacity);
    for (event, field) in [
        (new("", 10), "name"),
        (new("tab\u{0}", 10), "name"),
        (new("x", 0), "total_slots"),
        (new("x", 1_000_001), "total_slots"),
        (NewEvent { description: Some("x".repeat(5_001)), ..new("x", 10) }, "description"),
        (NewEvent { category: Some("x".repeat(51)), ..new("x", 10) }, "category"),
        (new("x", 10).with_offer_ttl_seconds(0), "offer_ttl_seconds"),
        (new("x", 10).with_offer_ttl_seconds(30 * 24 * 3600 + 1), "offer_ttl_seconds"),
    ] {
        let what = format!("{event:?}");
        refused(h.engine.create_event(event).await, field, &what);
    }

    let after = (snapshot(h, e).await, snapshot(h, other.id).await, h.engine.store().live_event_ids().await.unwrap().len());
    assert_eq!(after, before, "bad input changed the state");
    check(h, e).await;
    check(h, other.id).await;
}
