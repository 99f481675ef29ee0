//! # happening-amqp
//!
//! RabbitMQ for Happening's notifications: [`AmqpNotifier`], the [`Notifier`] that the
//! outbox relay publishes through, and [`Worker`], the consumer that hands each notification
//! to a [`Sink`] (a log line, a webhook) and records its delivery.
//!
//! ## Why nothing is lost
//!
//! Publishing to RabbitMQ *after* the database commit, and swallowing the error, loses the
//! notification for good on a broker hiccup; a worker that drops a message it failed to
//! handle loses it too. Here:
//!
//! - **Outbox**: the core writes each notification in the same transaction as the change
//!   it reports (a `pending` row). Nothing is published inside that transaction; a
//!   booking never waits for, nor fails because of, RabbitMQ.
//! - **Relay + publisher confirms**: `Engine::relay` claims pending rows, and
//!   `AmqpNotifier`'s [`Notifier::deliver`](happening_core::ports::Notifier::deliver) publishes them as persistent messages to a durable queue
//!   (`mandatory`, so an unroutable message is an error) and returns `Ok` only once the broker
//!   has *confirmed* every one. Only then are the rows marked `sent`. RabbitMQ down: the
//!   relay fails, the rows stay pending, the outbox grows, and the next relay after
//!   RabbitMQ is back sends them.
//! - **Batches in flight**: the relay (`happening_core::background::run_relay`) keeps
//!   `RelayConfig::in_flight` batches going at
//!   once (2 by default), each its own claim: while the broker confirms one batch, the next
//!   is claimed and published on the same channel. One batch at a time left the relay idle
//!   for a confirm round trip per batch, and in a flash sale on two busy cores the outbox
//!   grew through the whole sale; with two it stays flat (BENCHMARKS.md). The price: the
//!   order of the queue follows the outbox's `seq` only within a batch.
//! - **Bounded, so a batch is never sent twice in the normal case**: a relay owns the rows it
//!   claimed for a lease ([`happening_core::RELAY_LEASE_MS`], 60 s). Getting the link ready
//!   (connecting, declaring) is bounded by a connect timeout (lapin has none of its own:
//!   [`DEFAULT_CONNECT_TIMEOUT_MS`]) and the confirms by a confirm timeout
//!   ([`DEFAULT_CONFIRM_TIMEOUT_MS`]); their sum must stay under the lease
//!   ([`AmqpNotifier::with_timeouts_ms`] asserts it), or a slow batch could be claimed by
//!   another replica while it is still being published.
//! - **A deleted queue is declared again**: a message returned NO_ROUTE fails the batch, and
//!   the next one declares the topology before publishing.
//! - **Worker acks last**: the worker acknowledges a message only after the sink handled
//!   it and the store recorded it `delivered`; a message that keeps failing is retried a
//!   bounded number of times (counted in an `x-attempts` header), then dead-lettered to
//!   `<queue>.dead` and marked `failed`, never dropped. Poison (not JSON) goes straight to the
//!   dead-letter queue.
//!
//! ## At least once, so consumers de-duplicate
//!
//! Every step that makes loss impossible can repeat a message: a relay that dies after
//! the broker confirmed but before marking `sent` publishes again (after its lease); a worker
//! that dies after handling but before acknowledging gets it again. So delivery is **at
//! least once**, and every message carries the notification's unique id (the JSON `id` and
//! the AMQP `message_id`). The [`Worker`] de-duplicates by it: a bounded in-memory LRU of
//! ids it handled, plus the store (a notification already `delivered` is acknowledged
//! without handling). Sinks that reach the outside world should pass the id on
//! ([`WebhookSink`] sends it as `Idempotency-Key`). In the normal case nothing is sent
//! twice: relays of several servers claim disjoint batches (`SeatStore::claim_pending`).
//!
//! ## Topology
//!
//! `<queue>` (default `notifications`), durable, dead-lettering to the direct exchange
//! `<queue>.dlx`, which routes to the durable `<queue>.dead`. Declared by both the
//! notifier and the worker ([`Topology`]).
//!
//! ## Wiring it
//!
//! ```no_run
//! use std::sync::Arc;
//! use happening_amqp::{AmqpNotifier, CancellationToken, StoreDeliveryLog, Worker, WorkerConfig};
//! use happening_core::background::{self, BackgroundConfig};
//! use happening_core::ports::Store;
//! use happening_core::Engine;
//!
//! # async fn demo(store: Arc<dyn Store>, engine: Engine) {
//! // `engine` runs on `store` (e.g. `Engine::new(store.clone(), admission)`).
//! let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
//! // In the server: the engine's background work, the outbox relayed through RabbitMQ in a
//! // task of its own (connects on first use), so that a broker that hangs never holds
//! // expiry or promotions.
//! let notifier = Arc::new(AmqpNotifier::lazy(url, "notifications"));
//! let background = background::spawn(engine.clone(), notifier, BackgroundConfig::default());
//! // In `happening worker`: the consumer, recording delivery in the same store.
//! let shutdown = CancellationToken::new();
//! let log = Arc::new(StoreDeliveryLog::new(store));
//! let worker = Worker::new(url, WorkerConfig::default(), log);
//! worker.run(shutdown.clone()).await; // returns once `shutdown` is cancelled
//! background.stop().await;
//! # }
//! ```
//!
//! TLS (`amqps://`) is not compiled in (lapin's `rustls` feature would pull aws-lc); the
//! broker is expected on a private network.
//!
//! [`Notifier`]: happening_core::ports::Notifier

#![warn(missing_docs)]

mod connect;
mod log;
mod message;
mod notifier;
mod sink;
mod topology;
mod worker;

pub use connect::DEFAULT_CONNECT_TIMEOUT_MS;
pub use log::{DeliveryLog, StoreDeliveryLog};
pub use message::NotificationMessage;
pub use notifier::{AmqpNotifier, DEFAULT_CONFIRM_TIMEOUT_MS};
pub use sink::{LogSink, Sink, SinkError, WebhookSink};
pub use topology::{Topology, DEFAULT_QUEUE, QUEUE_VERSION};
pub use worker::{Worker, WorkerConfig, WorkerStats, ATTEMPTS_HEADER};

/// Re-exported for [`Worker::run`]'s shutdown signal.
pub use tokio_util::sync::CancellationToken;
