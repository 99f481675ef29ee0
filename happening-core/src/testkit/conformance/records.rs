//! What every change records: its history entry and its notification, and the outbox's delivery.

use super::*;

/// Every change writes its history entry and its notification (unique ids, relayed once); a user
/// reads their own notifications newest first and marks them read.
pub async fn history_and_notifications_for_every_change(h: &Harness) {
    let e = h.event(2, Fifo).await;
    let (a, b) = (UserId::new(), UserId::new());
    let ba = h.book(e, a, 2).await.unwrap();
    let bb = h.book(e, b, 2).await.unwrap();
    h.engine.cancel_seats(ba.id, a, &[1], None).await.unwrap();
    h.engine.cancel(ba.id, a, None).await.unwrap();
    let actions = |v: Vec<HistoryEntry>| v.into_iter().map(|e| (e.action, e.status, e.seat_numbers)).collect::<Vec<_>>();
    assert_eq!(
        actions(h.engine.history(ba.id).await.unwrap()),
        vec![
            (HistoryAction::Created, BookingStatus::Confirmed, vec![1, 2]),
            (HistoryAction::Modified, BookingStatus::Confirmed, vec![1]),
            (HistoryAction::Cancelled, BookingStatus::Cancelled, vec![2]),
        ]
    );
    assert_eq!(
        actions(h.engine.history(bb.id).await.unwrap()),
        vec![(HistoryAction::Created, BookingStatus::Waiting, vec![]), (HistoryAction::Promoted, BookingStatus::Confirmed, vec![1, 2])]
    );
    let delivered = h.delivered().await;
    let ids: std::collections::HashSet<_> = delivered.iter().map(|n| n.id).collect();
    assert_eq!(ids.len(), delivered.len(), "notification ids are unique");
    let of = |u: UserId| delivered.iter().filter(|n| n.user_id == u).map(|n| n.kind).collect::<Vec<_>>();
    use NotificationKind::*;
    assert_eq!(of(a), vec![BookingConfirmed, SeatsCancelled, BookingCancelled]);
    assert_eq!(of(b), vec![BookingWaitlisted, WaitlistPromoted]);
    assert!(h.delivered().await.is_empty(), "relayed once");
    // The user's own view, newest first, with read marks.
    let mine = h.engine.notifications(b, 0, 0).await.unwrap();
    assert_eq!(mine.iter().map(|n| n.kind).collect::<Vec<_>>(), vec![WaitlistPromoted, BookingWaitlisted]);
    h.engine.mark_read(b, mine[0].id).await.unwrap();
    assert!(h.engine.notifications(b, 1, 0).await.unwrap()[0].read);
    assert!(matches!(h.engine.mark_read(a, mine[0].id).await, Err(Error::NotFound(Entity::Notification))));
    check(h, e).await;
}

/// Relays of several servers claim disjoint notifications; a claim whose relay died is
/// taken over when its lease ends; delivery status only moves forward.
pub async fn outbox_claims_and_delivery(h: &Harness) {
    let e = h.event(10, Fifo).await;
    h.delivered().await; // start from an empty outbox
    assert_eq!(h.engine.outbox_depth().await.unwrap(), 0);
    for _ in 0..6 {
        h.book(e, UserId::new(), 1).await.unwrap();
    }
    assert_eq!(h.engine.outbox_depth().await.unwrap(), 6, "one notification per booking");
    let store = h.engine.store();
    let now = h.clock.now();
    let lease = now + chrono::Duration::seconds(30);
    let a = store.claim_pending(4, now, lease).await.unwrap();
    let b = store.claim_pending(4, now, lease).await.unwrap();
    assert_eq!((a.len(), b.len()), (4, 2), "the second relay gets what the first did not claim");
    let ids_a: Vec<_> = a.iter().map(|n| n.id).collect();
    assert!(b.iter().all(|n| !ids_a.contains(&n.id)), "claims are disjoint");
    assert!(store.claim_pending(10, now, lease).await.unwrap().is_empty(), "everything is claimed");
    assert_eq!(h.engine.outbox_depth().await.unwrap(), 6, "claimed rows are still the backlog");
    // Relay A delivers; relay B dies. After B's lease, its rows are claimed again.
    store.set_delivery(&ids_a, DeliveryStatus::Sent).await.unwrap();
    assert_eq!(h.engine.outbox_depth().await.unwrap(), 2, "sent rows leave the backlog");
    let later = lease + chrono::Duration::seconds(1);
    let again = store.claim_pending(10, later, later + chrono::Duration::seconds(30)).await.unwrap();
    let mut got: Vec<_> = again.iter().map(|n| n.id).collect();
    let mut want: Vec<_> = b.iter().map(|n| n.id).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "only the unsent claims come back");
    // A relay that could not deliver gives its batch back at once.
    let retry = store.claim_pending(10, later, later + chrono::Duration::seconds(30)).await.unwrap();
    assert!(retry.is_empty(), "still claimed");
    store.release_claims(&got).await.unwrap();
    let retry = store.claim_pending(10, later, later + chrono::Duration::seconds(30)).await.unwrap();
    assert_eq!(retry.len(), got.len(), "released claims are claimed again at once");
    // Forward only: delivered stays delivered.
    let status = |i: usize| {
        let n = &a[i];
        async move { h.engine.notifications(n.user_id, 10, 0).await.unwrap().iter().find(|m| m.id == n.id).map(|m| m.status) }
    };
    store.set_delivery(&ids_a[..1], DeliveryStatus::Delivered).await.unwrap();
    store.set_delivery(&ids_a[..1], DeliveryStatus::Sent).await.unwrap();
    store.set_delivery(&ids_a[..1], DeliveryStatus::Failed).await.unwrap();
    assert_eq!(status(0).await, Some(DeliveryStatus::Delivered));
    // Failed is final but for delivered: a dead letter handled after all.
    store.set_delivery(&ids_a[1..2], DeliveryStatus::Failed).await.unwrap();
    store.set_delivery(&ids_a[1..2], DeliveryStatus::Sent).await.unwrap();
    assert_eq!(status(1).await, Some(DeliveryStatus::Failed));
    store.set_delivery(&ids_a[1..2], DeliveryStatus::Delivered).await.unwrap();
    assert_eq!(status(1).await, Some(DeliveryStatus::Delivered));
    check(h, e).await;
}
