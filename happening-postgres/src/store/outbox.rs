//! The outbox: notifications read by their users, claimed by the relays (several servers
//! at once), and marked as they are delivered.

use chrono::{DateTime, Utc};
use happening_core::domain::*;
use happening_core::error::Entity;
use happening_core::ids::*;
use happening_core::ports::StoreError;
use sqlx::Row;

use super::PgStore;
use crate::error::{db, found};
use crate::rows::{self, NOTIFICATION_COLS};

pub(super) async fn notification(store: &PgStore, id: NotificationId) -> Result<Notification, StoreError> {
    let sql = format!("SELECT {NOTIFICATION_COLS} FROM notifications WHERE id = $1");
    rows::notification(&found(sqlx::query(&sql).bind(id.0), &store.pool, Entity::Notification).await?)
}

pub(super) async fn notifications(store: &PgStore, user: UserId, limit: u32, offset: u32) -> Result<Vec<Notification>, StoreError> {
    sqlx::query(&format!("SELECT {NOTIFICATION_COLS} FROM notifications WHERE user_id = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3"))
        .bind(user.0)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&store.pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::notification)
        .collect()
}

pub(super) async fn mark_read(store: &PgStore, user: UserId, id: NotificationId) -> Result<(), StoreError> {
    let n = sqlx::query("UPDATE notifications SET read = true WHERE id = $1 AND user_id = $2")
        .bind(id.0)
        .bind(user.0)
        .execute(&store.pool)
        .await
        .map_err(db)?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Notification));
    }
    Ok(())
}

pub(super) async fn pending_notifications(store: &PgStore, limit: u32) -> Result<Vec<Notification>, StoreError> {
    sqlx::query(&format!("SELECT {NOTIFICATION_COLS} FROM notifications WHERE status = 'pending' ORDER BY seq LIMIT $1"))
        .bind(limit as i64)
        .fetch_all(&store.pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::notification)
        .collect()
}

pub(super) async fn outbox_depth(store: &PgStore) -> Result<u64, StoreError> {
    // Counts the partial index `notifications_pending_idx`: the backlog only.
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'pending'").fetch_one(&store.pool).await.map_err(db)?;
    Ok(n as u64)
}

pub(super) async fn claim_pending(
    store: &PgStore,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<Notification>, StoreError> {
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
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let mut claimed = rows
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>("seq").map_err(db)?, rows::notification(r)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort_by_key(|(seq, _)| *seq);
    Ok(claimed.into_iter().map(|(_, n)| n).collect())
}

pub(super) async fn release_claims(store: &PgStore, ids: &[NotificationId]) -> Result<(), StoreError> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    sqlx::query("UPDATE notifications SET claimed_until = NULL WHERE id = ANY($1) AND status = 'pending'")
        .bind(ids)
        .execute(&store.pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn set_delivery(store: &PgStore, ids: &[NotificationId], status: DeliveryStatus) -> Result<(), StoreError> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    let from: &[&str] = match status {
        DeliveryStatus::Sent => &["pending"],
        DeliveryStatus::Delivered => &["pending", "sent", "failed"],
        DeliveryStatus::Failed => &["pending", "sent"],
        DeliveryStatus::Pending => return Ok(()),
    };
    sqlx::query("UPDATE notifications SET status = $2 WHERE id = ANY($1) AND status = ANY($3)")
        .bind(ids)
        .bind(status.as_str())
        .bind(from)
        .execute(&store.pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn event_booking_notifications(store: &PgStore, event: EventId) -> Result<Vec<Notification>, StoreError> {
    // No index on `event_id`: the users of the event's bookings (a booking's notifications
    // go to its user) narrow the scan through `notifications_user_idx`.
    sqlx::query(&format!(
        "SELECT {NOTIFICATION_COLS} FROM notifications WHERE event_id = $1 AND booking_id IS NOT NULL \
         AND user_id IN (SELECT user_id FROM bookings WHERE event_id = $1) ORDER BY seq"
    ))
    .bind(event.0)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?
    .iter()
    .map(rows::notification)
    .collect()
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
}
