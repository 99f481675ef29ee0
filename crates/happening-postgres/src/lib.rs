//! # happening-postgres
//!
//! PostgreSQL for Happening: [`PgStore`] is the durable [`SeatStore`] and [`Directory`]
//! (the source of truth), and [`PgAdmission`] the admission derived from it, so that a
//! deployment with PostgreSQL alone is complete and correct. With Redis, the store stays
//! here and admission moves there.
//!
//! The schema is in `migrations/` and embedded: [`MIGRATOR`] runs it (on start, and by
//! `happening migrate`). Why one row per seat, and how concurrency is controlled: see
//! `store.rs` and ARCHITECTURE.md.
//!
//! [`SeatStore`]: happening_core::ports::SeatStore
//! [`Directory`]: happening_core::ports::Directory

mod admission;
mod alloc;
mod batch;
mod directory;
mod error;
mod gather;
mod rows;
mod store;
pub mod testing;

use std::time::Duration;

pub use admission::PgAdmission;
pub use store::PgStore;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A connection pool's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections open at most.
    pub connections_max: u32,
    /// How long a caller waits for a free connection before its operation fails (a server
    /// answers 503): a pool that stays busy this long is overloaded, and a request that waits
    /// longer is one its client has likely given up on.
    pub acquire_timeout_ms: u64,
}

impl PoolConfig {
    /// The server's default wait for a connection.
    pub const ACQUIRE_TIMEOUT_MS_DEFAULT: u64 = 5_000;

    /// `connections_max` connections, with the default wait for one.
    pub fn new(connections_max: u32) -> Self {
        Self { connections_max, acquire_timeout_ms: Self::ACQUIRE_TIMEOUT_MS_DEFAULT }
    }
}

/// Connects a pool as `config` says and runs the migrations.
pub async fn connect(url: &str, config: PoolConfig) -> Result<PgPool, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(config.connections_max)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect(url)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
