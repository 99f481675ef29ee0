//! The ports: what the engine needs from the outside world, as async traits whose docs are
//! their contracts. Every backend (in-memory here, PostgreSQL, Redis, RabbitMQ in the
//! adapter crates) must pass the same conformance suite (`testkit`).
//!
//! The cut:
//! - [`SeatStore`] + [`Directory`] = [`Store`]: the durable record and the **source of
//!   truth**. Each method is one atomic step that also writes the booking history and the
//!   outbox notifications of the change. The store re-checks capacity itself, so nothing the
//!   counters say can make it oversell.
//! - [`SlotCounter`] + [`Waitlist`] = [`Admission`]: the per-event free-seat counter and
//!   waiting queue that absorb the contention of a flash sale. They are derived state,
//!   rebuilt from the store when missing or drifted, and always *conservative*: the counter
//!   never exceeds the store's free seats, because the engine takes from the counter before
//!   the store books, and gives back only after the store freed. The two traits are one
//!   backend because taking seats "unless someone waits" and "pop the head if it fits" are
//!   atomic over both.
//! - [`Notifier`]: delivery of outbox rows, at least once.
//! - [`ChangeFeed`]: which events changed, told across the engines sharing the stores, for
//!   what they show live.

mod admission;
mod directory;
mod feed;
mod notifier;
mod store;

pub use admission::*;
pub use directory::*;
pub use feed::*;
pub use notifier::*;
pub use store::*;

/// The durable record: bookings and the organizations they live in, one backend.
pub trait Store: SeatStore + Directory {}
impl<T: SeatStore + Directory + ?Sized> Store for T {}
