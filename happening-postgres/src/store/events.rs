//! Events: written with their seat rows, read with their live counts (one walk of the
//! event's own seats), resized, cancelled with their bookings and holds, deleted.

use chrono::{DateTime, Utc};
use happening_core::domain::*;
use happening_core::effects;
use happening_core::error::{Conflict, Entity};
use happening_core::ids::*;
use happening_core::ports::StoreError;
use sqlx::{PgConnection, Row};

use super::locks::lock_exclusive;
use super::writes::{insert_notification, update_booking};
use super::PgStore;
use crate::error::{db, found, retry_deadlock};
use crate::rows::{self, BOOKING_COLS, EVENT_COLS, HOLD_COLS};

pub(super) async fn load_event(conn: &mut PgConnection, id: EventId) -> Result<Event, StoreError> {
    let sql = format!("SELECT {EVENT_COLS} FROM events e WHERE e.id = $1");
    let row = found(sqlx::query(&sql).bind(id.0), conn, Entity::Event).await?;
    rows::event(&row)
}

/// The event, which must not be cancelled.
pub(super) async fn live_event(conn: &mut PgConnection, id: EventId) -> Result<Event, StoreError> {
    let e = load_event(conn, id).await?;
    if e.status == EventStatus::Cancelled {
        return Err(StoreError::conflict(Conflict::EventCancelled));
    }
    Ok(e)
}

/// An event view's counts, from `VIEW_SEATS` (joined to events `e`) and the count of waiting
/// bookings its queue row keeps (migrations/0017).
const VIEW_COUNTS: &str =
    "s.booked - s.offered AS booked, s.held + s.offered AS held, coalesce((SELECT q.waiting FROM event_queues q WHERE q.event_id = e.id), 0)::bigint AS waiting";

/// The booked and held seats of event `e`, counted in one walk of its own seats (the primary
/// key); an open offer's seats are its booking's, marked `offered`, and count as held. Counted apart, each with its partial index (`booking_id IS NOT NULL`, keyed by
/// booking), the count of booked seats read every booked seat of every event: 21,560
/// buffers a view with 1,000 events on sale.
const VIEW_SEATS: &str = "CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE booking_id IS NOT NULL) AS booked, \
     count(*) FILTER (WHERE hold_id IS NOT NULL) AS held, count(*) FILTER (WHERE offered) AS offered \
     FROM event_seats WHERE event_id = e.id) s";

/// The taken seats of event `$1`, held or booked, in one walk of its own seats (the primary
/// key): `coalesce(...)` does not imply the partial indexes' predicates (`booking_id IS NOT
/// NULL`, keyed by booking), which otherwise looked cheapest when the statistics were taken
/// before a sale and read every booked seat of every event (772 buffers and 5.7 ms a map
/// after a run over 1,000 events, against 12).
const SEAT_MAP_SQL: &str =
    "SELECT seat_no, hold_id IS NOT NULL OR offered AS held FROM event_seats WHERE event_id = $1 AND coalesce(booking_id, hold_id) IS NOT NULL ORDER BY seat_no";

/// The statuses of a live booking, one that may still change (SQL).
const LIVE: &str = "('confirmed', 'waiting', 'offered')";

/// One event's view, by id (`$1`).
fn event_view_sql() -> String {
    format!("SELECT {EVENT_COLS}, {VIEW_COUNTS} FROM events e {VIEW_SEATS} WHERE e.id = $1")
}

pub(super) async fn insert_event(store: &PgStore, event: &Event) -> Result<EventView, StoreError> {
    let mut tx = store.pool.begin().await.map_err(db)?;
    sqlx::query(
        "INSERT INTO events (id, org_id, name, description, category, event_date, total_slots, status, waitlist_policy, waitlist_max, offer_ttl_seconds, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(event.id.0)
    .bind(event.org_id.0)
    .bind(&event.name)
    .bind(&event.description)
    .bind(&event.category)
    .bind(event.event_date)
    .bind(event.capacity as i32)
    .bind(event.status.as_str())
    .bind(event.policy.as_str())
    .bind(event.waitlist_max.map(|m| m as i32))
    .bind(event.offer_ttl_seconds.map(|t| t as i32))
    .bind(event.created_at)
    .bind(event.updated_at)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    sqlx::query("INSERT INTO event_seats (event_id, seat_no) SELECT $1, generate_series(1, $2)")
        .bind(event.id.0)
        .bind(event.capacity as i32)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(EventView { event: event.clone(), booked: 0, held: 0, waiting: 0 })
}

pub(super) async fn event(store: &PgStore, id: EventId) -> Result<Event, StoreError> {
    let mut conn = store.pool.acquire().await.map_err(db)?;
    load_event(&mut conn, id).await
}

pub(super) async fn event_for(store: &PgStore, id: EventId, user: UserId) -> Result<(Event, Option<Role>), StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLS}, (SELECT m.role FROM organization_users m WHERE m.organization_id = e.org_id AND m.user_id = $2) AS member_role \
         FROM events e WHERE e.id = $1"
    );
    let row = found(sqlx::query(&sql).bind(id.0).bind(user.0), &store.pool, Entity::Event).await?;
    let role: Option<String> = row.try_get("member_role").map_err(db)?;
    Ok((rows::event(&row)?, role.as_deref().map(rows::role).transpose()?))
}

pub(super) async fn event_view(store: &PgStore, id: EventId) -> Result<EventView, StoreError> {
    let row = found(sqlx::query(&event_view_sql()).bind(id.0), &store.pool, Entity::Event).await?;
    rows::event_view(&row)
}

pub(super) async fn live_event_ids(store: &PgStore) -> Result<Vec<EventId>, StoreError> {
    let ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM events WHERE status <> 'cancelled' ORDER BY id").fetch_all(&store.pool).await.map_err(db)?;
    Ok(ids.into_iter().map(EventId).collect())
}

pub(super) async fn list_events(store: &PgStore, filter: &EventFilter) -> Result<Vec<EventView>, StoreError> {
    let ids: Vec<uuid::Uuid> = filter.org_ids.iter().map(|o| o.0).collect();
    sqlx::query(&format!(
        "SELECT {EVENT_COLS}, {VIEW_COUNTS} FROM (SELECT * FROM events WHERE org_id = ANY($1) \
         ORDER BY event_date DESC, id LIMIT $2 OFFSET $3) e {VIEW_SEATS} ORDER BY e.event_date DESC, e.id"
    ))
    .bind(ids)
    .bind(filter.limit as i64)
    .bind(filter.offset as i64)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?
    .iter()
    .map(rows::event_view)
    .collect()
}

pub(super) async fn update_event(store: &PgStore, id: EventId, patch: &EventPatch, now: DateTime<Utc>) -> Result<EventView, StoreError> {
    retry_deadlock(move || async move {
        let mut tx = store.pool.begin().await.map_err(db)?;
        lock_exclusive(&mut tx, id).await?;
        let mut e = live_event(&mut tx, id).await?;
        if let Some(capacity) = patch.capacity {
            if capacity < e.capacity {
                // The event's own seats, as `SEAT_MAP_SQL` says why.
                let highest: Option<i32> = sqlx::query_scalar(
                    "SELECT max(seat_no) FROM event_seats WHERE event_id = $1 AND coalesce(booking_id, hold_id) IS NOT NULL",
                )
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                let highest = highest.unwrap_or(0) as u32;
                if capacity < highest {
                    return Err(StoreError::conflict(Conflict::CapacityBelowTakenSeat { highest }));
                }
                sqlx::query("DELETE FROM event_seats WHERE event_id = $1 AND seat_no > $2")
                    .bind(id.0)
                    .bind(capacity as i32)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            } else if capacity > e.capacity {
                sqlx::query("INSERT INTO event_seats (event_id, seat_no) SELECT $1, generate_series($2, $3)")
                    .bind(id.0)
                    .bind(e.capacity as i32 + 1)
                    .bind(capacity as i32)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            e.capacity = capacity;
        }
        patch.apply(&mut e, now);
        sqlx::query(
            "UPDATE events SET name = $2, description = $3, category = $4, event_date = $5, total_slots = $6, \
         waitlist_policy = $7, waitlist_max = $8, offer_ttl_seconds = $10, updated_at = $9 WHERE id = $1",
        )
        .bind(id.0)
        .bind(&e.name)
        .bind(&e.description)
        .bind(&e.category)
        .bind(e.event_date)
        .bind(e.capacity as i32)
        .bind(e.policy.as_str())
        .bind(e.waitlist_max.map(|m| m as i32))
        .bind(now)
        .bind(e.offer_ttl_seconds.map(|t| t as i32))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if patch.notifies_bookings() {
            let live = sqlx::query(&format!("SELECT {BOOKING_COLS} FROM bookings WHERE event_id = $1 AND status IN {LIVE}"))
                .bind(id.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            for row in &live {
                insert_notification(&mut tx, &effects::event_updated(&rows::booking(row)?, now)).await?;
            }
        }
        let row = sqlx::query(&event_view_sql()).bind(id.0).fetch_one(&mut *tx).await.map_err(db)?;
        let view = rows::event_view(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(view)
    })
    .await
}

pub(super) async fn cancel_event(store: &PgStore, id: EventId, now: DateTime<Utc>) -> Result<Vec<Booking>, StoreError> {
    retry_deadlock(move || async move {
        let mut tx = store.pool.begin().await.map_err(db)?;
        lock_exclusive(&mut tx, id).await?;
        live_event(&mut tx, id).await?;
        let live = sqlx::query(&format!(
            "SELECT {BOOKING_COLS} FROM bookings WHERE event_id = $1 AND status IN {LIVE} ORDER BY created_at, id FOR UPDATE"
        ))
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut cancelled = Vec::with_capacity(live.len());
        for row in &live {
            let mut b = rows::booking(row)?;
            let freed = if b.status.owns_seats() { b.seat_numbers.clone() } else { Vec::new() };
            b.status = BookingStatus::Cancelled;
            b.queue_seq = None;
            b.updated_at = now;
            update_booking(&mut tx, &b, effects::event_cancelled(&b, &freed, now)).await?;
            cancelled.push(b);
        }
        // The event's own seats, as `SEAT_MAP_SQL` says why.
        sqlx::query(
            "UPDATE event_seats SET booking_id = NULL, hold_id = NULL, offered = false WHERE event_id = $1 AND coalesce(booking_id, hold_id) IS NOT NULL",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let holds = sqlx::query(&format!("DELETE FROM holds WHERE event_id = $1 RETURNING {HOLD_COLS}"))
            .bind(id.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        for row in &holds {
            insert_notification(&mut tx, &effects::hold_event_cancelled(&rows::hold(row)?, now)).await?;
        }
        sqlx::query("UPDATE events SET status = 'cancelled', updated_at = $2 WHERE id = $1")
            .bind(id.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(cancelled)
    })
    .await
}

pub(super) async fn delete_event(store: &PgStore, id: EventId) -> Result<(), StoreError> {
    retry_deadlock(move || async move {
        let mut tx = store.pool.begin().await.map_err(db)?;
        lock_exclusive(&mut tx, id).await?;
        let n = sqlx::query("DELETE FROM events WHERE id = $1").bind(id.0).execute(&mut *tx).await.map_err(db)?.rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(Entity::Event));
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    })
    .await
}

pub(super) async fn seat_map(store: &PgStore, id: EventId) -> Result<SeatMap, StoreError> {
    let mut conn = store.pool.acquire().await.map_err(db)?;
    let e = load_event(&mut conn, id).await?;
    let rows = sqlx::query(SEAT_MAP_SQL).bind(id.0).fetch_all(&mut *conn).await.map_err(db)?;
    let (mut taken, mut held) = (Vec::new(), Vec::new());
    for r in rows {
        let seat = r.try_get::<i32, _>("seat_no").map_err(db)? as SeatNo;
        if r.try_get::<bool, _>("held").map_err(db)? {
            held.push(seat);
        } else {
            taken.push(seat);
        }
    }
    Ok(SeatMap { total: e.capacity, taken, held })
}

#[cfg(test)]
mod tests {
    /// An event's view and its seat map read its own seats, not every booked or held seat of
    /// the others.
    #[tokio::test]
    async fn an_event_view_and_its_seat_map_read_its_own_seats_only() {
        let Some(server) = crate::testing::server_url() else { return };
        let pool = sqlx::PgPool::connect(&crate::testing::fresh_database_url(&server).await).await.expect("connect");
        let (org, small) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let events = "INSERT INTO events (id, org_id, name, event_date, total_slots, status, waitlist_policy, created_at, updated_at)";
        for sql in [
            format!("INSERT INTO organizations (id, name, created_at) VALUES ('{org}', 'o', now())"),
            format!("{events} VALUES ('{small}', '{org}', 'e', now(), 10, 'upcoming', 'fifo', now(), now())"),
            format!("{events} SELECT gen_random_uuid(), '{org}', 'e', now(), 100, 'upcoming', 'fifo', now(), now() FROM generate_series(1, 400)"),
            "INSERT INTO event_seats (event_id, seat_no) SELECT id, generate_series(1, total_slots) FROM events".to_string(),
            // Statistics taken while every seat is free (as at a sale's start): a partial index
            // of booked seats looks empty, and reading all of it cheap.
            "ANALYZE event_seats".to_string(),
            // A quarter of the 400 others' seats booked, another held; of the small one's, 3
            // booked, 2 held.
            format!("UPDATE event_seats SET booking_id = gen_random_uuid() WHERE event_id <> '{small}' AND seat_no <= 25"),
            format!("UPDATE event_seats SET hold_id = gen_random_uuid() WHERE event_id <> '{small}' AND seat_no BETWEEN 26 AND 50"),
            format!("UPDATE event_seats SET booking_id = gen_random_uuid() WHERE event_id = '{small}' AND seat_no <= 3"),
            format!("UPDATE event_seats SET hold_id = gen_random_uuid() WHERE event_id = '{small}' AND seat_no IN (4, 5)"),
        ] {
            sqlx::query(&sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let row = sqlx::query(&super::event_view_sql()).bind(small).fetch_one(&pool).await.expect("the view");
        let view = crate::rows::event_view(&row).expect("a view");
        assert_eq!((view.booked, view.held, view.waiting), (3, 2, 0));
        let (buffers, plan) = crate::testing::buffers_of(&pool, &super::event_view_sql(), small).await;
        assert!(buffers < 40, "{buffers} buffers for the view of a 10-seat event:\n{plan}");

        // Its seat map, the same way.
        let taken: Vec<(i32, bool)> = sqlx::query_as(super::SEAT_MAP_SQL).bind(small).fetch_all(&pool).await.expect("the map");
        assert_eq!(taken, [(1, false), (2, false), (3, false), (4, true), (5, true)]);
        let (buffers, plan) = crate::testing::buffers_of(&pool, super::SEAT_MAP_SQL, small).await;
        assert!(buffers < 40, "{buffers} buffers for the seat map of a 10-seat event:\n{plan}");
    }
}
