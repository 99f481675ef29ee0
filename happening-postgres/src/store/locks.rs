//! The per-event advisory lock: *shared* by every booking step (they never wait for each
//! other on it: the lock lives in memory, not in the event row), *exclusive* by the steps
//! that change the whole event (cancel, resize, delete), so that those never race a booking.

use happening_core::ids::EventId;
use happening_core::ports::StoreError;
use sqlx::PgConnection;

use crate::error::db;

/// The advisory-lock key of an event: the first 8 bytes of its (random) id.
pub(super) fn lock_key(event: EventId) -> i64 {
    i64::from_be_bytes(event.0.as_bytes()[..8].try_into().expect("16-byte uuid"))
}

pub(super) async fn lock_shared(conn: &mut PgConnection, event: EventId) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)").bind(lock_key(event)).execute(conn).await.map_err(db)?;
    Ok(())
}

pub(super) async fn lock_exclusive(conn: &mut PgConnection, event: EventId) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lock_key(event)).execute(conn).await.map_err(db)?;
    Ok(())
}
