//! A flash sale through the engine on PostgreSQL + Redis, side by side in one run with the
//! original platform's Redis design: `DECRBY` the event's counter, and if it went negative `INCRBY` it
//! back and insert a waiting row, else insert a confirmed row (one autocommit `INSERT` each,
//! no seat numbers, no history, no outbox, no queue order).
//!
//! ```sh
//! cargo run --release -p happening-redis --example redis_flash -- "$DATABASE_URL" "$REDIS_URL" 256 100000 1000
//! ```
//! Arguments: clients, requests, seats (1 seat per request). The database must exist.
//!
//! Not measured here, the baseline's flaw: between a request's `DECRBY` and its `INCRBY`,
//! others see a counter lower than the seats really free and are turned away from free
//! seats (with requests of several seats).

use std::sync::Arc;
use std::time::{Duration, Instant};

use happening_core::domain::{BookingStatus, NewEvent};
use happening_core::testkit::latency::percentile_ms;
use happening_core::{BookRequest, Engine};
use happening_postgres::PgStore;
use happening_redis::RedisAdmission;
use redis::AsyncCommands;
use sqlx::PgPool;
use uuid::Uuid;

struct Run {
    name: &'static str,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    confirmed_seats: u64,
    waiting: u64,
}

impl Run {
    fn print(&mut self, requests: u32) {
        self.latencies_us.sort_unstable();
        let q = |p: f64| percentile_ms(&self.latencies_us, p);
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |",
            self.name,
            requests as f64 / self.elapsed.as_secs_f64(),
            q(0.5),
            q(0.95),
            q(0.99),
            q(1.0),
            self.confirmed_seats,
            self.waiting
        );
    }
}

async fn engine_run(pool: PgPool, redis_url: &str, clients: u32, requests: u32, seats: u32) -> Run {
    let prefix = format!("flash-{}", Uuid::new_v4().simple());
    let admission = RedisAdmission::connect(redis_url, &prefix).await.expect("Redis");
    let engine = Engine::new(Arc::new(PgStore::new(pool)), Arc::new(admission));
    let admin = engine.upsert_user("flash-admin", None, None).await.expect("user");
    let org = engine.create_org(admin.id, "flash").await.expect("org");
    let event = engine
        .create_event(NewEvent::new(org.id, "flash", chrono::Utc::now() + chrono::Duration::days(1), seats))
        .await
        .expect("event")
        .event
        .id;
    let t = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let user = engine.upsert_user(&format!("flash-user-{c}"), None, None).await.expect("user").id;
                let mut lat = Vec::new();
                for _ in (c..requests).step_by(clients as usize) {
                    let t = Instant::now();
                    engine.book(BookRequest { event_id: event, user_id: user, seats: Some(1), ..Default::default() }).await.expect("book");
                    lat.push(t.elapsed().as_micros() as u64);
                }
                lat
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.unwrap());
    }
    let elapsed = t.elapsed();
    let bookings = engine.store().event_bookings(event).await.expect("bookings");
    let confirmed_seats = bookings.iter().filter(|b| b.status == BookingStatus::Confirmed).map(|b| b.seat_numbers.len() as u64).sum();
    let waiting = bookings.iter().filter(|b| b.status == BookingStatus::Waiting).count() as u64;
    happening_core::testkit::invariants::check(&engine, event).await.expect("invariants hold");
    Run { name: "engine, PostgreSQL + Redis", elapsed, latencies_us, confirmed_seats, waiting }
}

async fn baseline_run(pool: PgPool, redis_url: &str, clients: u32, requests: u32, seats: u32) -> Run {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS baseline_bookings (id uuid PRIMARY KEY, event_id uuid NOT NULL, user_id uuid NOT NULL, \
         seats integer NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&pool)
    .await
    .expect("baseline table");
    let event = Uuid::new_v4();
    let key = format!("baseline:{event}:slots");
    let client = redis::Client::open(redis_url).expect("Redis URL");
    let conn = redis::aio::ConnectionManager::new(client).await.expect("Redis");
    let _: () = conn.clone().set(&key, seats).await.expect("SET");
    let t = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (pool, mut conn, key) = (pool.clone(), conn.clone(), key.clone());
            tokio::spawn(async move {
                let user = Uuid::new_v4();
                let mut lat = Vec::new();
                for _ in (c..requests).step_by(clients as usize) {
                    let n = 1;
                    let t = Instant::now();
                    // The original platform's: take, and give back if that went below zero.
                    let left: i64 = conn.decr(&key, n).await.expect("DECRBY");
                    let status = if left < 0 {
                        let _: i64 = conn.incr(&key, n).await.expect("INCRBY");
                        "waiting"
                    } else {
                        "confirmed"
                    };
                    sqlx::query("INSERT INTO baseline_bookings (id, event_id, user_id, seats, status) VALUES ($1, $2, $3, $4, $5)")
                        .bind(Uuid::new_v4())
                        .bind(event)
                        .bind(user)
                        .bind(n)
                        .bind(status)
                        .execute(&pool)
                        .await
                        .expect("insert");
                    lat.push(t.elapsed().as_micros() as u64);
                }
                lat
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.unwrap());
    }
    let elapsed = t.elapsed();
    let (confirmed_seats, waiting): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(seats) FILTER (WHERE status = 'confirmed'), 0), count(*) FILTER (WHERE status = 'waiting') \
         FROM baseline_bookings WHERE event_id = $1",
    )
    .bind(event)
    .fetch_one(&pool)
    .await
    .expect("count");
    Run {
        name: "baseline: DECRBY/INCRBY, then INSERT",
        elapsed,
        latencies_us,
        confirmed_seats: confirmed_seats as u64,
        waiting: waiting as u64,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pos: Vec<&String> = args.iter().collect();
    if pos.len() < 2 {
        eprintln!("usage: redis_flash DATABASE_URL REDIS_URL [CLIENTS] [REQUESTS] [SEATS]");
        std::process::exit(2);
    }
    let num = |i: usize, d: u32| pos.get(i).map(|s| s.parse().expect("a number")).unwrap_or(d);
    let (clients, requests, seats) = (num(2, 256), num(3, 100_000), num(4, 1_000));
    let pool = happening_postgres::connect(pos[0], happening_postgres::PoolConfig::new(32)).await.expect("PostgreSQL");
    println!("{clients} clients, {requests} requests of 1 seat, {seats} seats");
    println!("| run | requests/s | p50 ms | p95 ms | p99 ms | max ms | seats confirmed | waiting |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut e = engine_run(pool.clone(), pos[1], clients, requests, seats).await;
    e.print(requests);
    let mut b = baseline_run(pool, pos[1], clients, requests, seats).await;
    b.print(requests);
    assert_eq!(e.confirmed_seats, seats as u64, "the engine sells every seat, no more");
    assert_eq!(b.confirmed_seats, seats as u64, "the baseline sells every seat, no more (1 seat per request)");
}
