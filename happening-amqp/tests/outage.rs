//! (b) RabbitMQ stopped during bookings, then started again: bookings keep working while
//! the relay fails (the outbox grows), and once RabbitMQ is back every notification is
//! delivered, exactly once after de-duplication.
//!
//! One test in its own binary: stopping the server must not disturb other tests. It needs
//! `HAPPENING_TEST_RABBITMQ_CTL` (set by scripts/test); without it the test skips, except
//! under CI.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use happening_amqp::AmqpNotifier;
use happening_core::domain::{DeliveryStatus, WaitlistPolicy};
use happening_core::ids::UserId;

const LIMIT: Duration = Duration::from_secs(120);

async fn ctl(ctl: &str, action: &str) {
    let status = tokio::process::Command::new(ctl).arg(action).status().await.expect("run the RabbitMQ control script");
    assert!(status.success(), "RabbitMQ {action}");
}

/// Starts RabbitMQ again if the test ends (panics) while it is stopped, so that the tests
/// that follow find it running.
struct RestartOnDrop {
    ctl: String,
    stopped: bool,
}

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if self.stopped {
            let _ = std::process::Command::new(&self.ctl).arg("start").status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_stopped_during_bookings_loses_nothing() {
    let Some(env) = setup(0).await else { return };
    let Some(rabbit) = std::env::var("HAPPENING_TEST_RABBITMQ_CTL").ok().filter(|v| !v.is_empty()) else {
        assert!(std::env::var_os("CI").is_none(), "HAPPENING_TEST_RABBITMQ_CTL is not set under CI");
        eprintln!("skipped: HAPPENING_TEST_RABBITMQ_CTL is not set (scripts/test sets it)");
        return;
    };
    let h = &env.h;
    let e = h.event(1000, WaitlistPolicy::Fifo).await;
    let notifier = AmqpNotifier::connect(&env.amqp, &env.queue).await.expect("connect").with_timeouts_ms(5_000, 10_000);
    let sink = Arc::new(RecordingSink::default());
    let worker = spawn_worker(&env, worker_config(&env), sink.clone());

    // 1. Normal operation.
    for _ in 0..20 {
        h.book(e, UserId::new(), 1).await.unwrap();
    }
    assert_eq!(relay_all(&h.engine, &notifier).await, 20);

    // 2. RabbitMQ stops: bookings go on, the relay fails, the outbox grows.
    let mut guard = RestartOnDrop { ctl: rabbit.clone(), stopped: true };
    ctl(&rabbit, "stop").await;
    for i in 0..30 {
        h.book(e, UserId::new(), 1).await.unwrap();
        if i % 10 == 9 {
            assert!(h.engine.relay(&notifier, 50).await.is_err(), "the relay fails while RabbitMQ is down");
            // The failed relay's claim is leased; let it lapse so the next relay may retry.
            h.clock.advance_ms(happening_core::RELAY_LEASE_MS + 1_000);
        }
    }
    assert!(!notifier.is_connected());
    let pending = all_pending(&h.engine).await;
    assert_eq!(pending.len(), 30, "the outbox holds every notification of the outage");

    // 3. RabbitMQ is back: the relay reconnects and sends everything.
    ctl(&rabbit, "start").await;
    guard.stopped = false;
    let start = Instant::now();
    loop {
        h.clock.advance_ms(happening_core::RELAY_LEASE_MS + 1_000);
        match h.engine.relay(&notifier, 50).await {
            Ok(_) if all_pending(&h.engine).await.is_empty() => break,
            Ok(_) => {}
            Err(e) => {
                assert!(start.elapsed() < LIMIT, "the relay still fails: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(notifier.is_connected(), "reconnected");

    // 4. The worker reconnected too, and everything reaches the sink once.
    let mut all = Vec::new();
    let statuses_now = {
        // Every notification of the test: the first 20 (already sent) and the 30 of the outage.
        let mut users = Vec::new();
        for b in h.engine.store().event_bookings(e).await.unwrap() {
            users.push(b.user_id);
        }
        for u in users {
            all.extend(h.engine.store().notifications(u, 100, 0).await.unwrap());
        }
        all.len()
    };
    assert_eq!(statuses_now, 50);
    wait_until("everything delivered", LIMIT, || all_have_status(&h.engine, &all, DeliveryStatus::Delivered)).await;
    let stats = worker.shutdown().await;
    let counts = sink.ok_counts();
    assert_eq!(counts.len(), 50, "nothing lost");
    assert!(counts.values().all(|&c| c == 1), "nothing handled twice");
    assert_eq!(stats.handled, 50);
    assert_eq!(depth(&env.amqp, &env.queue).await, 0);

    // The restarted server confirms publishes (no resource alarm blocks them): the tests
    // that run after this one share it.
    publish_raw(&env.amqp, &env.queue, b"probe", None).await;
    assert_eq!(drain(&env.amqp, &env.queue).await.len(), 1);
}
