//! The conformance suite: the booking rules, written once against the engine
//! and its ports. Every backend runs it through [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! happening_core::conformance_tests!(|| async { Harness::in_memory(0) });
//! ```

use crate::clock::Clock;
use crate::domain::*;
use crate::engine::{BookRequest, HoldRequest};
use crate::error::{Conflict, Entity, Error};
use crate::ids::*;
use crate::limits::Limits;
use crate::ports::{AdmissionError, Pushed, StoreError, Take, TakeRequest, WaitEntry, Waitlist};
use crate::testkit::interleave::Interleave;
use crate::testkit::{invariants, Harness};

use WaitlistPolicy::*;

mod membership;
mod offers;
pub use membership::*;
pub use offers::*;

/// Expands to one `#[tokio::test]` per rule, each on a fresh harness from `$make`
/// (an expression `Fn() -> impl Future<Output = Harness>`, or `Option<Harness>` where
/// `None` means the backend is not configured and the test is skipped; the factory itself
/// must fail under CI).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            book_confirms_lowest_free_seats,
            requested_seats_when_free,
            taken_requested_seats_fall_back_to_lowest,
            strict_seats_conflict_names_taken_seats,
            short_booking_waits_in_order,
            a_burst_that_waits_is_numbered_one_to_n_in_queue_order,
            fifo_newcomer_queues_behind_waiting,
            confirm_behind_the_queue_is_short_while_anyone_waits,
            first_fit_newcomer_that_fits_is_confirmed,
            accept_partial_takes_what_is_free,
            demo_cancel_seats_promotes,
            fifo_stops_at_first_that_does_not_fit,
            first_fit_promotes_every_one_that_fits,
            partial_policy_gives_head_what_is_free,
            cancel_waiting_leaves_queue_and_promotes_next,
            cancel_twice_conflicts,
            full_waitlist_turns_newcomers_away_and_writes_nothing,
            cancel_seats_rules,
            resize_up_promotes,
            resize_down_keeps_taken_seats,
            promotion_cut_by_its_limit_is_finished_by_reconcile_dirty,
            hold_expiry_frees_and_promotes,
            hold_of_taken_seats_conflicts,
            hold_release_and_owner_checks,
            hold_becomes_booking,
            cancel_event_cancels_everything,
            idempotent_requests_replay,
            twin_requests_with_one_key_book_once,
            history_and_notifications_for_every_change,
            bad_input_changes_nothing,
            bad_holds_events_and_hold_bookings_change_nothing,
            counter_rebuilt_when_missing,
            restore_loses_to_any_step_after_its_version,
            rebuild_keeps_a_step_made_while_it_read_the_store,
            cancels_at_once_promote_everyone_one_pass_at_a_time_where_pops_only_read,
            push_says_whether_seats_are_free,
            outbox_claims_and_delivery,
            directory_roles_and_invites,
            book_as_follows_the_organization_s_rules,
            auth_cache_keeps_grants_until_changed_here_or_stale,
            lists_page_with_offset,
            event_bookings_page_by_status,
            offer_holds_seats_until_accepted,
            declined_offer_passes_to_the_next_in_line,
            expired_offer_passes_on_in_the_background_step,
            offers_due_together_end_once_each,
            offers_follow_the_waitlist_policy,
            cancels_and_resizes_respect_offered_seats,
            racing_answers_end_each_offer_once,
        );
    };
    (@cases $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(harness) = $crate::testkit::MaybeHarness::get(($make)().await) else { return };
                $crate::testkit::conformance::$name(&harness).await;
            }
        )*
    };
}

async fn check(h: &Harness, event: EventId) {
    if let Err(breach) = invariants::check(&h.engine, event).await {
        panic!("invariant broken: {breach}");
    }
}

fn conflict_seats(r: Result<Booking, Error>) -> (Conflict, Vec<SeatNo>) {
    match r {
        Err(Error::Conflict { reason, seats }) => (reason, seats),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn status(h: &Harness, b: &Booking) -> (BookingStatus, Vec<SeatNo>) {
    let b = h.engine.booking(b.id).await.expect("booking");
    (b.status, b.seat_numbers)
}

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

pub async fn requested_seats_when_free(h: &Harness) {
    let e = h.event(10, Fifo).await;
    let a = h.book_seats(e, UserId::new(), &[7, 5], false).await.unwrap();
    assert_eq!((a.status, a.seat_numbers.clone(), a.seats_requested), (BookingStatus::Confirmed, vec![5, 7], 2));
    let map = h.engine.seat_map(e).await.unwrap();
    assert_eq!((map.total, map.taken, map.held), (10, vec![5, 7], vec![]));
    check(h, e).await;
}

pub async fn taken_requested_seats_fall_back_to_lowest(h: &Harness) {
    let e = h.event(10, Fifo).await;
    h.book_seats(e, UserId::new(), &[1], false).await.unwrap();
    let b = h.book_seats(e, UserId::new(), &[1, 6], false).await.unwrap();
    assert_eq!(b.seat_numbers, vec![2, 3]);
    check(h, e).await;
}

pub async fn strict_seats_conflict_names_taken_seats(h: &Harness) {
    let e = h.event(10, Fifo).await;
    h.book_seats(e, UserId::new(), &[5], false).await.unwrap();
    let before = h.engine.event(e).await.unwrap();
    let (reason, seats) = conflict_seats(h.book_seats(e, UserId::new(), &[5, 6], true).await);
    assert_eq!((reason, seats), (Conflict::SeatsTaken, vec![5]));
    assert_eq!(h.engine.event(e).await.unwrap(), before, "a conflict changes nothing");
    check(h, e).await;
}

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

pub async fn first_fit_newcomer_that_fits_is_confirmed(h: &Harness) {
    let e = h.event(5, FirstFit).await;
    h.book(e, UserId::new(), 3).await.unwrap();
    let big = h.book(e, UserId::new(), 3).await.unwrap();
    let small = h.book(e, UserId::new(), 2).await.unwrap();
    assert_eq!(big.status, BookingStatus::Waiting);
    assert_eq!((small.status, small.seat_numbers), (BookingStatus::Confirmed, vec![4, 5]));
    check(h, e).await;
}

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

pub async fn fifo_stops_at_first_that_does_not_fit(h: &Harness) {
    let (e, b, c) = two_waiting(h, Fifo).await;
    assert_eq!(status(h, &b).await.0, BookingStatus::Waiting);
    assert_eq!(status(h, &c).await.0, BookingStatus::Waiting, "C may not pass B");
    check(h, e).await;
}

pub async fn first_fit_promotes_every_one_that_fits(h: &Harness) {
    let (e, b, c) = two_waiting(h, FirstFit).await;
    assert_eq!(status(h, &b).await.0, BookingStatus::Waiting);
    assert_eq!(status(h, &c).await, (BookingStatus::Confirmed, vec![1]));
    check(h, e).await;
}

pub async fn partial_policy_gives_head_what_is_free(h: &Harness) {
    let (e, b, c) = two_waiting(h, Partial).await;
    let b = h.engine.booking(b.id).await.unwrap();
    assert_eq!((b.status, b.seat_numbers, b.seats_requested), (BookingStatus::Confirmed, vec![1, 2], 3));
    assert_eq!(h.engine.booking(c.id).await.unwrap().waiting_number, Some(1));
    check(h, e).await;
}

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

fn hold_req(e: EventId, u: UserId, seats: Option<u32>, numbers: Option<Vec<SeatNo>>) -> HoldRequest {
    HoldRequest { event_id: e, user_id: u, seats, seat_numbers: numbers, ttl_ms: 60_000 }
}

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

/// A snapshot of everything a bad request could have touched.
async fn snapshot(h: &Harness, e: EventId) -> (EventView, SeatMap, Vec<Booking>, usize) {
    let pending = h.engine.store().pending_notifications(u32::MAX).await.unwrap().len();
    (h.engine.event(e).await.unwrap(), h.engine.seat_map(e).await.unwrap(), h.engine.store().event_bookings(e).await.unwrap(), pending)
}

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

/// Asserts that `r` is a refusal of `field`.
fn refused<T: std::fmt::Debug>(r: Result<T, Error>, field: &str, what: &str) {
    match r {
        Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{what}"),
        other => panic!("{what}: expected invalid {field}, got {other:?}"),
    }
}

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

pub async fn counter_rebuilt_when_missing(h: &Harness) {
    let e = h.event(2, Fifo).await;
    h.book(e, UserId::new(), 2).await.unwrap();
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    // As if Redis restarted empty.
    h.engine.admission().forget(e).await.unwrap();
    let late = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!((late.status, late.waiting_number), (BookingStatus::Waiting, Some(2)), "rebuilt queue keeps order");
    assert_eq!(h.engine.booking(w.id).await.unwrap().waiting_number, Some(1));
    // Drift is found and repaired by reconcile. A backend that derives its counter from
    // the store (PostgreSQL alone) keeps no count of its own to drift: it reads the truth.
    h.engine.admission().set_free(e, 7).await.unwrap();
    let keeps_own_count = h.engine.admission().free(e).await.unwrap() == 7;
    let r = h.engine.reconcile_event(e).await.unwrap();
    let before = if keeps_own_count { 7 } else { 0 };
    assert_eq!((r.free_before, r.free_after, r.waitlist_repaired, r.waiting), (Some(before), 0, false, 2));
    assert_eq!(r.drifted(), keeps_own_count);
    assert!(!h.engine.reconcile_event(e).await.unwrap().drifted());
    check(h, e).await;
}

/// A `fifo` event of `capacity` seats, all booked, and one booking of `seats` waiting: the
/// event, the waiting booking and its queue entry.
async fn sold_out_with_one_waiting(h: &Harness, capacity: u32, seats: u32) -> (EventId, Booking, WaitEntry) {
    let e = h.event(capacity, Fifo).await;
    h.book(e, UserId::new(), capacity).await.unwrap();
    let w = h.book(e, UserId::new(), seats).await.unwrap();
    assert_eq!(w.status, BookingStatus::Waiting);
    let entry = WaitEntry { booking: w.id, seats, seq: w.queue_seq.unwrap() };
    (e, w, entry)
}

/// The admission port's versions: every change, and every `give`, `push` and `remove`
/// (even on a missing event), moves the version; a `restore` with a version read before
/// any of them changes nothing. A backend that keeps no state of its own stays at 0 and
/// always restores.
pub async fn restore_loses_to_any_step_after_its_version(h: &Harness) {
    let adm = h.engine.admission();
    let (e, w, entry) = sold_out_with_one_waiting(h, 5, 2).await;
    let stateless = adm.version(e).await.unwrap() == 0;
    if stateless {
        assert!(adm.restore(e, 0, 3, vec![]).await.unwrap(), "nothing to overwrite, nothing to lose");
        assert_eq!(adm.version(e).await.unwrap(), 0);
        assert_eq!(adm.free(e).await.unwrap(), 0, "derived from the store, not written");
        return;
    }
    let state = |adm: &std::sync::Arc<dyn crate::ports::Admission>| {
        let adm = adm.clone();
        async move { (adm.free(e).await.ok(), adm.list(e, u32::MAX).await.ok()) }
    };
    let take = TakeRequest { want: 1, min: 1, behind_queue: false, waitlist_max: None };
    let short = TakeRequest { want: 99, min: 99, behind_queue: false, waitlist_max: None };
    for what in ["give", "take", "push again", "remove unknown", "set_free"] {
        let v = adm.version(e).await.unwrap();
        match what {
            "take" => assert!(matches!(adm.take(e, take).await.unwrap(), Take::Taken(1))),
            "give" => adm.give(e, 1).await.unwrap(),
            "push again" => {
                adm.push(e, entry).await.unwrap();
                assert_eq!(adm.position(e, w.id).await.unwrap(), Some(1), "an entry pushed again stays where it is");
            }
            "remove unknown" => assert!(!adm.remove(e, BookingId::new()).await.unwrap()),
            _ => adm.set_free(e, 5).await.unwrap(),
        }
        let after = state(adm).await;
        assert_ne!(adm.version(e).await.unwrap(), v, "{what} moves the version");
        assert!(!adm.restore(e, v, 0, vec![]).await.unwrap(), "{what}: a restore from before it loses");
        assert_eq!(state(adm).await, after, "{what}: a losing restore changes nothing");
    }
    // Reads, and a take that finds too few seats, leave it alone.
    let v = adm.version(e).await.unwrap();
    assert!(matches!(adm.take(e, short).await.unwrap(), Take::Short { .. }));
    adm.free(e).await.unwrap();
    adm.list(e, 10).await.unwrap();
    adm.position(e, w.id).await.unwrap();
    assert_eq!(adm.version(e).await.unwrap(), v, "reads and a short take do not move it");
    assert!(adm.restore(e, v, 5, vec![entry]).await.unwrap(), "nothing happened since: it restores");
    assert_eq!(state(adm).await, (Some(5), Some(vec![entry])));
    assert!(!adm.restore(e, v, 5, vec![entry]).await.unwrap(), "a restore moves the version too");
    // A popped entry moves it; forgetting does, and so does a give on the missing event,
    // which a rebuild begun before must not overwrite.
    let v = adm.version(e).await.unwrap();
    assert!(adm.pop_fitting(e, Partial).await.unwrap().is_some());
    assert_ne!(adm.version(e).await.unwrap(), v, "a pop moves it");
    let v = adm.version(e).await.unwrap();
    adm.forget(e).await.unwrap();
    let forgotten = adm.version(e).await.unwrap();
    assert_ne!(forgotten, v, "forget moves it");
    assert!(matches!(adm.give(e, 2).await, Err(AdmissionError::Missing)));
    assert_ne!(adm.version(e).await.unwrap(), forgotten, "a give on a missing event moves it");
    assert!(!adm.restore(e, forgotten, 5, vec![]).await.unwrap());
    assert!(matches!(adm.free(e).await, Err(AdmissionError::Missing)), "still missing");
    // The engine's own rebuild settles everything.
    h.engine.reconcile_event(e).await.unwrap();
    check(h, e).await;
}

/// `push` answers, in its own atomic step, whether any seat is free: a request queued on a
/// sold-out event needs no promotion pass of its own (whoever frees seats will find it
/// queued). A backend that keeps no counter of its own cannot tell and says `true`.
pub async fn push_says_whether_seats_are_free(h: &Harness) {
    let adm = h.engine.admission();
    let e = h.event(2, Fifo).await;
    let holder = h.book(e, UserId::new(), 2).await.unwrap();
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!(w.waiting_number, Some(1));
    let entry = WaitEntry { booking: w.id, seats: 1, seq: w.queue_seq.unwrap() };
    assert_eq!(adm.push(e, entry).await.unwrap(), Pushed { seats_free: false }, "sold out");
    if adm.version(e).await.unwrap() == 0 {
        // Derived from the store (PostgreSQL alone): a seat freed there, by a cancellation
        // whose promotion pass has not run yet, and now it says so.
        h.engine.store().cancel(holder.id, None, h.clock.now()).await.unwrap();
        assert_eq!(adm.push(e, entry).await.unwrap(), Pushed { seats_free: true }, "seats are free");
        // That pass.
        assert_eq!(h.engine.reconcile_event(e).await.unwrap().promoted, 1);
    } else {
        // A seat given back (a cancellation whose promotion pass has not run yet).
        adm.give(e, 1).await.unwrap();
        assert_eq!(adm.push(e, entry).await.unwrap(), Pushed { seats_free: true }, "a seat is free");
        let one = TakeRequest { want: 1, min: 1, behind_queue: false, waitlist_max: None };
        assert!(matches!(adm.take(e, one).await.unwrap(), Take::Taken(1)), "put the counter back");
    }
    check(h, e).await;
}

/// A rebuild reads the store, then writes the counter and queue. A cancellation that
/// lands in between (committed in the store, its seats given back) must survive it: the
/// rebuild's write loses, it reads again, and the counter ends right. (A rebuild that wrote
/// anyway would leave the counter a seat short, and someone waiting while a seat is free.)
/// Cancels at once through one engine: everyone waiting is promoted; and where the
/// admission's pop only reads (PostgreSQL's), the engine never runs two promotion passes of
/// the event side by side, since they would all queue on the same head in the store.
pub async fn cancels_at_once_promote_everyone_one_pass_at_a_time_where_pops_only_read(h: &Harness) {
    const SEATS: u32 = 16;
    let e = h.event(SEATS, Fifo).await;
    let mut confirmed = Vec::new();
    for _ in 0..SEATS {
        let u = UserId::new();
        confirmed.push((h.book(e, u, 1).await.unwrap().id, u));
    }
    let mut waiting = Vec::new();
    for _ in 0..SEATS {
        let b = h.book(e, UserId::new(), 1).await.unwrap();
        assert_eq!(b.status, BookingStatus::Waiting);
        waiting.push(b.id);
    }
    let observed = Interleave::new(h.engine.admission().clone());
    let engine = crate::Engine::new(h.engine.store().clone(), std::sync::Arc::new(observed.clone())).with_clock(h.clock.clone());
    let cancels: Vec<_> = confirmed
        .into_iter()
        .map(|(id, u)| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.cancel(id, u, None).await })
        })
        .collect();
    for c in cancels {
        c.await.expect("cancel task").expect("cancel");
    }
    for id in waiting {
        assert_eq!(h.engine.booking(id).await.unwrap().status, BookingStatus::Confirmed, "{id} left waiting");
    }
    let pops = observed.pops_in_flight_max();
    assert!(pops >= 1, "no promotion pass ran");
    if !observed.pop_removes() {
        assert_eq!(pops, 1, "promotion passes of one event ran side by side");
    }
    check(h, e).await;
}

pub async fn rebuild_keeps_a_step_made_while_it_read_the_store(h: &Harness) {
    let e = h.event(3, Fifo).await;
    let u = UserId::new();
    let b = h.book(e, u, 1).await.unwrap();
    h.book(e, UserId::new(), 2).await.unwrap();
    let between = Interleave::new(h.engine.admission().clone());
    let rebuilder = crate::Engine::new(h.engine.store().clone(), std::sync::Arc::new(between.clone())).with_clock(h.clock.clone());
    let other = h.engine.clone();
    between.before_next_restore(Box::pin(async move {
        other.cancel(b.id, u, None).await.expect("cancel between the read and the write");
    }));
    rebuilder.reconcile_event(e).await.unwrap();
    assert!(between.fired(), "the cancellation ran between the rebuild's read and its write");
    assert_eq!(h.engine.admission().free(e).await.unwrap(), 1, "the seat given back is free");
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

pub async fn directory_roles_and_invites(h: &Harness) {
    use crate::domain::Role;
    let en = &h.engine;
    let admin = en.upsert_user("kc-admin", Some("admin@example.org"), Some("Ada")).await.unwrap();
    let again = en.upsert_user("kc-admin", Some("ada@example.org"), Some("Ada L")).await.unwrap();
    assert_eq!((again.id, again.email.as_deref()), (admin.id, Some("ada@example.org")));
    let bob = en.upsert_user("kc-bob", Some("Bob@Example.org"), None).await.unwrap();
    let eve = en.upsert_user("kc-eve", Some("eve@example.org"), None).await.unwrap();
    let org = en.create_org(admin.id, "Acme").await.unwrap();
    assert_eq!(en.authorize(admin.id, org.id, Role::OrgAdmin).await.unwrap(), Role::OrgAdmin);
    assert!(matches!(en.authorize(eve.id, org.id, Role::User).await, Err(Error::NotFound(Entity::Organization))));
    assert!(matches!(en.members(eve.id, org.id).await, Err(Error::NotFound(Entity::Organization))));
    let invite = en.invite(admin.id, org.id, "bob@example.org", Role::Organizer, 24).await.unwrap();
    assert!(matches!(en.accept_invite(eve.id, eve.email.as_deref(), &invite.token).await, Err(Error::Forbidden(_))));
    // Only the vouched-for address counts: none claims nothing.
    assert!(matches!(en.accept_invite(bob.id, None, &invite.token).await, Err(Error::Forbidden(_))));
    let m = en.accept_invite(bob.id, bob.email.as_deref(), &invite.token).await.unwrap();
    assert_eq!(m.role, Role::Organizer);
    assert!(matches!(
        en.accept_invite(bob.id, bob.email.as_deref(), &invite.token).await,
        Err(Error::Conflict { reason: Conflict::InviteNotPending, .. })
    ));
    let kinds: Vec<_> = h.delivered().await.into_iter().filter(|n| n.user_id == bob.id).map(|n| n.kind).collect();
    assert_eq!(kinds, vec![NotificationKind::InvitationReceived]);
    // An organizer manages events but not members.
    assert_eq!(en.authorize(bob.id, org.id, Role::Organizer).await.unwrap(), Role::Organizer);
    assert!(matches!(en.add_member(bob.id, org.id, eve.id, Role::User).await, Err(Error::Forbidden(_))));
    en.add_member(admin.id, org.id, eve.id, Role::User).await.unwrap();
    assert!(matches!(
        en.add_member(admin.id, org.id, eve.id, Role::User).await,
        Err(Error::Conflict { reason: Conflict::AlreadyMember, .. })
    ));
    assert!(matches!(en.authorize(eve.id, org.id, Role::Organizer).await, Err(Error::Forbidden(_))));
    // An event is seen with the role in its organization, read together with it: to an
    // outsider it does not exist; a member with too small a role is forbidden.
    let event = h.event_in(org.id, 3, Fifo).await;
    assert_eq!(en.event_as(eve.id, event.id, Role::User).await.unwrap(), (event.clone(), Role::User));
    assert_eq!(en.event_as(bob.id, event.id, Role::Organizer).await.unwrap().1, Role::Organizer);
    assert!(matches!(en.event_as(eve.id, event.id, Role::Organizer).await, Err(Error::Forbidden(_))));
    let outsider = en.upsert_user("kc-outsider", None, None).await.unwrap();
    assert!(matches!(en.event_as(outsider.id, event.id, Role::User).await, Err(Error::NotFound(Entity::Event))));
    assert!(matches!(en.event_as(admin.id, EventId::new(), Role::User).await, Err(Error::NotFound(Entity::Event))));
    // The last orgAdmin stays.
    assert!(matches!(
        en.set_role(admin.id, org.id, admin.id, Role::User).await,
        Err(Error::Conflict { reason: Conflict::LastOrgAdmin, .. })
    ));
    en.set_role(admin.id, org.id, bob.id, Role::OrgAdmin).await.unwrap();
    en.remove_member(admin.id, org.id, admin.id).await.unwrap();
    assert!(matches!(en.authorize(admin.id, org.id, Role::User).await, Err(Error::NotFound(_))));
    let mut members: Vec<_> = en.members(bob.id, org.id).await.unwrap().into_iter().map(|m| (m.user_id, m.role)).collect();
    members.sort();
    let mut want = vec![(bob.id, Role::OrgAdmin), (eve.id, Role::User)];
    want.sort();
    assert_eq!(members, want);
    assert_eq!(en.orgs_of(eve.id).await.unwrap().len(), 1);
    assert!(matches!(en.upsert_user(" ", None, None).await, Err(Error::Invalid { field: "sub", .. })));
    assert!(matches!(en.upsert_user("x", Some("not-an-email"), None).await, Err(Error::Invalid { field: "email", .. })));
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
