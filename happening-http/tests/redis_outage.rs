//! The real `happening` binary on PostgreSQL + Redis while Redis stops and comes back
//! empty: `/readyz` answers 503 naming `redis` and bookings 503 while it is down; once it is
//! back, the counters are rebuilt from PostgreSQL and bookings go on with the right seats.
//! Needs `HAPPENING_TEST_DATABASE_URL`, `HAPPENING_TEST_REDIS_URL` and
//! `HAPPENING_TEST_REDIS_CTL` (scripts/services); without them the test skips with a
//! message, except under CI, where that is a failure. One test in this file: it stops the
//! shared test Redis (test files run one after the other).

mod common;

use common::*;
use happening_postgres::testing;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn redis_down_is_unready_and_recovers_from_postgres() {
    let Some(redis) = test_var("HAPPENING_TEST_REDIS_URL") else { return };
    let Some(redis_ctl) = test_var("HAPPENING_TEST_REDIS_CTL") else { return };
    let Some(server) = test_var("HAPPENING_TEST_DATABASE_URL") else { return };
    let db = testing::fresh_database_url(&server).await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());

    let s = Server::start(
        &["--tick-ms", "20", "--redis-prefix", &prefix],
        &[("HAPPENING_JWT_SECRET", SECRET), ("DATABASE_URL", &db), ("REDIS_URL", &redis)],
    )
    .await;
    let (admin, _) = s.user("admin").await;
    let (alice, alice_id) = s.user("alice").await;
    let org = s.org(&admin, &[&alice_id]).await;
    let ev = s.event(&admin, &org, 5).await;
    assert_eq!(s.book(&alice, json!({ "event_id": ev, "seats": 2 })).await["seat_numbers"], json!([1, 2]));

    let _restart = RestartOnPanic(redis_ctl.clone());
    ctl(&redis_ctl, "stop");
    let (st, body) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["failing"], json!(["redis"]), "{body}");
    let (st, _) = s.call(Method::POST, "/bookings", Some(&alice), Some(json!({ "event_id": ev, "seats": 1 }))).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);

    // Back, empty (stopped without saving): rebuilt from PostgreSQL on first use.
    ctl(&redis_ctl, "start");
    s.until("ready again", || async { (s.call(Method::GET, "/readyz", None, None).await.0 == StatusCode::OK).then_some(()) }).await;
    let b = s.book(&alice, json!({ "event_id": ev, "seats": 3 })).await;
    assert_eq!((b["status"].as_str(), b["seat_numbers"].clone()), (Some("confirmed"), json!([3, 4, 5])));
    let (st, full) = s.call(Method::POST, "/bookings", Some(&alice), Some(json!({ "event_id": ev, "seats": 1 }))).await;
    assert_eq!(st, StatusCode::CREATED, "{full}");
    assert_eq!(full["status"], "waiting", "no oversell: {full}");
    assert_eq!(s.stop().await.code(), Some(0));
}
