//! Embedding the engine on PostgreSQL and Redis, as one replica of a deployment would run:
//! the store migrated, Redis rebuilt from it (`ready_engine`), the background work started,
//! a sale of 3 seats to 5 buyers, and the background stopped (the outbox relayed first).
//!
//! Run (servers of your own; `scripts/services` starts throwaway ones):
//! `DATABASE_URL=postgres://... REDIS_URL=redis://... cargo run --example postgres_redis`

use std::sync::Arc;

use happening::core::background::{self, BackgroundConfig};
use happening::core::domain::{BookingStatus, NewEvent};
use happening::core::ids::UserId;
use happening::core::memory::MemoryNotifier;
use happening::core::BookRequest;
use happening::postgres::{PgStore, PoolConfig};
use happening::redis::{RedisTarget, DEFAULT_PREFIX};

/// Books a small sale on the servers at `database_url` and `redis_url`, with Redis keys under
/// `prefix`; returns how many bookings were confirmed and how many wait.
async fn sale(database_url: &str, redis_url: &str, prefix: &str) -> Result<(usize, usize), Box<dyn std::error::Error>> {
    // Connecting runs the migrations (safe to run from every replica at once).
    let pool = happening::postgres::connect(database_url, PoolConfig::new(8)).await?;
    let target = RedisTarget::Single(redis_url.to_string());
    let ready = happening::redis::ready_engine(Arc::new(PgStore::new(pool)), &target, prefix).await?;
    println!("Redis rebuilt from PostgreSQL: {} event(s) had drifted", ready.reconciled.len());
    let engine = ready.engine;
    // A server relays notifications to RabbitMQ (happening::amqp); here they stay in memory.
    let notifier = MemoryNotifier::new();
    let background = background::spawn(engine.clone(), Arc::new(notifier.clone()), BackgroundConfig::default());

    let organizer = engine.upsert_user(&format!("organizer-{}", UserId::new()), None, None).await?;
    let org = engine.create_org(organizer.id, "Opera House").await?;
    let event = engine.create_event(NewEvent::new(org.id, "Premiere", chrono::Utc::now(), 3)).await?.event;
    let mut tally = (0, 0);
    for _ in 0..5 {
        let b = engine.book(BookRequest { event_id: event.id, user_id: UserId::new(), seats: Some(1), ..Default::default() }).await?;
        match b.status {
            BookingStatus::Confirmed => tally.0 += 1,
            _ => tally.1 += 1,
        }
        println!("{:?} seats {:?} waiting number {:?}", b.status, b.seat_numbers, b.waiting_number);
    }
    background.stop().await;
    println!("{} notifications relayed", notifier.take().len());
    Ok(tally)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (Ok(database_url), Ok(redis_url)) = (std::env::var("DATABASE_URL"), std::env::var("REDIS_URL")) else {
        return Err("set DATABASE_URL and REDIS_URL".into());
    };
    sale(&database_url, &redis_url, DEFAULT_PREFIX).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The example on the test servers (a fresh database, a key prefix of its own).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sale_confirms_three_and_queues_two() {
        let Some(server) = happening::postgres::testing::server_url() else { return };
        let redis_url = match std::env::var("HAPPENING_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var_os("CI").is_some() => panic!("HAPPENING_TEST_REDIS_URL is not set, and CI is"),
            _ => return,
        };
        let database_url = happening::postgres::testing::fresh_database_url(&server).await;
        let prefix = format!("example-{}", uuid::Uuid::new_v4().simple());
        let tally = super::sale(&database_url, &redis_url, &prefix).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tally, (3, 2));
    }
}
