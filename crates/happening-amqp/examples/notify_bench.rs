//! The notification pipeline's throughput, outbox to worker, on real PostgreSQL and RabbitMQ:
//! books `N` seats (64 concurrent clients; each booking writes one outbox row), then runs
//! the relay (`Engine::relay` + `AmqpNotifier`, publisher confirms) and a worker (`Worker`,
//! a sink that counts, delivery recorded in PostgreSQL), one after the other, and times each:
//! how long until the outbox is empty (relayed and marked sent), then until every
//! notification is handled and recorded `delivered`.
//!
//! ```sh
//! cargo run --release -p happening-amqp --example notify_bench -- "$DATABASE_URL" "$AMQP_URL" 20000
//! ```
//! The database must exist (it is migrated); the queue is a fresh one, deleted after.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use happening_amqp::{AmqpNotifier, CancellationToken, NotificationMessage, Sink, SinkError, StoreDeliveryLog};
use happening_amqp::{Worker, WorkerConfig};
use happening_core::domain::{NewEvent, WaitlistPolicy};
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

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(amqp)) = (args.next(), args.next()) else {
        eprintln!("usage: notify_bench DATABASE_URL AMQP_URL [BOOKINGS]");
        std::process::exit(2);
    };
    let n: u32 = args.next().map(|s| s.parse().expect("BOOKINGS is a number")).unwrap_or(20_000);
    let pool = happening_postgres::connect(&db, 32).await.expect("PostgreSQL");
    let engine = Engine::new(Arc::new(PgStore::new(pool.clone())), Arc::new(PgAdmission::new(pool)));
    let queue = format!("notify-bench-{}", uuid::Uuid::new_v4().simple());

    // Fill the outbox: one booking, one notification.
    let admin = engine.upsert_user("bench-admin", None, None).await.expect("user");
    let org = engine.create_org(admin.id, "bench").await.expect("org");
    let event = engine
        .create_event(NewEvent {
            org_id: org.id,
            name: "notify bench".into(),
            description: None,
            category: None,
            event_date: chrono::Utc::now() + chrono::Duration::days(1),
            capacity: n,
            policy: WaitlistPolicy::Fifo,
        })
        .await
        .expect("event");
    let before = engine.outbox_depth().await.expect("depth");
    let t = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (engine, event_id) = (engine.clone(), event.event.id);
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

    // 1. The relay alone (batches of 1,000, as the server relays), until the outbox is empty.
    let t = Instant::now();
    let notifier = AmqpNotifier::connect(&amqp, &queue).await.expect("RabbitMQ");
    let mut relayed = 0u64;
    while relayed < depth {
        relayed += engine.relay(&notifier, 1000).await.expect("relay") as u64;
    }
    let relay_s = t.elapsed().as_secs_f64();
    println!("relayed {relayed} in {relay_s:.2} s ({:.0}/s, publisher confirms, marked sent)", relayed as f64 / relay_s);

    // 2. The worker alone, until every notification is handled and recorded delivered.
    let shutdown = CancellationToken::new();
    let sink = Arc::new(Counting::default());
    let worker = Arc::new(Worker::with_sink(
        &amqp,
        WorkerConfig { queue: queue.clone(), prefetch: 200, dedup_capacity: 2 * depth as usize, ..Default::default() },
        Arc::new(StoreDeliveryLog::new(engine.store().clone())),
        sink.clone(),
    ));
    let t = Instant::now();
    let consumer = tokio::spawn({
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        async move { worker.run(shutdown).await }
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    while worker.stats().handled < depth {
        assert!(Instant::now() < deadline, "not delivered in 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let worker_s = t.elapsed().as_secs_f64();
    shutdown.cancel();
    consumer.await.unwrap();
    let stats = worker.stats();
    println!(
        "worker handled {} in {worker_s:.2} s ({:.0}/s, prefetch 200, each recorded delivered); duplicates {}",
        stats.handled,
        stats.handled as f64 / worker_s,
        stats.duplicates
    );
    assert_eq!(stats.handled, depth, "each notification handled once");
    assert_eq!(sink.0.load(Ordering::Relaxed), depth, "each handed to the sink once");
    println!("end to end: {:.0} notifications/s", depth as f64 / (relay_s + worker_s));
}
