//! The background work an engine needs, on tokio (feature `runtime`): the engine does
//! nothing between calls, so holds and offers past their time, events left stale by an
//! admission failure, and the notifications in the outbox wait for these loops.
//!
//! [`spawn`] starts them and hands back a [`Background`] whose [`stop`](Background::stop)
//! ends them (the outbox relayed one last time, bounded). The HTTP server runs exactly this.

mod relay;

use std::sync::Arc;
use std::time::Duration;

pub use relay::{run_relay, RelayConfig};
pub use tokio_util::sync::CancellationToken;

use crate::engine::Expired;
use crate::ports::Notifier;
use crate::Engine;

/// How the background work paces itself.
#[derive(Debug, Clone)]
pub struct BackgroundConfig {
    /// How often holds and offers past their time expire and stale events are repaired
    /// (default 250 ms).
    pub tick: Duration,
    /// The outbox relay's pace (its `idle` pause is the tick's unless set otherwise).
    pub relay: RelayConfig,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        let tick = Duration::from_millis(250);
        Self { tick, relay: RelayConfig { idle: tick, ..RelayConfig::default() } }
    }
}

/// The running background work of one engine.
pub struct Background {
    stop: CancellationToken,
    expiry: tokio::task::JoinHandle<()>,
    relay: tokio::task::JoinHandle<u64>,
}

/// Starts the background work of `engine` on the current tokio runtime: every
/// `config.tick`, [`Engine::expire_due`] (holds, then offers) and
/// [`Engine::reconcile_dirty`]; and, in a task of its own, the outbox relay to `notifier`
/// ([`run_relay`]). Failures are logged (`tracing`) and tried again at the next round.
pub fn spawn(engine: Engine, notifier: Arc<dyn Notifier>, config: BackgroundConfig) -> Background {
    let stop = CancellationToken::new();
    let relay = tokio::spawn({
        let (engine, stop, relay) = (engine.clone(), stop.clone(), config.relay.clone());
        async move { run_relay(&engine, notifier.as_ref(), relay, stop).await }
    });
    let expiry = tokio::spawn(maintain(engine, config.tick, stop.clone()));
    Background { stop, expiry, relay }
}

impl Background {
    /// Ends the background work: the expiry loop at once, the relay after one last,
    /// bounded, relay of the outbox. Returns how many notifications the relay sent in all.
    pub async fn stop(self) -> u64 {
        self.stop.cancel();
        if let Err(e) = self.expiry.await {
            tracing::error!(error = %e, "the expiry task failed");
        }
        self.relay.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the outbox relay task failed");
            0
        })
    }
}

/// Hold and offer expiry and repair of stale events, every `tick` until `stop`.
async fn maintain(engine: Engine, tick: Duration, stop: CancellationToken) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => break,
        }
        match engine.expire_due().await {
            Ok(e) if e == Expired::default() => {}
            Ok(e) => tracing::debug!(holds = e.holds, offers = e.offers, "holds and offers expired"),
            Err(e) => tracing::warn!(error = %e, "hold or offer expiry failed; will retry"),
        }
        // Events whose counter or queue may be stale after an admission failure (cheap when
        // none is marked).
        match engine.reconcile_dirty().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(drifted = n, "reconciled events after admission failures"),
            Err(e) => tracing::warn!(error = %e, "reconciling events failed; will retry"),
        }
    }
}
