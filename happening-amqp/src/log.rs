//! Where the worker records delivery: the outbox table of the store.

use std::sync::Arc;

use async_trait::async_trait;
use happening_core::domain::DeliveryStatus;
use happening_core::ids::NotificationId;
use happening_core::ports::{SeatStore, StoreError};

/// The worker's view of the outbox: read a notification's status, move it forward.
#[async_trait]
pub trait DeliveryLog: Send + Sync + 'static {
    /// The status of notification `id`, `None` if unknown.
    async fn status(&self, id: NotificationId) -> Result<Option<DeliveryStatus>, StoreError>;

    /// Moves it forward (never backwards) to `status`.
    async fn record(&self, id: NotificationId, status: DeliveryStatus) -> Result<(), StoreError>;
}

/// A [`DeliveryLog`] on any [`SeatStore`] (PostgreSQL, in-memory).
pub struct StoreDeliveryLog<S: ?Sized> {
    store: Arc<S>,
}

impl<S: SeatStore + ?Sized> StoreDeliveryLog<S> {
    /// Records delivery in `store`'s outbox (`SeatStore::set_delivery`), where the relay
    /// took the notifications from.
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl<S: SeatStore + ?Sized> DeliveryLog for StoreDeliveryLog<S> {
    async fn status(&self, id: NotificationId) -> Result<Option<DeliveryStatus>, StoreError> {
        match self.store.notification(id).await {
            Ok(n) => Ok(Some(n.status)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn record(&self, id: NotificationId, status: DeliveryStatus) -> Result<(), StoreError> {
        self.store.set_delivery(&[id], status).await
    }
}
