//! The real `happening` binary on PostgreSQL + Redis (`DATABASE_URL` + `REDIS_URL`), each
//! test on a fresh database and its own Redis key prefix. Needs `HAPPENING_TEST_DATABASE_URL`
//! and `HAPPENING_TEST_REDIS_URL` (scripts/services starts both); without them the tests
//! skip with a message, except under CI, where that is a failure.

mod common;

use std::process::Stdio;

use common::*;
use happening_core::ids::EventId;
use happening_postgres::testing;
use happening_redis::redis;
use happening_redis::EventKeys;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A fresh, migrated database, Redis, and a key prefix of this test alone.
async fn setup() -> Option<(String, String, String)> {
    let redis = test_var("HAPPENING_TEST_REDIS_URL")?;
    let server = test_var("HAPPENING_TEST_DATABASE_URL")?;
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    Some((testing::fresh_database_url(&server).await, redis, prefix))
}

async fn start(db: &str, redis: &str, prefix: &str) -> Server {
    Server::start(
        &["--tick-ms", "20", "--redis-prefix", prefix],
        &[("HAPPENING_JWT_SECRET", SECRET), ("DATABASE_URL", db), ("REDIS_URL", redis)],
    )
    .await
}

/// `happening reconcile` with `args`: (exit code, stdout).
async fn reconcile(db: &str, redis: &str, prefix: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = bin()
        .arg("reconcile")
        .args(args)
        .env("DATABASE_URL", db)
        .env("REDIS_URL", redis)
        .env("HAPPENING_REDIS_PREFIX", prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("reconcile {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), stdout)
}

#[tokio::test]
async fn seed_demo_on_postgres_and_redis() {
    let Some((db, redis, prefix)) = setup().await else { return };
    let s = start(&db, &redis, &prefix).await;
    let (st, body) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["stores"], json!({ "seat_store": "postgres", "admission": "redis", "notifier": "log" }));
    let ev = seed_demo(&s).await.event;

    // The counter lives in Redis under this test's prefix.
    let keys = EventKeys::new(&prefix, ev.parse::<EventId>().unwrap());
    let mut conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let free: i64 = redis::cmd("GET").arg(&keys.slots).query_async(&mut conn).await.unwrap();
    assert_eq!(free, 1);
    assert_eq!(s.stop().await.code(), Some(0));
}

#[tokio::test]
async fn reconcile_reports_and_repairs_a_wrong_counter() {
    let Some((db, redis, prefix)) = setup().await else { return };
    let s = start(&db, &redis, &prefix).await;
    let ev = seed_demo(&s).await.event;
    assert_eq!(s.stop().await.code(), Some(0));

    // After a clean run: nothing to repair.
    let (code, out) = reconcile(&db, &redis, &prefix, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no drift"), "{out}");
    assert!(!out.contains(&ev), "{out}");

    // A counter that says 4 seats are free when 1 is.
    let keys = EventKeys::new(&prefix, ev.parse::<EventId>().unwrap());
    let mut conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("SET").arg(&keys.slots).arg(4).query_async(&mut conn).await.unwrap();
    let (code, out) = reconcile(&db, &redis, &prefix, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("event {ev}: free seats 4 -> 1")), "{out}");
    assert!(out.contains("repaired 1 event(s)"), "{out}");
    let free: i64 = redis::cmd("GET").arg(&keys.slots).query_async(&mut conn).await.unwrap();
    assert_eq!(free, 1, "repaired in Redis");

    // A missing counter, one event at a time.
    let () = redis::cmd("DEL").arg(&keys.slots).query_async(&mut conn).await.unwrap();
    let (code, out) = reconcile(&db, &redis, &prefix, &["--event", &ev]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("event {ev}: free seats missing -> 1")), "{out}");
    let (code, out) = reconcile(&db, &redis, &prefix, &["--event", &ev]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no drift"), "{out}");

    // An unknown event is an error (exit 1), not a silent success.
    let (code, _) = reconcile(&db, &redis, &prefix, &["--event", &EventId::new().to_string()]).await;
    assert_eq!(code, Some(1));

    // Without REDIS_URL: PostgreSQL's own admission, derived from the store, never drifts.
    let out = bin().arg("reconcile").env("DATABASE_URL", &db).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("no drift"), "{stdout}");
}

#[tokio::test]
async fn reconcile_on_an_unreachable_database_fails() {
    // Needs no service: a closed port of the loopback.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let out =
        bin().arg("reconcile").env("DATABASE_URL", format!("postgres://happening@127.0.0.1:{port}/happening")).output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PostgreSQL"));
}
