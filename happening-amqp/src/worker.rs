//! [`Worker`]: consumes the notifications queue, de-duplicates, hands each message to a
//! [`Sink`], records delivery in the store, and only then acknowledges.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use happening_core::domain::DeliveryStatus;
use happening_core::ids::NotificationId;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Confirmation;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::connect::{within, DEFAULT_CONNECT_TIMEOUT_MS};
use crate::log::DeliveryLog;
use crate::message::NotificationMessage;
use crate::sink::{LogSink, Sink};
use crate::topology::{Topology, DEFAULT_QUEUE};

/// The header counting a message's failed handlings (see [`Worker`]).
pub const ATTEMPTS_HEADER: &str = "x-attempts";

/// How often a consuming worker checks that its connection and channels are up. A guard:
/// in a chaos run (RabbitMQ stopped 5 s after the worker started) the worker logged the
/// reset and a failed ack, and never reconnected, and the cause is not confirmed. lapin
/// ends the consumer stream on every connection failure we could find in its source, so
/// the likelier cause is the wait for the handlers in flight (bounded now, below); this
/// check also catches a closed publishing channel, which the stream does not report (every
/// retry would then go back unpublished, without counting an attempt). Each exit logs why.
const LIVENESS_CHECK_MS: u64 = 500;

/// How long a worker whose connection is gone waits for the handlers in flight before it
/// drops them and reconnects. They cannot acknowledge on the dead channel: the broker
/// redelivers what they held, and a redelivered copy of one that recorded `delivered` is
/// acknowledged without handling; one dropped while in the sink is handed to it again (at
/// least once: the webhook's `Idempotency-Key` is the notification id). Long enough for a
/// webhook request to finish (10 s each).
const DRAIN_AFTER_LOSS_MS: u64 = 10_000;

/// How a [`Worker`] consumes.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The queue (default `notifications`; the server's `NOTIFICATIONS_QUEUE`).
    pub queue: String,
    /// Unacknowledged messages the broker may hand this worker at once (default 50); also
    /// how many are handled concurrently.
    pub prefetch: u16,
    /// Handlings of one message before it is dead-lettered (default 5).
    pub max_attempts: u32,
    /// Pause before a failed message goes back to the queue, times the failures so far
    /// (default 200 ms).
    pub retry_delay: Duration,
    /// How many handled ids the in-memory de-duplication remembers (default 10,000).
    pub dedup_capacity: usize,
    /// Pause before reconnecting after the connection is lost (default 1 s).
    pub reconnect_delay: Duration,
    /// How long connecting, declaring and starting to consume may take before the worker
    /// gives up and tries again (default [`DEFAULT_CONNECT_TIMEOUT_MS`]).
    pub connect_timeout_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            queue: DEFAULT_QUEUE.to_string(),
            prefetch: 50,
            max_attempts: 5,
            retry_delay: Duration::from_millis(200),
            dedup_capacity: 10_000,
            reconnect_delay: Duration::from_secs(1),
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
        }
    }
}

/// What a worker did, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Messages handed to the sink successfully (and recorded delivered).
    pub handled: u64,
    /// Messages acknowledged without handling: already handled (by id).
    pub duplicates: u64,
    /// Failed handlings sent back to the queue for another attempt.
    pub retried: u64,
    /// Messages rejected to the dead-letter queue (poison or out of attempts).
    pub dead_lettered: u64,
}

#[derive(Default)]
struct Counters {
    handled: AtomicU64,
    duplicates: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
}

/// The notification consumer.
///
/// For each message, in this order:
/// 1. Not valid JSON: rejected without requeue, so it goes to the dead-letter queue
///    (`<queue>.dead`); if its `message_id` is a notification id, that one is marked `failed`.
/// 2. De-duplication by notification id: an id handled recently by this worker (a bounded
///    LRU), or already `delivered` in the store (another worker, or before a restart), is
///    acknowledged without handling. Two copies in flight at once: the second waits for the
///    first.
/// 3. The [`Sink`] handles it; then the store records `delivered`; then the message is
///    acknowledged. A crash in between means a redelivery, caught by step 2 once recorded
///    (at-least-once, never lost).
/// 4. The sink failed: the failure is counted in the `x-attempts` header. Classic queues
///    do not count redeliveries (`nack` with requeue carries no count, and `x-death` only
///    counts dead-letterings), so the worker **republishes** a copy with `x-attempts` + 1
///    (persistent, confirmed) and then acknowledges the original: a requeue that keeps
///    its count across worker restarts. After `max_attempts` handlings it is marked `failed`
///    in the store and rejected without requeue, into the dead-letter queue.
///
/// The store unreachable: the message is requeued (nack) after a pause, without counting
/// an attempt. The broker unreachable: the worker reconnects until shut down (it checks its
/// connection and channels every 500 ms; handlers still running on a lost
/// connection get 10 s, then are dropped and their messages redelivered).
pub struct Worker {
    url: String,
    config: WorkerConfig,
    topology: Topology,
    sink: Arc<dyn Sink>,
    log: Arc<dyn DeliveryLog>,
    dedup: Arc<Mutex<Dedup>>,
    counters: Arc<Counters>,
}

impl Worker {
    /// A worker with the [`LogSink`].
    pub fn new(url: &str, config: WorkerConfig, log: Arc<dyn DeliveryLog>) -> Self {
        Self::with_sink(url, config, log, Arc::new(LogSink))
    }

    /// A worker that hands each message to `sink`, records delivery in `log`, and consumes
    /// `config.queue` on the broker at `url` (once [`Worker::run`] is called).
    pub fn with_sink(url: &str, config: WorkerConfig, log: Arc<dyn DeliveryLog>, sink: Arc<dyn Sink>) -> Self {
        let dedup = Dedup::new(config.dedup_capacity);
        Self {
            url: url.to_string(),
            topology: Topology::new(config.queue.clone()),
            config,
            sink,
            log,
            dedup: Arc::new(Mutex::new(dedup)),
            counters: Arc::default(),
        }
    }

    /// The queues it consumes from and declares.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// What it did so far: handled, duplicates, retried, dead-lettered (counts since it was
    /// made, across reconnections).
    pub fn stats(&self) -> WorkerStats {
        let c = &self.counters;
        WorkerStats {
            handled: c.handled.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
        }
    }

    /// Consumes until `shutdown` is cancelled, reconnecting whenever the connection is
    /// lost. On shutdown it stops consuming (cancels its consumer), finishes the messages in
    /// flight (each handled and acknowledged, or sent back), closes the connection, and
    /// returns; messages prefetched but not started go back to the queue.
    pub async fn run(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.session(&shutdown).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(queue = %self.topology.queue, "worker: {e}; reconnecting"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.reconnect_delay) => {}
            }
        }
    }

    /// One connection's life: `Ok` on shutdown, `Err` when the connection fails.
    async fn session(&self, shutdown: &CancellationToken) -> lapin::Result<()> {
        let tag = format!("happening-worker-{}", uuid::Uuid::new_v4().simple());
        // Bounded: a black-holed broker would otherwise hold the worker here, deaf to shutdown.
        let setup = within(self.config.connect_timeout_ms, "connecting the worker to RabbitMQ", async {
            let conn = Connection::connect(&self.url, ConnectionProperties::default()).await?;
            let consume = conn.create_channel().await?;
            self.topology.declare(&consume).await?;
            consume.basic_qos(self.config.prefetch, BasicQosOptions::default()).await?;
            let publish = conn.create_channel().await?;
            publish.confirm_select(ConfirmSelectOptions::default()).await?;
            let consumer = consume
                .basic_consume(
                    self.topology.queue.clone().into(),
                    tag.clone().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok((conn, consume, publish, consumer))
        });
        let (conn, consume, publish, mut consumer) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            setup = setup => setup?,
        };
        tracing::info!(queue = %self.topology.queue, prefetch = self.config.prefetch, "worker consuming");
        let ctx = Arc::new(Ctx {
            config: self.config.clone(),
            topology: self.topology.clone(),
            sink: self.sink.clone(),
            log: self.log.clone(),
            dedup: self.dedup.clone(),
            counters: self.counters.clone(),
            publish,
        });
        let mut in_flight = JoinSet::new();
        let mut liveness = tokio::time::interval(Duration::from_millis(LIVENESS_CHECK_MS));
        let result = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Ok(()),
                _ = liveness.tick() => {
                    if !conn.status().connected() || !consume.status().connected() || !ctx.publish.status().connected() {
                        break Err(lapin::Error::from(std::io::Error::other("liveness check: the connection or a channel is down")));
                    }
                }
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!("worker: a handler panicked: {e}");
                    }
                }
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        in_flight.spawn(handle(ctx.clone(), delivery));
                    }
                    Some(Err(e)) => break Err(e),
                    None => break Err(lapin::Error::from(std::io::Error::other("the consumer was cancelled or its channel closed"))),
                },
            }
        };
        if result.is_ok() {
            // Stop the deliveries first, then let the handlers finish and acknowledge.
            let _ = consume.basic_cancel(tag.into(), BasicCancelOptions::default()).await;
        }
        let drain = async {
            while let Some(done) = in_flight.join_next().await {
                if let Err(e) = done {
                    tracing::error!("worker: a handler panicked: {e}");
                }
            }
        };
        // Handlers on a live connection finish (and acknowledge); on a dead one, for a while.
        if result.is_ok() || (conn.status().connected() && consume.status().connected()) {
            drain.await;
        } else if tokio::time::timeout(Duration::from_millis(DRAIN_AFTER_LOSS_MS), drain).await.is_err() {
            tracing::warn!("worker: handlers still running {DRAIN_AFTER_LOSS_MS} ms after the connection was lost; dropping them");
            in_flight.abort_all();
        }
        if result.is_ok() {
            let _ = consume.close(200, "worker shutting down".into()).await;
            let _ = ctx.publish.close(200, "worker shutting down".into()).await;
            let _ = conn.close(200, "worker shutting down".into()).await;
        }
        result
    }
}

/// What a handler needs.
struct Ctx {
    config: WorkerConfig,
    topology: Topology,
    sink: Arc<dyn Sink>,
    log: Arc<dyn DeliveryLog>,
    dedup: Arc<Mutex<Dedup>>,
    counters: Arc<Counters>,
    /// In confirm mode: for the retry copies.
    publish: Channel,
}

async fn handle(ctx: Arc<Ctx>, delivery: Delivery) {
    let msg = match NotificationMessage::from_json(&delivery.data) {
        Ok(m) => m,
        Err(e) => {
            let id = delivery.properties.message_id().as_ref().and_then(|s| s.as_str().parse::<NotificationId>().ok());
            tracing::warn!(message_id = ?id, "worker: not a notification ({e}); dead-lettering it");
            if let Some(id) = id {
                if let Err(e) = ctx.log.record(id, DeliveryStatus::Failed).await {
                    tracing::warn!(%id, "worker: could not mark failed: {e}");
                }
            }
            reject(&delivery).await;
            ctx.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let id = msg.id;

    // De-duplication: this worker's memory, then the store.
    let mut guard = loop {
        let claim = ctx.dedup.lock().expect("dedup lock").claim(id);
        match claim {
            Claim::Done => {
                ack(&delivery).await;
                ctx.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Claim::Wait(mut rx) => {
                // Wakes when the copy in flight finishes (its sender is dropped).
                let _ = rx.changed().await;
            }
            Claim::Mine(tx) => break InFlight { dedup: ctx.dedup.clone(), id, done: false, _tx: tx },
        }
    };
    match ctx.log.status(id).await {
        Ok(Some(DeliveryStatus::Delivered)) => {
            guard.done = true;
            ack(&delivery).await;
            ctx.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(%id, "worker: store unavailable ({e}); requeueing");
            drop(guard);
            requeue_later(&ctx, &delivery).await;
            return;
        }
    }

    match ctx.sink.handle(&msg).await {
        Ok(()) => {
            if record_delivered(&ctx, id).await {
                guard.done = true;
                drop(guard);
                ack(&delivery).await;
                ctx.counters.handled.fetch_add(1, Ordering::Relaxed);
            } else {
                // Handled but not recorded: handle again later (at least once).
                drop(guard);
                requeue_later(&ctx, &delivery).await;
            }
        }
        Err(e) => {
            drop(guard);
            let failures = attempts(&delivery) + 1;
            if failures >= ctx.config.max_attempts {
                tracing::warn!(%id, failures, "worker: handling failed ({e}); dead-lettering it");
                if let Err(e) = ctx.log.record(id, DeliveryStatus::Failed).await {
                    tracing::warn!(%id, "worker: could not mark failed: {e}");
                }
                reject(&delivery).await;
                ctx.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
            } else {
                tracing::info!(%id, failures, "worker: handling failed ({e}); retrying");
                tokio::time::sleep(ctx.config.retry_delay * failures).await;
                if republish(&ctx, &delivery, failures).await {
                    ack(&delivery).await;
                } else {
                    nack_requeue(&delivery).await;
                }
                ctx.counters.retried.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Records `delivered`, retrying a store hiccup a few times.
async fn record_delivered(ctx: &Ctx, id: NotificationId) -> bool {
    let mut pause = Duration::from_millis(50);
    for attempt in 1..=3 {
        match ctx.log.record(id, DeliveryStatus::Delivered).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(%id, attempt, "worker: could not record delivered: {e}");
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
        }
    }
    false
}

/// Failed handlings so far, from the `x-attempts` header.
fn attempts(delivery: &Delivery) -> u32 {
    let value = delivery.properties.headers().as_ref().and_then(|h| h.inner().get(ATTEMPTS_HEADER).cloned());
    let n: i64 = match value {
        Some(AMQPValue::LongLongInt(n)) => n,
        Some(AMQPValue::LongInt(n)) => n.into(),
        Some(AMQPValue::LongUInt(n)) => n.into(),
        Some(AMQPValue::ShortInt(n)) => n.into(),
        Some(AMQPValue::ShortUInt(n)) => n.into(),
        Some(AMQPValue::ShortShortInt(n)) => n.into(),
        Some(AMQPValue::ShortShortUInt(n)) => n.into(),
        _ => 0,
    };
    n.clamp(0, u32::MAX.into()) as u32
}

/// Publishes a copy with `x-attempts = failures` to the queue; `true` once confirmed.
async fn republish(ctx: &Ctx, delivery: &Delivery, failures: u32) -> bool {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongLongInt(failures.into()));
    let properties = delivery.properties.clone().with_headers(headers);
    let sent = ctx
        .publish
        .basic_publish(
            "".into(),
            ctx.topology.queue.clone().into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            &delivery.data,
            properties,
        )
        .await;
    match sent {
        // Bounded: on a connection lost meanwhile the confirm may never come.
        Ok(confirm) => matches!(
            tokio::time::timeout(Duration::from_millis(ctx.config.connect_timeout_ms), confirm).await,
            Ok(Ok(Confirmation::Ack(None)))
        ),
        Err(e) => {
            tracing::warn!("worker: could not republish for a retry: {e}");
            false
        }
    }
}

async fn ack(delivery: &Delivery) {
    if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
        // The channel is gone: the broker redelivers it, and de-duplication catches it.
        tracing::warn!("worker: ack failed: {e}");
    }
}

async fn reject(delivery: &Delivery) {
    if let Err(e) = delivery.reject(BasicRejectOptions { requeue: false }).await {
        tracing::warn!("worker: reject failed: {e}");
    }
}

async fn nack_requeue(delivery: &Delivery) {
    if let Err(e) = delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await {
        tracing::warn!("worker: nack failed: {e}");
    }
}

async fn requeue_later(ctx: &Ctx, delivery: &Delivery) {
    tokio::time::sleep(ctx.config.retry_delay.max(Duration::from_millis(100))).await;
    nack_requeue(delivery).await;
}

enum Claim {
    /// Handled already.
    Done,
    /// Another copy is in flight; wait for it.
    Wait(watch::Receiver<()>),
    /// This copy handles it.
    Mine(watch::Sender<()>),
}

/// Marks an id in flight; on drop, releases it (waking copies that wait), remembered as
/// handled if `done`.
struct InFlight {
    dedup: Arc<Mutex<Dedup>>,
    id: NotificationId,
    done: bool,
    _tx: watch::Sender<()>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut d = self.dedup.lock().unwrap_or_else(|p| p.into_inner());
        d.in_flight.remove(&self.id);
        if self.done {
            d.recent.insert(self.id);
        }
    }
}

/// In-memory de-duplication: ids in flight, and a bounded LRU of handled ids.
struct Dedup {
    in_flight: HashMap<NotificationId, watch::Receiver<()>>,
    recent: Lru,
}

impl Dedup {
    fn new(capacity: usize) -> Self {
        Self { in_flight: HashMap::new(), recent: Lru::new(capacity) }
    }

    fn claim(&mut self, id: NotificationId) -> Claim {
        if self.recent.touch(&id) {
            return Claim::Done;
        }
        if let Some(rx) = self.in_flight.get(&id) {
            return Claim::Wait(rx.clone());
        }
        let (tx, rx) = watch::channel(());
        self.in_flight.insert(id, rx);
        Claim::Mine(tx)
    }
}

/// A least-recently-used set of ids, at most `capacity` of them. Touching pushes a new
/// stamp; stale stamps in `order` are skipped on eviction and compacted now and then.
struct Lru {
    capacity: usize,
    tick: u64,
    stamps: HashMap<NotificationId, u64>,
    order: VecDeque<(NotificationId, u64)>,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), tick: 0, stamps: HashMap::new(), order: VecDeque::new() }
    }

    /// Whether `id` is in; if so it becomes the most recent.
    fn touch(&mut self, id: &NotificationId) -> bool {
        match self.stamps.get_mut(id) {
            Some(stamp) => {
                self.tick += 1;
                *stamp = self.tick;
                self.order.push_back((*id, self.tick));
                self.compact();
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, id: NotificationId) {
        if self.touch(&id) {
            return;
        }
        self.tick += 1;
        self.stamps.insert(id, self.tick);
        self.order.push_back((id, self.tick));
        while self.stamps.len() > self.capacity {
            let Some((old, stamp)) = self.order.pop_front() else { break };
            if self.stamps.get(&old) == Some(&stamp) {
                self.stamps.remove(&old);
            }
        }
        self.compact();
    }

    fn compact(&mut self) {
        if self.order.len() > 2 * self.capacity + 16 {
            let stamps = &self.stamps;
            self.order.retain(|(id, s)| stamps.get(id) == Some(s));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.stamps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_keeps_the_most_recently_used() {
        let ids: Vec<NotificationId> = (0..4).map(|_| NotificationId::new()).collect();
        let mut lru = Lru::new(3);
        for id in &ids[..3] {
            lru.insert(*id);
        }
        assert!(lru.touch(&ids[0]), "0 is in, and now the most recent");
        lru.insert(ids[3]);
        assert_eq!(lru.len(), 3);
        assert!(!lru.touch(&ids[1]), "1 was the least recent: evicted");
        assert!(lru.touch(&ids[0]) && lru.touch(&ids[2]) && lru.touch(&ids[3]));
        for _ in 0..1000 {
            lru.touch(&ids[0]);
        }
        assert!(lru.order.len() <= 2 * 3 + 16 + 1, "stale stamps are compacted");
        assert_eq!(lru.len(), 3);
    }

    /// A handler dropped while it holds a claim (aborted after its connection was lost)
    /// frees it: the redelivered copy waiting on it wakes, and handles the message itself.
    #[tokio::test]
    async fn a_dropped_handler_frees_its_claim() {
        let dedup = Arc::new(Mutex::new(Dedup::new(10)));
        let id = NotificationId::new();
        let Claim::Mine(tx) = dedup.lock().unwrap().claim(id) else { panic!("first copy handles it") };
        let guard = InFlight { dedup: dedup.clone(), id, done: false, _tx: tx };
        let Claim::Wait(mut rx) = dedup.lock().unwrap().claim(id) else { panic!("a second copy waits") };
        let handler = tokio::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        handler.abort();
        assert!(handler.await.unwrap_err().is_cancelled());
        assert!(rx.changed().await.is_err(), "the waiter wakes: the claim's sender is gone");
        assert!(matches!(dedup.lock().unwrap().claim(id), Claim::Mine(_)), "not handled: the copy takes it");
    }

    #[test]
    fn dedup_claims() {
        let mut d = Dedup::new(10);
        let id = NotificationId::new();
        let Claim::Mine(tx) = d.claim(id) else { panic!("first copy handles it") };
        assert!(matches!(d.claim(id), Claim::Wait(_)), "a second copy waits");
        d.in_flight.remove(&id);
        drop(tx);
        d.recent.insert(id);
        assert!(matches!(d.claim(id), Claim::Done), "handled ids are remembered");
    }
}
