//! Embedding the engine: in-memory stores, an event of 5 seats; two bookings of 3 (one
//! waits), two seats given up, the waiting one promoted.
//!
//! Run: `cargo run --example embed`

use std::sync::Arc;
use std::time::Duration;

use happening::core::background::{self, BackgroundConfig};
use happening::core::domain::NewEvent;
use happening::core::ids::UserId;
use happening::core::memory::MemoryNotifier;
use happening::core::{BookRequest, Engine, HoldRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), happening::core::Error> {
    let engine = Engine::in_memory();
    // Events belong to an organization; its creator is its orgAdmin.
    let organizer = engine.upsert_user("organizer", Some("org@example.org"), None).await?;
    let org = engine.create_org(organizer.id, "Rust Society").await?;
    let event = engine
        .create_event(NewEvent {
            category: Some("meetup".into()),
            // At most 10 bookings wait; more are refused (`Conflict::WaitlistFull`).
            waitlist_max: Some(10),
            ..NewEvent::new(org.id, "Rust meetup", chrono::Utc::now(), 5)
        })
        .await?
        .event;

    let (alice, bob) = (UserId::new(), UserId::new());
    let book = |user, seats| BookRequest { event_id: event.id, user_id: user, seats: Some(seats), ..Default::default() };
    let a = engine.book(book(alice, 3)).await?;
    let b = engine.book(book(bob, 3)).await?;
    println!("alice: {:?} seats {:?}", a.status, a.seat_numbers);
    println!("bob:   {:?} waiting number {:?}", b.status, b.waiting_number);

    engine.cancel_seats(a.id, alice, &[1, 2], None).await?;
    let b = engine.booking(b.id).await?;
    println!("alice cancels seats 1 and 2 -> bob is {:?} with seats {:?}", b.status, b.seat_numbers);

    // The engine works only when called: holds and offers past their time, events marked for
    // repair and the outbox wait for its background work (feature `runtime`), which the
    // server runs too (every 250 ms; here every 50).
    let notifier = MemoryNotifier::new();
    let config = BackgroundConfig { tick: Duration::from_millis(50), ..BackgroundConfig::default() };
    let background = background::spawn(engine.clone(), Arc::new(notifier.clone()), config);

    // A hold of 1 s on the last free seat: it expires by itself.
    let carol = UserId::new();
    let hold = engine.hold(HoldRequest { event_id: event.id, user_id: carol, seats: Some(1), seat_numbers: None, ttl_ms: 1_000 }).await?;
    println!("carol holds seat {:?} for 1 s", hold.seat_numbers);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    println!("after 1.2 s the seats taken are {:?}", engine.seat_map(event.id).await?.taken);
    // Stopping relays what is left in the outbox first.
    background.stop().await;

    // Notifications waited in the outbox until the relay handed them to the Notifier.
    for n in notifier.take() {
        let name = [(alice, "alice"), (bob, "bob"), (carol, "carol")].iter().find(|(id, _)| *id == n.user_id).map_or("?", |p| p.1);
        println!("notify {name}: {}", n.message());
    }
    Ok(())
}
