//! Engine throughput with the in-memory stores, on one core (a current-thread runtime).
//!
//! Run: `cargo bench --bench engine` (add `-- --quick` for a fast look).
//! Figures and how to read them: BENCHMARKS.md.

use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use happening::core::domain::NewEvent;
use happening::core::ids::{EventId, UserId};
use happening::core::{BookRequest, Engine};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

async fn event(engine: &Engine, capacity: u32) -> EventId {
    let admin = engine.upsert_user(&format!("bench-{}", UserId::new()), None, None).await.unwrap();
    let org = engine.create_org(admin.id, "bench").await.unwrap().id;
    let new = NewEvent::new(org, "bench", Utc::now(), capacity);
    engine.create_event(new).await.unwrap().event.id
}

fn one(event: EventId, user: UserId) -> BookRequest {
    BookRequest { event_id: event, user_id: user, seats: Some(1), ..Default::default() }
}

/// Confirmed bookings of one seat each, lowest free seat, history and outbox included.
fn book_confirmed(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("book_confirmed", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let engine = Engine::in_memory();
                let mut e = event(&engine, 1_000_000).await;
                let user = UserId::new();
                let start = Instant::now();
                for i in 0..iters {
                    if i > 0 && i % 1_000_000 == 0 {
                        e = event(&engine, 1_000_000).await;
                    }
                    engine.book(one(e, user)).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// Cancel a confirmed booking of an event of one seat with a waitlist: every cancel frees
/// the seat and promotes the head of the queue.
fn cancel_with_promotion(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cancel_with_promotion", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let engine = Engine::in_memory();
                let e = event(&engine, 1).await;
                let user = UserId::new();
                let mut bookings = Vec::with_capacity(iters as usize + 1);
                for _ in 0..=iters {
                    bookings.push(engine.book(one(e, user)).await.unwrap().id);
                }
                let start = Instant::now();
                for id in &bookings[..iters as usize] {
                    engine.cancel(*id, user, None).await.unwrap();
                }
                let elapsed = start.elapsed();
                assert_eq!(engine.event(e).await.unwrap().booked, 1);
                elapsed
            })
        })
    });
    g.finish();
}

/// A flash sale: 1,000,000 requests of 1 to 4 seats on one event of 100,000 seats; the
/// event sells out and the rest queue.
fn flash_sale(c: &mut Criterion) {
    const REQUESTS: u64 = 1_000_000;
    let rt = runtime();
    let mut g = c.benchmark_group("engine");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(REQUESTS));
    g.bench_function("flash_sale_1m_requests_100k_seats", |b| {
        b.iter_batched(
            || {
                let engine = Engine::in_memory();
                let e = rt.block_on(event(&engine, 100_000));
                (engine, e)
            },
            |(engine, e)| {
                rt.block_on(async {
                    let user = UserId::new();
                    for i in 0..REQUESTS {
                        let req = BookRequest { seats: Some(1 + (i % 4) as u32), ..one(e, user) };
                        engine.book(req).await.unwrap();
                    }
                    assert_eq!(engine.event(e).await.unwrap().available(), 0);
                    engine
                })
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, book_confirmed, cancel_with_promotion, flash_sale);
criterion_main!(benches);
