//! The queues and the dead-letter exchange, declared by the publisher and the worker alike
//! (declarations are idempotent; both must declare the same arguments).

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

/// The default queue name (the server's `NOTIFICATIONS_QUEUE`).
pub const DEFAULT_QUEUE: &str = "notifications";

/// The classic queue version `<queue>` is declared with (see [`Topology`]).
pub const QUEUE_VERSION: i32 = 2;

/// `<queue>` (durable, dead-lettering to `<queue>.dlx`), the direct exchange `<queue>.dlx`,
/// and the durable queue `<queue>.dead` bound to it: a message rejected without requeue
/// (poison, or out of attempts) lands in `<queue>.dead` for an operator to inspect.
///
/// `<queue>` is a classic queue of version 2 (`x-queue-version`, RabbitMQ 3.10 and later):
/// in a saturating flash sale on two shared cores the relay kept up markedly better with it
/// than with version 1, the broker's own persistence being its main cost (BENCHMARKS.md,
/// "Notifications"). A queue declared earlier without the argument is
/// refused (`PRECONDITION_FAILED`, shown by `/readyz` and the log; notifications wait in
/// the outbox): drain and delete it, or name a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The notifications queue, which the other names derive from.
    pub queue: String,
}

impl Topology {
    /// The topology of the queue named `queue` (and `<queue>.dlx`, `<queue>.dead`).
    pub fn new(queue: impl Into<String>) -> Self {
        Self { queue: queue.into() }
    }

    /// `<queue>.dlx`: the direct exchange the queue dead-letters to.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.queue)
    }

    /// `<queue>.dead`: where rejected messages wait for an operator.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }

    /// Declares everything (durable; safe to repeat).
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        channel
            .exchange_declare(
                self.dead_letter_exchange().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
        channel.queue_declare(self.dead_letter_queue().into(), durable, FieldTable::default()).await?;
        channel
            .queue_bind(
                self.dead_letter_queue().into(),
                self.dead_letter_exchange().into(),
                self.dead_letter_queue().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(LongString::from(self.dead_letter_exchange())));
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(LongString::from(self.dead_letter_queue())));
        args.insert("x-queue-version".into(), AMQPValue::LongInt(QUEUE_VERSION));
        channel.queue_declare(self.queue.clone().into(), durable, args).await?;
        Ok(())
    }
}

impl Default for Topology {
    fn default() -> Self {
        Self::new(DEFAULT_QUEUE)
    }
}
