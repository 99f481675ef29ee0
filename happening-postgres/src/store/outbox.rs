//! The outbox: notifications read by their users, claimed by the relays (several servers
//! at once), and marked as they are delivered.
//!
//! A notification is written once: the relays read the table in (transaction, seq) order
//! past a cursor, claim ranges of it, and a reported range moves no row
//! (migrations/0020_outbox_cursor.sql). Reads go through the view `notifications_now`,
//! whose `status` says what the relays did.

use chrono::{DateTime, Utc};
use happening_core::domain::*;
use happening_core::error::Entity;
use happening_core::ids::*;
use happening_core::ports::StoreError;

use super::PgStore;
use crate::error::{db, found};
use crate::rows::{self, NOTIFICATION_COLS};

pub(super) async fn notification(store: &PgStore, id: NotificationId) -> Result<Notification, StoreError> {
    let sql = format!("SELECT {NOTIFICATION_COLS} FROM notifications_now WHERE id = $1");
    rows::notification(&found(sqlx::query(&sql).bind(id.0), &store.pool, Entity::Notification).await?)
}

pub(super) async fn notifications(store: &PgStore, user: UserId, limit: u32, offset: u32) -> Result<Vec<Notification>, StoreError> {
    sqlx::query(&format!("SELECT {NOTIFICATION_COLS} FROM notifications_now WHERE user_id = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3"))
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
    sqlx::query(&format!("SELECT {NOTIFICATION_COLS} FROM happening_outbox_pending($1)"))
        .bind(limit as i64)
        .fetch_all(&store.pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::notification)
        .collect()
}

pub(super) async fn outbox_depth(store: &PgStore) -> Result<u64, StoreError> {
    // The rows past the cursor or in open claims (an index range), those still pending.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM happening_outbox_pending(NULL)").fetch_one(&store.pool).await.map_err(db)?;
    Ok(n as u64)
}

pub(super) async fn claim_pending(
    store: &PgStore,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<Notification>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    sqlx::query(&format!("SELECT {NOTIFICATION_COLS} FROM happening_outbox_claim($1, $2, $3) WITH ORDINALITY AS c ORDER BY c.ordinality"))
        .bind(now)
        .bind(lease_until)
        .bind(limit.min(i32::MAX as u32) as i32)
        .fetch_all(&store.pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::notification)
        .collect()
}

pub(super) async fn release_claims(store: &PgStore, ids: &[NotificationId]) -> Result<(), StoreError> {
    // Every claim holding one of them is claimed again at once.
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    sqlx::query(
        "UPDATE outbox_claims k SET leased_until = NULL WHERE EXISTS (SELECT 1 FROM notifications n WHERE n.id = ANY($1) \
         AND (n.xid, n.seq) > (k.from_xid, k.from_seq) AND (n.xid, n.seq) <= (k.to_xid, k.to_seq))",
    )
    .bind(ids)
    .execute(&store.pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn set_delivery(store: &PgStore, ids: &[NotificationId], status: DeliveryStatus) -> Result<(), StoreError> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    let from: &[&str] = match status {
        DeliveryStatus::Sent => {
            sqlx::query("SELECT happening_outbox_sent($1)").bind(ids).execute(&store.pool).await.map_err(db)?;
            return Ok(());
        }
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
        "SELECT {NOTIFICATION_COLS} FROM notifications_now WHERE event_id = $1 AND booking_id IS NOT NULL \
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
    use chrono::{Duration, Utc};
    use happening_core::domain::DeliveryStatus;
    use happening_core::ids::NotificationId;
    use sqlx::PgPool;

    use super::PgStore;

    /// A store on a fresh database, a pool for raw SQL, and the database's URL.
    async fn fresh() -> Option<(PgStore, PgPool, String)> {
        let server = crate::testing::server_url()?;
        let url = crate::testing::fresh_database_url(&server).await;
        let pool = PgPool::connect(&url).await.expect("connect");
        Some((PgStore::new(pool.clone()), pool, url))
    }

    /// `n` pending notifications in one transaction (of `conn`: pass a transaction to keep
    /// it open); their ids in seq order.
    async fn write(conn: &mut sqlx::PgConnection, n: i32) -> Vec<uuid::Uuid> {
        sqlx::query_scalar(
            "INSERT INTO notifications (id, user_id, type, seats, status, created_at) \
             SELECT gen_random_uuid(), gen_random_uuid(), 'booking_waitlisted', 1, 'pending', now() \
             FROM generate_series(1, $1) RETURNING id",
        )
        .bind(n)
        .fetch_all(conn)
        .await
        .expect("insert")
    }

    /// A relay round, claim then report, leaves every notification's row as it was written
    /// (same place, same writing transaction: no new version, no index entry, nothing for
    /// vacuum), and the rows read as sent.
    #[tokio::test]
    async fn a_relay_round_writes_no_notification_row() {
        let Some((store, pool, _)) = fresh().await else { return };
        write(&mut pool.acquire().await.unwrap(), 300).await;
        let versions = "SELECT ctid::text || xmin::text FROM notifications ORDER BY seq";
        let before: Vec<String> = sqlx::query_scalar(versions).fetch_all(&pool).await.unwrap();
        let now = Utc::now();
        let mut relayed = 0;
        loop {
            let batch = super::claim_pending(&store, 100, now, now + Duration::seconds(60)).await.unwrap();
            if batch.is_empty() {
                break;
            }
            relayed += batch.len();
            let ids: Vec<NotificationId> = batch.iter().map(|n| n.id).collect();
            super::set_delivery(&store, &ids, DeliveryStatus::Sent).await.unwrap();
        }
        assert_eq!(relayed, 300);
        let after: Vec<String> = sqlx::query_scalar(versions).fetch_all(&pool).await.unwrap();
        assert_eq!(before, after, "a notification's row is written once");
        let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications_now WHERE status = 'sent'").fetch_one(&pool).await.unwrap();
        assert_eq!(sent, 300);
        assert_eq!(super::outbox_depth(&store).await.unwrap(), 0);
        let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_claims").fetch_one(&pool).await.unwrap();
        assert_eq!(claims, 0, "reported claims end");
    }

    /// An outbox written before the cursor (migrations/0020): its pending rows are relayed
    /// after the migration, in their order, and the rows sent before are not sent again.
    #[tokio::test]
    async fn pending_rows_from_before_the_cursor_are_relayed_once() {
        let Some(server) = crate::testing::server_url() else { return };
        let pool = PgPool::connect(&crate::testing::empty_database_url(&server).await).await.expect("connect");
        let earlier = sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(crate::MIGRATOR.migrations.iter().filter(|m| m.version < 20).cloned().collect()),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        earlier.run(&pool).await.expect("migrate to 0019");
        let mut pending = Vec::new();
        for status in ["pending", "sent", "pending", "delivered", "pending"] {
            let id = uuid::Uuid::new_v4();
            sqlx::query(
                "INSERT INTO notifications (id, user_id, type, seats, status, created_at) \
                 VALUES ($1, gen_random_uuid(), 'booking_waitlisted', 1, $2, now())",
            )
            .bind(id)
            .bind(status)
            .execute(&pool)
            .await
            .expect("insert");
            if status == "pending" {
                pending.push(id);
            }
        }
        crate::MIGRATOR.run(&pool).await.expect("migrate");
        let store = PgStore::new(pool.clone());
        assert_eq!(super::outbox_depth(&store).await.unwrap(), 3);
        let now = Utc::now();
        let got = super::claim_pending(&store, 100, now, now + Duration::seconds(60)).await.unwrap();
        assert_eq!(got.iter().map(|n| n.id.0).collect::<Vec<_>>(), pending);
        let ids: Vec<NotificationId> = got.iter().map(|n| n.id).collect();
        super::set_delivery(&store, &ids, DeliveryStatus::Sent).await.unwrap();
        assert!(super::claim_pending(&store, 100, now, now + Duration::seconds(60)).await.unwrap().is_empty());
        let states: Vec<String> = sqlx::query_scalar("SELECT status FROM notifications_now ORDER BY seq").fetch_all(&pool).await.unwrap();
        assert_eq!(states, ["sent", "sent", "sent", "delivered", "sent"]);
    }

    /// The relays' horizon is the oldest writing transaction of the database still running,
    /// the caller's own at the latest: transactions that got their ids after the caller's
    /// do not move it.
    #[tokio::test]
    async fn the_horizon_is_the_oldest_running_writer_of_the_database() {
        let Some((_, pool, _)) = fresh().await else { return };
        let xid = "SELECT pg_current_xact_id()::text";
        let mut oldest = pool.begin().await.unwrap();
        let first: String = sqlx::query_scalar(xid).fetch_one(&mut *oldest).await.unwrap();
        let mut caller = pool.begin().await.unwrap();
        let own: String = sqlx::query_scalar(xid).fetch_one(&mut *caller).await.unwrap();
        let mut later = pool.begin().await.unwrap();
        let _: String = sqlx::query_scalar(xid).fetch_one(&mut *later).await.unwrap();
        let horizon = "SELECT happening_outbox_horizon()::text";
        assert_eq!(sqlx::query_scalar::<_, String>(horizon).fetch_one(&mut *caller).await.unwrap(), first);
        oldest.commit().await.unwrap();
        let mut caller2 = pool.begin().await.unwrap();
        // A new transaction: the activity seen is read once per transaction.
        let _: String = sqlx::query_scalar(xid).fetch_one(&mut *caller2).await.unwrap();
        assert_eq!(sqlx::query_scalar::<_, String>(horizon).fetch_one(&mut *caller2).await.unwrap(), own);
        for t in [caller, later, caller2] {
            t.rollback().await.unwrap();
        }
    }

    /// An outbox restored into another cluster, whose transaction ids are behind the stored
    /// ones: claims refuse to run until it is adopted (every server adopts it as it
    /// connects), and then what was sent stays sent and what was pending is relayed.
    #[tokio::test]
    async fn an_outbox_restored_from_another_cluster_is_adopted() {
        let Some((store, pool, url)) = fresh().await else { return };
        let ids = write(&mut pool.acquire().await.unwrap(), 4).await;
        let now = Utc::now();
        let lease = now + Duration::seconds(60);
        let first = super::claim_pending(&store, 2, now, lease).await.unwrap();
        let sent: Vec<NotificationId> = first.iter().map(|n| n.id).collect();
        super::set_delivery(&store, &sent, DeliveryStatus::Sent).await.unwrap();
        // Claimed, never reported: its relay was cut off by the move.
        let open = super::claim_pending(&store, 1, now, lease).await.unwrap();
        assert_eq!(open.len(), 1);
        // As restored elsewhere: every stored id far ahead of this cluster's.
        for sql in [
            "UPDATE notifications SET xid = (xid::text::numeric + 1e12)::text::xid8",
            "UPDATE outbox_cursor SET xid = (xid::text::numeric + 1e12)::text::xid8",
            "UPDATE outbox_claims SET from_xid = (from_xid::text::numeric + 1e12)::text::xid8, \
             to_xid = (to_xid::text::numeric + 1e12)::text::xid8",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        let refused = super::claim_pending(&store, 10, now, lease).await;
        assert!(format!("{:?}", refused.unwrap_err()).contains("restored from another cluster"));
        crate::connect(&url, crate::testing::pool(1)).await.expect("a server connects").close().await;
        let adopted: bool = sqlx::query_scalar("SELECT happening_outbox_adopt()").fetch_one(&pool).await.unwrap();
        assert!(!adopted, "connecting adopted it already");
        let later = write(&mut pool.acquire().await.unwrap(), 1).await;
        let mut relayed = Vec::new();
        loop {
            let batch = super::claim_pending(&store, 10, now, lease).await.unwrap();
            if batch.is_empty() {
                break;
            }
            let ids: Vec<NotificationId> = batch.iter().map(|n| n.id).collect();
            super::set_delivery(&store, &ids, DeliveryStatus::Sent).await.unwrap();
            relayed.extend(ids.iter().map(|i| i.0));
        }
        // The one claimed before the move, the one never claimed, the one written after.
        assert_eq!(relayed, vec![ids[2], ids[3], later[0]]);
        assert_eq!(super::outbox_depth(&store).await.unwrap(), 0);
    }

    /// Nothing is passed over: rows of a transaction still open are not behind the cursor
    /// yet, nor are rows of later transactions that committed first; once it commits, its
    /// rows are claimed before theirs. (Claimed in commit order, the open transaction's rows
    /// would sort behind the cursor when they commit, and never be relayed.)
    #[tokio::test]
    async fn rows_of_an_open_transaction_hold_the_relay_back_and_are_not_lost() {
        let Some((store, pool, _)) = fresh().await else { return };
        let mut open = pool.begin().await.unwrap();
        let first = write(&mut open, 2).await;
        let later = write(&mut pool.acquire().await.unwrap(), 3).await;
        let now = Utc::now();
        let lease = now + Duration::seconds(60);
        assert!(super::claim_pending(&store, 100, now, lease).await.unwrap().is_empty(), "an older transaction is still open");
        assert_eq!(super::outbox_depth(&store).await.unwrap(), 3, "the committed rows wait in the backlog");
        open.commit().await.unwrap();
        let got: Vec<uuid::Uuid> = super::claim_pending(&store, 100, now, lease).await.unwrap().iter().map(|n| n.id.0).collect();
        assert_eq!(got, [first, later].concat(), "in the order of the writing transactions");
    }
}
