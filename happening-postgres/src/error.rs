//! Driver errors become port errors here, at the seam: callers never see SQL.

use happening_core::error::{BackendError, Conflict, Entity};
use happening_core::ports::{AdmissionError, StoreError};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Executor, Postgres};

/// A database error as a store error. A foreign-key violation on an event's organization
/// is the one the engine can meet in a race (the organization deleted meanwhile); every
/// other failure is opaque.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.constraint() == Some("events_org_id_fkey") {
            return StoreError::NotFound(Entity::Organization);
        }
        if d.constraint() == Some("organization_users_user_id_fkey") {
            return StoreError::NotFound(Entity::User);
        }
    }
    StoreError::Backend(BackendError::new(e))
}

pub(crate) fn adm(e: sqlx::Error) -> AdmissionError {
    AdmissionError::Backend(BackendError::new(e))
}

/// The one row `query` reads (a thing by its key), or `NotFound(entity)` when there is none.
pub(crate) async fn found<'q, 'c, E>(query: Query<'q, Postgres, PgArguments>, conn: E, entity: Entity) -> Result<PgRow, StoreError>
where
    E: Executor<'c, Database = Postgres>,
{
    query.fetch_optional(conn).await.map_err(db)?.ok_or(StoreError::NotFound(entity))
}

/// What a booking's failure (a SQLSTATE of migrations/0002 and 0003) means.
pub(crate) enum BookingFailure {
    /// An error for the caller.
    Fail(StoreError),
    /// A reason to try again: contended in fast mode, or a deadlock.
    Retry,
    /// The idempotency key is bound already (HP003): to what is the store's to read; to
    /// nothing means that a twin holding it rolled back, and the booking is tried again.
    KeyTaken,
}

/// The SQLSTATE and message of a failed booking call, when `booking_failure` has a meaning
/// for it: ours (HP...), or a deadlock (PostgreSQL rolled the call back to break a lock
/// cycle with other transactions, and it is tried again). `None` for any other error.
pub(crate) fn booking_failure_code(e: &sqlx::Error) -> Option<(String, String)> {
    let sqlx::Error::Database(d) = e else { return None };
    let code = d.code().map(|c| c.to_string()).filter(|c| c.starts_with("HP") || c == DEADLOCK)?;
    Some((code, d.message().to_string()))
}

/// What SQLSTATE `code` with `message` from a booking call means.
pub(crate) fn booking_failure(code: &str, message: &str) -> BookingFailure {
    BookingFailure::Fail(match code {
        "HP001" => StoreError::NotFound(Entity::Event),
        "HP002" => StoreError::conflict(Conflict::EventCancelled),
        "HP003" => return BookingFailure::KeyTaken,
        "HP004" => {
            StoreError::Conflict { reason: Conflict::SeatsTaken, seats: message.split(',').filter_map(|s| s.parse().ok()).collect() }
        }
        "HP005" | DEADLOCK => return BookingFailure::Retry,
        // Short: the message is the free seats, or 'queued' (someone waits, 0016).
        "HP006" => StoreError::Short { free: message.parse().unwrap_or(0) },
        _ => StoreError::Backend(BackendError::msg(format!("booking failed: {code} {message}"))),
    })
}

/// SQLSTATE `deadlock_detected`: PostgreSQL rolled the transaction back whole to break a
/// wait cycle, so the call may be made again.
pub(crate) const DEADLOCK: &str = "40P01";

/// How many times one store call is made before its deadlock is the caller's error. A
/// victim that tries again usually finds the other transaction gone; eight in a row would
/// mean a livelock, and the caller is better told.
const DEADLOCK_ATTEMPTS: u32 = 8;

fn is_deadlock(e: &StoreError) -> bool {
    let StoreError::Backend(b) = e else { return false };
    matches!(b.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::Database(d)) if d.code().as_deref() == Some(DEADLOCK))
}

/// Runs `step` (one whole transaction) again while PostgreSQL picks it as a deadlock's
/// victim. Every store call that changes seats goes through this (they lock seat, booking
/// and hold rows in orders that concurrent calls don't share), so that a race between
/// engines costs a retry, never a failed request. The directory's calls need none: each
/// locks its organization's row first.
pub(crate) async fn retry_deadlock<T, F, Fut>(mut step: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(e) if attempt < DEADLOCK_ATTEMPTS && is_deadlock(&e) => attempt += 1,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use sqlx::PgPool;
    use tokio::sync::Barrier;

    use super::*;

    /// Locks row `first`, waits until the twin has locked its first row, then locks
    /// `second`: two such calls in opposite orders make a real deadlock. Only the first
    /// attempt waits at the barrier, so a retry runs alone.
    async fn crosswise(pool: &PgPool, first: i32, second: i32, barrier: &Barrier, attempts: &AtomicU32) -> Result<(), StoreError> {
        let attempt = attempts.fetch_add(1, Ordering::SeqCst);
        let mut tx = pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE pair SET n = n + 1 WHERE id = $1").bind(first).execute(&mut *tx).await.map_err(db)?;
        if attempt < 2 {
            barrier.wait().await;
        }
        sqlx::query("UPDATE pair SET n = n + 1 WHERE id = $1").bind(second).execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    #[tokio::test]
    async fn a_deadlock_victim_is_run_again_and_both_calls_land() {
        let Some(server) = crate::testing::server_url() else { return };
        let pool = crate::connect(&crate::testing::fresh_database_url(&server).await, crate::testing::pool(4)).await.unwrap();
        sqlx::query("CREATE TABLE pair (id int PRIMARY KEY, n int NOT NULL)").execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO pair VALUES (1, 0), (2, 0)").execute(&pool).await.unwrap();
        let (barrier, attempts) = (Arc::new(Barrier::new(2)), Arc::new(AtomicU32::new(0)));

        let run = |first, second| {
            let (pool, barrier, attempts) = (pool.clone(), barrier.clone(), attempts.clone());
            tokio::spawn(async move { retry_deadlock(|| crosswise(&pool, first, second, &barrier, &attempts)).await })
        };
        let (a, b) = (run(1, 2), run(2, 1));
        a.await.unwrap().expect("first call");
        b.await.unwrap().expect("second call");

        // PostgreSQL broke the cycle by rolling one back, and it ran once more. Both may be
        // rolled back: the two waited from the same moment, so their deadlock checks can run
        // together, each before the other has given up its lock; then each ran once more.
        let attempts = attempts.load(Ordering::SeqCst);
        assert!(attempts == 3 || attempts == 4, "{attempts} attempts: a victim was not retried, or retried twice");
        let total: i64 = sqlx::query_scalar("SELECT sum(n) FROM pair").fetch_one(&pool).await.unwrap();
        assert_eq!(total, 4, "both calls updated both rows exactly once");
    }

    #[tokio::test]
    async fn only_a_deadlock_is_tried_again() {
        let attempts = AtomicU32::new(0);
        let r: Result<(), _> = retry_deadlock(|| async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::NotFound(Entity::Event))
        })
        .await;
        assert!(matches!(r, Err(StoreError::NotFound(Entity::Event))));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }
}
