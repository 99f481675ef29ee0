//! Where the worker records delivery: the outbox table of the store.

use std::sync::Arc;

use async_trait::async_trait;
use happening_core::domain::DeliveryStatus;
use happening_core::ids::{NotificationId, UserId};
use happening_core::ports::{SeatStore, StoreError};

/// The worker's view of the outbox: read a notification's status, move it forward.
#[async_trait]
pub trait DeliveryLog: Send + Sync + 'static {
    /// The status of notification `id` of `user`, `None` if unknown.
    async fn status(&self, id: NotificationId, user: UserId) -> Result<Option<DeliveryStatus>, StoreError>;

    /// Moves it forward (never backwards) to `status`.
    async fn record(&self, id: NotificationId, status: DeliveryStatus) -> Result<(), StoreError>;
}

/// A [`DeliveryLog`] on any [`SeatStore`] (PostgreSQL, in-memory).
///
/// The store has no look-up of one notification by id, so `status` reads the user's newest
/// `scan` notifications (newest first, an indexed read) and finds it there. A notification
/// older than that is reported unknown and handled again: correct (at-least-once), just
/// not de-duplicated by the store. A `SeatStore::notification(id)` would make this exact.
pub struct StoreDeliveryLog<S: ?Sized> {
    store: Arc<S>,
    scan: u32,
}

impl<S: SeatStore + ?Sized> StoreDeliveryLog<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self { store, scan: 1000 }
    }

    pub fn with_scan(mut self, scan: u32) -> Self {
        self.scan = scan.max(1);
        self
    }
}

#[async_trait]
impl<S: SeatStore + ?Sized> DeliveryLog for StoreDeliveryLog<S> {
    async fn status(&self, id: NotificationId, user: UserId) -> Result<Option<DeliveryStatus>, StoreError> {
        let mine = self.store.notifications(user, self.scan).await?;
        Ok(mine.into_iter().find(|n| n.id == id).map(|n| n.status))
    }

    async fn record(&self, id: NotificationId, status: DeliveryStatus) -> Result<(), StoreError> {
        self.store.set_delivery(&[id], status).await
    }
}
