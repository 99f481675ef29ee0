//! Holds: seats taken for a while, released, converted into a booking, or expired.

use chrono::{DateTime, Utc};
use happening_core::domain::*;
use happening_core::effects;
use happening_core::error::{Conflict, Entity};
use happening_core::ids::*;
use happening_core::ports::StoreError;
use sqlx::{PgConnection, Row};

use super::events::live_event;
use super::idempotency::bind_key;
use super::locks::lock_shared;
use super::writes::{insert_booking, insert_notification};
use super::PgStore;
use crate::alloc::{allocate, Mode, Owner};
use crate::error::{db, found, retry_deadlock};
use crate::rows::{self, ints, HOLD_COLS};

pub(super) async fn create_hold(store: &PgStore, new: &NewHold, now: DateTime<Utc>) -> Result<Hold, StoreError> {
    retry_deadlock(move || async move {
        for mode in [Mode::Fast, Mode::Blocking] {
            let mut tx = store.pool.begin().await.map_err(db)?;
            lock_shared(&mut tx, new.event_id).await?;
            live_event(&mut tx, new.event_id).await?;
            let owner = Owner::Hold(new.id.0);
            let Some(seats) = allocate(&mut tx, new.event_id, new.seats, &new.seat_numbers, true, owner, mode).await? else {
                tx.rollback().await.map_err(db)?;
                continue;
            };
            let hold = Hold::new(new, seats, now);
            sqlx::query(&format!("INSERT INTO holds ({HOLD_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"))
                .bind(hold.id.0)
                .bind(hold.event_id.0)
                .bind(hold.user_id.0)
                .bind(ints(&hold.seat_numbers))
                .bind(hold.expires_at)
                .bind(hold.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Ok(hold);
        }
        unreachable!("a blocking allocation always answers")
    })
    .await
}

pub(super) async fn hold(store: &PgStore, id: HoldId) -> Result<Hold, StoreError> {
    let sql = format!("SELECT {HOLD_COLS} FROM holds WHERE id = $1");
    let row = found(sqlx::query(&sql).bind(id.0), &store.pool, Entity::Hold).await?;
    rows::hold(&row)
}

pub(super) async fn release_hold(store: &PgStore, id: HoldId) -> Result<Hold, StoreError> {
    retry_deadlock(move || async move {
        let hold = hold(store, id).await?;
        let mut tx = store.pool.begin().await.map_err(db)?;
        lock_shared(&mut tx, hold.event_id).await?;
        let hold = take_hold(&mut tx, id, None).await?.ok_or(StoreError::NotFound(Entity::Hold))?;
        tx.commit().await.map_err(db)?;
        Ok(hold)
    })
    .await
}

pub(super) async fn convert_hold(store: &PgStore, hold_id: HoldId, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
    retry_deadlock(move || async move {
        let hold = hold(store, hold_id).await?;
        let mut tx = store.pool.begin().await.map_err(db)?;
        lock_shared(&mut tx, hold.event_id).await?;
        live_event(&mut tx, hold.event_id).await?;
        let sql = format!("SELECT {HOLD_COLS} FROM holds WHERE id = $1 FOR UPDATE");
        let row = found(sqlx::query(&sql).bind(hold_id.0), &mut *tx, Entity::Hold).await?;
        let hold = rows::hold(&row)?;
        if hold.expires_at <= now {
            return Err(StoreError::conflict(Conflict::HoldExpired));
        }
        bind_key(&mut tx, new.idempotency.as_ref(), new.id, now).await?;
        let mut b = Booking::new(new, BookingStatus::Confirmed, hold.seat_numbers.clone(), now);
        b.seats_requested = hold.seat_numbers.len() as u32;
        b.hold_id = Some(hold_id);
        insert_booking(&mut tx, &b, effects::created(&b, now)).await?;
        sqlx::query("UPDATE event_seats SET hold_id = NULL, booking_id = $2 WHERE hold_id = $1")
            .bind(hold_id.0)
            .bind(b.id.0)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("DELETE FROM holds WHERE id = $1").bind(hold_id.0).execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(b)
    })
    .await
}

pub(super) async fn expire_holds(store: &PgStore, now: DateTime<Utc>, limit: u32) -> Result<Vec<Hold>, StoreError> {
    let due = sqlx::query("SELECT id, event_id FROM holds WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2")
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&store.pool)
        .await
        .map_err(db)?;
    let mut expired = Vec::with_capacity(due.len());
    for r in due {
        let id = HoldId(r.try_get("id").map_err(db)?);
        let event = EventId(r.try_get("event_id").map_err(db)?);
        // One transaction per hold, each retried alone: a retry of the whole call
        // would forget the holds it had already expired.
        let hold = retry_deadlock(move || async move {
            let mut tx = store.pool.begin().await.map_err(db)?;
            lock_shared(&mut tx, event).await?;
            let Some(hold) = take_hold(&mut tx, id, Some(now)).await? else { return Ok(None) };
            insert_notification(&mut tx, &effects::hold_expired(&hold, now)).await?;
            tx.commit().await.map_err(db)?;
            Ok(Some(hold))
        })
        .await?;
        expired.extend(hold);
    }
    Ok(expired)
}

/// Deletes a hold (only if due by `due_by`, when given) and frees its seats.
async fn take_hold(conn: &mut PgConnection, id: HoldId, due_by: Option<DateTime<Utc>>) -> Result<Option<Hold>, StoreError> {
    let row =
        sqlx::query(&format!("DELETE FROM holds WHERE id = $1 AND ($2::timestamptz IS NULL OR expires_at <= $2) RETURNING {HOLD_COLS}"))
            .bind(id.0)
            .bind(due_by)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    sqlx::query("UPDATE event_seats SET hold_id = NULL WHERE hold_id = $1").bind(id.0).execute(conn).await.map_err(db)?;
    Ok(Some(rows::hold(&row)?))
}
