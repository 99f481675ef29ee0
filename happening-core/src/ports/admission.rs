use async_trait::async_trait;

use crate::domain::WaitlistPolicy;
use crate::error::BackendError;
use crate::ids::{BookingId, EventId};

/// Errors of [`SlotCounter`] and [`Waitlist`].
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The event has no counter here (cold start, a flushed Redis). The engine rebuilds it
    /// from the SeatStore and retries.
    #[error("no counter for this event")]
    Missing,
    /// The backend failed (connection lost, timeout, script error). Before the store's step
    /// it fails the request; after it, the store's answer stands and the engine marks the
    /// event for reconciliation.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// What to take from an event's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeRequest {
    /// Seats wanted.
    pub want: u32,
    /// Fewest seats acceptable (`want`, or 1 with `accept_partial`).
    pub min: u32,
    /// Refuse while anyone waits (policies `fifo` and `partial`: no queue-jumping).
    pub behind_queue: bool,
    /// The event's cap on its waitlist (`Event::waitlist_max`), so that a request that
    /// would wait behind a full queue is told so in the same step ([`Take::WaitlistFull`]):
    /// in a sold-out flash sale, turning it away costs this one call.
    pub waitlist_max: Option<u32>,
}

/// Outcome of [`SlotCounter::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// This many seats were taken (`min..=want`).
    Taken(u32),
    /// Nothing was taken: `free` seats were free, or someone waits (`queued`).
    Short {
        /// Seats free in the counter.
        free: u32,
        /// Whether it refused because someone waits (`behind_queue`), not for want of seats.
        queued: bool,
    },
    /// Nothing was taken, as for `Short`, and the waitlist holds `waitlist_max` entries or
    /// more: the request may not wait either.
    WaitlistFull,
}

/// The free-seat counter of each event.
///
/// Contract, for every implementation:
/// - every method is atomic: concurrent callers (threads, processes) never see a partial
///   step, and the free count never goes below zero, not even for an instant;
/// - `take` and [`Waitlist::pop_fitting`] are atomic *together* with the event's waitlist
///   (they share one lock, one Lua script, one transaction);
/// - an event without a counter answers [`AdmissionError::Missing`] from `take`, `give`
///   and `free`, never a made-up zero.
#[async_trait]
pub trait SlotCounter: Send + Sync + 'static {
    /// Creates or overwrites the counter of `event` (event creation, rebuild).
    async fn set_free(&self, event: EventId, free: u32) -> Result<(), AdmissionError>;

    /// Takes between `req.min` and `req.want` seats (as many as are free), or nothing.
    /// MUST report `Short { queued: true }` without taking when `req.behind_queue` is set
    /// and the event's waitlist is not empty; MUST report `WaitlistFull` instead of `Short`
    /// when `req.waitlist_max` is `Some(m)` and the waitlist holds `m` entries or more (read
    /// in the same atomic step).
    async fn take(&self, event: EventId, req: TakeRequest) -> Result<Take, AdmissionError>;

    /// Whether the engine may skip [`SlotCounter::take`] for `req` (a booking of the lowest
    /// free seats; seats asked by number always take first) and let the store decide:
    /// it confirms `req.want` seats with [`NewBooking::behind_queue`] set as `req.behind_queue`
    /// (the store then checks the seats and the queue in its own atomic step), and calls
    /// `take` only if the store is short (for the waitlist's cap, and a partial share).
    ///
    /// For an admission that keeps no count of its own, derived from the store (PostgreSQL
    /// alone), whose `take` is one more read of what the store's step reads again: skipping
    /// it saves a round trip per booking. It MAY answer `true` only if its `take` changes
    /// nothing (nothing to give back), its waitlist is the store's waiting bookings (so that
    /// the store's look at the queue is its own), and `req.min == req.want`; it SHOULD answer `false`
    /// for an event it saw short lately (each of a sold-out event's requests would cost a
    /// failed store step). Must not block: no I/O. The default is `false`.
    ///
    /// [`NewBooking::behind_queue`]: crate::domain::NewBooking::behind_queue
    fn unchecked_take(&self, _event: EventId, _req: &TakeRequest) -> bool {
        false
    }

    /// Gives `n` seats back.
    async fn give(&self, event: EventId, n: u32) -> Result<(), AdmissionError>;

    /// The free count.
    async fn free(&self, event: EventId) -> Result<u32, AdmissionError>;

    /// Removes the counter and the waitlist of `event`.
    async fn forget(&self, event: EventId) -> Result<(), AdmissionError>;

    /// An id of the data this backend holds now, which changes when writes it acknowledged
    /// may have been lost: Redis replicates asynchronously, so a replica that takes over a
    /// primary (a failover), or a server restarted, may lack the last steps. When it
    /// changes, the engine rebuilds every event from the store
    /// ([`Engine::reconcile_dirty`](crate::Engine::reconcile_dirty)). `None` (the default):
    /// this backend loses nothing it acknowledged (memory, or derived from the store).
    async fn generation(&self) -> Result<Option<String>, AdmissionError> {
        Ok(None)
    }
}

/// What [`Waitlist::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Whether any seat was free when the entry was queued, read in the same atomic step
    /// (or, where the store queued the entry before the push, as with PostgreSQL alone, in
    /// a snapshot that sees it: a seat freed after that snapshot is freed by a step whose
    /// promotion pass finds the entry). `false` means nobody waiting can be promoted until
    /// seats are given back, and whoever gives them runs a promotion pass that finds this
    /// entry queued: the pusher may skip its own (in a sold-out sale, a round trip per
    /// turned-away request). A backend that cannot tell MUST say `true`.
    pub seats_free: bool,
}

/// One waiting booking in a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitEntry {
    /// The waiting booking.
    pub booking: BookingId,
    /// Seats it waits for.
    pub seats: u32,
    /// Its place in the event's order (`Booking::queue_seq`, given by the SeatStore).
    pub seq: u64,
}

/// A waiting booking chosen for promotion, and the seats taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promotion {
    /// The entry, now out of the queue.
    pub entry: WaitEntry,
    /// Seats taken from the counter for it: all it waits for, or fewer under `partial`.
    pub seats: u32,
}

/// The FIFO queue of waiting *bookings* (not users) of each event, ordered by `seq`.
///
/// Contract: each method is atomic; `push` of a booking already queued is a no-op that
/// returns its position; positions are 1-based.
///
/// **Versions.** A rebuild reads the store, then overwrites the counter and the queue with
/// what it read ([`Waitlist::restore`]). Another engine's step landing between the read and
/// the write would be lost (a cancellation's seats given back, a waiting booking pushed), so
/// each event has a version that moves on:
/// - every change: `set_free`, `forget`, a `take` that takes, a `pop_fitting` that pops, a
///   `restore` that restores;
/// - every `give`, `push` and `remove`, whatever its outcome, even [`AdmissionError::Missing`]:
///   the engine calls these *after* the store changed, so a rebuild that read the store
///   before that change must not win.
///
/// `take` and `pop_fitting` that find nothing (and every read) leave it alone, so that the
/// turned-away requests of a sold-out flash sale never starve a rebuild. A version is never
/// reused for an event, not even across a `forget` or a restart of the backend (as far as
/// the backend can tell), and an event the backend has never seen is at version 0. A backend
/// that keeps no state of its own (PostgreSQL alone derives everything from the store) has
/// nothing to overwrite: its version stays 0 and its `restore` always succeeds.
#[async_trait]
pub trait Waitlist: Send + Sync + 'static {
    /// Inserts `entry` at its place by `seq` (normally the back); an entry already queued
    /// stays where it is. Returns whether seats are free (see [`Pushed`]). (Its place in line
    /// is the store's answer: [`SeatStore::enqueue`](crate::ports::SeatStore::enqueue).)
    async fn push(&self, event: EventId, entry: WaitEntry) -> Result<Pushed, AdmissionError>;

    /// Removes a booking; `false` if it was not queued (already promoted or removed).
    async fn remove(&self, event: EventId, booking: BookingId) -> Result<bool, AdmissionError>;

    /// 1-based position, `None` if not queued.
    async fn position(&self, event: EventId, booking: BookingId) -> Result<Option<u32>, AdmissionError>;

    /// How many bookings wait in the event's queue: the queue's length as this backend has
    /// it, which a rebuild brings back to the store's.
    async fn len(&self, event: EventId) -> Result<u32, AdmissionError>;

    /// The first `limit` entries, head first.
    async fn list(&self, event: EventId, limit: u32) -> Result<Vec<WaitEntry>, AdmissionError>;

    /// The head, if any.
    async fn front(&self, event: EventId) -> Result<Option<WaitEntry>, AdmissionError> {
        Ok(self.list(event, 1).await?.into_iter().next())
    }

    /// Atomically with the event's counter: chooses the entry `policy` promotes next, and
    /// if it fits, removes it and takes its seats from the counter.
    /// - `Fifo`: the head, if all its seats are free.
    /// - `FirstFit`: the first entry in order whose seats are all free.
    /// - `Partial`: the head, if at least one seat is free; it gets `min(free, seats)`.
    async fn pop_fitting(&self, event: EventId, policy: WaitlistPolicy) -> Result<Option<Promotion>, AdmissionError>;

    /// Whether `pop_fitting` removes what it pops, so that promotion passes side by side on
    /// one event pop different bookings and may run in parallel. An admission derived from
    /// the store, whose pop only reads (the entry leaves when the store promotes it), MUST
    /// answer `false`: passes side by side would all pick the same head and queue on it in
    /// the store, so the engine then runs one pass per event at a time.
    fn pop_removes(&self) -> bool;

    /// The event's version (see the trait's docs); never `Missing`.
    async fn version(&self, event: EventId) -> Result<u64, AdmissionError>;

    /// The write of a rebuild from the SeatStore: if the event is still at `version`, sets
    /// its counter to `free` and its queue to `entries` (in `seq` order), creating the event
    /// if it is missing, and returns `true`; else changes nothing and returns `false`.
    async fn restore(&self, event: EventId, version: u64, free: u32, entries: Vec<WaitEntry>) -> Result<bool, AdmissionError>;
}

/// Counter and waitlist from one backend.
pub trait Admission: SlotCounter + Waitlist {}
impl<T: SlotCounter + Waitlist + ?Sized> Admission for T {}
