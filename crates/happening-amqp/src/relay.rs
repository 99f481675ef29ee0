//! [`run_relay`]: the outbox relay as a background loop, for a server to spawn.

use std::time::Duration;

use happening_core::ports::Notifier;
use happening_core::Engine;
use tokio_util::sync::CancellationToken;

/// How [`run_relay`] paces itself.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Notifications per delivery (default 100).
    pub batch: u32,
    /// Pause when the outbox is drained (default 100 ms).
    pub idle: Duration,
    /// Longest pause after failures, doubling from `idle` (default 5 s).
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self { batch: 100, idle: Duration::from_millis(100), max_backoff: Duration::from_secs(5) }
    }
}

/// Relays the outbox through `notifier` until `shutdown`: full batches back to back, a
/// pause of `idle` once drained, and a growing pause while delivery fails (RabbitMQ down:
/// the rows stay pending and the outbox grows; they are sent once it is back). Returns the
/// number of notifications relayed.
///
/// Several servers may each run one on the same store: `claim_pending` gives them disjoint
/// batches. A batch whose delivery failed is given back at once for the next round; a relay
/// that dies holding a batch holds it until its lease ends (30 s).
pub async fn run_relay(engine: &Engine, notifier: &dyn Notifier, config: RelayConfig, shutdown: CancellationToken) -> u64 {
    let mut total = 0u64;
    let mut backoff = config.idle;
    while !shutdown.is_cancelled() {
        let pause = match engine.relay(notifier, config.batch).await {
            Ok(n) => {
                total += n as u64;
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
    total
}
