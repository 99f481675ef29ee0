//! [`AmqpNotifier`]: the outbox relay's [`Notifier`] on RabbitMQ, with publisher confirms.

use std::time::Duration;

use async_trait::async_trait;
use happening_core::domain::Notification;
use happening_core::error::BackendError;
use happening_core::ports::{Notifier, NotifierError};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use crate::message::NotificationMessage;
use crate::topology::Topology;

/// AMQP `delivery_mode` of a message written to disk by the broker.
pub(crate) const PERSISTENT: u8 = 2;

/// One connection and one confirm-mode channel.
struct Link {
    _conn: Connection,
    channel: Channel,
}

/// Publishes notifications to a durable queue and returns `Ok` only once the broker has
/// confirmed every message of the batch (publisher confirms), so the relay marks a row
/// `sent` only when RabbitMQ has it on disk.
///
/// - Each message is persistent JSON ([`NotificationMessage`]), `message_id` = the
///   notification id, `type` = its kind, published with `mandatory` so that an unroutable
///   message (the queue deleted) comes back as an error instead of vanishing.
/// - A nack or a returned message: [`NotifierError::Rejected`]. A connection or channel
///   failure (or no confirm within the timeout): [`NotifierError::Backend`], and the next
///   call reconnects. Either way the relay retries the batch later (at least once).
/// - Batches are published one at a time (a lock), over one channel.
pub struct AmqpNotifier {
    url: String,
    topology: Topology,
    confirm_timeout: Duration,
    link: Mutex<Option<Link>>,
}

impl AmqpNotifier {
    /// Connects now and declares the topology; fails if RabbitMQ is unreachable.
    pub async fn connect(url: &str, queue: &str) -> Result<Self, NotifierError> {
        let me = Self::lazy(url, queue);
        *me.link.lock().await = Some(me.open().await?);
        Ok(me)
    }

    /// Connects on the first delivery (so a server can start while RabbitMQ is down).
    pub fn lazy(url: &str, queue: &str) -> Self {
        Self { url: url.to_string(), topology: Topology::new(queue), confirm_timeout: Duration::from_secs(30), link: Mutex::new(None) }
    }

    /// How long `deliver` waits for a batch's confirms before giving up (default 30 s).
    pub fn with_confirm_timeout(mut self, timeout: Duration) -> Self {
        self.confirm_timeout = timeout;
        self
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether the connection is up (for readiness probes). `false` before the first
    /// connection of a lazy notifier.
    pub async fn is_connected(&self) -> bool {
        self.link.lock().await.as_ref().is_some_and(|l| l.channel.status().connected())
    }

    async fn open(&self) -> Result<Link, NotifierError> {
        let conn = Connection::connect(&self.url, ConnectionProperties::default()).await.map_err(backend)?;
        let channel = conn.create_channel().await.map_err(backend)?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(backend)?;
        self.topology.declare(&channel).await.map_err(backend)?;
        Ok(Link { _conn: conn, channel })
    }

    async fn publish_all(&self, channel: &Channel, batch: &[Notification]) -> Result<(), NotifierError> {
        let mut confirms = Vec::with_capacity(batch.len());
        for n in batch {
            let body = NotificationMessage::from(n).to_json();
            let confirm = channel
                .basic_publish(
                    "".into(),
                    self.topology.queue.clone().into(),
                    BasicPublishOptions { mandatory: true, ..Default::default() },
                    &body,
                    properties(n),
                )
                .await
                .map_err(backend)?;
            confirms.push((n.id, confirm));
        }
        let mut refused = Vec::new();
        for (id, confirm) in confirms {
            match confirm.await.map_err(backend)? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                    refused.push(format!("{id}: returned ({} {})", returned.reply_code, returned.reply_text))
                }
                Confirmation::Nack(None) => refused.push(format!("{id}: nacked")),
                Confirmation::NotRequested => refused.push(format!("{id}: channel not in confirm mode")),
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(NotifierError::Rejected(refused.join("; ")))
        }
    }
}

/// The AMQP properties of a notification's message.
pub(crate) fn properties(n: &Notification) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type("application/json".into())
        .with_message_id(n.id.to_string().into())
        .with_type(n.kind.as_str().into())
        .with_timestamp(n.created_at.timestamp().max(0) as u64)
}

pub(crate) fn backend(e: lapin::Error) -> NotifierError {
    NotifierError::Backend(BackendError::new(e))
}

#[async_trait]
impl Notifier for AmqpNotifier {
    async fn deliver(&self, batch: &[Notification]) -> Result<(), NotifierError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut link = self.link.lock().await;
        if !link.as_ref().is_some_and(|l| l.channel.status().connected()) {
            *link = None;
            *link = Some(self.open().await?);
        }
        let channel = link.as_ref().expect("connected above").channel.clone();
        let result = match tokio::time::timeout(self.confirm_timeout, self.publish_all(&channel, batch)).await {
            Ok(r) => r,
            Err(_) => Err(NotifierError::Backend(BackendError::msg("no publisher confirm in time"))),
        };
        if matches!(result, Err(NotifierError::Backend(_))) {
            // Start over on a new connection next time.
            *link = None;
        }
        result
    }
}
