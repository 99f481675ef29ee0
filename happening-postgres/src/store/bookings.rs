//! Bookings: confirmed (through the batcher, or one server-side call), waiting, promoted,
//! cancelled whole or in part, and read.

use chrono::{DateTime, Utc};
use happening_core::domain::*;
use happening_core::effects;
use happening_core::error::{BackendError, Conflict, Entity};
use happening_core::ids::*;
use happening_core::ports::StoreError;
use sqlx::{PgConnection, Postgres, Row, Transaction};

use super::events::live_event;
use super::idempotency::{bind_key, record};
use super::locks::{lock_key, lock_shared};
use super::writes::{free_booking_seats, mark_offered, update_booking};
use super::PgStore;
use crate::alloc::{allocate, Mode, Owner};
use crate::batch::{self, Item, Outcome};
use crate::error::{booking_failure, booking_failure_code, db, found, retry_deadlock, BookingFailure};
use crate::rows::{self, ints, BOOKING_COLS};

async fn book_item(store: &PgStore, item: Item) -> Result<Outcome, StoreError> {
    batch::submit(&store.pool, store.batcher.as_deref(), item).await
}

/// After a failed booking step.
enum Next {
    Retry,
    Fail(StoreError),
}

/// What a booking's failure means (`booking_failure`): an error for the caller, or a
/// reason to try again, which an idempotency key held by a twin that rolled back is too.
async fn failure(store: &PgStore, code: &str, message: &str, key: Option<&IdempotencyKey>) -> Next {
    match booking_failure(code, message) {
        BookingFailure::Fail(e) => Next::Fail(e),
        BookingFailure::Retry => Next::Retry,
        BookingFailure::KeyTaken => {
            let Some(key) = key else { return Next::Fail(StoreError::Backend(BackendError::msg("key taken without a key"))) };
            match record(&store.pool, key.user_id, &key.key).await {
                Ok(Some(rec)) => Next::Fail(StoreError::IdempotencyKeyTaken(rec)),
                Ok(None) => Next::Retry,
                Err(e) => Next::Fail(e),
            }
        }
    }
}

/// The event a booking belongs to (no lock).
pub(super) async fn event_of_booking(conn: &mut PgConnection, id: BookingId) -> Result<EventId, StoreError> {
    let row = found(sqlx::query("SELECT event_id FROM bookings WHERE id = $1").bind(id.0), conn, Entity::Booking).await?;
    Ok(EventId(row.try_get("event_id").map_err(db)?))
}

pub(super) async fn locked_booking(conn: &mut PgConnection, id: BookingId) -> Result<Booking, StoreError> {
    let sql = format!("SELECT {BOOKING_COLS} FROM bookings WHERE id = $1 FOR UPDATE");
    rows::booking(&found(sqlx::query(&sql).bind(id.0), conn, Entity::Booking).await?)
}

/// A transaction about to change booking `id` of a live event: the event's shared lock
/// (writers of one event's seats run beside each other; a resize or a cancellation of the
/// event waits for them), the event checked live (`Conflict(EventCancelled)`), and the
/// booking's row locked. The order is the one every writer of a booking takes, so that
/// none deadlocks another.
pub(super) async fn locked_live_booking(store: &PgStore, id: BookingId) -> Result<(Transaction<'static, Postgres>, Booking), StoreError> {
    let mut tx = store.pool.begin().await.map_err(db)?;
    let event = event_of_booking(&mut tx, id).await?;
    lock_shared(&mut tx, event).await?;
    live_event(&mut tx, event).await?;
    let b = locked_booking(&mut tx, id).await?;
    Ok((tx, b))
}

/// A booking of the lowest free seats goes through the batcher (group commit, fast
/// mode); one of requested seats, or one contended in fast mode, is one call of
/// `happening_confirm` (migrations/0002; through `happening_confirm_behind` of 0016,
/// which checks the queue first) of its own, blocking after contention.
pub(super) async fn confirm(store: &PgStore, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
    // The effects of the booking as it will be; the database fills in the seats.
    let mut b = Booking::new(new, BookingStatus::Confirmed, vec![0; new.seats as usize], now);
    let (h, n) = effects::created(&b, now);
    let key = new.idempotency.as_ref();
    let mut blocking = false;
    if new.seat_numbers.is_empty() {
        let item = Item { confirm: true, new: new.clone(), lock: lock_key(new.event_id), now, history: h.clone(), note: n.clone() };
        match book_item(store, item).await? {
            Outcome::Seats(seats) => {
                b.seat_numbers = rows::seats(seats);
                return Ok(b);
            }
            Outcome::Failed { code, message } => match failure(store, &code, &message, key).await {
                Next::Retry => blocking = true,
                Next::Fail(e) => return Err(e),
            },
            Outcome::Waiting { .. } => unreachable!("a confirmed item answers seats"),
        }
    }
    // Fast first; blocking after contention (or a key released by a twin that rolled back).
    for attempt in 0..3 {
        let res: Result<Vec<i32>, sqlx::Error> = sqlx::query_scalar(
            "SELECT happening_confirm_behind($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(new.behind_queue)
        .bind(new.event_id.0)
        .bind(lock_key(new.event_id))
        .bind(new.id.0)
        .bind(new.user_id.0)
        .bind(new.seats_requested as i32)
        .bind(new.seats as i32)
        .bind(ints(&new.seat_numbers))
        .bind(new.strict_seats)
        .bind(blocking || attempt > 0)
        .bind(key.map(|k| k.user_id.0))
        .bind(key.map(|k| k.key.as_str()))
        .bind(key.map(|k| k.fingerprint as i64))
        .bind(now)
        .bind(h.action.as_str())
        .bind(h.status.as_str())
        .bind(n.id.0)
        .bind(n.kind.as_str())
        .bind(n.seats as i32)
        .fetch_one(&store.pool)
        .await;
        let err = match res {
            Ok(seats) => {
                b.seat_numbers = rows::seats(seats);
                return Ok(b);
            }
            Err(e) => e,
        };
        let Some((code, message)) = booking_failure_code(&err) else { return Err(db(err)) };
        match failure(store, &code, &message, key).await {
            Next::Retry => continue,
            Next::Fail(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(BackendError::msg("booking still contended after retries")))
}

/// Through the batcher, as an item of `happening_book_batch` (migrations/0006).
pub(super) async fn enqueue(store: &PgStore, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
    let mut b = Booking::new(new, BookingStatus::Waiting, Vec::new(), now);
    let (h, n) = effects::created(&b, now);
    // Again only when the key was held by a twin that rolled back, or in a deadlock.
    for _ in 0..3 {
        let item = Item { confirm: false, new: new.clone(), lock: lock_key(new.event_id), now, history: h.clone(), note: n.clone() };
        match book_item(store, item).await? {
            Outcome::Waiting { seq, number } => {
                b.queue_seq = Some(seq as u64);
                b.waiting_number = Some(number as u32);
                return Ok(b);
            }
            Outcome::Failed { code, message } => match failure(store, &code, &message, new.idempotency.as_ref()).await {
                Next::Retry => continue,
                Next::Fail(e) => return Err(e),
            },
            Outcome::Seats(_) => unreachable!("a waiting item answers its queue place"),
        }
    }
    Err(StoreError::Backend(BackendError::msg("waiting booking still contended after retries")))
}

pub(super) async fn promote(store: &PgStore, id: BookingId, seats: u32, now: DateTime<Utc>) -> Result<Booking, StoreError> {
    retry_deadlock(move || async move {
        for mode in [Mode::Fast, Mode::Blocking] {
            let mut tx = store.pool.begin().await.map_err(db)?;
            let event = event_of_booking(&mut tx, id).await?;
            lock_shared(&mut tx, event).await?;
            let mut b = locked_booking(&mut tx, id).await?;
            if b.status != BookingStatus::Waiting {
                return Err(StoreError::NotWaiting(b.status));
            }
            let Some(got) = allocate(&mut tx, event, seats, &[], false, Owner::Booking(id.0), mode).await? else {
                tx.rollback().await.map_err(db)?;
                continue;
            };
            b.seat_numbers = got;
            b.queue_seq = None;
            b.updated_at = now;
            // The event's setting, read in this step (a change of it takes the event's lock
            // exclusively, so it cannot move while this step holds it shared).
            let offer_ttl: Option<i32> = sqlx::query_scalar("SELECT offer_ttl_seconds FROM events WHERE id = $1")
                .bind(event.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            let effects = match offer_ttl {
                None => {
                    b.status = BookingStatus::Confirmed;
                    effects::promoted(&b, now)
                }
                Some(ttl) => {
                    b.status = BookingStatus::Offered;
                    b.offer_expires_at = Some(now + chrono::Duration::seconds(ttl.into()));
                    mark_offered(&mut tx, id, true).await?;
                    effects::offered(&b, now)
                }
            };
            update_booking(&mut tx, &b, effects).await?;
            tx.commit().await.map_err(db)?;
            return Ok(b);
        }
        unreachable!("a blocking allocation always answers")
    })
    .await
}

pub(super) async fn cancel(
    store: &PgStore,
    id: BookingId,
    key: Option<&IdempotencyKey>,
    now: DateTime<Utc>,
) -> Result<Cancellation, StoreError> {
    retry_deadlock(move || async move {
        let (mut tx, mut b) = locked_live_booking(store, id).await?;
        bind_key(&mut tx, key, id, now).await?;
        let previous = b.status;
        if previous.is_final() {
            return Err(StoreError::ended(previous));
        }
        let freed = if previous.owns_seats() { b.seat_numbers.clone() } else { Vec::new() };
        free_booking_seats(&mut tx, id, None).await?;
        b.status = BookingStatus::Cancelled;
        b.queue_seq = None;
        b.updated_at = now;
        update_booking(&mut tx, &b, effects::cancelled(&b, &freed, now)).await?;
        tx.commit().await.map_err(db)?;
        Ok(Cancellation { booking: b, previous, freed })
    })
    .await
}

pub(super) async fn cancel_seats(
    store: &PgStore,
    id: BookingId,
    seats: &[SeatNo],
    key: Option<&IdempotencyKey>,
    now: DateTime<Utc>,
) -> Result<Cancellation, StoreError> {
    retry_deadlock(move || async move {
        let (mut tx, mut b) = locked_live_booking(store, id).await?;
        bind_key(&mut tx, key, id, now).await?;
        match b.status {
            BookingStatus::Confirmed => {}
            status if status.is_final() => return Err(StoreError::ended(status)),
            _ => return Err(StoreError::conflict(Conflict::BookingNotConfirmed)),
        }
        let mut freed = seats.to_vec();
        freed.sort_unstable();
        let strangers: Vec<SeatNo> = freed.iter().copied().filter(|s| !b.seat_numbers.contains(s)).collect();
        if !strangers.is_empty() {
            return Err(StoreError::Conflict { reason: Conflict::SeatsNotInBooking, seats: strangers });
        }
        free_booking_seats(&mut tx, id, Some(&freed)).await?;
        b.seat_numbers.retain(|s| freed.binary_search(s).is_err());
        b.updated_at = now;
        let effects = if b.seat_numbers.is_empty() {
            b.status = BookingStatus::Cancelled;
            b.seat_numbers = freed.clone();
            effects::cancelled(&b, &freed, now)
        } else {
            effects::seats_cancelled(&b, &freed, now)
        };
        update_booking(&mut tx, &b, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(Cancellation { booking: b, previous: BookingStatus::Confirmed, freed })
    })
    .await
}

pub(super) async fn booking(store: &PgStore, id: BookingId) -> Result<Booking, StoreError> {
    let sql = format!("SELECT {BOOKING_COLS} FROM bookings WHERE id = $1");
    rows::booking(&found(sqlx::query(&sql).bind(id.0), &store.pool, Entity::Booking).await?)
}

pub(super) async fn user_bookings(
    store: &PgStore,
    user: UserId,
    orgs: Option<&[OrgId]>,
    limit: u32,
    offset: u32,
) -> Result<Vec<Booking>, StoreError> {
    let sql = match orgs {
        None => format!("SELECT {BOOKING_COLS} FROM bookings WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"),
        // Filtered in the query, so that LIMIT and OFFSET count the kept rows.
        Some(_) => {
            let cols: Vec<String> = BOOKING_COLS.split(", ").map(|c| format!("b.{c}")).collect();
            format!(
                "SELECT {} FROM bookings b JOIN events e ON e.id = b.event_id WHERE b.user_id = $1 AND e.org_id = ANY($4) \
                 ORDER BY b.created_at DESC, b.id LIMIT $2 OFFSET $3",
                cols.join(", ")
            )
        }
    };
    let mut query = sqlx::query(&sql).bind(user.0).bind(limit as i64).bind(offset as i64);
    if let Some(orgs) = orgs {
        query = query.bind(orgs.iter().map(|o| o.0).collect::<Vec<uuid::Uuid>>());
    }
    query.fetch_all(&store.pool).await.map_err(db)?.iter().map(rows::booking).collect()
}

pub(super) async fn waiting(store: &PgStore, event: EventId, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError> {
    sqlx::query(&format!(
        "SELECT {BOOKING_COLS} FROM bookings WHERE event_id = $1 AND status = 'waiting' ORDER BY queue_seq LIMIT $2 OFFSET $3"
    ))
    .bind(event.0)
    .bind(limit as i64)
    .bind(offset as i64)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?
    .iter()
    .map(rows::booking)
    .collect()
}

pub(super) async fn event_bookings(store: &PgStore, event: EventId) -> Result<Vec<Booking>, StoreError> {
    sqlx::query(&format!("SELECT {BOOKING_COLS} FROM bookings WHERE event_id = $1 ORDER BY created_at, id"))
        .bind(event.0)
        .fetch_all(&store.pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::booking)
        .collect()
}

pub(super) async fn event_bookings_page(
    store: &PgStore,
    event: EventId,
    status: Option<BookingStatus>,
    limit: u32,
    offset: u32,
) -> Result<Vec<Booking>, StoreError> {
    // Two statements rather than `($2 IS NULL OR status = $2)`, so that each has one plan:
    // `bookings_event_idx` (event_id, created_at) in order, the status checked per row.
    let (sql, status) = match status {
        None => (format!("SELECT {BOOKING_COLS} FROM bookings WHERE event_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"), None),
        Some(s) => (
            format!("SELECT {BOOKING_COLS} FROM bookings WHERE event_id = $1 AND status = $4 ORDER BY created_at, id LIMIT $2 OFFSET $3"),
            Some(s.as_str()),
        ),
    };
    let mut query = sqlx::query(&sql).bind(event.0).bind(limit as i64).bind(offset as i64);
    if let Some(s) = status {
        query = query.bind(s);
    }
    query.fetch_all(&store.pool).await.map_err(db)?.iter().map(rows::booking).collect()
}

pub(super) async fn history(store: &PgStore, booking: BookingId) -> Result<Vec<HistoryEntry>, StoreError> {
    let rows = sqlx::query("SELECT action, status, seat_numbers, created_at FROM booking_history WHERE booking_id = $1 ORDER BY id")
        .bind(booking.0)
        .fetch_all(&store.pool)
        .await
        .map_err(db)?;
    if rows.is_empty() {
        self::booking(store, booking).await?;
    }
    rows.iter()
        .map(|r| {
            let action: String = r.try_get("action").map_err(db)?;
            let status: String = r.try_get("status").map_err(db)?;
            Ok(HistoryEntry {
                booking_id: booking,
                action: rows::action(&action)?,
                status: rows::status(&status)?,
                seat_numbers: rows::seats(r.try_get("seat_numbers").map_err(db)?),
                at: r.try_get("created_at").map_err(db)?,
            })
        })
        .collect()
}
