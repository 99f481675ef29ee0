//! Concurrency on PostgreSQL + Redis: four engines, each with its own pool and its own Redis
//! connection (as four servers), race thousands of tasks for one event's seats.

mod common;

happening_core::race_tests!(|| common::harness(3, 16), seats = 150, tasks = 2_000);

/// The flash sale at the port: 2,000 single-seat takes on four connections for 500 seats.
/// Exactly 500 succeed, and every refusal saw zero free seats: no request is turned away
/// while a seat is free (the original platform's DECRBY-then-INCRBY let the counter dip below zero, and
/// refused requests in that instant).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takes_never_refuse_a_free_seat_nor_oversell() {
    use std::collections::BTreeSet;

    use happening_core::ids::{BookingId, EventId};
    use happening_core::ports::{SlotCounter, Take, TakeRequest, WaitEntry, Waitlist};
    use happening_redis::RedisAdmission;

    let Some(url) = common::redis_url() else {
        return;
    };
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let mut admissions = Vec::new();
    for _ in 0..4 {
        admissions.push(RedisAdmission::connect(&url, &prefix).await.unwrap());
    }
    let event = EventId::new();
    admissions[0].set_free(event, 500).await.unwrap();
    let tasks: Vec<_> = (0..2_000)
        .map(|i| {
            let a = admissions[i % 4].clone();
            tokio::spawn(
                async move { a.take(event, TakeRequest { want: 1, min: 1, behind_queue: true, waitlist_max: None }).await.unwrap() },
            )
        })
        .collect();
    let (mut taken, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Take::Taken(1) => taken += 1,
            Take::Short { free: 0, queued: false } => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((taken, refused), (500, 1_500));
    assert_eq!(admissions[1].free(event).await.unwrap(), 0);

    // Seats given back one by one while four connections promote: each waiting booking is
    // promoted exactly once, each with a seat that was given, never more.
    let entries: Vec<WaitEntry> = (0..200u64).map(|seq| WaitEntry { booking: BookingId::new(), seats: 1, seq: 1_000 + seq }).collect();
    let version = admissions[0].version(event).await.unwrap();
    assert!(admissions[0].restore(event, version, 0, entries.clone()).await.unwrap());
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let a = admissions[i % 4].clone();
            tokio::spawn(async move {
                a.give(event, 1).await.unwrap();
                a.pop_fitting(event, happening_core::domain::WaitlistPolicy::Fifo).await.unwrap()
            })
        })
        .collect();
    let mut promoted = Vec::new();
    for t in tasks {
        promoted.extend(t.await.unwrap());
    }
    while let Some(p) = admissions[2].pop_fitting(event, happening_core::domain::WaitlistPolicy::Fifo).await.unwrap() {
        promoted.push(p);
    }
    assert!(promoted.iter().all(|p| p.seats == 1));
    let ids: BTreeSet<BookingId> = promoted.iter().map(|p| p.entry.booking).collect();
    assert_eq!(promoted.len(), 200, "each promoted once");
    assert_eq!(ids, entries.iter().map(|e| e.booking).collect::<BTreeSet<_>>());
    assert_eq!(admissions[3].free(event).await.unwrap(), 200, "400 given, 200 promoted");
    assert_eq!(admissions[3].len(event).await.unwrap(), 0);
    admissions[0].forget(event).await.unwrap();
}
