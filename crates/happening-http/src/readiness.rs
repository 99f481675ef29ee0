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

    /// `Err` with the cause (logged, never shown to clients) when the store does not answer.
    async fn check(&self) -> Result<(), String>;
}

/// `SELECT 1` through the server's PostgreSQL pool.
pub struct PostgresCheck {
    pool: PgPool,
}

impl PostgresCheck {
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
