//! `events.seats_free_from` (migration 0004), the floor where searches for free seats start:
//! bookings far above it raise it, every way of freeing a seat lowers it, and no free seat
//! is ever below it, so the lowest free seat is still the one a booking gets and the
//! admission still counts every free seat.

mod common;

use happening_core::domain::{BookingStatus, WaitlistPolicy};
use happening_core::ids::{EventId, SeatNo, UserId};
use happening_core::testkit::Harness;
use happening_core::{BookRequest, HoldRequest};
use sqlx::PgPool;

async fn setup(replicas: usize) -> Option<(Harness, PgPool)> {
    common::setup_raw(replicas, 8).await
}

/// The floor and the lowest free seat (`None` when none is free).
async fn floor_and_lowest_free(pool: &PgPool, event: EventId) -> (i32, Option<i32>) {
    sqlx::query_as(
        "SELECT e.seats_free_from, (SELECT min(seat_no) FROM event_seats s \
         WHERE s.event_id = e.id AND booking_id IS NULL AND hold_id IS NULL) FROM events e WHERE e.id = $1",
    )
    .bind(event.0)
    .fetch_one(pool)
    .await
    .expect("floor")
}

/// The invariant: no free seat below the floor. Returns the floor.
async fn check_floor(pool: &PgPool, event: EventId, when: &str) -> i32 {
    let (floor, lowest) = floor_and_lowest_free(pool, event).await;
    assert!(lowest.is_none_or(|l| floor <= l), "{when}: floor {floor} above the free seat {lowest:?}");
    floor
}

async fn book_one(h: &Harness, event: EventId) -> Vec<SeatNo> {
    let b = h.book(event, UserId::new(), 1).await.expect("book");
    assert_eq!(b.status, BookingStatus::Confirmed);
    b.seat_numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_rises_with_bookings_and_every_freed_seat_lowers_it() {
    let Some((h, pool)) = setup(0).await else { return };
    let event = h.event(2_000, WaitlistPolicy::Fifo).await;
    assert_eq!(check_floor(&pool, event, "new event").await, 1);
    let user = UserId::new();
    let mut bookings = Vec::new();
    for _ in 0..600 {
        bookings.push(h.book(event, user, 1).await.expect("book"));
    }
    assert_eq!(bookings[599].seat_numbers, vec![600], "lowest free seats, in order");
    let risen = check_floor(&pool, event, "after 600 bookings").await;
    assert!(risen > 256, "bookings far above the floor raise it: {risen}");

    // A cancel far below the floor: the next booking gets that seat.
    let five = bookings[4].clone();
    assert_eq!(five.seat_numbers, vec![5]);
    h.engine.cancel(five.id, user, None).await.unwrap();
    assert_eq!(check_floor(&pool, event, "after a cancel").await, 5);
    assert_eq!(book_one(&h, event).await, vec![5]);

    // Cancelling seats of a booking.
    let two = h.book(event, user, 2).await.unwrap();
    assert_eq!(two.seat_numbers, vec![601, 602]);
    for _ in 0..300 {
        book_one(&h, event).await;
    }
    assert!(check_floor(&pool, event, "risen again").await > 602);
    h.engine.cancel_seats(two.id, user, &[601], None).await.unwrap();
    assert_eq!(check_floor(&pool, event, "after cancelling a seat").await, 601);
    assert_eq!(book_one(&h, event).await, vec![601]);

    // A hold released, and one that runs out.
    let seven = bookings[6].clone();
    h.engine.cancel(seven.id, user, None).await.unwrap();
    let hold =
        h.engine.hold(HoldRequest { event_id: event, user_id: user, seats: Some(1), seat_numbers: None, ttl_ms: 1_000 }).await.unwrap();
    assert_eq!(hold.seat_numbers, vec![7], "a hold takes the lowest free seat too");
    for _ in 0..300 {
        book_one(&h, event).await;
    }
    let floor = check_floor(&pool, event, "with a hold below").await;
    h.engine.release_hold(hold.id, user).await.unwrap();
    assert!(check_floor(&pool, event, "after the release").await <= 7, "released below the floor {floor}");
    let again =
        h.engine.hold(HoldRequest { event_id: event, user_id: user, seats: Some(1), seat_numbers: None, ttl_ms: 1_000 }).await.unwrap();
    assert_eq!(again.seat_numbers, vec![7]);
    h.clock.advance_ms(1_001);
    assert_eq!(h.engine.expire_holds().await.unwrap(), 1);
    assert!(check_floor(&pool, event, "after the expiry").await <= 7);
    assert_eq!(book_one(&h, event).await, vec![7]);

    // The event called off: every seat is free again, and the floor back at the first.
    h.engine.cancel_event(event).await.unwrap();
    assert_eq!(check_floor(&pool, event, "after the event was cancelled").await, 1);
}

/// A cancel far below the floor, with someone waiting: the promotion in the cancel's own
/// transaction (before its commit lowers the floor) finds the seat it freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_freed_below_the_floor_goes_to_the_waiting_booking() {
    let Some((h, pool)) = setup(0).await else { return };
    let event = h.event(400, WaitlistPolicy::Fifo).await;
    let user = UserId::new();
    let mut bookings = Vec::new();
    for _ in 0..400 {
        bookings.push(h.book(event, user, 1).await.expect("book"));
    }
    assert!(check_floor(&pool, event, "sold out").await > 5, "the floor has risen");
    let waiting = h.book(event, UserId::new(), 1).await.unwrap();
    assert_eq!(waiting.status, BookingStatus::Waiting);
    assert_eq!(bookings[4].seat_numbers, vec![5]);
    h.engine.cancel(bookings[4].id, user, None).await.unwrap();
    let promoted = h.engine.booking(waiting.id).await.unwrap();
    assert_eq!((promoted.status, promoted.seat_numbers), (BookingStatus::Confirmed, vec![5]));
    check_floor(&pool, event, "after the promotion").await;
}

/// The window between a cancel's trigger and its commit becoming visible (the WAL flush,
/// widened here by a trigger that sleeps after ours): a raise in that window must not lift
/// the floor above the seat being freed, which its snapshot still shows taken. The trigger
/// locks the event row even when the floor is already below the seat, so the raise skips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raise_while_a_cancel_commits_leaves_the_seat_above_the_floor() {
    let Some((h, pool)) = setup(0).await else { return };
    let event = h.event(100, WaitlistPolicy::Fifo).await;
    let user = UserId::new();
    let mut thirty = None;
    for i in 1..=60 {
        let b = h.book(event, user, 1).await.expect("book");
        if i == 30 {
            thirty = Some(b);
        }
    }
    let thirty = thirty.unwrap();
    assert_eq!(thirty.seat_numbers, vec![30]);
    sqlx::query("UPDATE events SET seats_free_from = 1 WHERE id = $1").bind(event.0).execute(&pool).await.unwrap();
    sqlx::query("CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$")
        .execute(&pool)
        .await
        .unwrap();
    // Constraint triggers of one event fire in name order: after `event_seats_freed`.
    sqlx::query(
        "CREATE CONSTRAINT TRIGGER zz_slow_commit AFTER UPDATE ON event_seats DEFERRABLE INITIALLY DEFERRED \
         FOR EACH ROW EXECUTE FUNCTION test_slow_commit()",
    )
    .execute(&pool)
    .await
    .unwrap();

    let cancel = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("UPDATE event_seats SET booking_id = NULL WHERE event_id = $1 AND seat_no = 30")
                .bind(event.0)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!cancel.is_finished(), "the cancel is still committing");
    sqlx::query("SELECT happening_raise_seat_floor($1)").bind(event.0).execute(&pool).await.unwrap();
    cancel.await.unwrap();
    assert_eq!(check_floor(&pool, event, "after the cancel committed").await, 1, "the raise skipped the event");
    assert_eq!(floor_and_lowest_free(&pool, event).await.1, Some(30));
}

/// Three engines (as three servers) book and cancel at once on one event: afterwards no free
/// seat is below the floor, and every free seat can still be booked (none is hidden from
/// the search or from the admission's count).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_and_cancels_racing_leave_no_free_seat_below_the_floor() {
    let Some((h, pool)) = setup(2).await else { return };
    let capacity = 1_500u32;
    let event = h.event(capacity, WaitlistPolicy::Fifo).await;
    let engines = h.engines();
    let tasks: Vec<_> = (0..8usize)
        .map(|t| {
            let en = engines[t % engines.len()].clone();
            tokio::spawn(async move {
                let user = UserId::new();
                let mut mine = Vec::new();
                for i in 0..120usize {
                    let seats = 1 + (i % 2) as u32;
                    let b = en
                        .book(BookRequest { event_id: event, user_id: user, seats: Some(seats), ..Default::default() })
                        .await
                        .unwrap_or_else(|e| panic!("book: {e}"));
                    assert_eq!(b.status, BookingStatus::Confirmed, "seats are left: {b:?}");
                    mine.push(b.id);
                    // Every third, give an earlier one back: seats freed below the floor.
                    if i % 3 == 2 {
                        let id = mine.swap_remove((i * 7 + t) % mine.len());
                        en.cancel(id, user, None).await.unwrap_or_else(|e| panic!("cancel: {e}"));
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    check_floor(&pool, event, "after the race").await;
    let free: i64 = sqlx::query_scalar("SELECT count(*) FROM event_seats WHERE event_id = $1 AND booking_id IS NULL AND hold_id IS NULL")
        .bind(event.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(free > 0 && free < capacity as i64, "{free} free");
    for n in 0..free {
        let b = h.book(event, UserId::new(), 1).await.expect("book");
        assert_eq!(b.status, BookingStatus::Confirmed, "free seat {n} of {free}: every free seat is found");
        check_floor(&pool, event, "filling up").await;
    }
    let last = h.book(event, UserId::new(), 1).await.expect("book");
    assert_eq!(last.status, BookingStatus::Waiting, "all seats taken");
}
