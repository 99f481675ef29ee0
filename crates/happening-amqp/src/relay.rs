//! [`run_relay`]: the outbox relay as a background loop, for a server to spawn in a task of
//! its own (a broker that hangs then holds only the relay, never hold expiry or promotions).

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
    /// After shutdown, how long the relay may go on: the round in progress, then one last
    /// drain of the outbox (default 5,000 ms). What is left waits in the outbox.
    pub shutdown_timeout_ms: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self { batch: 100, idle: Duration::from_millis(100), max_backoff: Duration::from_secs(5), shutdown_timeout_ms: 5_000 }
    }
}

/// Relays the outbox through `notifier` until `shutdown`: full batches back to back, a
/// pause of `idle` once drained, and a growing pause while delivery fails (RabbitMQ down:
/// the rows stay pending and the outbox grows; they are sent once it is back). On
/// `shutdown` it relays what is left, for at most `shutdown_timeout_ms` all told. Returns
/// the number of notifications relayed.
///
/// Several servers may each run one on the same store: `claim_pending` gives them disjoint
/// batches. A batch whose delivery failed is given back at once for the next round; a relay
/// that dies (or is cut off by `shutdown_timeout_ms`) holding a batch holds it until its
/// lease ends ([`happening_core::RELAY_LEASE_MS`]), then any relay claims it again.
pub async fn run_relay(engine: &Engine, notifier: &dyn Notifier, config: RelayConfig, shutdown: CancellationToken) -> u64 {
    let mut total = 0u64;
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(Duration::from_millis(config.shutdown_timeout_ms)).await;
    };
    tokio::select! {
        _ = relay_until_shutdown_then_drain(engine, notifier, &config, &shutdown, &mut total) => {}
        _ = deadline => {
            tracing::warn!(timeout_ms = config.shutdown_timeout_ms, "relay: not done in time after shutdown; the rest waits in the outbox");
        }
    }
    total
}

async fn relay_until_shutdown_then_drain(
    engine: &Engine,
    notifier: &dyn Notifier,
    config: &RelayConfig,
    shutdown: &CancellationToken,
    total: &mut u64,
) {
    let mut backoff = config.idle;
    while !shutdown.is_cancelled() {
        let pause = match engine.relay(notifier, config.batch).await {
            Ok(n) => {
                *total += n as u64;
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
                *total += n as u64;
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
