use async_trait::async_trait;

use crate::error::BackendError;
use crate::ids::EventId;

/// What a [`ChangeFeed`] hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// These events changed, through another engine sharing the stores.
    Changed(Vec<EventId>),
    /// The feed lost its subscription and has it back (or lost it for good): changes may
    /// have gone unheard meanwhile, so whoever watches should read the current state again.
    Resync,
}

/// Tells every engine sharing the stores (the replicas of a deployment) which events
/// changed, through the stores' own publish/subscribe, so that each can refresh what it
/// shows live (the HTTP server's seat-map streams). A message is a hint, never a record:
/// a watcher reads the state from the stores, so a message that arrives twice or late costs
/// a read, and one lost is made good by [`Heard::Resync`].
///
/// Contract, for every implementation:
/// - `publish` returns once the message is handed to the backend; it never waits for
///   listeners, and a publisher does not hear its own messages;
/// - `next` hears what other engines publish for the events this one watches (a backend
///   may deliver others too: the caller filters), and answers [`Heard::Resync`] once its
///   subscription is back after a loss, only after it is subscribed again (so that a read
///   made on `Resync` misses nothing that follows);
/// - `watch` and `unwatch` do not fail: a backend that cannot subscribe now remembers the
///   event, subscribes when it is back, then answers `Resync`.
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// Tells the other engines that `events` changed.
    async fn publish(&self, events: &[EventId]) -> Result<(), BackendError>;

    /// From now on, hear of changes of `event`.
    async fn watch(&self, event: EventId);

    /// Stop hearing of `event`.
    async fn unwatch(&self, event: EventId);

    /// The next thing heard; waits for it. One caller at a time.
    async fn next(&self) -> Heard;
}
