//! A ready engine on Redis: what a server, or a service that embeds the engine, does before
//! it takes requests. Redis may have lost writes (a restart without persistence, a
//! failover to a replica that lagged) or missed them (a crash between Redis' step and the
//! store's), so every live event's counter and queue are rebuilt from the seat store first.

use std::sync::Arc;
use std::time::Duration;

use happening_core::ports::{AdmissionError, Store};
use happening_core::{Engine, Reconciled};

use crate::{RedisAdmission, RedisTarget};

/// How long [`ready_engine`] waits for Redis to answer before it gives up.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// An engine on a seat store and the Redis admission, ready for requests.
pub struct ReadyEngine {
    /// The engine: `store` for the seats, Redis for the counter and the waitlist.
    pub engine: Engine,
    /// The admission the engine uses (for readiness probes and tools).
    pub admission: RedisAdmission,
    /// The events whose counter or queue drifted from the store, as found and repaired.
    pub reconciled: Vec<Reconciled>,
}

/// Why [`ready_engine`] could not hand back an engine.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Redis refused the connection or the key prefix.
    #[error("cannot connect to Redis: {0}")]
    Connect(#[source] redis::RedisError),
    /// Redis (on a cluster: a primary) did not answer `PING`.
    #[error("cannot connect to Redis: {0}")]
    Ping(#[source] AdmissionError),
    /// No answer within the time given ([`CONNECT_TIMEOUT_MS`]).
    #[error("cannot connect to Redis: no answer within {timeout_ms} ms")]
    Timeout {
        /// How long it waited.
        timeout_ms: u64,
    },
    /// The rebuild from the seat store failed (the store or Redis went away meanwhile).
    #[error("cannot reconcile Redis with the seat store: {0}")]
    Reconcile(#[source] happening_core::Error),
}

/// Connects to Redis at `target` (keys under `prefix`) and checks that it answers
/// (`PING`; on a cluster, every primary), within [`CONNECT_TIMEOUT_MS`].
pub async fn connect_checked(target: &RedisTarget, prefix: &str) -> Result<RedisAdmission, StartError> {
    let connect = async {
        let admission = RedisAdmission::connect_to(target, prefix).await.map_err(StartError::Connect)?;
        admission.ping().await.map_err(StartError::Ping)?;
        Ok(admission)
    };
    match tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connect).await {
        Ok(admission) => admission,
        Err(_) => Err(StartError::Timeout { timeout_ms: CONNECT_TIMEOUT_MS }),
    }
}

/// [`connect_checked`], then every live event's counter and waitlist rebuilt from `store`
/// ([`Engine::reconcile_all`]). Start every server this way: a replica that joins a running
/// deployment rebuilds events that others are booking, which is safe (a rebuild never
/// erases a step made while it read the store; see the crate's docs).
pub async fn ready_engine(store: Arc<dyn Store>, target: &RedisTarget, prefix: &str) -> Result<ReadyEngine, StartError> {
    let admission = connect_checked(target, prefix).await?;
    let engine = Engine::new(store, Arc::new(admission.clone()));
    let reconciled = engine.reconcile_all().await.map_err(StartError::Reconcile)?;
    Ok(ReadyEngine { engine, admission, reconciled })
}
