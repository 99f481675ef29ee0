//! Concurrency: thousands of tasks on several threads (and several engines sharing the
//! stores, as several servers would) race for one event's seats, book, cancel and hold;
//! then every invariant must hold, and draining the event must promote in queue order.

use crate::domain::*;
use crate::engine::{BookRequest, HoldRequest};
use crate::error::Error;
use crate::ids::*;
use crate::testkit::{invariants, Harness};

/// What a race left behind.
#[derive(Debug, Clone, Default)]
pub struct RaceReport {
    /// Bookings confirmed when the race ended.
    pub confirmed: usize,
    /// Bookings waiting when the race ended.
    pub waiting: usize,
    /// Bookings the racers cancelled.
    pub cancelled: usize,
    /// Waiting bookings promoted, in queue order, while the drain cancelled the confirmed
    /// ones (`fifo` only; 0 otherwise).
    pub promoted_in_drain: usize,
}

/// A tiny deterministic generator per task, so a failure names a reproducible task.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One racer: book 1 to 3 seats, then maybe cancel, cancel a seat, or hold and release.
async fn racer(engine: crate::Engine, event: EventId, seed: u64) -> Result<(), String> {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let user = UserId::new();
    let seats = 1 + (rng.next() % 3) as u32;
    let b = engine
        .book(BookRequest { event_id: event, user_id: user, seats: Some(seats), ..Default::default() })
        .await
        .map_err(|e| format!("task {seed}: book: {e}"))?;
    match rng.next() % 8 {
        0 => {
            engine.cancel(b.id, user, None).await.map_err(|e| format!("task {seed}: cancel: {e}"))?;
        }
        1 => {
            // Its own seat, if it is confirmed by now (it may have been promoted meanwhile).
            let now = engine.booking(b.id).await.map_err(|e| e.to_string())?;
            if now.status == BookingStatus::Confirmed {
                engine
                    .cancel_seats(b.id, user, &now.seat_numbers[..1], None)
                    .await
                    .map_err(|e| format!("task {seed}: cancel seats: {e}"))?;
            }
        }
        2 => {
            let req = HoldRequest { event_id: event, user_id: user, seats: Some(1), seat_numbers: None, ttl_ms: 60_000 };
            match engine.hold(req).await {
                Ok(h) => {
                    engine.release_hold(h.id, user).await.map_err(|e| format!("task {seed}: release: {e}"))?;
                }
                Err(Error::Capacity { .. }) => {}
                Err(e) => return Err(format!("task {seed}: hold: {e}")),
            }
        }
        _ => {}
    }
    Ok(())
}

/// Races `tasks` racers over all engines of `h` on one event of `capacity` seats, checks
/// the invariants from every engine, then (under `fifo`) cancels the confirmed bookings one
/// by one and checks that the waiting ones are promoted strictly in queue order.
pub async fn race(h: &Harness, capacity: u32, tasks: usize, policy: WaitlistPolicy) -> Result<RaceReport, String> {
    let event = h.event(capacity, policy).await;
    let engines = h.engines();
    let handles: Vec<_> = (0..tasks).map(|i| tokio::spawn(racer(engines[i % engines.len()].clone(), event, i as u64))).collect();
    for handle in handles {
        handle.await.map_err(|e| format!("task panicked: {e}"))??;
    }
    for en in &engines {
        invariants::check(en, event).await?;
    }
    let all = h.engine.store().event_bookings(event).await.map_err(|e| e.to_string())?;
    let mut report = RaceReport::default();
    for b in &all {
        match b.status {
            BookingStatus::Confirmed => report.confirmed += 1,
            BookingStatus::Waiting => report.waiting += 1,
            BookingStatus::Cancelled => report.cancelled += 1,
            BookingStatus::Offered | BookingStatus::Declined | BookingStatus::Expired => {
                return Err(format!("booking {} is {:?} in a race without offers", b.id, b.status));
            }
        }
    }
    if policy != WaitlistPolicy::Fifo {
        return Ok(report);
    }
    let queue: Vec<BookingId> = h.engine.waitlist(event, u32::MAX, 0).await.map_err(|e| e.to_string())?.iter().map(|b| b.id).collect();
    for (i, b) in all.iter().filter(|b| b.status == BookingStatus::Confirmed).enumerate() {
        let en = &engines[i % engines.len()];
        en.cancel(b.id, b.user_id, None).await.map_err(|e| format!("drain cancel: {e}"))?;
        // One read of the event's bookings, not one per queued booking: the queue is long
        // (about 1,800 after a race of 2,000), and the drain cancels every confirmed booking.
        let now: std::collections::HashMap<BookingId, BookingStatus> =
            en.store().event_bookings(event).await.map_err(|e| e.to_string())?.iter().map(|b| (b.id, b.status)).collect();
        let mut promoted = 0;
        let mut gap = false;
        for id in &queue {
            let status = *now.get(id).ok_or_else(|| format!("queued booking {id} is gone"))?;
            match (status, gap) {
                (BookingStatus::Confirmed, true) => return Err(format!("booking {id} promoted before an earlier one in the queue")),
                (BookingStatus::Confirmed, false) => promoted += 1,
                _ => gap = true,
            }
        }
        report.promoted_in_drain = promoted;
    }
    for en in &engines {
        invariants::check(en, event).await?;
    }
    Ok(report)
}

/// Races `tasks` bookings of 1 to 3 seats over all engines of `h`, as a flash sale spread
/// over replicas, for a `fifo` event of `capacity` seats, and checks what people are told:
/// the bookings that wait got the numbers 1, 2, ..., N, each once, in the order the queue
/// holds them, and every engine's view of each booking and of the waitlist says the same.
/// (Nothing leaves the queue during the burst: under `fifo` a newcomer waits behind anyone
/// waiting.) Returns how many wait.
pub async fn race_numbers(h: &Harness, capacity: u32, tasks: usize) -> Result<usize, String> {
    let event = h.event(capacity, WaitlistPolicy::Fifo).await;
    let engines = h.engines();
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let en = engines[i % engines.len()].clone();
            let seats = 1 + (i as u32 * 7919) % 3;
            let req = BookRequest { event_id: event, user_id: UserId::new(), seats: Some(seats), ..Default::default() };
            tokio::spawn(async move { en.book(req).await })
        })
        .collect();
    let mut told = Vec::new();
    for handle in handles {
        let b = handle.await.map_err(|e| format!("task panicked: {e}"))?.map_err(|e| format!("book: {e}"))?;
        match (b.status, b.waiting_number, b.queue_seq) {
            (BookingStatus::Waiting, Some(n), Some(seq)) => told.push((seq, b.id, n)),
            (BookingStatus::Confirmed, None, None) => {}
            _ => return Err(format!("booking answered as {:?} with number {:?}", b.status, b.waiting_number)),
        }
    }
    told.sort_unstable();
    for (i, &(seq, id, n)) in told.iter().enumerate() {
        if n != i as u32 + 1 {
            return Err(format!("booking {id} (place {seq}) was told {n}, it is number {} of {} in the queue", i + 1, told.len()));
        }
    }
    for en in &engines {
        let mut listed: Vec<(BookingId, Option<u32>)> = Vec::new();
        loop {
            let page = en.waitlist(event, 0, listed.len() as u32).await.map_err(|e| e.to_string())?;
            if page.is_empty() {
                break;
            }
            listed.extend(page.iter().map(|b| (b.id, b.waiting_number)));
        }
        let want: Vec<(BookingId, Option<u32>)> = told.iter().map(|&(_, id, n)| (id, Some(n))).collect();
        if listed != want {
            return Err(format!("the waitlist lists {} entries unlike the numbers told", listed.len()));
        }
        for &(_, id, n) in told.iter().step_by(7) {
            let now = en.booking(id).await.map_err(|e| e.to_string())?.waiting_number;
            if now != Some(n) {
                return Err(format!("booking {id} told {n}, now reads {now:?}"));
            }
        }
        invariants::check(en, event).await?;
    }
    Ok(told.len())
}

/// Relays beside the bookings: half the engines book `tasks` one-seat bookings from as many
/// tasks while the other half relay the outbox, two loops each, batches of 50 (with one
/// engine, it does both), as servers would. Every booking writes one notification; each
/// must reach a notifier exactly once (no lease can run out: the harness' clock stands
/// still), none lost to a write that committed late. Returns how many were relayed.
pub async fn race_relays(h: &Harness, capacity: u32, tasks: usize) -> Result<usize, String> {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use crate::memory::MemoryNotifier;

    let event = h.event(capacity, WaitlistPolicy::Fifo).await;
    let engines = h.engines();
    let half = (engines.len() / 2).max(1);
    let (bookers, relayers) = (engines[..half].to_vec(), engines[engines.len() - half..].to_vec());
    let done = Arc::new(AtomicBool::new(false));
    let notifier = MemoryNotifier::default();
    let relays: Vec<_> = relayers
        .iter()
        .flat_map(|engine| [engine.clone(), engine.clone()])
        .map(|engine| {
            let (done, notifier) = (done.clone(), notifier.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    if engine.relay(&notifier, 50).await.map_err(|e| format!("relay: {e}"))? == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                crate::testkit::drain(&engine, &notifier, 50, Duration::from_secs(120)).await
            })
        })
        .collect();
    let booked: Vec<_> = (0..tasks)
        .map(|t| {
            let engine = bookers[t % bookers.len()].clone();
            tokio::spawn(async move {
                let user = UserId::new();
                let req = BookRequest { event_id: event, user_id: user, seats: Some(1), ..Default::default() };
                engine.book(req).await.map(|b| (user, b.id)).map_err(|e| format!("book: {e}"))
            })
        })
        .collect();
    let mut users = HashSet::new();
    for b in booked {
        let (user, _) = b.await.map_err(|e| format!("task: {e}"))??;
        users.insert(user);
    }
    done.store(true, Ordering::SeqCst);
    for r in relays {
        r.await.map_err(|e| format!("relay task: {e}"))??;
    }
    let sent = notifier.take();
    let ids: HashSet<_> = sent.iter().map(|n| n.id).collect();
    if ids.len() != sent.len() {
        return Err(format!("{} of {} notifications were sent more than once", sent.len() - ids.len(), sent.len()));
    }
    let to: HashSet<_> = sent.iter().map(|n| n.user_id).collect();
    if sent.len() != tasks || to != users {
        return Err(format!("{} notifications sent to {} users, for {tasks} bookings of as many users", sent.len(), to.len()));
    }
    invariants::check(&h.engine, event).await?;
    Ok(sent.len())
}

/// What a race on an event with a capped waitlist left behind.
#[derive(Debug, Clone, Default)]
pub struct CappedReport {
    /// Bookings confirmed: every seat.
    pub confirmed: usize,
    /// Bookings that joined the waitlist.
    pub waiting: usize,
    /// Requests refused with `Conflict(WaitlistFull)`, which wrote nothing.
    pub turned_away: usize,
}

/// Races bookings of 1 seat over all engines of `h`, in `waves` waves of `wave` concurrent
/// requests, for an event of `capacity` seats whose waitlist holds `waitlist_max`: every
/// seat is sold, nobody is turned away while the queue had room (it only grows here, so a
/// refusal means it was full), a refusal writes nothing, the queue passes the cap by no
/// more than one wave (the cap is read with the counter, apart from the push: requests in
/// flight when the queue filled may each still join it), and the invariants hold.
pub async fn race_capped(h: &Harness, capacity: u32, waitlist_max: u32, waves: usize, wave: usize) -> Result<CappedReport, String> {
    let event = h.event(capacity, WaitlistPolicy::Fifo).await;
    let cap = EventPatch { waitlist_max: Some(Some(waitlist_max)), ..Default::default() };
    h.engine.update_event(event, cap).await.map_err(|e| e.to_string())?;
    let engines = h.engines();
    let mut report = CappedReport::default();
    for _ in 0..waves {
        let handles: Vec<_> = (0..wave)
            .map(|i| {
                let en = engines[i % engines.len()].clone();
                let req = BookRequest { event_id: event, user_id: UserId::new(), seats: Some(1), ..Default::default() };
                tokio::spawn(async move { en.book(req).await })
            })
            .collect();
        for handle in handles {
            match handle.await.map_err(|e| format!("task panicked: {e}"))? {
                Ok(b) if b.status == BookingStatus::Confirmed => report.confirmed += 1,
                Ok(_) => report.waiting += 1,
                Err(Error::Conflict { reason: crate::error::Conflict::WaitlistFull, .. }) => report.turned_away += 1,
                Err(e) => return Err(format!("book: {e}")),
            }
        }
    }
    for en in &engines {
        invariants::check(en, event).await?;
    }
    let all = h.engine.store().event_bookings(event).await.map_err(|e| e.to_string())?;
    let stored = |s| all.iter().filter(|b| b.status == s).count();
    if (stored(BookingStatus::Confirmed), stored(BookingStatus::Waiting), all.len())
        != (report.confirmed, report.waiting, report.confirmed + report.waiting)
    {
        return Err(format!("the store holds {} bookings for {report:?}: a refusal wrote something", all.len()));
    }
    if report.confirmed != capacity as usize {
        return Err(format!("{report:?}: {capacity} seats, not all sold"));
    }
    if report.turned_away > 0 && report.waiting < waitlist_max as usize {
        return Err(format!("{report:?}: turned away while the queue had room for {waitlist_max}"));
    }
    if report.waiting > waitlist_max as usize + wave {
        return Err(format!("{report:?}: the queue passed its cap of {waitlist_max} by more than a wave of {wave}"));
    }
    Ok(report)
}

/// Expands to the concurrency tests: the engines of a harness from `$make` (an expression
/// `Fn() -> impl Future<Output = Harness>`, or `Option<Harness>` as for
/// [`conformance_tests!`](crate::conformance_tests); give it replicas, as several servers)
/// race for one event of `seats` seats with `tasks` tasks: under `fifo` (every invariant,
/// promotions in queue order), the waiting numbers told during a burst, `first_fit` and
/// `partial` (two thirds of the seats, half the tasks), and a capped waitlist (a third of
/// the seats, twice that in line, a wave of 50 per 200 tasks). A fresh harness per test.
///
/// ```ignore
/// happening_core::race_tests!(|| async { Harness::in_memory(3) }, seats = 300, tasks = 8_000);
/// ```
#[macro_export]
macro_rules! race_tests {
    ($make:expr, seats = $seats:expr, tasks = $tasks:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn racing_engines_keep_every_invariant_and_fifo() {
            let Some(h) = $crate::testkit::MaybeHarness::get(($make)().await) else { return };
            let report = $crate::testkit::concurrency::race(&h, $seats, $tasks, $crate::domain::WaitlistPolicy::Fifo)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(report.confirmed > 0 && report.waiting > 0, "the race must fill the event and queue: {report:?}");
            assert!(report.promoted_in_drain > 0, "the drain must promote: {report:?}");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_burst_over_several_engines_tells_exact_waiting_numbers() {
            let Some(h) = $crate::testkit::MaybeHarness::get(($make)().await) else { return };
            let tasks: usize = $tasks;
            let waiting = $crate::testkit::concurrency::race_numbers(&h, $seats, tasks).await.unwrap_or_else(|e| panic!("{e}"));
            assert!(waiting > tasks / 2, "the burst must queue: {waiting} of {tasks} wait");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn racing_engines_under_first_fit_and_partial() {
            for policy in [$crate::domain::WaitlistPolicy::FirstFit, $crate::domain::WaitlistPolicy::Partial] {
                let Some(h) = $crate::testkit::MaybeHarness::get(($make)().await) else { return };
                let (seats, tasks): (u32, usize) = ($seats, $tasks);
                let report = $crate::testkit::concurrency::race(&h, seats * 2 / 3, tasks / 2, policy)
                    .await
                    .unwrap_or_else(|e| panic!("{policy:?}: {e}"));
                assert!(report.confirmed > 0, "{policy:?}: {report:?}");
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn relays_beside_racing_engines_send_every_notification_once() {
            let Some(h) = $crate::testkit::MaybeHarness::get(($make)().await) else { return };
            let (seats, tasks): (u32, usize) = ($seats, $tasks);
            let sent = $crate::testkit::concurrency::race_relays(&h, seats, tasks / 2).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(sent, tasks / 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn racing_engines_for_a_capped_waitlist() {
            let Some(h) = $crate::testkit::MaybeHarness::get(($make)().await) else { return };
            let (seats, tasks): (u32, usize) = ($seats, $tasks);
            let report = $crate::testkit::concurrency::race_capped(&h, seats / 3, seats * 2 / 3, (tasks / 200).max(1), 50)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(report.turned_away > 0, "the race must fill the queue: {report:?}");
        }
    };
}
