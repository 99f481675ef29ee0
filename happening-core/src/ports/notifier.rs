use async_trait::async_trait;

use crate::domain::Notification;
use crate::error::BackendError;

/// Errors of [`Notifier`]. Either way the batch stays pending and is delivered again.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// The broker took the message but refused it (unroutable, nacked).
    #[error("notification rejected: {0}")]
    Rejected(String),
    /// The broker could not be reached or did not confirm in time.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Delivers notifications taken from the outbox.
///
/// Contract: `deliver` returns `Ok` only once every notification of the batch is safely
/// accepted (a broker confirm, a durable write); on `Err` the relay retries the whole batch
/// later, so delivery is at least once and consumers de-duplicate by `Notification::id`.
/// It returns (either way) well within the relay's lease ([`crate::RELAY_LEASE_MS`]): past
/// it, another relay may claim the same batch while this one still publishes it.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Hands `batch` (outbox order, at most the relay's batch size) on; `Ok` only once all of
    /// it is safely accepted, as the contract above says.
    async fn deliver(&self, batch: &[Notification]) -> Result<(), NotifierError>;
}
