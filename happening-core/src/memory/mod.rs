//! In-memory implementations of every port: the default for embedding, for the server
//! without URLs, and what the property tests run on.
//!
//! Each is a cheap-to-clone handle around an `Arc`; state sits behind short-lived
//! `std::sync::Mutex`es that are never held across an `.await` (no method awaits while
//! holding one). Locks are per event (or sharded by id), so different events never contend.

mod admission;
mod directory;
mod notifier;
mod outbox;
mod sharded;
mod store;

pub use admission::MemoryAdmission;
pub use notifier::MemoryNotifier;
pub use store::MemoryStore;
