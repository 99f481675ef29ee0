//! RabbitMQ stopped and started again while the real server runs on PostgreSQL + RabbitMQ:
//! bookings keep working, the outbox grows (and `/metrics` says so), and once RabbitMQ is
//! back the relay sends everything and the worker delivers every notification. Stopped and
//! started once more with nothing to send, `/readyz` still comes back to `ready`.
//!
//! Its own test binary: stopping RabbitMQ must not disturb the other tests. Needs
//! `HAPPENING_TEST_DATABASE_URL`, `HAPPENING_TEST_AMQP_URL` and
//! `HAPPENING_TEST_RABBITMQ_CTL` (scripts/test sets them).

mod common;

use std::process::Stdio;

use common::*;
use happening_postgres::testing;
use reqwest::{Method, StatusCode};
use serde_json::json;

const USERS: usize = 4;
const BEFORE: usize = 2; // bookings per user before the outage
const DURING: usize = 5; // bookings per user while RabbitMQ is down

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_down_and_back_while_the_server_runs_loses_nothing() {
    let Some(amqp) = test_var("HAPPENING_TEST_AMQP_URL") else { return };
    let Some(server) = test_var("HAPPENING_TEST_DATABASE_URL") else { return };
    let Some(rabbit) = test_var("HAPPENING_TEST_RABBITMQ_CTL") else { return };
    let db = testing::fresh_database_url(&server).await;
    let queue = format!("notifications-outage-{}", uuid::Uuid::new_v4().simple());
    let s = Server::start(
        &["--tick-ms", "20"],
        &[("HAPPENING_JWT_SECRET", SECRET), ("DATABASE_URL", &db), ("RABBITMQ_URL", &amqp), ("NOTIFICATIONS_QUEUE", &queue)],
    )
    .await;

    let (admin, _) = s.user("admin").await;
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(s.user(&format!("user{i}")).await);
    }
    let ids: Vec<&str> = users.iter().map(|(_, id)| id.as_str()).collect();
    let org = s.org(&admin, &ids).await;
    let ev = s.event(&admin, &org, 100).await;
    let book_round = |n: usize| {
        let (s, users, ev) = (&s, &users, &ev);
        async move {
            for _ in 0..n {
                for (tok, _) in users {
                    assert_eq!(s.book(tok, json!({ "event_id": ev })).await["status"], "confirmed");
                }
            }
        }
    };
    let depth = || async { metric(&s.metrics().await, "happening_outbox_depth") };

    // 1. Normal operation: the relay keeps the outbox empty.
    book_round(BEFORE).await;
    s.until("the outbox relayed", || async { (depth().await == Some(0)).then_some(()) }).await;

    // 2. RabbitMQ stops: bookings go on, the outbox grows, failures are counted.
    let _restart = RestartOnPanic(rabbit.clone());
    ctl(&rabbit, "stop");
    book_round(DURING).await;
    s.until("relays failing", || async { metric(&s.metrics().await, "happening_notifications_failed_total").filter(|&n| n > 0) }).await;
    assert_eq!(depth().await, Some((USERS * DURING) as u64), "every notification of the outage waits in the outbox");
    s.until("readyz degraded", || async {
        let (st, body) = s.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(st, StatusCode::OK, "a down RabbitMQ degrades, it does not stop bookings: {body}");
        (body["status"] == "degraded").then_some(())
    })
    .await;

    // 3. RabbitMQ is back: the relay reconnects and drains the outbox.
    ctl(&rabbit, "start");
    s.until("the outbox drained", || async { (depth().await == Some(0)).then_some(()) }).await;
    let text = s.metrics().await;
    let confirmed = metric(&text, "happening_notifications_confirmed_total").unwrap();
    assert_eq!(confirmed, (USERS * (BEFORE + DURING)) as u64, "each booking's notification confirmed once: {text}");
    let ready = || async {
        let (st, body) = s.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        (body["status"] == "ready").then_some(())
    };
    s.until("readyz ready again", ready).await;

    let published = metric(&s.metrics().await, "happening_notifications_published_total");

    // 3b. Another outage with nothing to send: the relay has no reason to reconnect, so it
    // is /readyz's own check that finds RabbitMQ back.
    ctl(&rabbit, "stop");
    s.until("readyz degraded again", || async {
        let (st, body) = s.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        (body["status"] == "degraded").then_some(())
    })
    .await;
    ctl(&rabbit, "start");
    s.until("readyz ready with no new booking", ready).await;
    let text = s.metrics().await;
    assert_eq!(metric(&text, "happening_notifications_published_total"), published, "nothing was sent meanwhile: {text}");

    // 4. A worker consumes the queue: every notification ends delivered.
    let mut worker = bin()
        .args(["worker", "--log-level", "warn"])
        .env("DATABASE_URL", &db)
        .env("AMQP_URL", &amqp)
        .env("NOTIFICATIONS_QUEUE", &queue)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the worker");
    for (tok, _) in &users {
        s.until("every notification delivered", || async {
            let all = s.ok(Method::GET, "/notifications", tok, None, StatusCode::OK).await;
            let all = all.as_array().unwrap().clone();
            (all.len() == BEFORE + DURING && all.iter().all(|n| n["status"] == "delivered")).then_some(())
        })
        .await;
    }
    assert_eq!(stop(&mut worker, "the worker").await.code(), Some(0), "the worker stops cleanly");
    assert_eq!(s.stop().await.code(), Some(0));
}
