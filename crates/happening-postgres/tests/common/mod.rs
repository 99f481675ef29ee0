//! A harness on a fresh database: each engine (the main one and each replica) gets its own
//! pool, as separate servers would.

use std::sync::Arc;

use happening_core::testkit::Harness;
use happening_postgres::{testing, PgAdmission, PgStore};

/// `None` when no test server is configured (outside CI).
pub async fn harness(replicas: usize, connections: u32) -> Option<Harness> {
    let url = testing::server_url()?;
    let first = testing::fresh_database(&url, connections).await;
    let db_url = first.connect_options().get_database().map(str::to_string).expect("database name");
    let mut pools = vec![first];
    for _ in 0..replicas {
        let (base, _) = url.rsplit_once('/').unwrap();
        pools.push(happening_postgres::connect(&format!("{base}/{db_url}"), connections).await.expect("replica pool"));
    }
    let mut pools = pools.into_iter();
    Some(Harness::new(replicas, || {
        let pool = pools.next().expect("one pool per engine");
        (Arc::new(PgStore::new(pool.clone())), Arc::new(PgAdmission::new(pool)))
    }))
}
