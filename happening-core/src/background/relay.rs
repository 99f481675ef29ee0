//! [`run_relay`]: the outbox relay as a loop, in a task of its own (a notifier that hangs
//! then holds only the relay, never expiry or promotions).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ports::Notifier;
use crate::Engine;

/// How [`run_relay`] paces itself.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Notifications per delivery (default 100, at least 1).
    pub batch: u32,
    /// Batches relayed at once (default 2, at least 1): while the broker confirms one, the
    /// next is claimed and published, so that the relay is not idle for a round trip per
    /// batch. Each is its own claim, so they never overlap; the order across batches in
    /// flight is not kept (neither is it across replicas, nor after a failed batch).
    pub in_flight: usize,
    /// Pause when the outbox is drained (default 100 ms).
    pub idle: Duration,
    /// Longest pause after failures, doubling from `idle` (default 5 s).
    pub max_backoff: Duration,
    /// After shutdown, how long the relay may go on: the round in progress, then one last
    /// drain of the outbox (default 5,000 ms). What is left waits in the outbox.
    pub shutdown_timeout_ms: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self { batch: 100, in_flight: 2, idle: Duration::from_millis(100), max_backoff: Duration::from_secs(5), shutdown_timeout_ms: 5_000 }
    }
}

/// Relays the outbox through `notifier` until `shutdown`, in `in_flight` loops, each with
/// full batches back to back, a pause of `idle` once drained, and a growing pause while
/// delivery fails (RabbitMQ down: the rows stay pending and the outbox grows; they are sent
/// once it is back). On
/// `shutdown` it relays what is left, for at most `shutdown_timeout_ms` all told. Returns
/// the number of notifications relayed.
///
/// Several servers may each run one on the same store: `claim_pending` gives them disjoint
/// batches. A batch whose delivery failed is given back at once for the next round; a relay
/// that dies (or is cut off by `shutdown_timeout_ms`) holding a batch holds it until its
/// lease ends ([`crate::RELAY_LEASE_MS`]), then any relay claims it again.
pub async fn run_relay(engine: &Engine, notifier: &dyn Notifier, mut config: RelayConfig, shutdown: CancellationToken) -> u64 {
    // A batch of none would relay nothing, and at once again (a full batch goes on at once).
    config.batch = config.batch.max(1);
    let total = AtomicU64::new(0);
    let loops = (0..config.in_flight.max(1)).map(|_| relay_until_shutdown_then_drain(engine, notifier, &config, &shutdown, &total));
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(Duration::from_millis(config.shutdown_timeout_ms)).await;
    };
    tokio::select! {
        _ = futures_util::future::join_all(loops) => {}
        _ = deadline => {
            tracing::warn!(timeout_ms = config.shutdown_timeout_ms, "relay: not done in time after shutdown; the rest waits in the outbox");
        }
    }
    total.into_inner()
}

async fn relay_until_shutdown_then_drain(
    engine: &Engine,
    notifier: &dyn Notifier,
    config: &RelayConfig,
    shutdown: &CancellationToken,
    total: &AtomicU64,
) {
    let mut backoff = config.idle;
    while !shutdown.is_cancelled() {
        let pause = match engine.relay(notifier, config.batch).await {
            Ok(n) => {
                total.fetch_add(n as u64, Ordering::Relaxed);
                backoff = config.idle;
                if n as u32 >= config.batch {
                    continue;
                }
                config.idle
            }
            Err(e) => {
                tracing::warn!("relay: {e}; retrying in {backoff:?}");
                let pause = backoff;
                backoff = (backoff * 2).min(config.max_backoff).max(Duration::from_millis(1));
                pause
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    // What was written up to the shutdown goes out now rather than at the next start.
    loop {
        match engine.relay(notifier, config.batch).await {
            Ok(n) => {
                total.fetch_add(n as u64, Ordering::Relaxed);
                if (n as u32) < config.batch {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("relay: last relay before shutdown failed: {e}; the rest waits in the outbox");
                return;
            }
        }
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use crate::domain::{Notification, WaitlistPolicy};
    use crate::ids::{NotificationId, UserId};
    use crate::ports::NotifierError;
    use crate::testkit::Harness;
    use async_trait::async_trait;

    use super::*;

    /// Records every notification it is handed and how many deliveries ran at once. Each
    /// delivery waits (at most `overlap_wait`) for another to start, so that batches that
    /// can overlap do.
    #[derive(Default)]
    struct Overlapping {
        got: Mutex<HashMap<NotificationId, usize>>,
        running: AtomicUsize,
        most_at_once: AtomicUsize,
        started: tokio::sync::Notify,
    }

    #[async_trait]
    impl Notifier for Overlapping {
        async fn deliver(&self, batch: &[Notification]) -> Result<(), NotifierError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            self.started.notify_waiters();
            if now < 2 {
                // A bound, not a timing assertion: with one loop nobody else ever comes.
                let _ = tokio::time::timeout(Duration::from_millis(100), self.started.notified()).await;
            }
            let mut got = self.got.lock().unwrap();
            for n in batch {
                *got.entry(n.id).or_default() += 1;
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    }

    async fn relayed(in_flight: usize) -> (u64, usize, HashMap<NotificationId, usize>, usize) {
        let h = Harness::in_memory(0);
        let e = h.event(100, WaitlistPolicy::Fifo).await;
        for _ in 0..40 {
            h.book(e, UserId::new(), 1).await.unwrap();
        }
        let notifier = Overlapping::default();
        let stop = CancellationToken::new();
        stop.cancel(); // straight to the last drain: relay everything, then return
        let config = RelayConfig { batch: 4, in_flight, ..Default::default() };
        let total = run_relay(&h.engine, &notifier, config, stop).await;
        let depth = h.engine.outbox_depth().await.unwrap() as usize;
        (total, notifier.most_at_once.into_inner(), notifier.got.into_inner().unwrap(), depth)
    }

    #[tokio::test]
    async fn batches_in_flight_overlap_and_send_each_notification_once() {
        let (total, most_at_once, got, depth) = relayed(2).await;
        assert_eq!(total, 40);
        assert_eq!(most_at_once, 2, "two batches delivered at once");
        assert_eq!(got.len(), 40);
        assert!(got.values().all(|&n| n == 1), "each once: {got:?}");
        assert_eq!(depth, 0, "all marked sent");

        let (total, most_at_once, got, _) = relayed(1).await;
        assert_eq!((total, most_at_once, got.len()), (40, 1, 40), "one loop: one batch at a time");
    }
}
