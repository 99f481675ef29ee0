//! A burst of cancels on one sold-out event with a waitlist: every cancel frees a seat and
//! runs a promotion pass. Measures how the passes share the event.
//!
//! ```text
//! cargo run --release -p happening-redis --example cancel_burst -- <database-url> [clients] [seats] [redis-url]
//! ```
//!
//! One event of `seats` seats, all booked (1 seat each), `seats` bookings waiting; then
//! `clients` tasks cancel every confirmed booking through one engine (PgStore, a pool of
//! `clients` connections; admission by PgAdmission, or by Redis given its URL). Prints cancels/s and latency, the
//! pool's connections in use and the backends waiting on a lock (sampled every 5 ms), and
//! checks the outcome: every waiting booking promoted, no seat twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use happening_core::domain::{BookingStatus, NewEvent};
use happening_core::ids::UserId;
use happening_core::ports::Admission;
use happening_core::testkit::latency::{percentile, percentile_ms};
use happening_core::{BookRequest, Engine};
use happening_postgres::{PgAdmission, PgStore};
use happening_redis::RedisAdmission;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions;

#[derive(Default)]
struct Samples {
    in_use: Vec<u32>,
    lock_waits: Vec<i64>,
}

fn summary(v: &[i64]) -> String {
    let mut v = v.to_vec();
    v.sort_unstable();
    let mean = v.iter().sum::<i64>() as f64 / v.len().max(1) as f64;
    let q = |p| percentile(&v, p).unwrap_or(0);
    format!("mean {mean:.1}, p50 {}, max {}", q(0.5), q(1.0))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: cancel_burst <database-url> [clients] [seats] [redis-url]");
    let clients: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(64);
    let seats: u32 = args.next().map(|a| a.parse().unwrap()).unwrap_or(1_000);
    let redis_url = args.next();
    let opts: PgConnectOptions = url.parse::<PgConnectOptions>().unwrap().disable_statement_logging();
    let pool = PgPoolOptions::new().max_connections(clients as u32).connect_with(opts.clone()).await.unwrap();
    happening_postgres::MIGRATOR.run(&pool).await.unwrap();
    let admission: Arc<dyn Admission> = match &redis_url {
        Some(url) => Arc::new(RedisAdmission::connect(url, &format!("burst-{}", uuid::Uuid::new_v4().simple())).await.expect("Redis")),
        None => Arc::new(PgAdmission::new(pool.clone())),
    };
    let engine = Engine::new(Arc::new(PgStore::new(pool.clone())), admission);

    let admin = engine.upsert_user(&format!("burst-{}", UserId::new()), None, None).await.unwrap();
    let org = engine.create_org(admin.id, "burst").await.unwrap();
    let new = NewEvent::new(org.id, "burst", chrono::Utc::now(), seats);
    let event = engine.create_event(new).await.unwrap().event.id;
    let book = |engine: Engine| async move {
        let user = UserId::new();
        (engine.book(BookRequest { event_id: event, user_id: user, seats: Some(1), ..Default::default() }).await.unwrap(), user)
    };
    let mut confirmed = Vec::new();
    let mut waiting = Vec::new();
    for _ in 0..seats {
        let (b, u) = book(engine.clone()).await;
        assert_eq!(b.status, BookingStatus::Confirmed);
        confirmed.push((b.id, u));
    }
    for _ in 0..seats {
        let (b, _) = book(engine.clone()).await;
        assert_eq!(b.status, BookingStatus::Waiting);
        waiting.push(b.id);
    }

    // Sampler on a connection of its own, outside the pool.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, pool, opts) = (done.clone(), pool.clone(), opts.clone());
        tokio::spawn(async move {
            let side = PgPoolOptions::new().max_connections(1).connect_with(opts).await.unwrap();
            let mut s = Samples::default();
            while !done.load(Ordering::Relaxed) {
                s.in_use.push(pool.size() - pool.num_idle() as u32);
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                    .fetch_one(&side)
                    .await
                    .unwrap();
                s.lock_waits.push(n);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            s
        })
    };

    let queue = Arc::new(std::sync::Mutex::new(confirmed));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (engine, queue) = (engine.clone(), queue.clone());
            tokio::spawn(async move {
                let mut lat_us = Vec::new();
                loop {
                    let Some((id, user)) = queue.lock().unwrap().pop() else { return lat_us };
                    let t = Instant::now();
                    let b = engine.cancel(id, user, None).await.unwrap();
                    assert_eq!(b.status, BookingStatus::Cancelled);
                    lat_us.push(t.elapsed().as_micros() as u64);
                }
            })
        })
        .collect();
    let mut lat_us = Vec::new();
    for t in tasks {
        lat_us.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let s = sampler.await.unwrap();

    lat_us.sort_unstable();
    let p = |q: f64| percentile_ms(&lat_us, q);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let by = if redis_url.is_some() { "Redis" } else { "PgAdmission" };
    println!("{clients} clients cancel {seats} bookings of a sold-out event with {seats} waiting; admission by {by}; {cores} cores");
    println!(
        "cancels/s {:.0}; latency ms p50 {:.1}, p99 {:.1}, max {:.1}; elapsed {:.2} s",
        seats as f64 / elapsed.as_secs_f64(),
        p(0.5),
        p(0.99),
        p(1.0),
        elapsed.as_secs_f64()
    );
    println!("pool connections in use: {}", summary(&s.in_use.iter().map(|&n| n as i64).collect::<Vec<_>>()));
    println!("backends waiting on a lock: {}", summary(&s.lock_waits));

    // The outcome: every waiting booking promoted, each seat once.
    let mut seen = std::collections::HashSet::new();
    for id in &waiting {
        let b = engine.booking(*id).await.unwrap();
        assert_eq!(b.status, BookingStatus::Confirmed, "booking {id} left waiting");
        for s in &b.seat_numbers {
            assert!(seen.insert(*s), "seat {s} given twice");
        }
    }
    let v = engine.event(event).await.unwrap();
    assert_eq!((v.booked, v.available()), (seats, 0));
    println!("outcome: all {seats} waiting bookings promoted, no seat twice");
}
