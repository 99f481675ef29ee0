//! Embedding the engine: in-memory stores, an event of 5 seats, the seeds' demo.
//!
//! Run: `cargo run --example embed`

use happening::core::domain::{NewEvent, WaitlistPolicy};
use happening::core::ids::UserId;
use happening::core::memory::MemoryNotifier;
use happening::core::{BookRequest, Engine};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), happening::core::Error> {
    let engine = Engine::in_memory();
    // Events belong to an organization; its creator is its orgAdmin.
    let organizer = engine.upsert_user("organizer", Some("org@example.org"), None).await?;
    let org = engine.create_org(organizer.id, "Rust Society").await?;
    let event = engine
        .create_event(NewEvent {
            org_id: org.id,
            name: "Rust meetup".into(),
            description: None,
            category: Some("meetup".into()),
            event_date: chrono::Utc::now(),
            capacity: 5,
            policy: WaitlistPolicy::Fifo,
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

    // Notifications wait in the outbox until a relay hands them to a Notifier.
    let notifier = MemoryNotifier::new();
    engine.relay(&notifier, 100).await?;
    for n in notifier.take() {
        println!("notify {}: {}", if n.user_id == alice { "alice" } else { "bob" }, n.message());
    }
    Ok(())
}
