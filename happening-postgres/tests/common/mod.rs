//! A harness on a fresh database: each engine (the main one and each replica) gets its own
//! pool, as separate servers would.

#![allow(dead_code)]

use std::sync::Arc;

use happening_core::testkit::Harness;
use happening_postgres::{testing, PgAdmission, PgStore};

/// A harness and the URL of its database. `None` when no test server is configured
/// (outside CI; under CI that panics).
pub async fn setup(replicas: usize, connections: u32) -> Option<(Harness, String)> {
    setup_with(replicas, connections, "").await
}

/// As `setup`, with `params` appended to every engine's connection URL (e.g. planner
/// settings, to test the queries against plans the planner might choose one day).
pub async fn setup_with(replicas: usize, connections: u32, params: &str) -> Option<(Harness, String)> {
    setup_pools(replicas, testing::pool(connections), params).await
}

/// As `setup_with`, with pools as `config` says (e.g. the server's wait for a connection,
/// where a test needs operations to fail while the server is down).
pub async fn setup_pools(replicas: usize, config: happening_postgres::PoolConfig, params: &str) -> Option<(Harness, String)> {
    let url = testing::server_url()?;
    let db_url = testing::fresh_database_url(&url).await;
    let mut pools = Vec::new();
    for _ in 0..=replicas {
        pools.push(happening_postgres::connect(&format!("{db_url}{params}"), config).await.expect("engine pool"));
    }
    let mut pools = pools.into_iter();
    let h = Harness::new(replicas, || {
        let pool = pools.next().expect("one pool per engine");
        (Arc::new(PgStore::new(pool.clone())), Arc::new(PgAdmission::new(pool)))
    });
    Some((h, db_url))
}

/// As `setup`, with a pool of its own on the same database, for raw SQL behind the
/// engines' back.
pub async fn setup_raw(replicas: usize, connections: u32) -> Option<(Harness, sqlx::PgPool)> {
    let (h, url) = setup(replicas, connections).await?;
    let pool = sqlx::PgPool::connect(&url).await.expect("raw connection");
    Some((h, pool))
}

pub async fn harness(replicas: usize, connections: u32) -> Option<Harness> {
    setup(replicas, connections).await.map(|(h, _)| h)
}
