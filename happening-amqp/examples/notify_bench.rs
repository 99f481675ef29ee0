//! The notification pipeline's throughput, outbox to worker, on real PostgreSQL and RabbitMQ.
//! Books `N` seats in two halves (64 concurrent clients; each booking writes one outbox
//! row) and after each times the relay alone until the outbox is empty: `run_relay` as the
//! server runs it (`Engine::relay` + `AmqpNotifier`, publisher confirms, rows marked sent),
//! with one batch in flight for the first half and two for the second, so that the two
//! compare within one run. Then it times the worker (`Worker` with the shipped settings, a
//! sink that counts, delivery recorded in PostgreSQL) alone until every notification is
//! delivered. Then it books `N` more and runs both at once, as a deployment does: the end
//! to end rate is the second batch over the time until its last notification is delivered.
//!
//! ```sh
//! cargo run --release -p happening-amqp --example notify_bench -- "$DATABASE_URL" "$AMQP_URL" 20000
//! ```
//! The database must exist (it is migrated); the queue is a fresh one (`notify-bench-<uuid>`),
//! left on the broker: run it against a throwaway RabbitMQ such as scripts/services starts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use happening_amqp::{AmqpNotifier, CancellationToken, NotificationMessage, Sink, SinkError, StoreDeliveryLog};
use happening_amqp::{Worker, WorkerConfig};
use happening_core::background::{run_relay, RelayConfig};
use happening_core::domain::NewEvent;
use happening_core::ids::EventId;
use happening_core::{BookRequest, Engine};
use happening_postgres::{PgAdmission, PgStore};

const CLIENTS: u32 = 64;

#[derive(Default)]
struct Counting(AtomicU64);

#[async_trait]
impl Sink for Counting {
    async fn handle(&self, _: &NotificationMessage) -> Result<(), SinkError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The server's relay loop (`run_relay`, batches of 1,000, `in_flight` at once), told to
/// shut down from the start: it relays until the outbox is empty, then returns the count.
async fn drain(engine: &Engine, notifier: &AmqpNotifier, in_flight: usize) -> u64 {
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    let config = RelayConfig { batch: 1000, in_flight, shutdown_timeout_ms: 3_600_000, ..Default::default() };
    run_relay(engine, notifier, config, shutdown).await
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(amqp)) = (args.next(), args.next()) else {
        eprintln!("usage: notify_bench DATABASE_URL AMQP_URL [BOOKINGS]");
        std::process::exit(2);
    };
    let n: u32 = args.next().map(|s| s.parse().expect("BOOKINGS is a number")).unwrap_or(20_000);
    let pool = happening_postgres::connect(&db, happening_postgres::PoolConfig::new(32)).await.expect("PostgreSQL");
    let engine = Engine::new(Arc::new(PgStore::new(pool.clone())), Arc::new(PgAdmission::new(pool)));
    let queue = format!("notify-bench-{}", uuid::Uuid::new_v4().simple());

    // Fill the outbox: one booking, one notification.
    let admin = engine.upsert_user("bench-admin", None, None).await.expect("user");
    let org = engine.create_org(admin.id, "bench").await.expect("org");
    let event = engine
        .create_event(NewEvent::new(org.id, "notify bench", chrono::Utc::now() + chrono::Duration::days(1), 2 * n))
        .await
        .expect("event");

    // 1. The relay alone, until the outbox is empty: half the bookings one batch at a time,
    // the other half with two in flight (as the server relays).
    let notifier = AmqpNotifier::connect(&amqp, &queue).await.expect("RabbitMQ");
    let mut depth = 0;
    for (in_flight, bookings) in [(1, n / 2), (2, n - n / 2)] {
        depth += fill(&engine, event.event.id, bookings).await;
        let t = Instant::now();
        let relayed = drain(&engine, &notifier, in_flight).await;
        let relay_s = t.elapsed().as_secs_f64();
        println!(
            "relayed {relayed} in {relay_s:.2} s ({:.0}/s, {in_flight} batch(es) in flight, publisher confirms, marked sent)",
            relayed as f64 / relay_s
        );
    }

    // 2. The worker alone, until every notification is handled and recorded delivered.
    let shutdown = CancellationToken::new();
    let sink = Arc::new(Counting::default());
    let config = WorkerConfig { queue: queue.clone(), dedup_capacity: 4 * depth as usize, ..Default::default() };
    let prefetch = config.prefetch;
    let worker = Arc::new(Worker::with_sink(&amqp, config, Arc::new(StoreDeliveryLog::new(engine.store().clone())), sink.clone()));
    let t = Instant::now();
    let consumer = tokio::spawn({
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        async move { worker.run(shutdown).await }
    });
    wait_handled(&worker, depth).await;
    let worker_s = t.elapsed().as_secs_f64();
    println!("worker handled {depth} in {worker_s:.2} s ({:.0}/s, prefetch {prefetch}, each recorded delivered)", depth as f64 / worker_s);

    // 3. Both at once (the worker keeps running): N more bookings relayed and delivered.
    let second = fill(&engine, event.event.id, n).await;
    let t = Instant::now();
    drain(&engine, &notifier, 2).await;
    wait_handled(&worker, depth + second).await;
    let both_s = t.elapsed().as_secs_f64();
    println!("relay and worker at once: {second} delivered in {both_s:.2} s: end to end {:.0} notifications/s", second as f64 / both_s);
    shutdown.cancel();
    consumer.await.unwrap();
    let stats = worker.stats();
    println!("duplicates {}", stats.duplicates);
    assert_eq!(stats.handled, depth + second, "each notification handled once");
    assert_eq!(sink.0.load(Ordering::Relaxed), depth + second, "each handed to the sink once");
}

/// Books `n` seats of `event` with 64 clients; returns how many notifications it queued.
async fn fill(engine: &Engine, event_id: EventId, n: u32) -> u64 {
    let before = engine.outbox_depth().await.expect("depth");
    let t = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let user = engine.upsert_user(&format!("bench-user-{c}"), None, None).await.expect("user").id;
                for _ in (c..n).step_by(CLIENTS as usize) {
                    engine.book(BookRequest { event_id, user_id: user, seats: Some(1), ..Default::default() }).await.expect("book");
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let depth = engine.outbox_depth().await.expect("depth");
    println!("booked {n} in {:.2} s ({:.0}/s); outbox depth {depth}", t.elapsed().as_secs_f64(), n as f64 / t.elapsed().as_secs_f64());
    assert!(depth >= before + n as u64, "one notification per booking");
    depth - before
}

/// Waits until `worker` has handled `total` messages (at most 10 minutes).
async fn wait_handled(worker: &Worker, total: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while worker.stats().handled < total {
        assert!(Instant::now() < deadline, "not delivered in 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
