//! Booking throughput on PostgreSQL, side by side with the original platform's design, in one run.
//!
//! ```text
//! cargo run --release -p happening-postgres --example pg_flash -- <database-url> [clients] [bookings]
//! ```
//!
//! Scenarios, each with `clients` concurrent clients booking 1 seat at a time:
//! - the engine (PgStore + PgAdmission) on one hot event, and spread over 1,000 events;
//! - the baseline, the original platform's design: `SELECT ... FOR UPDATE` on the event row,
//!   decrement its counter, insert the booking, in one transaction; same two shapes.
//!
//! The engine runs on the pool the server opens (`happening_postgres::connect`: 32
//! connections, the server's default, all opened and warmed up first); the baseline on a pool
//! of one connection per client. Commits are durable (`synchronous_commit` is printed, and
//! forced on for the baseline); the server's own fsync setting is printed too, so that a
//! figure is never quoted without them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use happening_core::domain::NewEvent;
use happening_core::ids::{EventId, UserId};
use happening_core::testkit::latency::percentile_ms;
use happening_core::{BookRequest, Engine};
use happening_postgres::{PgAdmission, PgStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

struct Run {
    bookings: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Run {
    fn line(&self, name: &str) -> String {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        let p = |q: f64| percentile_ms(&l, q);
        format!(
            "| {name:<34} | {:>9.0} | {:>6.1} | {:>6.1} | {:>6.1} |",
            self.bookings as f64 / self.elapsed.as_secs_f64(),
            p(0.50),
            p(0.99),
            p(1.0)
        )
    }
}

/// Runs `total` operations over `clients` tasks; `op(i)` does operation `i`.
async fn drive<F, Fut>(clients: usize, total: u64, op: F) -> Run
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return lat;
                    }
                    let t = Instant::now();
                    op(i).await;
                    lat.push(t.elapsed().as_micros() as u64);
                }
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.unwrap());
    }
    Run { bookings: total, elapsed: start.elapsed(), latencies_us }
}

async fn engine_events(engine: &Engine, n: usize, capacity: u32) -> Vec<EventId> {
    let admin = engine.upsert_user(&format!("bench-{}", UserId::new()), None, None).await.unwrap();
    let org = engine.create_org(admin.id, "bench").await.unwrap();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let new = NewEvent::new(org.id, format!("bench {i}"), chrono::Utc::now(), capacity);
        out.push(engine.create_event(new).await.unwrap().event.id);
    }
    out
}

async fn baseline_setup(pool: &PgPool, n: usize, capacity: i32) -> Vec<uuid::Uuid> {
    sqlx::query("CREATE TABLE IF NOT EXISTS baseline_events (id uuid PRIMARY KEY, total_slots int NOT NULL, available_slots int NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS baseline_bookings (id uuid PRIMARY KEY, event_id uuid NOT NULL REFERENCES baseline_events(id), \
         user_id uuid NOT NULL, seats int NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(pool)
    .await
    .unwrap();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let id = uuid::Uuid::new_v4();
        sqlx::query("INSERT INTO baseline_events VALUES ($1, $2, $2)").bind(id).bind(capacity).execute(pool).await.unwrap();
        ids.push(id);
    }
    ids
}

/// The original platform's design: lock the event row, check and decrement, insert.
async fn baseline_book(pool: &PgPool, event: uuid::Uuid) {
    let mut tx = pool.begin().await.unwrap();
    let available: i32 = sqlx::query_scalar("SELECT available_slots FROM baseline_events WHERE id = $1 FOR UPDATE")
        .bind(event)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let status = if available >= 1 { "confirmed" } else { "waiting" };
    if available >= 1 {
        sqlx::query("UPDATE baseline_events SET available_slots = available_slots - 1 WHERE id = $1")
            .bind(event)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO baseline_bookings (id, event_id, user_id, seats, status) VALUES ($1, $2, $3, 1, $4)")
        .bind(uuid::Uuid::new_v4())
        .bind(event)
        .bind(uuid::Uuid::new_v4())
        .bind(status)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: pg_flash <database-url> [clients] [bookings]");
    let clients: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(64);
    let total: u64 = args.next().map(|a| a.parse().unwrap()).unwrap_or(20_000);
    let opts: PgConnectOptions =
        url.parse::<PgConnectOptions>().unwrap().options([("synchronous_commit", "on")]).disable_statement_logging();
    let engine_pool = happening_postgres::connect(&url, happening_postgres::PoolConfig::new(32)).await.unwrap();
    let pool = PgPoolOptions::new().max_connections(clients as u32).connect_with(opts).await.unwrap();
    let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&pool).await.unwrap();
    let sync: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&engine_pool).await.unwrap();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!(
        "PostgreSQL fsync={fsync}, synchronous_commit={sync} (engine) / on (baseline); {clients} clients, {total} bookings of 1 seat per scenario; {cores} cores\n"
    );
    println!("| scenario                           | bookings/s | p50 ms | p99 ms | max ms |");
    println!("|------------------------------------|-----------:|-------:|-------:|-------:|");

    let engine = Engine::new(Arc::new(PgStore::new(engine_pool.clone())), Arc::new(PgAdmission::new(engine_pool)));
    let many = 1_000usize;
    let hot = engine_events(&engine, 1, total as u32).await[0];
    let run = {
        let engine = engine.clone();
        drive(clients, total, move |_| {
            let engine = engine.clone();
            async move {
                let b =
                    engine.book(BookRequest { event_id: hot, user_id: UserId::new(), seats: Some(1), ..Default::default() }).await.unwrap();
                assert_eq!(b.status, happening_core::domain::BookingStatus::Confirmed);
            }
        })
        .await
    };
    println!("{}", run.line("engine, one hot event"));
    let v = engine.event(hot).await.unwrap();
    assert_eq!((v.booked as u64, v.available()), (total, 0), "exactly the capacity booked, no oversell");

    let baseline_hot = baseline_setup(&pool, 1, total as i32).await[0];
    let run = {
        let pool = pool.clone();
        drive(clients, total, move |_| {
            let pool = pool.clone();
            async move { baseline_book(&pool, baseline_hot).await }
        })
        .await
    };
    println!("{}", run.line("baseline (FOR UPDATE), one hot event"));

    let events = Arc::new(engine_events(&engine, many, (total / many as u64 + 1) as u32).await);
    let run = {
        let (engine, events) = (engine.clone(), events.clone());
        drive(clients, total, move |i| {
            let (engine, e) = (engine.clone(), events[i as usize % many]);
            async move {
                engine.book(BookRequest { event_id: e, user_id: UserId::new(), seats: Some(1), ..Default::default() }).await.unwrap();
            }
        })
        .await
    };
    println!("{}", run.line("engine, 1,000 events"));

    let base_events = Arc::new(baseline_setup(&pool, many, (total / many as u64 + 1) as i32).await);
    let run = {
        let (pool, events) = (pool.clone(), base_events.clone());
        drive(clients, total, move |i| {
            let (pool, e) = (pool.clone(), events[i as usize % many]);
            async move { baseline_book(&pool, e).await }
        })
        .await
    };
    println!("{}", run.line("baseline (FOR UPDATE), 1,000 events"));
}
