//! [`AmqpNotifier`]: the outbox relay's [`Notifier`] on RabbitMQ, with publisher confirms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use happening_core::domain::Notification;
use happening_core::error::BackendError;
use happening_core::ids::NotificationId;
use happening_core::ports::{Notifier, NotifierError};
use happening_core::RELAY_LEASE_MS;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::protocol::AMQPSoftError;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use lapin::{Confirmation, PublisherConfirm};
use tokio::sync::{Mutex, MutexGuard};

use crate::connect::{within, DEFAULT_CONNECT_TIMEOUT_MS};
use crate::message::NotificationMessage;
use crate::topology::Topology;

/// AMQP `delivery_mode` of a message written to disk by the broker.
pub(crate) const PERSISTENT: u8 = 2;

/// How long `deliver` waits for a batch's publisher confirms by default.
pub const DEFAULT_CONFIRM_TIMEOUT_MS: u64 = 30_000;

// A delivery (connect, then confirms) must end within the relay's lease, or another replica
// may claim the batch while it is still being published: checked here for the defaults, in
// `with_timeouts_ms` for others.
const _: () = assert!(DEFAULT_CONNECT_TIMEOUT_MS + DEFAULT_CONFIRM_TIMEOUT_MS < RELAY_LEASE_MS as u64);

/// One connection and one confirm-mode channel.
struct Link {
    _conn: Connection,
    channel: Channel,
    /// Which connection of this notifier it is (counted from 1): a batch awaiting its
    /// confirms outside the lock marks the link it published on (`broken`, `undeclared`),
    /// never a newer one.
    generation: u64,
    /// Whether the topology is known to exist on the broker. Cleared when a message comes
    /// back NO_ROUTE (someone deleted the queue): it is declared again before the next batch,
    /// else every later batch would come back too, for as long as this channel lives.
    declared: bool,
}

/// The messages of a batch that the broker did not take.
#[derive(Default)]
struct Refused {
    why: Vec<String>,
    /// At least one came back unroutable (NO_ROUTE): the queue is gone.
    no_route: bool,
}

/// Publishes notifications to a durable queue and returns `Ok` only once the broker has
/// confirmed every message of the batch (publisher confirms), so the relay marks a row
/// `sent` only when RabbitMQ has it on disk.
///
/// - Each message is persistent JSON ([`NotificationMessage`]), `message_id` = the
///   notification id, `type` = its kind, published with `mandatory` so that an unroutable
///   message (the queue deleted) comes back as an error instead of vanishing; the topology
///   is then declared again before the next batch.
/// - A nack or a returned message: [`NotifierError::Rejected`]. A connection or channel
///   failure (or no confirm within the timeout): [`NotifierError::Backend`], and the next
///   call reconnects. Either way the relay retries the batch later (at least once).
/// - Every step is bounded, so that a black-holed broker cannot hold a relay past its lease:
///   getting the link ready (waiting for another batch, connecting, declaring) within the
///   connect timeout, publishing and the confirms within the confirm timeout.
/// - Batches are published one at a time (a lock), over one channel; the lock is let go
///   once a batch is written, so that the next batch is published while the broker
///   confirms this one (the relay keeps several batches in flight,
///   `RelayConfig::in_flight`).
pub struct AmqpNotifier {
    url: String,
    topology: Topology,
    connect_timeout_ms: u64,
    confirm_timeout_ms: u64,
    link: Mutex<Option<Link>>,
    /// Connections made so far (the last link's generation).
    connections: AtomicU64,
    /// The generation of a link found broken by a batch awaiting its confirms outside the
    /// lock (0: none): the next batch connects anew rather than publish on it.
    broken: AtomicU64,
    /// The generation of a link whose queue is gone (a message came back NO_ROUTE): the
    /// next batch on it declares the topology first.
    undeclared: AtomicU64,
    /// The link's channel, readable while a delivery holds `link` (for readiness probes).
    channel: std::sync::Mutex<Option<Channel>>,
}

impl AmqpNotifier {
    /// Connects now and declares the topology; fails if RabbitMQ is unreachable (within the
    /// default connect timeout).
    pub async fn connect(url: &str, queue: &str) -> Result<Self, NotifierError> {
        let me = Self::lazy(url, queue);
        me.ensure_connected().await?;
        Ok(me)
    }

    /// Connects on the first delivery or [`ensure_connected`](Self::ensure_connected) (so a
    /// server can start while RabbitMQ is down).
    pub fn lazy(url: &str, queue: &str) -> Self {
        Self {
            url: url.to_string(),
            topology: Topology::new(queue),
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            confirm_timeout_ms: DEFAULT_CONFIRM_TIMEOUT_MS,
            link: Mutex::new(None),
            connections: AtomicU64::new(0),
            broken: AtomicU64::new(0),
            undeclared: AtomicU64::new(0),
            channel: std::sync::Mutex::new(None),
        }
    }

    /// How long getting the link ready may take (default [`DEFAULT_CONNECT_TIMEOUT_MS`]), and
    /// how long `deliver` waits for a batch's confirms (default [`DEFAULT_CONFIRM_TIMEOUT_MS`]).
    ///
    /// # Panics
    ///
    /// If either is 0, or together they are not below the relay's lease
    /// ([`RELAY_LEASE_MS`]): a delivery could then outlast the claim on its batch, and another
    /// replica send it too.
    pub fn with_timeouts_ms(mut self, connect_timeout_ms: u64, confirm_timeout_ms: u64) -> Self {
        assert!(connect_timeout_ms > 0 && confirm_timeout_ms > 0, "AMQP timeouts must be positive");
        assert!(
            connect_timeout_ms.saturating_add(confirm_timeout_ms) < RELAY_LEASE_MS as u64,
            "connect ({connect_timeout_ms} ms) + confirm ({confirm_timeout_ms} ms) timeouts must stay below the relay lease ({RELAY_LEASE_MS} ms)"
        );
        self.connect_timeout_ms = connect_timeout_ms;
        self.confirm_timeout_ms = confirm_timeout_ms;
        self
    }

    /// The queues it publishes to and declares (the queue, its dead-letter exchange and queue).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether the connection is up, without waiting for a delivery in progress. `false`
    /// before the first connection of a lazy notifier.
    pub fn is_connected(&self) -> bool {
        self.channel.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|c| c.status().connected())
    }

    /// Connects (and declares the topology) unless connected, within the connect timeout.
    /// For readiness probes: the notifier otherwise reconnects only when it has something
    /// to send, so a probe that only looked would report RabbitMQ down long after it is back.
    pub async fn ensure_connected(&self) -> Result<(), NotifierError> {
        if self.is_connected() {
            return Ok(());
        }
        self.ready_link().await.map(drop)
    }

    /// Waits for the link (another batch may be publishing on it), (re)connects and declares
    /// as needed, all within the connect timeout; the link stays locked for the caller.
    async fn ready_link(&self) -> Result<(MutexGuard<'_, Option<Link>>, Channel), NotifierError> {
        let ready = within(self.connect_timeout_ms, "getting the RabbitMQ channel ready", async {
            let mut link = self.link.lock().await;
            match self.link_up(&mut link).await {
                Ok(channel) => Ok((link, channel)),
                Err(e) => {
                    self.drop_link(&mut link);
                    Err(e)
                }
            }
        });
        ready.await.map_err(backend)
    }

    /// Connects if the link is down, declares the topology if it is not known to exist.
    /// Safe to cancel at any await: the link is left absent or undeclared, and redone next time.
    async fn link_up(&self, link: &mut Option<Link>) -> lapin::Result<Channel> {
        let broken = self.broken.load(Ordering::Acquire);
        if !link.as_ref().is_some_and(|l| l.channel.status().connected() && l.generation != broken) {
            self.drop_link(link);
            let conn = Connection::connect(&self.url, ConnectionProperties::default()).await?;
            let channel = conn.create_channel().await?;
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
            let generation = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
            *link = Some(Link { _conn: conn, channel, generation, declared: false });
        }
        let l = link.as_mut().expect("connected above");
        if self.undeclared.compare_exchange(l.generation, 0, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            l.declared = false;
        }
        if !l.declared {
            self.topology.declare(&l.channel).await?;
            l.declared = true;
        }
        *self.channel.lock().unwrap_or_else(|p| p.into_inner()) = Some(l.channel.clone());
        Ok(l.channel.clone())
    }

    /// Forgets the link (dropping the connection closes it): the next call reconnects.
    fn drop_link(&self, link: &mut Option<Link>) {
        *link = None;
        *self.channel.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Writes every message of the batch to the channel; their confirms come later.
    async fn publish(&self, channel: &Channel, batch: &[Notification]) -> Result<Vec<(NotificationId, PublisherConfirm)>, NotifierError> {
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
        Ok(confirms)
    }

    /// Marks the link of `generation` broken: the next batch connects anew. (Not dropped
    /// here: another batch may be publishing on it, holding the lock; it would fail by
    /// itself on a dead connection, but not on a broker that stopped confirming.)
    fn mark_broken(&self, generation: u64) {
        self.broken.fetch_max(generation, Ordering::AcqRel);
    }

    /// The queue is gone: the next batch on the link of `generation` declares the topology
    /// again before publishing.
    fn mark_undeclared(&self, generation: u64) {
        self.undeclared.fetch_max(generation, Ordering::AcqRel);
    }
}

/// Waits for the confirms of a published batch: the messages the broker did not take.
async fn confirmed(confirms: Vec<(NotificationId, PublisherConfirm)>) -> Result<Refused, NotifierError> {
    let mut refused = Refused::default();
    for (id, confirm) in confirms {
        match confirm.await.map_err(backend)? {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                refused.no_route |= returned.reply_code == AMQPSoftError::NOROUTE.get_id();
                refused.why.push(format!("{id}: returned ({} {})", returned.reply_code, returned.reply_text))
            }
            Confirmation::Nack(None) => refused.why.push(format!("{id}: nacked")),
            Confirmation::NotRequested => refused.why.push(format!("{id}: channel not in confirm mode")),
        }
    }
    Ok(refused)
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
        let no_confirm =
            || NotifierError::Backend(BackendError::msg(format!("no publisher confirm within {} ms", self.confirm_timeout_ms)));
        let (generation, deadline, confirms) = {
            let (mut link, channel) = self.ready_link().await?;
            let generation = link.as_ref().map_or(0, |l| l.generation);
            // Publishing and the confirms, together within the confirm timeout.
            let deadline = tokio::time::Instant::now() + Duration::from_millis(self.confirm_timeout_ms);
            match tokio::time::timeout_at(deadline, self.publish(&channel, batch)).await {
                Ok(Ok(confirms)) => (generation, deadline, confirms),
                Ok(Err(e)) => {
                    // Start over on a new connection next time.
                    self.drop_link(&mut link);
                    return Err(e);
                }
                Err(_) => {
                    self.drop_link(&mut link);
                    return Err(no_confirm());
                }
            }
        };
        // The lock is let go here: the next batch is published while these are confirmed.
        match tokio::time::timeout_at(deadline, confirmed(confirms)).await {
            Ok(Ok(refused)) if refused.why.is_empty() => Ok(()),
            Ok(Ok(refused)) => {
                if refused.no_route {
                    self.mark_undeclared(generation);
                }
                Err(NotifierError::Rejected(refused.why.join("; ")))
            }
            Ok(Err(e)) => {
                self.mark_broken(generation);
                Err(e)
            }
            Err(_) => {
                self.mark_broken(generation);
                Err(no_confirm())
            }
        }
    }
}
