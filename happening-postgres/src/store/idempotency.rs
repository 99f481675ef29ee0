//! Idempotency keys: a key is bound to the booking it made (or cancelled) in the same
//! transaction, so that a replay finds that booking and a different request under the same
//! key is told so.

use chrono::{DateTime, Utc};
use happening_core::domain::*;
use happening_core::error::BackendError;
use happening_core::ids::*;
use happening_core::ports::StoreError;
use sqlx::{Executor, PgConnection, Postgres, Row};

use crate::error::db;

/// Binds an idempotency key to `booking` in this transaction, or reports who has it.
pub(super) async fn bind_key(
    conn: &mut PgConnection,
    key: Option<&IdempotencyKey>,
    booking: BookingId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
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
    let rec =
        record(conn, key.user_id, &key.key).await?.ok_or_else(|| StoreError::Backend(BackendError::msg("idempotency key vanished")))?;
    Err(StoreError::IdempotencyKeyTaken(rec))
}

/// What `user`'s idempotency key `key` is bound to, if anything.
pub(super) async fn record<'c, E>(conn: E, user: UserId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>
where
    E: Executor<'c, Database = Postgres>,
{
    let row = sqlx::query("SELECT fingerprint, booking_id FROM idempotency_keys WHERE user_id = $1 AND key = $2")
        .bind(user.0)
        .bind(key)
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
