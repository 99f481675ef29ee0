//! # happening-core
//!
//! The booking engine of Happening: seats of events with limited capacity, booked,
//! waitlisted, promoted, held and cancelled under concurrency without overselling.
//!
//! This crate is pure: it does no I/O, and its engine depends on no runtime (the feature
//! `runtime` adds `background`, the loops that drive it on tokio). Storage sits behind the
//! [`ports`]; the in-memory implementations in [`memory`] are the default, and the adapter
//! crates put the same ports on PostgreSQL, Redis and RabbitMQ. Every backend passes one
//! conformance suite (`testkit`, behind the feature `testkit`).
//!
//! ```
//! use happening_core::{Engine, BookRequest, domain::{NewEvent, WaitlistPolicy}, ids::*};
//! # futures_lite_block_on(async {
//! let engine = Engine::in_memory();
//! let admin = engine.upsert_user("admin", None, None).await.unwrap();
//! let org = engine.create_org(admin.id, "Acme").await.unwrap();
//! let event = engine.create_event(NewEvent::new(org.id, "Concert", chrono::Utc::now(), 2)).await.unwrap();
//! let b = engine.book(BookRequest { event_id: event.event.id, user_id: UserId::new(),
//!     seats: Some(2), ..Default::default() }).await.unwrap();
//! assert_eq!(b.seat_numbers, vec![1, 2]);
//! # });
//! # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

#![warn(missing_docs)]

#[macro_use]
mod names;

#[cfg(feature = "runtime")]
pub mod background;
pub mod clock;
pub mod domain;
pub mod effects;
pub mod engine;
pub mod error;
pub mod ids;
pub mod limits;
pub mod memory;
pub mod ports;
pub mod seats;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use engine::{BookRequest, ChangeListener, Engine, HoldRequest, Reconciled, RELAY_LEASE_MS};
pub use error::{Error, Result};
pub use limits::Limits;
