//! What `/readyz` checks beyond the engine's own probe: each external store, by name, with
//! a short timeout, so that a hung store answers "not ready" rather than hanging the probe.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency the server needs to serve.
#[async_trait]
pub trait ReadyCheck: Send + Sync {
    /// The store's name as `/readyz` reports it (e.g. `postgres`).
    fn name(&self) -> &'static str;

    /// Whether the server is unready without this store (the default). A store that is not
    /// required (RabbitMQ: notifications wait in the outbox) is reported as `degraded`
    /// while `/readyz` still answers 200.
    fn required(&self) -> bool {
        true
    }

    /// `Err` with the cause (logged, never shown to clients) when the store does not answer.
    async fn check(&self) -> Result<(), String>;
}

/// `SELECT 1` through the server's PostgreSQL pool.
pub struct PostgresCheck {
    pool: PgPool,
}

impl PostgresCheck {
    /// A check through `pool`, the pool the server's stores use.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl ReadyCheck for PostgresCheck {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn check(&self) -> Result<(), String> {
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&self.pool).await.map_err(|e| e.to_string())?;
        if one == 1 {
            Ok(())
        } else {
            Err(format!("SELECT 1 answered {one}"))
        }
    }
}

/// Runs `check` with [`CHECK_TIMEOUT`].
pub async fn run(check: &dyn ReadyCheck) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    }
}

/// `PING` to the Redis of the admission (counters, waitlists): bookings need it.
pub struct RedisCheck {
    admission: happening_redis::RedisAdmission,
}

impl RedisCheck {
    /// A check through the admission the engine runs on.
    pub fn new(admission: happening_redis::RedisAdmission) -> Self {
        Self { admission }
    }
}

#[async_trait]
impl ReadyCheck for RedisCheck {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        self.admission.ping().await.map_err(|e| e.to_string())
    }
}

/// Whether the notifier's RabbitMQ connection is up, connecting it if it is not (within
/// the notifier's connect timeout, and [`CHECK_TIMEOUT`]): the notifier reconnects by itself
/// only when the relay has something to send, so a check that only looked would say
/// `degraded` long after RabbitMQ is back whenever nothing is booked. Not a readiness check:
/// a down RabbitMQ only delays notifications (the outbox keeps them), so `/readyz` reports
/// it as `degraded` and still answers 200.
pub struct RabbitCheck {
    notifier: std::sync::Arc<happening_amqp::AmqpNotifier>,
}

impl RabbitCheck {
    /// A check of the notifier the outbox relay publishes through.
    pub fn new(notifier: std::sync::Arc<happening_amqp::AmqpNotifier>) -> Self {
        Self { notifier }
    }
}

#[async_trait]
impl ReadyCheck for RabbitCheck {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    fn required(&self) -> bool {
        false
    }

    async fn check(&self) -> Result<(), String> {
        self.notifier.ensure_connected().await.map_err(|e| e.to_string())
    }
}
