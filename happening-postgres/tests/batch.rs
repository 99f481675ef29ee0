//! `happening_book_batch` (migrations 0003, 0005, 0006 and 0015), called as the store's
//! batcher calls it: a batch's confirmed bookings of one event share one search for the
//! lowest free seats, each takes its share in order, a booking that fails hands its share to
//! the next, one left without a share is contended, and the rows of all go in together (a
//! booking whose rows fail fails alone), and one that queues behind the waitlist is refused
//! while anyone waits (0016).

mod common;

use chrono::Utc;
use happening_core::domain::WaitlistPolicy;
use happening_core::ids::{EventId, UserId};
use sqlx::PgPool;
use uuid::Uuid;

/// One booking of a batch: confirmed (of the lowest free seats) or waiting.
struct Item {
    confirm: bool,
    event: EventId,
    seats: i32,
    /// The seats requested as written in the booking row (`seats` unless a test says).
    requested: Option<i32>,
    user: Uuid,
    key: Option<&'static str>,
    /// Queues behind anyone waiting (`NewBooking::behind_queue`).
    behind: bool,
}

fn confirm(event: EventId, seats: i32) -> Item {
    Item { confirm: true, event, seats, requested: None, user: UserId::new().0, key: None, behind: false }
}

fn wait(event: EventId, seats: i32) -> Item {
    Item { confirm: false, ..confirm(event, seats) }
}

/// The result row of each item: its SQLSTATE (`None`: booked) and seats.
async fn run(pool: &PgPool, items: &[Item]) -> Vec<(Option<String>, Option<Vec<i32>>)> {
    run_on(&mut pool.acquire().await.unwrap(), items, true).await
}

/// As `run`, on `conn`; unless `current`, without `p_behind` (`behind` false), as an engine
/// of the release before 0016 calls it.
async fn run_on(conn: &mut sqlx::PgConnection, items: &[Item], current: bool) -> Vec<(Option<String>, Option<Vec<i32>>)> {
    let lock = |e: EventId| i64::from_be_bytes(e.0.as_bytes()[..8].try_into().unwrap());
    let now = Utc::now();
    let behind = if current { ", $17" } else { "" };
    let sql = format!(
        "SELECT code, seats FROM happening_book_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16{behind})"
    );
    let q = sqlx::query_as(&sql)
        .bind(items.iter().map(|i| i.confirm).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.event.0).collect::<Vec<_>>())
        .bind(items.iter().map(|i| lock(i.event)).collect::<Vec<_>>())
        .bind(items.iter().map(|_| Uuid::new_v4()).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.user).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.requested.unwrap_or(i.seats)).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.seats).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.key.map(|_| i.user)).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.key).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.key.map(|_| 7_i64)).collect::<Vec<_>>())
        .bind(items.iter().map(|_| now).collect::<Vec<_>>())
        .bind(items.iter().map(|_| "created").collect::<Vec<_>>())
        .bind(items.iter().map(|i| if i.confirm { "confirmed" } else { "waiting" }).collect::<Vec<_>>())
        .bind(items.iter().map(|_| Uuid::new_v4()).collect::<Vec<_>>())
        .bind(items.iter().map(|i| if i.confirm { "booking_confirmed" } else { "booking_waitlisted" }).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.seats).collect::<Vec<_>>());
    let q = if current { q.bind(items.iter().map(|i| i.behind).collect::<Vec<_>>()) } else { q };
    q.fetch_all(conn).await.expect("happening_book_batch")
}

fn booked(seats: &[i32]) -> (Option<String>, Option<Vec<i32>>) {
    (None, Some(seats.to_vec()))
}

#[tokio::test]
async fn bookings_of_a_batch_share_one_search_and_a_failed_one_passes_its_seats_on() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    let (hot, other) = (h.event(10, WaitlistPolicy::Fifo).await, h.event(10, WaitlistPolicy::Fifo).await);
    let first = h.book(hot, UserId::new(), 1).await.unwrap();
    assert_eq!(first.seat_numbers, vec![1]);

    let twin = UserId::new().0;
    let items = [
        Item { key: Some("k"), user: twin, ..confirm(hot, 2) },
        // The same user's key again: this one fails (HP003), and its seat goes to the next.
        Item { key: Some("k"), user: twin, ..confirm(hot, 1) },
        confirm(hot, 3),
        confirm(other, 2),
        confirm(other, 1),
    ];
    let rows = run(&pool, &items).await;
    assert_eq!(rows[0], booked(&[2, 3]));
    assert_eq!(rows[1].0.as_deref(), Some("HP003"), "the key was taken: {rows:?}");
    assert_eq!(rows[2], booked(&[4, 5, 6]), "the failed booking's seat 4 went to the next");
    assert_eq!(rows[3], booked(&[1, 2]));
    assert_eq!(rows[4], booked(&[3]));

    // What the bookings say is what the seats say.
    let owned: Vec<(i32,)> =
        sqlx::query_as("SELECT seat_no FROM event_seats WHERE event_id = $1 AND booking_id IS NOT NULL ORDER BY seat_no")
            .bind(hot.0)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(owned.into_iter().map(|(s,)| s).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    for e in [hot, other] {
        happening_core::testkit::invariants::check(&h.engine, e).await.unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn a_booking_whose_rows_fail_fails_alone_and_leaves_no_key_and_no_seat() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    let event = h.event(10, WaitlistPolicy::Fifo).await;
    // The engine never asks for 2,000 seats (its limit is lower); the table's CHECK refuses
    // it, after the booking's checks passed and its seat was taken: the batch's one INSERT
    // per table fails, and the rows are written again one booking at a time.
    let bad_user = UserId::new().0;
    let items = [
        Item { key: Some("a"), ..confirm(event, 1) },
        Item { key: Some("bad"), user: bad_user, requested: Some(2_000), ..confirm(event, 1) },
        wait(event, 8),
        confirm(event, 2),
    ];
    let rows = run(&pool, &items).await;
    assert_eq!(rows[0], booked(&[1]));
    assert_eq!(rows[1].0.as_deref(), Some("23514"), "a check violation, for this booking only: {rows:?}");
    assert_eq!(rows[2], (None, None), "the waiting booking is written: {rows:?}");
    assert_eq!(rows[3], booked(&[3, 4]));

    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).bind(event.0).fetch_one(&pool);
    assert_eq!(count("SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'confirmed'").await.unwrap(), 2);
    assert_eq!(
        count("SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'waiting' AND queue_seq IS NOT NULL").await.unwrap(),
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM booking_history h JOIN bookings b ON b.id = h.booking_id WHERE b.event_id = $1").await.unwrap(),
        3
    );
    assert_eq!(count("SELECT count(*) FROM notifications WHERE event_id = $1").await.unwrap(), 3);
    let bad_keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE user_id = $1").bind(bad_user).fetch_one(&pool).await.unwrap();
    assert_eq!(bad_keys, 0, "the failed booking's key is gone with it");
    let free: Vec<i32> =
        sqlx::query_scalar("SELECT seat_no FROM event_seats WHERE event_id = $1 AND booking_id IS NULL ORDER BY seat_no LIMIT 2")
            .bind(event.0)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(free, [2, 5], "the failed booking's seat 2 is free again");
    happening_core::testkit::invariants::check(&h.engine, event).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_booking_left_without_a_share_is_contended() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    let event = h.event(3, WaitlistPolicy::Fifo).await;
    // Three seats for five asked: the first booking gets two, the second no share (HP005:
    // the store tries it again alone, blocking, and it waits), the third the seat left.
    let rows = run(&pool, &[confirm(event, 2), confirm(event, 2), confirm(event, 1)]).await;
    assert_eq!(rows[0], booked(&[1, 2]));
    assert_eq!(rows[1].0.as_deref(), Some("HP005"), "{rows:?}");
    assert_eq!(rows[2], booked(&[3]), "the one seat left is still bookable in the same batch");
    happening_core::testkit::invariants::check(&h.engine, event).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn an_event_s_bookings_anywhere_in_a_batch_share_its_one_search() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    let (a, b) = (h.event(10, WaitlistPolicy::Fifo).await, h.event(10, WaitlistPolicy::Fifo).await);
    // The store sends a batch in arrival order: one search per event serves its bookings
    // wherever they are in the batch, each share handed out once.
    let rows = run(&pool, &[confirm(a, 2), confirm(b, 1), confirm(a, 2)]).await;
    assert_eq!(rows, [booked(&[1, 2]), booked(&[1]), booked(&[3, 4])]);
    for e in [a, b] {
        happening_core::testkit::invariants::check(&h.engine, e).await.unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn a_booking_without_a_share_still_says_what_is_wrong() {
    let Some((_h, pool)) = common::setup_raw(0, 2).await else { return };
    let rows = run(&pool, &[confirm(EventId::new(), 1)]).await;
    assert_eq!(rows[0].0.as_deref(), Some("HP001"), "no such event, not just contended: {rows:?}");
}

#[tokio::test]
async fn every_booking_of_a_cancelled_event_fails_and_a_contended_one_keeps_no_key() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    let (gone, live) = (h.event(10, WaitlistPolicy::Fifo).await, h.event(1, WaitlistPolicy::Fifo).await);
    sqlx::query("UPDATE events SET status = 'cancelled' WHERE id = $1").bind(gone.0).execute(&pool).await.unwrap();
    let user = UserId::new().0;
    let items = [
        confirm(gone, 1),
        wait(gone, 1),
        Item { key: Some("k"), ..confirm(gone, 1) },
        confirm(live, 1),
        // No share left (one seat, taken by the booking before): contended, and its key is
        // rolled back with it, so that the store's retry can bind it again.
        Item { key: Some("again"), user, ..confirm(live, 1) },
    ];
    let rows = run(&pool, &items).await;
    let codes: Vec<_> = rows.iter().map(|r| r.0.as_deref()).collect();
    assert_eq!(codes, [Some("HP002"), Some("HP002"), Some("HP002"), None, Some("HP005")], "{rows:?}");
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE user_id = $1").bind(user).fetch_one(&pool).await.unwrap();
    assert_eq!(keys, 0, "the contended booking's key is not bound");
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE event_id = $1").bind(gone.0).fetch_one(&pool).await.unwrap();
    assert_eq!(written, 0, "nothing is written for a cancelled event");
}

/// The rows (ctids, as text) of seats `(event, seat)`, in order, read in `conn`'s transaction.
async fn rows_of(conn: &mut sqlx::PgConnection, seats: &[(EventId, i32)]) -> Vec<String> {
    let mut rows = Vec::new();
    for (event, seat) in seats {
        let row: String = sqlx::query_scalar("SELECT ctid::text FROM event_seats WHERE event_id = $1 AND seat_no = $2")
            .bind(event.0)
            .bind(seat)
            .fetch_one(&mut *conn)
            .await
            .expect("a seat's row");
        rows.push(row);
    }
    rows
}

/// Takes the seat rows `rows` for `owners`, as the batch does.
async fn take(conn: &mut sqlx::PgConnection, rows: Vec<String>, owners: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT happening_take_shares($1::text[]::tid[], $2)").bind(rows).bind(owners.to_vec()).execute(conn).await.map(|_| ())
}

/// This transaction's own table and index statistics: rows sequential scans of the seats
/// returned, and entries the free-seat index and the primary key returned.
async fn reads(conn: &mut sqlx::PgConnection) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT pg_stat_get_xact_tuples_returned('event_seats'::regclass), \
                pg_stat_get_xact_tuples_returned('event_seats_free_idx'::regclass), \
                pg_stat_get_xact_tuples_returned('event_seats_pkey'::regclass)",
    )
    .fetch_one(conn)
    .await
    .expect("statistics")
}

#[tokio::test]
async fn a_batch_s_seats_are_taken_by_their_rows_whatever_the_statistics() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    let (event, other) = (h.event(20_000, WaitlistPolicy::Fifo).await, h.event(10, WaitlistPolicy::Fifo).await);
    // Statistics taken while every seat was free, then 15,000 taken (a sale between two
    // ANALYZEs): the free-seat index then looked like the way to find a few free seats.
    sqlx::query("ANALYZE event_seats").execute(&pool).await.unwrap();
    sqlx::query("UPDATE event_seats SET booking_id = gen_random_uuid() WHERE event_id = $1 AND seat_no <= 15000")
        .bind(event.0)
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    // Seats of two events, as a batch hands them out: row i for booking i.
    let seats = [(event, 15_001), (other, 1), (event, 15_002), (event, 15_003)];
    let rows = rows_of(&mut tx, &seats).await;
    let owners: Vec<Uuid> = seats.iter().map(|_| Uuid::new_v4()).collect();
    let before = reads(&mut tx).await;
    take(&mut tx, rows, &owners).await.expect("take the shares");
    let after = reads(&mut tx).await;
    assert_eq!(after, before, "the take walked the table or an index: {before:?} -> {after:?}");
    let took: Vec<(Uuid, i32, Uuid)> = sqlx::query_as(
        "SELECT event_id, seat_no, booking_id FROM event_seats WHERE event_id = ANY($1) AND (seat_no > 15000 OR event_id = $2) \
         AND booking_id IS NOT NULL ORDER BY booking_id",
    )
    .bind(vec![event.0, other.0])
    .bind(other.0)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let mut expected: Vec<(Uuid, i32, Uuid)> = seats.iter().zip(&owners).map(|((e, n), o)| (e.0, *n, *o)).collect();
    expected.sort_by_key(|t| t.2);
    assert_eq!(took, expected, "seat i for booking i");

    let mut sp = sqlx::Connection::begin(&mut *tx).await.unwrap();
    let again = rows_of(&mut sp, &[(other, 1)]).await;
    let again = take(&mut sp, again, &[Uuid::new_v4()]).await;
    assert!(again.is_err(), "a seat taken already is never taken again, alone: {again:?}");
    sp.rollback().await.unwrap();
    let twice = rows_of(&mut tx, &[(event, 15_003), (event, 15_004)]).await;
    let twice = take(&mut tx, twice, &[Uuid::new_v4(), Uuid::new_v4()]).await;
    assert!(twice.is_err(), "a seat taken already is never taken again: {twice:?}");
}

#[tokio::test]
async fn a_seat_take_planned_while_the_seats_were_none_still_takes_them_by_their_rows() {
    // Never analyzed, and analyzed while empty (the planner then counts on no row at all).
    for analyzed in [false, true] {
        let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
        // As the server's warm pool does at start on a new deployment: the take is planned
        // (and the plan kept by this connection) while the table is empty, where a whole
        // scan costs nothing.
        let mut conn = pool.acquire().await.unwrap();
        if analyzed {
            sqlx::query("ANALYZE event_seats").execute(&mut *conn).await.unwrap();
        }
        take(&mut conn, Vec::new(), &[]).await.expect("an empty take");
        let event = h.event(20_000, WaitlistPolicy::Fifo).await;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        let rows = rows_of(&mut tx, &[(event, 7), (event, 9)]).await;
        let before = reads(&mut tx).await;
        take(&mut tx, rows, &[Uuid::new_v4(), Uuid::new_v4()]).await.expect("take two seats");
        let after = reads(&mut tx).await;
        assert_eq!(after, before, "the take walked the table or an index (analyzed while empty: {analyzed}): {before:?} -> {after:?}");
        let taken: i64 = sqlx::query_scalar("SELECT count(*) FROM event_seats WHERE event_id = $1 AND booking_id IS NOT NULL")
            .bind(event.0)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(taken, 2);
    }
}

#[tokio::test]
async fn a_batch_of_many_events_hands_out_each_event_s_seats_in_its_bookings_order() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    // `a`'s four seats go to its confirmed bookings, so its waiting one is rightly waiting.
    let (a, sold_out) = (h.event(4, WaitlistPolicy::Fifo).await, h.event(1, WaitlistPolicy::Fifo).await);
    h.book(sold_out, UserId::new(), 1).await.unwrap();
    // Two events whose first 40 seats are taken while their floors stayed at 1: each search
    // finds seat 41, far above the floor, and raises it.
    let (c, d) = (h.event(100, WaitlistPolicy::Fifo).await, h.event(100, WaitlistPolicy::Fifo).await);
    sqlx::query("UPDATE event_seats SET booking_id = gen_random_uuid() WHERE event_id = ANY($1) AND seat_no <= 40")
        .bind(vec![c.0, d.0])
        .execute(&pool)
        .await
        .unwrap();
    let twin = UserId::new().0;
    let items = [
        confirm(a, 2),
        confirm(sold_out, 1),
        wait(a, 1),
        confirm(c, 1),
        Item { key: Some("k"), user: twin, ..confirm(a, 1) },
        // The same key again: fails (HP003), and its seat goes to a's next booking.
        Item { key: Some("k"), user: twin, ..confirm(a, 1) },
        confirm(d, 2),
        // A confirmed booking of no seat: a caller's bug, refused alone.
        Item { requested: Some(1), ..confirm(a, 0) },
        confirm(a, 1),
        confirm(c, 1),
    ];
    let rows = run(&pool, &items).await;
    let codes: Vec<_> = rows.iter().map(|r| r.0.as_deref()).collect();
    assert_eq!(codes, [None, Some("HP005"), None, None, None, Some("HP003"), None, Some("22023"), None, None], "{rows:?}");
    assert_eq!(rows[0], booked(&[1, 2]));
    assert_eq!(rows[2], (None, None), "waiting");
    assert_eq!(rows[3], booked(&[41]));
    assert_eq!(rows[4], booked(&[3]));
    assert_eq!(rows[6], booked(&[41, 42]));
    assert_eq!(rows[8], booked(&[4]), "the failed bookings' seats went to the next of the event");
    assert_eq!(rows[9], booked(&[42]));
    let floors: Vec<i32> = sqlx::query_scalar("SELECT seats_free_from FROM events WHERE id = ANY($1) ORDER BY seats_free_from")
        .bind(vec![c.0, d.0])
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(floors, [41, 41], "both floors raised to the first seat the search found");
    for e in [a, sold_out] {
        happening_core::testkit::invariants::check(&h.engine, e).await.unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn seats_by_number_are_taken_in_ascending_order_for_a_booking_or_a_hold() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    let event = h.event(10, WaitlistPolicy::Fifo).await;
    let take = |wanted: Vec<i32>, booking: Option<Uuid>, hold: Option<Uuid>| {
        sqlx::query_scalar::<_, Vec<i32>>("SELECT happening_take_seats($1, $2, $3, $4)")
            .bind(event.0)
            .bind(wanted)
            .bind(booking)
            .bind(hold)
            .fetch_one(&pool)
    };
    let booking = Some(Uuid::new_v4());
    assert_eq!(take(vec![7, 3, 5], booking, None).await.unwrap(), [3, 5, 7], "ascending, whatever the order asked");
    assert_eq!(take(vec![5, 6], None, Some(Uuid::new_v4())).await.unwrap(), [6], "seat 5 is taken");
    assert!(take(vec![8], None, None).await.is_err(), "a seat goes to a booking or a hold");
    assert!(take(vec![8], booking, Some(Uuid::new_v4())).await.is_err(), "not to both");
}

/// A booking that queues behind the waitlist (0016) is refused, short (HP006, its key not
/// bound, no seat taken), while a booking of its event waits: one committed before, or one
/// written ahead of it in the batch. One ahead of the first waiting one, or one that may
/// pass the queue (`first_fit`), is booked.
#[tokio::test]
async fn a_booking_behind_the_queue_is_short_while_anyone_waits_even_ahead_in_its_batch() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    let (queued, open) = (h.event(5, WaitlistPolicy::Fifo).await, h.event(5, WaitlistPolicy::Fifo).await);
    h.book(queued, UserId::new(), 4).await.unwrap();
    h.book(queued, UserId::new(), 2).await.unwrap();
    let behind = |e, seats| Item { behind: true, ..confirm(e, seats) };
    let keyed = UserId::new().0;
    let items = [
        behind(queued, 1),
        Item { key: Some("k"), user: keyed, ..behind(queued, 1) },
        confirm(queued, 1),
        behind(open, 1),
        wait(open, 1),
        behind(open, 1),
        confirm(open, 1),
    ];
    let rows = run(&pool, &items).await;
    let short = (Some("HP006".to_string()), None);
    assert_eq!(rows, [short.clone(), short.clone(), booked(&[5]), booked(&[1]), (None, None), short, booked(&[2])]);
    let key: Option<i64> =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE user_id = $1").bind(keyed).fetch_one(&pool).await.unwrap();
    assert_eq!(key, Some(0), "a refused booking binds no key");
    // (`open` now has a booking waiting while seats are free: the engine would promote it.)
    happening_core::testkit::invariants::check(&h.engine, queued).await.unwrap_or_else(|e| panic!("{e}"));
}

/// An engine of the release before 0016 calls the batch function without `p_behind`, while
/// a rolling upgrade runs: it still books.
#[tokio::test]
async fn the_previous_release_s_batch_call_still_books() {
    let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
    let e = h.event(3, WaitlistPolicy::Fifo).await;
    let rows = run_on(&mut pool.acquire().await.unwrap(), &[confirm(e, 2), wait(e, 2)], false).await;
    assert_eq!(rows, [booked(&[1, 2]), (None, None)]);
}

/// The batch's look at the waitlist (0016) stays on the waiting bookings' index in a plan
/// made while `bookings` was empty (the warm pool plans at start), never analyzed or
/// analyzed while empty: it reads no booking of the event that is not waiting.
#[tokio::test]
async fn the_look_at_the_waitlist_planned_while_no_booking_was_reads_only_waiting_ones() {
    for analyzed in [false, true] {
        let Some((h, pool)) = common::setup_raw(0, 2).await else { return };
        let mut conn = pool.acquire().await.unwrap();
        if analyzed {
            sqlx::query("ANALYZE bookings").execute(&mut *conn).await.unwrap();
        }
        let planned = run_on(&mut conn, &[Item { behind: true, ..confirm(EventId::new(), 1) }], true).await;
        assert_eq!(planned[0].0.as_deref(), Some("HP001"));
        let e = h.event(2_000, WaitlistPolicy::Fifo).await;
        sqlx::query(
            "INSERT INTO bookings (id, event_id, user_id, seats, seat_numbers, status, created_at, updated_at) \
             SELECT gen_random_uuid(), $1, gen_random_uuid(), 1, ARRAY[1000 + g], 'confirmed', now(), now() \
             FROM generate_series(1, 1000) g",
        )
        .bind(e.0)
        .execute(&mut *conn)
        .await
        .unwrap();
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        let scanned = "SELECT pg_stat_get_xact_tuples_returned('bookings'::regclass), \
                              pg_stat_get_xact_tuples_returned('bookings_event_idx'::regclass)";
        let before: (i64, i64) = sqlx::query_as(scanned).fetch_one(&mut *tx).await.unwrap();
        let rows = run_on(&mut tx, &[Item { behind: true, ..confirm(e, 1) }], true).await;
        assert_eq!(rows, [booked(&[1])], "nobody waits");
        let after: (i64, i64) = sqlx::query_as(scanned).fetch_one(&mut *tx).await.unwrap();
        assert_eq!(after, before, "the look at the waitlist read other bookings (analyzed while empty: {analyzed})");
    }
}
