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

/// Connects a pool of `max_connections` and runs the migrations.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let pool = PgPoolOptions::new().max_connections(max_connections).acquire_timeout(Duration::from_secs(5)).connect(url).await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
