//! Offers: an open offer accepted, declined, or expired by the background step. Each is one
//! transaction that locks the booking's row and checks that it is still an open offer, so
//! that of steps racing for one offer (several engines) exactly one ends it.

use chrono::{DateTime, Utc};
use futures_util::{stream, StreamExt};
use happening_core::domain::*;
use happening_core::effects;
use happening_core::error::Conflict;
use happening_core::ids::*;
use happening_core::ports::StoreError;
use sqlx::{PgConnection, Postgres, Row, Transaction};

use super::bookings::{locked_booking, locked_live_booking};
use super::locks::lock_shared;
use super::writes::{free_booking_seats, mark_offered, update_booking};
use super::PgStore;
use crate::error::{db, retry_deadlock};

/// Offers the background step expires at once: a few of the pool's connections (32 by
/// default), never most of them.
const EXPIRY_CONCURRENCY: usize = 8;

pub(super) async fn accept_offer(store: &PgStore, id: BookingId, now: DateTime<Utc>) -> Result<Booking, StoreError> {
    retry_deadlock(move || async move {
        let (mut tx, mut b) = open_offer(store, id).await?;
        match b.offer_expires_at {
            Some(until) if until > now => {}
            _ => return Err(StoreError::conflict(Conflict::OfferExpired)),
        }
        mark_offered(&mut tx, id, false).await?;
        b.status = BookingStatus::Confirmed;
        b.updated_at = now;
        update_booking(&mut tx, &b, effects::accepted(&b, now)).await?;
        tx.commit().await.map_err(db)?;
        Ok(b)
    })
    .await
}

pub(super) async fn decline_offer(store: &PgStore, id: BookingId, now: DateTime<Utc>) -> Result<Cancellation, StoreError> {
    retry_deadlock(move || async move {
        let (mut tx, b) = open_offer(store, id).await?;
        let c = end_offer(&mut tx, b, BookingStatus::Declined, now, effects::declined).await?;
        tx.commit().await.map_err(db)?;
        Ok(c)
    })
    .await
}

pub(super) async fn expire_offers(store: &PgStore, now: DateTime<Utc>, limit: u32) -> Result<Vec<Booking>, StoreError> {
    // The open offers' own index (migrations/0018), from the front.
    let due = sqlx::query(
        "SELECT id, event_id FROM bookings WHERE status = 'offered' AND offer_expires_at <= $1 ORDER BY offer_expires_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit as i64)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let mut due_offers = Vec::with_capacity(due.len());
    for r in due {
        due_offers.push((BookingId(r.try_get("id").map_err(db)?), EventId(r.try_get("event_id").map_err(db)?)));
    }
    // One transaction per offer, each retried alone, as holds expire; a few at once, so that
    // their commits share WAL flushes (one after another, each would wait for its own).
    // Every one runs to its end. Those that failed stay due for the next step; the ones that
    // ended are answered even then, so that their seats pass on now. Only a step that ended
    // none answers its first failure.
    let ended: Vec<Result<Option<Booking>, StoreError>> =
        stream::iter(due_offers).map(|(id, event)| expire_offer(store, id, event, now)).buffered(EXPIRY_CONCURRENCY).collect().await;
    let mut expired = Vec::with_capacity(ended.len());
    let mut first_failure = None;
    for b in ended {
        match b {
            Ok(b) => expired.extend(b),
            Err(e) => first_failure = first_failure.or(Some(e)),
        }
    }
    match first_failure {
        Some(e) if expired.is_empty() => Err(e),
        _ => Ok(expired),
    }
}

/// Ends offer `id` of `event` as expired, if it is still open and due by `now`.
async fn expire_offer(store: &PgStore, id: BookingId, event: EventId, now: DateTime<Utc>) -> Result<Option<Booking>, StoreError> {
    retry_deadlock(move || async move {
        let mut tx = store.pool.begin().await.map_err(db)?;
        lock_shared(&mut tx, event).await?;
        let b = locked_booking(&mut tx, id).await?;
        // Accepted, declined or cancelled since it was read: not this step's to end.
        if b.status != BookingStatus::Offered || b.offer_expires_at.is_none_or(|at| at > now) {
            return Ok(None);
        }
        let c = end_offer(&mut tx, b, BookingStatus::Expired, now, effects::offer_expired).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(c.booking))
    })
    .await
}

/// A transaction holding the event's shared lock and the row of booking `id`, an open offer
/// of a live event; else the conflict saying why not.
async fn open_offer(store: &PgStore, id: BookingId) -> Result<(Transaction<'static, Postgres>, Booking), StoreError> {
    let (tx, b) = locked_live_booking(store, id).await?;
    if b.status != BookingStatus::Offered {
        return Err(StoreError::not_offered(b.status));
    }
    Ok((tx, b))
}

/// Ends the open offer `b` (locked by the caller) as `status`, freeing its seats.
async fn end_offer(
    conn: &mut PgConnection,
    mut b: Booking,
    status: BookingStatus,
    now: DateTime<Utc>,
    effects: fn(&Booking, DateTime<Utc>) -> (HistoryEntry, Notification),
) -> Result<Cancellation, StoreError> {
    free_booking_seats(conn, b.id, None).await?;
    b.status = status;
    b.updated_at = now;
    update_booking(conn, &b, effects(&b, now)).await?;
    let freed = b.seat_numbers.clone();
    Ok(Cancellation { booking: b, previous: BookingStatus::Offered, freed })
}
