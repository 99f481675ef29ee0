//! [`RedisChanges`]: the [`ChangeFeed`] of a deployment with Redis, on Redis' own publish
//! and subscribe.
//!
//! Each event has its channel, `<prefix>:{<event>}:changes` (the event's hash tag, as its
//! keys), and a server subscribes only to the events it has live streams of. A message is
//! the publishing engine's id, so that an engine skips its own.
//!
//! - One server: `PUBLISH` and `SUBSCRIBE`.
//! - A cluster: sharded publish and subscribe (`SPUBLISH`, `SSUBSCRIBE`, Redis 7). A sharded
//!   channel lives in its hash slot, so an event's messages stay on the shard that holds its
//!   keys, where classic `PUBLISH` on a cluster is broadcast to every node over the cluster
//!   bus (each message crosses every node, whatever the event). The redis crate's cluster
//!   connection routes `SSUBSCRIBE` by slot and subscribes again after a node's connection
//!   is lost or its slots move.
//!
//! Both need RESP3 (messages arrive as pushes on the connection), so the feed has a
//! connection of its own. A lost connection (a restart, a failover, `CLIENT KILL`) is told
//! by a push of its own; then [`ChangeFeed::next`] subscribes every watched event again,
//! retrying until Redis answers, and answers [`Heard::Resync`] once subscribed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use happening_core::error::BackendError;
use happening_core::ids::EventId;
use happening_core::ports::{ChangeFeed, Heard};
use redis::aio::ConnectionManager;
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisError, RedisResult, Value};
use tokio::sync::{mpsc, Notify};

use crate::conn::{cluster_builder, single_config, RedisConnection, RedisTarget};
use crate::keys;

/// The wait before subscribing again after a failure, doubled up to [`RETRY_MAX_MS`].
const RETRY_MIN_MS: u64 = 100;
const RETRY_MAX_MS: u64 = 2_000;

/// Channels per `SUBSCRIBE` when subscribing again after a loss.
const RESUBSCRIBE_CHUNK: usize = 256;

/// Changes told across engines with Redis publish and subscribe (see the module's docs).
pub struct RedisChanges {
    conn: RedisConnection,
    pushes: tokio::sync::Mutex<mpsc::UnboundedReceiver<PushInfo>>,
    prefix: String,
    /// This engine's id: the payload of its messages.
    origin: String,
    watched: Mutex<HashSet<EventId>>,
    /// A subscription failed or the connection was lost: subscribe everything again.
    lost: AtomicBool,
    lost_notify: Notify,
}

impl std::fmt::Debug for RedisChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisChanges").field("prefix", &self.prefix).field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl RedisChanges {
    /// Connects a connection of its own to `target` (RESP3), with keys under `prefix`.
    pub async fn connect(target: &RedisTarget, prefix: &str) -> Result<Self, RedisError> {
        if !keys::valid_prefix(prefix) {
            return Err(RedisError::from((redis::ErrorKind::InvalidClientConfig, "the key prefix may not contain '{' or '}'")));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = match target {
            RedisTarget::Single(url) => {
                let mut info = url.as_str().into_connection_info()?;
                info.redis.protocol = ProtocolVersion::RESP3;
                let client = redis::Client::open(info)?;
                let config = single_config().set_push_sender(tx).set_automatic_resubscription();
                RedisConnection::Single(ConnectionManager::new_with_config(client, config).await?)
            }
            RedisTarget::Cluster(nodes) => RedisConnection::Cluster(
                cluster_builder(nodes).use_protocol(ProtocolVersion::RESP3).push_sender(tx).build()?.get_async_connection().await?,
            ),
        };
        Ok(Self {
            conn,
            pushes: tokio::sync::Mutex::new(rx),
            prefix: prefix.to_string(),
            origin: uuid::Uuid::new_v4().simple().to_string(),
            watched: Mutex::default(),
            lost: AtomicBool::new(false),
            lost_notify: Notify::new(),
        })
    }

    fn channel(&self, event: EventId) -> String {
        keys::changes_channel(&self.prefix, event)
    }

    async fn subscribe(&self, channels: &[String]) -> RedisResult<()> {
        match self.conn.clone() {
            RedisConnection::Single(mut c) => c.subscribe(channels).await,
            RedisConnection::Cluster(mut c) => c.ssubscribe(channels).await,
        }
    }

    fn lose(&self, why: &RedisError) {
        tracing::warn!(error = %why, "the subscription to the other servers' changes failed; subscribing again");
        self.lost.store(true, Ordering::SeqCst);
        self.lost_notify.notify_one();
    }

    /// Subscribes every watched event again; `true` once all are.
    async fn resubscribe(&self) -> bool {
        let channels: Vec<String> = self.watched.lock().expect("watched lock").iter().map(|&e| self.channel(e)).collect();
        for chunk in channels.chunks(RESUBSCRIBE_CHUNK) {
            if let Err(e) = self.subscribe(chunk).await {
                tracing::debug!(error = %e, "subscribing again failed");
                return false;
            }
        }
        true
    }

    /// The event a message from another engine is about; `None` for our own, or another
    /// kind of push.
    fn message(&self, push: &PushInfo) -> Option<EventId> {
        if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
            return None;
        }
        let [channel, payload] = &push.data[..] else { return None };
        if text(payload)? == self.origin {
            return None;
        }
        keys::changes_channel_event(&text(channel)?)
    }
}

fn text(v: &Value) -> Option<String> {
    redis::from_redis_value::<String>(v).ok()
}

#[async_trait]
impl ChangeFeed for RedisChanges {
    async fn publish(&self, events: &[EventId]) -> Result<(), BackendError> {
        let command = if self.conn.is_cluster() { "SPUBLISH" } else { "PUBLISH" };
        match self.conn.clone() {
            // One round trip for all of them.
            RedisConnection::Single(mut c) => {
                let mut pipe = redis::pipe();
                for &e in events {
                    pipe.cmd(command).arg(self.channel(e)).arg(&self.origin).ignore();
                }
                pipe.query_async::<()>(&mut c).await.map_err(BackendError::new)
            }
            // Each to the shard of its slot, all at once.
            RedisConnection::Cluster(c) => {
                let sends = events.iter().map(|&e| {
                    let mut c = c.clone();
                    let channel = self.channel(e);
                    let origin = self.origin.clone();
                    async move { redis::cmd(command).arg(channel).arg(origin).query_async::<()>(&mut c).await }
                });
                for r in futures_util::future::join_all(sends).await {
                    r.map_err(BackendError::new)?;
                }
                Ok(())
            }
        }
    }

    async fn watch(&self, event: EventId) {
        if !self.watched.lock().expect("watched lock").insert(event) {
            return;
        }
        if let Err(e) = self.subscribe(&[self.channel(event)]).await {
            self.lose(&e);
        }
    }

    async fn unwatch(&self, event: EventId) {
        if !self.watched.lock().expect("watched lock").remove(&event) {
            return;
        }
        let channel = self.channel(event);
        let r = match self.conn.clone() {
            RedisConnection::Single(mut c) => c.unsubscribe(&channel).await,
            RedisConnection::Cluster(mut c) => c.sunsubscribe(&channel).await,
        };
        // A channel left subscribed costs the messages of an event nobody watches here.
        if let Err(e) = r {
            tracing::debug!(error = %e, "unsubscribing failed");
        }
    }

    async fn next(&self) -> Heard {
        let mut pushes = self.pushes.lock().await;
        let mut retry_ms = RETRY_MIN_MS;
        loop {
            if self.lost.swap(false, Ordering::SeqCst) {
                if self.resubscribe().await {
                    return Heard::Resync;
                }
                self.lost.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(retry_ms)).await;
                retry_ms = (retry_ms * 2).min(RETRY_MAX_MS);
                continue;
            }
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(p) if p.kind == PushKind::Disconnection => {
                        self.lose(&RedisError::from((redis::ErrorKind::IoError, "connection lost")));
                    }
                    Some(p) => {
                        if let Some(event) = self.message(&p) {
                            return Heard::Changed(vec![event]);
                        }
                    }
                    // The connection is gone for good (never while we hold it).
                    None => std::future::pending::<()>().await,
                },
                _ = self.lost_notify.notified() => {}
            }
        }
    }
}
