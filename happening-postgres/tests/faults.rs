//! Faults against PostgreSQL: connections killed mid-operation (`pg_terminate_backend`) and
//! the server stopped during bookings. Operations fail with a backend error or succeed
//! whole; afterwards every invariant holds, every booking has its history and its
//! notifications, and what was confirmed is still there after the server comes back.
//!
//! One test in its own binary: stopping the server must not disturb other tests.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use happening_core::domain::{BookingStatus, WaitlistPolicy};
use happening_core::ids::{BookingId, EventId, UserId};
use happening_core::testkit::{invariants, Harness};
use happening_core::{BookRequest, Engine, Error};
use sqlx::PgPool;

/// Books and cancels until `stop`; returns the bookings confirmed or queued, and counts the
/// operations that failed on the backend in `failed` (shared, so the test can watch it).
async fn worker(engine: Engine, event: EventId, stop: Arc<AtomicBool>, failed: Arc<AtomicU32>, seed: u32) -> Vec<BookingId> {
    let user = UserId::new();
    let mut ok = Vec::new();
    let mut i = seed;
    while !stop.load(Ordering::Relaxed) {
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        if i.is_multiple_of(5) && !ok.is_empty() {
            let id = ok[(i as usize / 5) % ok.len()];
            match engine.cancel(id, user, None).await {
                Ok(_) | Err(Error::Conflict { .. }) => {}
                Err(Error::Backend(_)) => _ = failed.fetch_add(1, Ordering::Relaxed),
                Err(e) => panic!("cancel: unexpected {e}"),
            }
            continue;
        }
        let req = BookRequest { event_id: event, user_id: user, seats: Some(1 + i % 2), ..Default::default() };
        match engine.book(req).await {
            Ok(b) => ok.push(b.id),
            Err(Error::Backend(_)) => _ = failed.fetch_add(1, Ordering::Relaxed),
            Err(e) => panic!("book: unexpected {e}"),
        }
    }
    ok
}

type Workers = Vec<tokio::task::JoinHandle<Vec<BookingId>>>;

async fn run_workers(h: &Harness, event: EventId, stop: Arc<AtomicBool>, failed: Arc<AtomicU32>) -> Workers {
    let engines = h.engines().into_iter().cycle().take(8).enumerate();
    engines.map(|(i, en)| tokio::spawn(worker(en, event, stop.clone(), failed.clone(), i as u32 + 1))).collect()
}

/// Waits for the workers: every booking answered OK.
async fn join(workers: Workers) -> Vec<BookingId> {
    let mut confirmed = Vec::new();
    for w in workers {
        confirmed.extend(w.await.unwrap());
    }
    confirmed
}

async fn settle(h: &Harness, event: EventId, pool: &PgPool, confirmed: &[BookingId]) {
    // A fault between freeing seats and promoting leaves people waiting for free seats:
    // reconcile repairs it, as the server does on start.
    h.engine.reconcile_event(event).await.expect("reconcile");
    invariants::check(&h.engine, event).await.unwrap_or_else(|e| panic!("invariant broken after faults: {e}"));
    for id in confirmed {
        h.engine.booking(*id).await.unwrap_or_else(|e| panic!("booking {id} answered OK but is gone: {e}"));
    }
    let incomplete: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings b WHERE b.event_id = $1 AND \
         (SELECT count(*) FROM booking_history h WHERE h.booking_id = b.id) <> \
         (SELECT count(*) FROM notifications n WHERE n.booking_id = b.id) \
         OR NOT EXISTS (SELECT 1 FROM booking_history h WHERE h.booking_id = b.id)",
    )
    .bind(event.0)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(incomplete, 0, "bookings without their history or notifications");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_and_a_stopped_server_leave_nothing_half_done() {
    // The server's wait for a pooled connection (5 s), not the tests' (300 s): while the
    // server is down below, operations waiting for a connection must fail.
    let Some((h, db_url)) = common::setup_pools(1, happening_postgres::PoolConfig::new(8), "").await else {
        return;
    };
    let pool = PgPool::connect(&db_url).await.unwrap();

    // 1. Connections terminated while bookings and cancellations run.
    let event = h.event(300, WaitlistPolicy::Fifo).await;
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU32::new(0));
    let workers = run_workers(&h, event, stop.clone(), failed.clone()).await;
    let mut killed = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
        killed += n;
    }
    stop.store(true, Ordering::Relaxed);
    let confirmed = join(workers).await;
    let failed = failed.load(Ordering::Relaxed);
    println!("terminated {killed} busy connections; {failed} operations failed; {} succeeded", confirmed.len());
    assert!(!confirmed.is_empty(), "bookings went through between the kills");
    settle(&h, event, &pool, &confirmed).await;

    // 2. The server stopped during bookings, then started again.
    let Some(ctl) = std::env::var("HAPPENING_TEST_PG_CTL").ok() else {
        assert!(std::env::var_os("CI").is_none(), "HAPPENING_TEST_PG_CTL is not set under CI");
        return;
    };
    let event = h.event(300, WaitlistPolicy::Fifo).await;
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU32::new(0));
    let workers = run_workers(&h, event, stop.clone(), failed.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = tokio::process::Command::new(&ctl).arg("stop").status().await.unwrap();
    assert!(status.success(), "stopping PostgreSQL");
    // Stay down until an operation has failed: one in flight at the stop fails at once; the
    // others wait for a connection and fail when the pool's acquire timeout (5 s) runs out.
    // Restarting sooner would let them all succeed on new connections, proving nothing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while failed.load(Ordering::Relaxed) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = tokio::process::Command::new(&ctl).arg("start").status().await.unwrap();
    assert!(status.success(), "starting PostgreSQL");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let confirmed = join(workers).await;
    let failed = failed.load(Ordering::Relaxed);
    println!("server stop: {failed} operations failed; {} succeeded", confirmed.len());
    assert!(failed > 0, "the stop must have failed some operations");
    settle(&h, event, &pool, &confirmed).await;
    let still = h.engine.store().event_bookings(event).await.unwrap();
    assert!(still.iter().any(|b| b.status == BookingStatus::Confirmed), "confirmed bookings survive the restart");
}
