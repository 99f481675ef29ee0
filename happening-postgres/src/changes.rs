//! [`PgChanges`]: the [`ChangeFeed`] of a deployment whose only shared store is PostgreSQL,
//! on `LISTEN`/`NOTIFY`.
//!
//! One channel ([`CHANNEL`]) carries every event's changes: a message is the publishing
//! engine's id and the ids of the events it changed, so that an engine skips its own. A
//! publisher gathers its changes before publishing (the HTTP server every 50 ms), so a
//! flash sale costs a few notifications a second per server, not one per booking: a
//! `NOTIFY` queues behind every other in PostgreSQL's one notification queue at commit.
//! `NOTIFY` runs on a pooled connection of its own statement, never inside a booking's
//! transaction.
//!
//! The listening connection is one of its own, named [`APPLICATION_NAME`] in
//! `pg_stat_activity`. When it is lost (a restart, a failover, `pg_terminate_backend`),
//! [`ChangeFeed::next`] opens a new one, listens again and answers [`Heard::Resync`]:
//! notifications sent meanwhile are gone, and the watcher reads the current state instead.

use std::time::Duration;

use async_trait::async_trait;
use happening_core::error::BackendError;
use happening_core::ids::EventId;
use happening_core::ports::{ChangeFeed, Heard};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Mutex;

/// The channel every engine listens on and notifies.
pub const CHANNEL: &str = "happening_changes";

/// The listening connection's `application_name`.
pub const APPLICATION_NAME: &str = "happening-changes";

/// Event ids per notification at most: a payload is limited to 8,000 bytes, an id with its
/// comma takes 37.
const IDS_PER_MESSAGE_MAX: usize = 150;

/// The wait before listening again after a failure, doubled up to [`RETRY_MAX_MS`].
const RETRY_MIN_MS: u64 = 100;
const RETRY_MAX_MS: u64 = 5_000;

/// Changes told across engines with `LISTEN`/`NOTIFY` (see the module's docs).
pub struct PgChanges {
    /// Where notifications are sent from (the store's pool).
    pool: PgPool,
    /// Where the listening connection comes from: a pool of its own, opened lazily.
    listen_pool: PgPool,
    listener: Mutex<Option<PgListener>>,
    /// This engine's id, the first word of its messages.
    origin: String,
}

impl std::fmt::Debug for PgChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgChanges").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl PgChanges {
    /// Notifies through `pool`, and listens on a connection of its own to the database at
    /// `url` (opened by the first [`ChangeFeed::next`], and again after each loss).
    pub fn new(url: &str, pool: PgPool) -> Result<Self, sqlx::Error> {
        let options: PgConnectOptions = url.parse::<PgConnectOptions>()?.application_name(APPLICATION_NAME);
        let listen_pool = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options);
        Ok(Self { pool, listen_pool, listener: Mutex::new(None), origin: uuid::Uuid::new_v4().simple().to_string() })
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.listen_pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    /// The events of a message from another engine; `None` for our own or a malformed one.
    fn parse(&self, payload: &str) -> Option<Vec<EventId>> {
        let (origin, ids) = payload.split_once(' ')?;
        if origin == self.origin {
            return None;
        }
        let events: Vec<EventId> = ids.split(',').filter_map(|id| id.parse().ok()).collect();
        (!events.is_empty()).then_some(events)
    }
}

#[async_trait]
impl ChangeFeed for PgChanges {
    async fn publish(&self, events: &[EventId]) -> Result<(), BackendError> {
        if events.is_empty() {
            return Ok(());
        }
        let payloads: Vec<String> = events
            .chunks(IDS_PER_MESSAGE_MAX)
            .map(|ids| {
                let ids: Vec<String> = ids.iter().map(|e| e.to_string()).collect();
                format!("{} {}", self.origin, ids.join(","))
            })
            .collect();
        sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .bind(CHANNEL)
            .bind(&payloads)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(BackendError::new)
    }

    /// Every engine hears every event's changes on the one channel: nothing to subscribe.
    async fn watch(&self, _event: EventId) {}

    async fn unwatch(&self, _event: EventId) {}

    async fn next(&self) -> Heard {
        let mut slot = self.listener.lock().await;
        let mut retry_ms = RETRY_MIN_MS;
        loop {
            let Some(listener) = slot.as_mut() else {
                match self.listen().await {
                    Ok(l) => {
                        *slot = Some(l);
                        return Heard::Resync;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_ms, "listening for changes of other servers failed; trying again");
                        tokio::time::sleep(Duration::from_millis(retry_ms)).await;
                        retry_ms = (retry_ms * 2).min(RETRY_MAX_MS);
                        continue;
                    }
                }
            };
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(events) = self.parse(n.payload()) {
                        return Heard::Changed(events);
                    }
                }
                // Lost, and listening again on a new connection already.
                Ok(None) => return Heard::Resync,
                // Lost (the server ended the session, or is down): a new listener.
                Err(e) => {
                    tracing::warn!(error = %e, "the connection listening for changes of other servers was lost; listening again");
                    *slot = None;
                }
            }
        }
    }
}
