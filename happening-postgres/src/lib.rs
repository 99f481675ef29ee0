//! # happening-postgres
//!
//! PostgreSQL for Happening: [`PgStore`] is the durable [`SeatStore`] and [`Directory`]
//! (the source of truth), and [`PgAdmission`] the admission derived from it, so that a
//! deployment with PostgreSQL alone is complete and correct. With Redis, the store stays
//! here and admission moves there.
//!
//! The schema is in `migrations/` and embedded: [`MIGRATOR`] runs it (on start, and by
//! `happening migrate`). Why one row per seat, and how concurrency is controlled: see
//! `store/` and ARCHITECTURE.md.
//!
//! [`SeatStore`]: happening_core::ports::SeatStore
//! [`Directory`]: happening_core::ports::Directory

#![warn(missing_docs)]

mod admission;
mod alloc;
mod batch;
mod changes;
mod directory;
mod error;
mod gather;
mod rows;
mod shorts;
mod store;
pub mod testing;

use std::time::Duration;

pub use admission::PgAdmission;
pub use changes::{PgChanges, APPLICATION_NAME as CHANGES_APPLICATION_NAME, CHANNEL as CHANGES_CHANNEL};
pub use store::PgStore;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

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

/// Runs the migrations, then connects a pool as `config` says.
///
/// The pool is of a fixed size: every connection is opened here and kept open, not on first
/// use, and each plans the booking path's statements as it opens (`batch::warm_up`,
/// `admission::warm_up`). At a flash sale's start every client asks at once; on a pool
/// opened lazily the first requests waited for connections to open and for each one's
/// first calls to plan (the first 1,000 requests of a cold server: p99 242-300 ms, against
/// 108-115 ms once warm; ARCHITECTURE.md, "The pool is whole and warm").
pub async fn connect(url: &str, config: PoolConfig) -> Result<PgPool, sqlx::Error> {
    // On a connection of their own: the pool's warm-up needs the schema. Within the wait the
    // pool allows for a connection, as the pool's own connecting was.
    let wait = Duration::from_millis(config.acquire_timeout_ms);
    let mut conn = tokio::time::timeout(wait, PgConnection::connect(url)).await.map_err(|_| sqlx::Error::PoolTimedOut)??;
    MIGRATOR.run(&mut conn).await?;
    // Before this server writes: an outbox restored from another cluster gets this one's
    // transaction order (migrations/0020).
    if sqlx::query_scalar::<_, bool>("SELECT happening_outbox_adopt()").fetch_one(&mut conn).await? {
        tracing::warn!("the outbox was restored from another PostgreSQL cluster: renumbered for this one's transaction ids");
    }
    conn.close().await?;
    PgPoolOptions::new()
        .max_connections(config.connections_max)
        .min_connections(config.connections_max)
        .acquire_timeout(wait)
        .after_connect(|conn, _| {
            Box::pin(async move {
                batch::warm_up(conn).await?;
                admission::warm_up(conn).await
            })
        })
        .connect(url)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts and never answers fails the connect within the pool's wait,
    /// as the pool did before it ran the migrations on a connection of their own.
    #[tokio::test]
    async fn a_silent_server_fails_the_connect_within_the_wait() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("postgres://postgres@{}/postgres", silent.local_addr().expect("its address"));
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                open.push(socket);
            }
        });
        let err = connect(&url, PoolConfig { connections_max: 1, acquire_timeout_ms: 200 }).await.expect_err("no answer");
        assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err}");
        held.abort();
    }

    /// The pool opens all its connections before it is handed out, and each has the
    /// booking path's statements (the batch, the probe, the positions) prepared.
    #[tokio::test]
    async fn a_pool_opens_every_connection_warm() {
        let Some(server) = testing::server_url() else { return };
        let pool = connect(&testing::fresh_database_url(&server).await, testing::pool(3)).await.expect("connect");
        assert_eq!((pool.size(), pool.num_idle()), (3, 3), "every connection open and idle");
        let mut held = Vec::new();
        for _ in 0..3 {
            let conn = pool.acquire().await.expect("a connection");
            assert_eq!(conn.cached_statements_size(), 3, "the batch, the probe and the positions prepared");
            held.push(conn);
        }
    }
}
