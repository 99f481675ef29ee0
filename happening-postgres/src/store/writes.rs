//! A change's rows: a booking written or changed together with its history entry and its
//! notification (one statement, one round trip), a notification alone, seats freed.

use happening_core::domain::*;
use happening_core::ids::*;
use happening_core::ports::StoreError;
use sqlx::PgConnection;

use crate::error::db;
use crate::rows::ints;

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
            .bind($n.status.as_str())
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
pub(super) async fn insert_booking(conn: &mut PgConnection, b: &Booking, (h, n): (HistoryEntry, Notification)) -> Result<(), StoreError> {
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
pub(super) async fn update_booking(conn: &mut PgConnection, b: &Booking, (h, n): (HistoryEntry, Notification)) -> Result<(), StoreError> {
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

/// A notification alone, into the outbox.
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
    .bind(n.status.as_str())
    .bind(n.read)
    .bind(n.created_at)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Marks (or unmarks) the seats of booking `id` as an open offer's: held, not booked.
pub(super) async fn mark_offered(conn: &mut PgConnection, id: BookingId, offered: bool) -> Result<(), StoreError> {
    sqlx::query("UPDATE event_seats SET offered = $2 WHERE booking_id = $1").bind(id.0).bind(offered).execute(conn).await.map_err(db)?;
    Ok(())
}

/// Frees the seats of `booking` given in `seats` (all of them if `None`).
pub(super) async fn free_booking_seats(conn: &mut PgConnection, booking: BookingId, seats: Option<&[SeatNo]>) -> Result<u64, StoreError> {
    let q = match seats {
        None => sqlx::query("UPDATE event_seats SET booking_id = NULL, offered = false WHERE booking_id = $1").bind(booking.0),
        Some(s) => sqlx::query("UPDATE event_seats SET booking_id = NULL WHERE booking_id = $1 AND seat_no = ANY($2)")
            .bind(booking.0)
            .bind(ints(s)),
    };
    Ok(q.execute(conn).await.map_err(db)?.rows_affected())
}
