//! The stores chosen by configuration: in memory; `PgStore` + `PgAdmission` with
//! DATABASE_URL; `PgStore` + `RedisAdmission` with REDIS_URL (or REDIS_CLUSTER_URLS) too;
//! the notifier (the log, or RabbitMQ); and the change feed that follows the stores.

use std::sync::Arc;
use std::time::Duration;

use happening_core::ports::{Admission, ChangeFeed, Notifier, Store};
use happening_core::Engine;
use happening_http::readiness::{PostgresCheck, RabbitCheck, ReadyCheck, RedisCheck};
use happening_http::server::LogNotifier;
use happening_redis::RedisTarget;

use crate::cli::Serve;

/// An engine on PostgreSQL, and what the caller needs besides.
pub struct PgEngine {
    pub engine: Engine,
    pub pool: sqlx::PgPool,
}

/// The pool on PostgreSQL at `url`, with the migrations run.
pub async fn pg_pool(url: &str, pool: happening_postgres::PoolConfig) -> Result<sqlx::PgPool, String> {
    // One plain connection first: the pool's own error on an unreachable server is only
    // "timed out", this one says why.
    drop(pg_connect(url).await?);
    // Connecting runs the migrations (idempotent; concurrent starts serialize on sqlx's
    // migration lock).
    happening_postgres::connect(url, pool).await.map_err(|e| format!("cannot use PostgreSQL (DATABASE_URL): {e}"))
}

/// Connects to PostgreSQL (running the migrations) and, with `redis`, to Redis: the
/// engine is `PgStore` + `RedisAdmission`, else `PgStore` + `PgAdmission`. Redis is not
/// rebuilt here (the server starts with [`happening_redis::ready_engine`], which does).
pub async fn pg_engine(
    url: &str,
    pool: happening_postgres::PoolConfig,
    redis: Option<&RedisTarget>,
    redis_prefix: &str,
) -> Result<PgEngine, String> {
    let pool = pg_pool(url, pool).await?;
    let store = Arc::new(happening_postgres::PgStore::new(pool.clone()));
    let admission: Arc<dyn Admission> = match redis {
        None => Arc::new(happening_postgres::PgAdmission::new(pool.clone())),
        Some(r) => Arc::new(redis_connect(r, redis_prefix).await?),
    };
    Ok(PgEngine { engine: Engine::new(store as Arc<dyn Store>, admission), pool })
}

/// The Redis admission at `target`, checked, or why not.
async fn redis_connect(target: &RedisTarget, prefix: &str) -> Result<happening_redis::RedisAdmission, String> {
    happening_redis::connect_checked(target, prefix).await.map_err(|e| format!("{e} ({})", redis_variable(target)))
}

fn redis_variable(target: &RedisTarget) -> &'static str {
    match target {
        RedisTarget::Single(_) => "REDIS_URL",
        RedisTarget::Cluster(_) => "REDIS_CLUSTER_URLS",
    }
}

/// One connection to PostgreSQL, with a clear error (and a deadline) when it cannot be had.
pub async fn pg_connect(url: &str) -> Result<sqlx::PgConnection, String> {
    use sqlx::Connection as _;
    match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(url)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot connect to PostgreSQL (DATABASE_URL): {e}")),
        Err(_) => Err("cannot connect to PostgreSQL (DATABASE_URL): no answer within 10 s".to_string()),
    }
}

/// The engine `happening audit` reads through: PgStore on read-only sessions (no
/// migrations: an audit writes nothing, the schema included), and RedisAdmission or
/// PgAdmission.
pub async fn audit_engine(url: &str, redis: Option<&RedisTarget>, redis_prefix: &str) -> Result<(Engine, sqlx::PgPool), String> {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    drop(pg_connect(url).await?);
    let options: PgConnectOptions = url.parse().map_err(|e| format!("invalid DATABASE_URL: {e}"))?;
    let options = options.options([("default_transaction_read_only", "on")]);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| format!("cannot use PostgreSQL (DATABASE_URL): {e}"))?;
    let admission: Arc<dyn Admission> = match redis {
        None => Arc::new(happening_postgres::PgAdmission::new(pool.clone())),
        Some(r) => Arc::new(redis_connect(r, redis_prefix).await?),
    };
    let store = Arc::new(happening_postgres::PgStore::new(pool.clone()));
    Ok((Engine::new(store as Arc<dyn Store>, admission), pool))
}

/// What the server runs on.
pub struct Wiring {
    pub engine: Engine,
    pub notifier: Arc<dyn Notifier>,
    /// The other replicas' changes: Redis' publish and subscribe with Redis, PostgreSQL's
    /// with PostgreSQL alone, none in memory.
    pub feed: Option<Arc<dyn ChangeFeed>>,
    /// What `/readyz` checks.
    pub checks: Vec<Arc<dyn ReadyCheck>>,
    /// Each part's backend by name (seat store, admission, notifier), for `/readyz`.
    pub backends: Vec<(&'static str, &'static str)>,
}

/// Connects the server's stores and notifier: PostgreSQL at `database_url` (in memory
/// without), Redis at `redis` for the admission (rebuilt from PostgreSQL first: Redis may
/// have lost or missed writes), RabbitMQ at `rabbit` (connected in the background).
pub async fn serve(s: &Serve, database_url: Option<&str>, redis: Option<&RedisTarget>, rabbit: Option<&str>) -> Result<Wiring, String> {
    let mut checks: Vec<Arc<dyn ReadyCheck>> = Vec::new();
    let mut backends = vec![("seat_store", "memory"), ("admission", "memory"), ("notifier", "log")];
    let mut feed: Option<Arc<dyn ChangeFeed>> = None;
    let engine = match database_url {
        None => Engine::in_memory(),
        Some(url) => {
            let config = happening_postgres::PoolConfig { connections_max: s.db_pool_size, acquire_timeout_ms: s.db_acquire_timeout_ms };
            let pool = pg_pool(url, config).await?;
            let store = Arc::new(happening_postgres::PgStore::new(pool.clone()));
            backends[0].1 = "postgres";
            checks.push(Arc::new(PostgresCheck::new(pool.clone())));
            // The live streams of every replica hear of each other's changes through
            // the shared stores: Redis' publish and subscribe, else PostgreSQL's.
            match redis {
                Some(target) => {
                    feed = Some(Arc::new(
                        happening_redis::RedisChanges::connect(target, &s.stores.redis_prefix)
                            .await
                            .map_err(|e| format!("cannot subscribe to Redis for live changes: {e}"))?,
                    ));
                    // Redis may have lost or missed writes while we were down (or be a
                    // fresh instance): every live event is rebuilt from the store first.
                    let ready = happening_redis::ready_engine(store, target, &s.stores.redis_prefix)
                        .await
                        .map_err(|e| format!("{e} ({})", redis_variable(target)))?;
                    for r in &ready.reconciled {
                        tracing::info!(event = %r.event_id, free_before = ?r.free_before, free_after = r.free_after, waitlist_repaired = r.waitlist_repaired, promoted = r.promoted, "reconciled");
                    }
                    tracing::info!(drifted = ready.reconciled.len(), "reconciled Redis with PostgreSQL on start");
                    backends[1].1 = "redis";
                    checks.push(Arc::new(RedisCheck::new(ready.admission)));
                    ready.engine
                }
                None => {
                    feed = Some(Arc::new(
                        happening_postgres::PgChanges::new(url, pool.clone())
                            .map_err(|e| format!("cannot listen to PostgreSQL for live changes: {e}"))?,
                    ));
                    // Derived from the store's tables: nothing to rebuild on start.
                    backends[1].1 = "postgres";
                    Engine::new(store, Arc::new(happening_postgres::PgAdmission::new(pool)))
                }
            }
        }
    };
    let notifier: Arc<dyn Notifier> = match rabbit {
        None => Arc::new(LogNotifier),
        Some(url) => {
            backends[2].1 = "rabbitmq";
            let notifier = happening_amqp::AmqpNotifier::lazy(url, &s.amqp.notifications_queue)
                .with_timeouts_ms(s.amqp.rabbitmq_connect_timeout_ms, happening_amqp::DEFAULT_CONFIRM_TIMEOUT_MS);
            let notifier = Arc::new(notifier);
            // Connect in the background: the server starts at once whether RabbitMQ is
            // there or not (bookings do not need it; the outbox keeps the notifications
            // until it is back, and /readyz tries again on each probe).
            tokio::spawn({
                let notifier = notifier.clone();
                async move {
                    if let Err(e) = notifier.ensure_connected().await {
                        tracing::warn!(error = %e, "RabbitMQ unavailable on start; notifications wait in the outbox until it is back");
                    }
                }
            });
            checks.push(Arc::new(RabbitCheck::new(notifier.clone())));
            notifier
        }
    };
    Ok(Wiring { engine, notifier, feed, checks, backends })
}
