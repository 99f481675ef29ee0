//! [`SeatStore`] on PostgreSQL: each method is one transaction that writes the change with
//! its history rows and outbox notifications.
//!
//! Isolation: READ COMMITTED plus row locks on the seats, bookings and holds a step touches,
//! and one advisory lock per event: *shared* by every booking step (they never wait for each
//! other on it: the lock lives in memory, not in the event row), *exclusive* by the steps
//! that change the whole event (cancel, resize, delete), so that those never race a booking.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use happening_core::domain::*;
use happening_core::effects;
use happening_core::error::{BackendError, Conflict, Entity};
use happening_core::ids::*;
use happening_core::ports::{SeatStore, StoreError};
use sqlx::{PgConnection, PgPool, Row};

use crate::alloc::{allocate, Mode, Owner};
use crate::batch::{self, Batcher, Item, Outcome};
use crate::error::{db, retry_deadlock, DEADLOCK};
use crate::rows::{self, ints, BOOKING_COLS, EVENT_COLS, HOLD_COLS, NOTIFICATION_COLS};

/// The PostgreSQL store: a cheap-to-clone handle on a connection pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Group commit of new bookings (see `batch.rs`); `None` when made outside a tokio
    /// runtime, and each booking is then a batch of one.
    batcher: Option<Arc<Batcher>>,
}

impl PgStore {
    /// The store on `pool`; inside a tokio runtime it also starts the booking batcher's
    /// tasks there (they end with the last clone of the store).
    pub fn new(pool: PgPool) -> Self {
        let batcher = batch::start(pool.clone()).map(Arc::new);
        Self { pool, batcher }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn book_item(&self, item: Item) -> Result<Outcome, StoreError> {
        batch::submit(&self.pool, self.batcher.as_deref(), item).await
    }

    /// What a booking's failure (a SQLSTATE of migrations/0002 and 0003) means: an error
    /// for the caller, or a reason to try again (contended in fast mode, a deadlock, or an
    /// idempotency key held by a twin that rolled back).
    async fn failure(&self, code: &str, message: &str, key: Option<&IdempotencyKey>) -> Next {
        Next::Fail(match code {
            "HP001" => StoreError::NotFound(Entity::Event),
            "HP002" => StoreError::conflict(Conflict::EventCancelled),
            "HP003" => {
                let Some(key) = key else { return Next::Fail(StoreError::Backend(BackendError::msg("key taken without a key"))) };
                let rec = match self.pool.acquire().await {
                    Ok(mut conn) => key_record(&mut conn, key).await,
                    Err(e) => Err(db(e)),
                };
                match rec {
                    Ok(Some(rec)) => StoreError::IdempotencyKeyTaken(rec),
                    Ok(None) => return Next::Retry,
                    Err(e) => e,
                }
            }
            "HP004" => {
                StoreError::Conflict { reason: Conflict::SeatsTaken, seats: message.split(',').filter_map(|s| s.parse().ok()).collect() }
            }
            "HP005" | DEADLOCK => return Next::Retry,
            // Short: the message is the free seats, or 'queued' (someone waits, 0016).
            "HP006" => StoreError::Short { free: message.parse().unwrap_or(0) },
            _ => StoreError::Backend(BackendError::msg(format!("booking failed: {code} {message}"))),
        })
    }
}

/// After a failed booking step.
enum Next {
    Retry,
    Fail(StoreError),
}

/// The advisory-lock key of an event: the first 8 bytes of its (random) id.
fn lock_key(event: EventId) -> i64 {
    i64::from_be_bytes(event.0.as_bytes()[..8].try_into().expect("16-byte uuid"))
}

async fn lock_shared(conn: &mut PgConnection, event: EventId) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)").bind(lock_key(event)).execute(conn).await.map_err(db)?;
    Ok(())
}

async fn lock_exclusive(conn: &mut PgConnection, event: EventId) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lock_key(event)).execute(conn).await.map_err(db)?;
    Ok(())
}

async fn load_event(conn: &mut PgConnection, id: EventId) -> Result<Event, StoreError> {
    let row = sqlx::query(&format!("SELECT {EVENT_COLS} FROM events e WHERE e.id = $1"))
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound(Entity::Event))?;
    rows::event(&row)
}

/// The event, which must not be cancelled.
async fn live_event(conn: &mut PgConnection, id: EventId) -> Result<Event, StoreError> {
    let e = load_event(conn, id).await?;
    if e.status == EventStatus::Cancelled {
        return Err(StoreError::conflict(Conflict::EventCancelled));
    }
    Ok(e)
}

/// The event a booking belongs to (no lock).
async fn event_of_booking(conn: &mut PgConnection, id: BookingId) -> Result<EventId, StoreError> {
    let row = sqlx::query("SELECT event_id FROM bookings WHERE id = $1")
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound(Entity::Booking))?;
    Ok(EventId(row.try_get("event_id").map_err(db)?))
}

async fn locked_booking(conn: &mut PgConnection, id: BookingId) -> Result<Booking, StoreError> {
    let row = sqlx::query(&format!("SELECT {BOOKING_COLS} FROM bookings WHERE id = $1 FOR UPDATE"))
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound(Entity::Booking))?;
    rows::booking(&row)
}

/// Binds an idempotency key to `booking` in this transaction, or reports who has it.
async fn bind_key(conn: &mut PgConnection, key: Option<&IdempotencyKey>, booking: BookingId, now: DateTime<Utc>) -> Result<(), StoreError> {
    let Some(key) = key else { return Ok(()) };
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, booking_id, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(key.user_id.0)
    .bind(&key.key)
    .bind(key.fingerprint as i64)
    .bind(booking.0)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(db)?
    .rows_affected();
    if inserted == 1 {
        return Ok(());
    }
    let rec = key_record(conn, key).await?.ok_or_else(|| StoreError::Backend(BackendError::msg("idempotency key vanished")))?;
    Err(StoreError::IdempotencyKeyTaken(rec))
}

/// What an idempotency key is bound to, if anything.
async fn key_record(conn: &mut PgConnection, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>, StoreError> {
    let row = sqlx::query("SELECT fingerprint, booking_id FROM idempotency_keys WHERE user_id = $1 AND key = $2")
        .bind(key.user_id.0)
        .bind(&key.key)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    row.map(|r| {
        Ok(IdempotencyRecord {
            fingerprint: r.try_get::<i64, _>("fingerprint").map_err(db)? as u64,
            booking_id: BookingId(r.try_get("booking_id").map_err(db)?),
        })
    })
    .transpose()
}

/// Binds the history entry and the notification of a change, in `effects_sql` order.
macro_rules! bind_effects {
    ($q:expr, $h:expr, $n:expr) => {
        $q.bind($h.action.as_str())
            .bind($h.status.as_str())
            .bind(ints(&$h.seat_numbers))
            .bind($h.at)
            .bind($n.id.0)
            .bind($n.user_id.0)
            .bind($n.kind.as_str())
            .bind($n.event_id.map(|e| e.0))
            .bind($n.booking_id.map(|b| b.0))
            .bind($n.org_id.map(|o| o.0))
            .bind($n.seats as i32)
            .bind($n.expires_at)
            .bind(rows::delivery_str($n.status))
            .bind($n.read)
            .bind($n.created_at)
    };
}

/// The history and outbox rows of a change, after the booking statement `b` (parameters
/// from `$first` on), so that a whole change is one round trip.
fn effects_sql(first: usize) -> String {
    let p: Vec<String> = (first..first + 15).map(|i| format!("${i}")).collect();
    format!(
        "h AS (INSERT INTO booking_history (booking_id, action, status, seat_numbers, created_at) VALUES ($1, {}, {}, {}, {})) \
         INSERT INTO notifications (id, user_id, type, event_id, booking_id, org_id, seats, expires_at, status, read, created_at) \
         VALUES ({})",
        p[0],
        p[1],
        p[2],
        p[3],
        p[4..].join(", ")
    )
}

/// Writes a new booking with its history entry and notification, in one statement.
async fn insert_booking(conn: &mut PgConnection, b: &Booking, (h, n): (HistoryEntry, Notification)) -> Result<(), StoreError> {
    let sql = format!(
        "WITH b AS (INSERT INTO bookings (id, event_id, user_id, seats, seat_numbers, status, queue_seq, hold_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)), {}",
        effects_sql(11)
    );
    let q = sqlx::query(&sql)
        .bind(b.id.0)
        .bind(b.event_id.0)
        .bind(b.user_id.0)
        .bind(b.seats_requested as i32)
        .bind(ints(&b.seat_numbers))
        .bind(b.status.as_str())
        .bind(b.queue_seq.map(|s| s as i64))
        .bind(b.hold_id.map(|h| h.0))
        .bind(b.created_at)
        .bind(b.updated_at);
    bind_effects!(q, h, n).execute(conn).await.map_err(db)?;
    Ok(())
}

/// Writes a changed booking with its history entry and notification, in one statement.
async fn update_booking(conn: &mut PgConnection, b: &Booking, (h, n): (HistoryEntry, Notification)) -> Result<(), StoreError> {
    let sql = format!(
        "WITH b AS (UPDATE bookings SET seat_numbers = $2, status = $3, queue_seq = $4, offer_expires_at = $5, updated_at = $6 WHERE id = $1), {}",
        effects_sql(7)
    );
    let q = sqlx::query(&sql)
        .bind(b.id.0)
        .bind(ints(&b.seat_numbers))
        .bind(b.status.as_str())
        .bind(b.queue_seq.map(|s| s as i64))
        .bind(b.offer_expires_at)
        .bind(b.updated_at);
    bind_effects!(q, h, n).execute(conn).await.map_err(db)?;
    Ok(())
}

pub(crate) async fn insert_notification(conn: &mut PgConnection, n: &Notification) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, type, event_id, booking_id, org_id, seats, expires_at, status, read, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(n.id.0)
    .bind(n.user_id.0)
    .bind(n.kind.as_str())
    .bind(n.event_id.map(|e| e.0))
    .bind(n.booking_id.map(|b| b.0))
    .bind(n.org_id.map(|o| o.0))
    .bind(n.seats as i32)
    .bind(n.expires_at)
    .bind(rows::delivery_str(n.status))
    .bind(n.read)
    .bind(n.created_at)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Frees the seats of `booking` given in `seats` (all of them if `None`).
async fn free_booking_seats(conn: &mut PgConnection, booking: BookingId, seats: Option<&[SeatNo]>) -> Result<u64, StoreError> {
    let q = match seats {
        None => sqlx::query("UPDATE event_seats SET booking_id = NULL, offered = false WHERE booking_id = $1").bind(booking.0),
        Some(s) => sqlx::query("UPDATE event_seats SET booking_id = NULL WHERE booking_id = $1 AND seat_no = ANY($2)")
            .bind(booking.0)
            .bind(ints(s)),
    };
    Ok(q.execute(conn).await.map_err(db)?.rows_affected())
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

#[async_trait]
impl SeatStore for PgStore {
    async fn insert_event(&self, event: &Event) -> Result<EventView, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
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

    async fn event(&self, id: EventId) -> Result<Event, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        load_event(&mut conn, id).await
    }

    async fn event_for(&self, id: EventId, user: UserId) -> Result<(Event, Option<Role>), StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLS}, (SELECT m.role FROM organization_users m WHERE m.organization_id = e.org_id AND m.user_id = $2) AS member_role \
             FROM events e WHERE e.id = $1"
        ))
        .bind(id.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound(Entity::Event))?;
        let role: Option<String> = row.try_get("member_role").map_err(db)?;
        Ok((rows::event(&row)?, role.as_deref().map(rows::role).transpose()?))
    }

    async fn event_view(&self, id: EventId) -> Result<EventView, StoreError> {
        let row = sqlx::query(&event_view_sql())
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound(Entity::Event))?;
        rows::event_view(&row)
    }

    async fn live_event_ids(&self) -> Result<Vec<EventId>, StoreError> {
        let ids: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM events WHERE status <> 'cancelled' ORDER BY id").fetch_all(&self.pool).await.map_err(db)?;
        Ok(ids.into_iter().map(EventId).collect())
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventView>, StoreError> {
        let ids: Vec<uuid::Uuid> = filter.org_ids.iter().map(|o| o.0).collect();
        sqlx::query(&format!(
            "SELECT {EVENT_COLS}, {VIEW_COUNTS} FROM (SELECT * FROM events WHERE org_id = ANY($1) \
             ORDER BY event_date DESC, id LIMIT $2 OFFSET $3) e {VIEW_SEATS} ORDER BY e.event_date DESC, e.id"
        ))
        .bind(ids)
        .bind(filter.limit as i64)
        .bind(filter.offset as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::event_view)
        .collect()
    }

    async fn update_event(&self, id: EventId, patch: &EventPatch, now: DateTime<Utc>) -> Result<EventView, StoreError> {
        retry_deadlock(move || async move {
            let mut tx = self.pool.begin().await.map_err(db)?;
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

    async fn cancel_event(&self, id: EventId, now: DateTime<Utc>) -> Result<Vec<Booking>, StoreError> {
        retry_deadlock(move || async move {
            let mut tx = self.pool.begin().await.map_err(db)?;
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

    async fn delete_event(&self, id: EventId) -> Result<(), StoreError> {
        retry_deadlock(move || async move {
            let mut tx = self.pool.begin().await.map_err(db)?;
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

    async fn seat_map(&self, id: EventId) -> Result<SeatMap, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
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

    /// A booking of the lowest free seats goes through the batcher (group commit, fast
    /// mode); one of requested seats, or one contended in fast mode, is one call of
    /// `happening_confirm` (migrations/0002; through `happening_confirm_behind` of 0016,
    /// which checks the queue first) of its own, blocking after contention.
    async fn confirm(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        // The effects of the booking as it will be; the database fills in the seats.
        let mut b = Booking::new(new, BookingStatus::Confirmed, vec![0; new.seats as usize], now);
        let (h, n) = effects::created(&b, now);
        let key = new.idempotency.as_ref();
        let mut blocking = false;
        if new.seat_numbers.is_empty() {
            let item = Item { confirm: true, new: new.clone(), lock: lock_key(new.event_id), now, history: h.clone(), note: n.clone() };
            match self.book_item(item).await? {
                Outcome::Seats(seats) => {
                    b.seat_numbers = rows::seats(seats);
                    return Ok(b);
                }
                Outcome::Failed { code, message } => match self.failure(&code, &message, key).await {
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
            .fetch_one(&self.pool)
            .await;
            let err = match res {
                Ok(seats) => {
                    b.seat_numbers = rows::seats(seats);
                    return Ok(b);
                }
                Err(e) => e,
            };
            let code = match &err {
                // Ours (HP...), or a deadlock: PostgreSQL rolled this call back to break a
                // lock cycle with other transactions, and it is tried again (`failure`).
                sqlx::Error::Database(d) => d.code().map(|c| c.to_string()).filter(|c| c.starts_with("HP") || c == DEADLOCK),
                _ => None,
            };
            let Some(code) = code else { return Err(db(err)) };
            let message = err.as_database_error().map(|d| d.message().to_string()).unwrap_or_default();
            match self.failure(&code, &message, key).await {
                Next::Retry => continue,
                Next::Fail(e) => return Err(e),
            }
        }
        Err(StoreError::Backend(BackendError::msg("booking still contended after retries")))
    }

    /// Through the batcher, as an item of `happening_book_batch` (migrations/0006).
    async fn enqueue(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let mut b = Booking::new(new, BookingStatus::Waiting, Vec::new(), now);
        let (h, n) = effects::created(&b, now);
        // Again only when the key was held by a twin that rolled back, or in a deadlock.
        for _ in 0..3 {
            let item = Item { confirm: false, new: new.clone(), lock: lock_key(new.event_id), now, history: h.clone(), note: n.clone() };
            match self.book_item(item).await? {
                Outcome::Waiting { seq, number } => {
                    b.queue_seq = Some(seq as u64);
                    b.waiting_number = Some(number as u32);
                    return Ok(b);
                }
                Outcome::Failed { code, message } => match self.failure(&code, &message, new.idempotency.as_ref()).await {
                    Next::Retry => continue,
                    Next::Fail(e) => return Err(e),
                },
                Outcome::Seats(_) => unreachable!("a waiting item answers its queue place"),
            }
        }
        Err(StoreError::Backend(BackendError::msg("waiting booking still contended after retries")))
    }

    async fn promote(&self, id: BookingId, seats: u32, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        retry_deadlock(move || async move {
            for mode in [Mode::Fast, Mode::Blocking] {
                let mut tx = self.pool.begin().await.map_err(db)?;
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
                // The event's setting, read in this step (a change of it takes the event's
                // lock exclusively, so it cannot move while this holds it shared).
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

    async fn cancel(&self, id: BookingId, key: Option<&IdempotencyKey>, now: DateTime<Utc>) -> Result<Cancellation, StoreError> {
        retry_deadlock(move || async move {
            let mut tx = self.pool.begin().await.map_err(db)?;
            let event = event_of_booking(&mut tx, id).await?;
            lock_shared(&mut tx, event).await?;
            live_event(&mut tx, event).await?;
            let mut b = locked_booking(&mut tx, id).await?;
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

    async fn cancel_seats(
        &self,
        id: BookingId,
        seats: &[SeatNo],
        key: Option<&IdempotencyKey>,
        now: DateTime<Utc>,
    ) -> Result<Cancellation, StoreError> {
        retry_deadlock(move || async move {
            let mut tx = self.pool.begin().await.map_err(db)?;
            let event = event_of_booking(&mut tx, id).await?;
            lock_shared(&mut tx, event).await?;
            live_event(&mut tx, event).await?;
            let mut b = locked_booking(&mut tx, id).await?;
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

    async fn accept_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        retry_deadlock(move || async move {
            let (mut tx, mut b) = self.open_offer(id).await?;
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

    async fn decline_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Cancellation, StoreError> {
        retry_deadlock(move || async move {
            let (mut tx, b) = self.open_offer(id).await?;
            let c = end_offer(&mut tx, b, BookingStatus::Declined, now, effects::declined).await?;
            tx.commit().await.map_err(db)?;
            Ok(c)
        })
        .await
    }

    async fn expire_offers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Booking>, StoreError> {
        // The open offers' own index (migrations/0018), from the front.
        let due = sqlx::query(
            "SELECT id, event_id FROM bookings WHERE status = 'offered' AND offer_expires_at <= $1 ORDER BY offer_expires_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut expired = Vec::with_capacity(due.len());
        for r in due {
            let id = BookingId(r.try_get("id").map_err(db)?);
            let event = EventId(r.try_get("event_id").map_err(db)?);
            // One transaction per offer, each retried alone, as holds expire.
            let b = retry_deadlock(move || async move {
                let mut tx = self.pool.begin().await.map_err(db)?;
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
            .await?;
            expired.extend(b);
        }
        Ok(expired)
    }

    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError> {
        let row = sqlx::query(&format!("SELECT {BOOKING_COLS} FROM bookings WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound(Entity::Booking))?;
        rows::booking(&row)
    }

    async fn user_bookings(&self, user: UserId, orgs: Option<&[OrgId]>, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError> {
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
        query.fetch_all(&self.pool).await.map_err(db)?.iter().map(rows::booking).collect()
    }

    async fn waiting(&self, event: EventId, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError> {
        sqlx::query(&format!(
            "SELECT {BOOKING_COLS} FROM bookings WHERE event_id = $1 AND status = 'waiting' ORDER BY queue_seq LIMIT $2 OFFSET $3"
        ))
        .bind(event.0)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::booking)
        .collect()
    }

    async fn event_bookings(&self, event: EventId) -> Result<Vec<Booking>, StoreError> {
        sqlx::query(&format!("SELECT {BOOKING_COLS} FROM bookings WHERE event_id = $1 ORDER BY created_at, id"))
            .bind(event.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(rows::booking)
            .collect()
    }

    async fn event_bookings_page(
        &self,
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
                format!(
                    "SELECT {BOOKING_COLS} FROM bookings WHERE event_id = $1 AND status = $4 ORDER BY created_at, id LIMIT $2 OFFSET $3"
                ),
                Some(s.as_str()),
            ),
        };
        let mut query = sqlx::query(&sql).bind(event.0).bind(limit as i64).bind(offset as i64);
        if let Some(s) = status {
            query = query.bind(s);
        }
        query.fetch_all(&self.pool).await.map_err(db)?.iter().map(rows::booking).collect()
    }

    async fn history(&self, booking: BookingId) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query("SELECT action, status, seat_numbers, created_at FROM booking_history WHERE booking_id = $1 ORDER BY id")
            .bind(booking.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        if rows.is_empty() {
            self.booking(booking).await?;
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

    async fn event_booking_notifications(&self, event: EventId) -> Result<Vec<Notification>, StoreError> {
        // No index on `event_id`: the users of the event's bookings (a booking's notifications
        // go to its user) narrow the scan through `notifications_user_idx`.
        sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLS} FROM notifications WHERE event_id = $1 AND booking_id IS NOT NULL \
             AND user_id IN (SELECT user_id FROM bookings WHERE event_id = $1) ORDER BY seq"
        ))
        .bind(event.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::notification)
        .collect()
    }

    async fn idempotency(&self, user: UserId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query("SELECT fingerprint, booking_id FROM idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(user.0)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| {
            Ok(IdempotencyRecord {
                fingerprint: r.try_get::<i64, _>("fingerprint").map_err(db)? as u64,
                booking_id: BookingId(r.try_get("booking_id").map_err(db)?),
            })
        })
        .transpose()
    }

    async fn create_hold(&self, new: &NewHold, now: DateTime<Utc>) -> Result<Hold, StoreError> {
        retry_deadlock(move || async move {
            for mode in [Mode::Fast, Mode::Blocking] {
                let mut tx = self.pool.begin().await.map_err(db)?;
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

    async fn hold(&self, id: HoldId) -> Result<Hold, StoreError> {
        let row = sqlx::query(&format!("SELECT {HOLD_COLS} FROM holds WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound(Entity::Hold))?;
        rows::hold(&row)
    }

    async fn release_hold(&self, id: HoldId) -> Result<Hold, StoreError> {
        retry_deadlock(move || async move {
            let hold = self.hold(id).await?;
            let mut tx = self.pool.begin().await.map_err(db)?;
            lock_shared(&mut tx, hold.event_id).await?;
            let hold = take_hold(&mut tx, id, None).await?.ok_or(StoreError::NotFound(Entity::Hold))?;
            tx.commit().await.map_err(db)?;
            Ok(hold)
        })
        .await
    }

    async fn convert_hold(&self, hold_id: HoldId, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        retry_deadlock(move || async move {
            let hold = self.hold(hold_id).await?;
            let mut tx = self.pool.begin().await.map_err(db)?;
            lock_shared(&mut tx, hold.event_id).await?;
            live_event(&mut tx, hold.event_id).await?;
            let row = sqlx::query(&format!("SELECT {HOLD_COLS} FROM holds WHERE id = $1 FOR UPDATE"))
                .bind(hold_id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
                .ok_or(StoreError::NotFound(Entity::Hold))?;
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

    async fn expire_holds(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Hold>, StoreError> {
        let due = sqlx::query("SELECT id, event_id FROM holds WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2")
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut expired = Vec::with_capacity(due.len());
        for r in due {
            let id = HoldId(r.try_get("id").map_err(db)?);
            let event = EventId(r.try_get("event_id").map_err(db)?);
            // One transaction per hold, each retried alone: a retry of the whole call
            // would forget the holds it had already expired.
            let hold = retry_deadlock(move || async move {
                let mut tx = self.pool.begin().await.map_err(db)?;
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

    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError> {
        let row = sqlx::query(&format!("SELECT {NOTIFICATION_COLS} FROM notifications WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound(Entity::Notification))?;
        rows::notification(&row)
    }

    async fn notifications(&self, user: UserId, limit: u32, offset: u32) -> Result<Vec<Notification>, StoreError> {
        sqlx::query(&format!("SELECT {NOTIFICATION_COLS} FROM notifications WHERE user_id = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3"))
            .bind(user.0)
            .bind(limit as i64)
            .bind(offset as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(rows::notification)
            .collect()
    }

    async fn mark_read(&self, user: UserId, id: NotificationId) -> Result<(), StoreError> {
        let n = sqlx::query("UPDATE notifications SET read = true WHERE id = $1 AND user_id = $2")
            .bind(id.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(Entity::Notification));
        }
        Ok(())
    }

    async fn pending_notifications(&self, limit: u32) -> Result<Vec<Notification>, StoreError> {
        sqlx::query(&format!("SELECT {NOTIFICATION_COLS} FROM notifications WHERE status = 'pending' ORDER BY seq LIMIT $1"))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(rows::notification)
            .collect()
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        // Counts the partial index `notifications_pending_idx`: the backlog only.
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'pending'").fetch_one(&self.pool).await.map_err(db)?;
        Ok(n as u64)
    }

    async fn claim_pending(&self, limit: u32, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Vec<Notification>, StoreError> {
        // SKIP LOCKED: relays of several servers claim different rows at once.
        let rows = sqlx::query(&format!(
            "WITH c AS MATERIALIZED (SELECT seq FROM notifications WHERE status = 'pending' \
             AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE notifications n SET claimed_until = $2 FROM c WHERE n.seq = c.seq RETURNING n.seq, {}",
            NOTIFICATION_COLS.split(", ").map(|c| format!("n.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(now)
        .bind(lease_until)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut claimed = rows
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>("seq").map_err(db)?, rows::notification(r)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        claimed.sort_by_key(|(seq, _)| *seq);
        Ok(claimed.into_iter().map(|(_, n)| n).collect())
    }

    async fn release_claims(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
        sqlx::query("UPDATE notifications SET claimed_until = NULL WHERE id = ANY($1) AND status = 'pending'")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn set_delivery(&self, ids: &[NotificationId], status: DeliveryStatus) -> Result<(), StoreError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
        let from: &[&str] = match status {
            DeliveryStatus::Sent => &["pending"],
            DeliveryStatus::Delivered => &["pending", "sent", "failed"],
            DeliveryStatus::Failed => &["pending", "sent"],
            DeliveryStatus::Pending => return Ok(()),
        };
        sqlx::query("UPDATE notifications SET status = $2 WHERE id = ANY($1) AND status = ANY($3)")
            .bind(ids)
            .bind(rows::delivery_str(status))
            .bind(from)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}

/// Marks (or unmarks) the seats of booking `id` as an open offer's: held, not booked.
async fn mark_offered(conn: &mut PgConnection, id: BookingId, offered: bool) -> Result<(), StoreError> {
    sqlx::query("UPDATE event_seats SET offered = $2 WHERE booking_id = $1").bind(id.0).bind(offered).execute(conn).await.map_err(db)?;
    Ok(())
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

impl PgStore {
    /// A transaction holding the event's shared lock and the booking `id`'s row, which is an
    /// open offer of a live event; else the conflict saying why not.
    async fn open_offer(&self, id: BookingId) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Booking), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let event = event_of_booking(&mut tx, id).await?;
        lock_shared(&mut tx, event).await?;
        live_event(&mut tx, event).await?;
        let b = locked_booking(&mut tx, id).await?;
        if b.status != BookingStatus::Offered {
            return Err(StoreError::not_offered(b.status));
        }
        Ok((tx, b))
    }
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

#[cfg(test)]
mod tests {
    /// A relay's claim only sets `claimed_until`: with room left on each page of the outbox
    /// (migrations/0007) it is a HOT update, no new index entry. Without the room, claims of
    /// full pages (every page but the last) were not.
    #[tokio::test]
    async fn a_claim_of_full_outbox_pages_is_a_hot_update() {
        let Some(server) = crate::testing::server_url() else { return };
        let pool = sqlx::PgPool::connect(&crate::testing::fresh_database_url(&server).await).await.expect("connect");
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query(
            "INSERT INTO notifications (id, user_id, type, seats, status, created_at) \
             SELECT gen_random_uuid(), gen_random_uuid(), 'booking_waitlisted', 1, 'pending', now() FROM generate_series(1, 1000)",
        )
        .execute(&mut *tx)
        .await
        .expect("insert");
        let pages: i64 = sqlx::query_scalar("SELECT count(DISTINCT (ctid::text::point)[0]) FROM notifications")
            .fetch_one(&mut *tx)
            .await
            .expect("pages");
        assert!(pages >= 10, "the rows fill {pages} pages");
        let claimed = sqlx::query("UPDATE notifications SET claimed_until = now() + interval '1 minute' WHERE status = 'pending'")
            .execute(&mut *tx)
            .await
            .expect("claim")
            .rows_affected();
        // This transaction's own counts, so no wait for the statistics to be reported.
        let hot: i64 = sqlx::query_scalar("SELECT pg_stat_get_xact_tuples_hot_updated('notifications'::regclass)")
            .fetch_one(&mut *tx)
            .await
            .expect("hot updates");
        assert_eq!(claimed, 1000);
        assert!(hot >= 900, "{hot} of {claimed} claims were HOT updates");
    }

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
