//! Harnesses on a real Redis (admission) and a fresh PostgreSQL database (the store). Each
//! engine, the main one and each replica, gets its own Redis connection and its own pool,
//! as separate servers would; each harness its own key prefix, so tests never share keys.

#![allow(dead_code)]

use std::sync::Arc;

use happening_core::ids::EventId;
use happening_core::testkit::Harness;
use happening_postgres::{testing, PgStore};
use happening_redis::{RedisAdmission, RedisConnection, RedisTarget};
use redis::AsyncCommands;

/// The test Redis' URL. Without one, tests skip, except under CI (`CI` set), where a missing
/// server is a failure.
pub fn redis_url() -> Option<String> {
    match std::env::var("HAPPENING_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("HAPPENING_TEST_REDIS_URL is not set, and CI is: run the tests with scripts/test")
        }
        _ => {
            eprintln!("skipped: HAPPENING_TEST_REDIS_URL is not set (scripts/test starts Redis)");
            None
        }
    }
}

/// The test Redis Cluster (`HAPPENING_TEST_REDIS_CLUSTER_URLS`, six nodes that
/// scripts/services starts). Without one, tests skip, except under CI.
pub fn cluster() -> Option<RedisTarget> {
    match std::env::var("HAPPENING_TEST_REDIS_CLUSTER_URLS") {
        Ok(urls) if !urls.is_empty() => Some(RedisTarget::cluster_from_list(&urls).expect("HAPPENING_TEST_REDIS_CLUSTER_URLS")),
        _ if std::env::var_os("CI").is_some() => {
            panic!("HAPPENING_TEST_REDIS_CLUSTER_URLS is not set, and CI is: run the tests with scripts/test")
        }
        _ => {
            eprintln!("skipped: HAPPENING_TEST_REDIS_CLUSTER_URLS is not set (scripts/test starts a Redis Cluster)");
            None
        }
    }
}

/// What a harness runs on.
pub struct Backends {
    pub target: RedisTarget,
    pub db_url: String,
    pub prefix: String,
    /// The admission of each engine, main engine first.
    pub admissions: Vec<RedisAdmission>,
}

impl Backends {
    /// A raw Redis connection of the main engine, for tests that tamper with the keys.
    pub fn redis(&self) -> RedisConnection {
        self.admissions[0].connection()
    }

    /// Deletes every key of this harness' prefix: what a flushed or restarted Redis leaves
    /// (FLUSHALL limited to this test's keys, so that tests running beside it are unharmed).
    pub async fn flush(&self) -> usize {
        flush_prefix(self.redis(), &self.prefix).await
    }

    /// Sets the counter of `event` in Redis behind the engine's back.
    pub async fn set_counter(&self, event: EventId, free: i64) {
        let mut conn = self.redis();
        let _: () = conn.set(self.admissions[0].keys(event).slots, free).await.expect("SET");
    }
}

/// An engine and `replicas` more on PostgreSQL + Redis. `None` when the servers are not
/// configured (outside CI; under CI that panics).
pub async fn setup(replicas: usize, connections: u32) -> Option<(Harness, Backends)> {
    setup_on(RedisTarget::Single(redis_url()?), replicas, connections).await
}

/// As [`setup`], on `target` (one Redis or a cluster).
pub async fn setup_on(target: RedisTarget, replicas: usize, connections: u32) -> Option<(Harness, Backends)> {
    let url = testing::server_url()?;
    let db_url = testing::fresh_database_url(&url).await;
    let mut pools = Vec::new();
    for _ in 0..=replicas {
        pools.push(happening_postgres::connect(&db_url, happening_postgres::testing::pool(connections)).await.expect("replica pool"));
    }
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let mut admissions = Vec::new();
    for _ in 0..=replicas {
        admissions.push(RedisAdmission::connect_to(&target, &prefix).await.expect("connect to the test Redis"));
    }
    let mut parts = pools.into_iter().zip(admissions.clone());
    let h = Harness::new(replicas, || {
        let (pool, admission) = parts.next().expect("one pool and one connection per engine");
        (Arc::new(PgStore::new(pool)), Arc::new(admission))
    });
    Some((h, Backends { target, db_url, prefix, admissions }))
}

pub async fn harness(replicas: usize, connections: u32) -> Option<Harness> {
    setup(replicas, connections).await.map(|(h, _)| h)
}

/// As [`harness`], on the test Redis Cluster.
pub async fn cluster_harness(replicas: usize, connections: u32) -> Option<Harness> {
    setup_on(cluster()?, replicas, connections).await.map(|(h, _)| h)
}

/// Deletes every key that starts with `<prefix>:`; returns how many there were.
pub async fn flush_prefix(mut conn: RedisConnection, prefix: &str) -> usize {
    assert!(!conn.is_cluster(), "SCAN walks one node: flush a cluster's keys by event");
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}:*", prefix))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    if !keys.is_empty() {
        let _: () = conn.del(&keys).await.expect("DEL");
    }
    keys.len()
}
