//! The outbox relay: hands pending notifications to a Notifier, then marks them sent.

use crate::domain::{DeliveryStatus, Notification};
use crate::error::{BackendError, Error, Result};
use crate::ids::{NotificationId, UserId};
use crate::ports::{Notifier, NotifierError};

use super::Engine;

/// How long a relay owns the notifications it claimed: short enough that a dead server's
/// batch is taken over soon, and longer than any delivery may take. A batch still being
/// published when its lease ends can be claimed by another replica and sent twice, so every
/// [`Notifier`] must bound its `deliver` below this: `AmqpNotifier` asserts that its connect
/// and confirm timeouts add up to less (5 s + 30 s by default, leaving the rest for the
/// store's claim and its `sent` mark).
pub const RELAY_LEASE_MS: i64 = 60_000;

impl Engine {
    /// Relays up to `batch` pending notifications. Returns how many were delivered. A failed
    /// delivery gives the batch back for the next round; a relay that dies holding a batch
    /// holds it until its lease ends ([`RELAY_LEASE_MS`]), then any relay claims it again (at least once).
    pub async fn relay(&self, notifier: &dyn Notifier, batch: u32) -> Result<usize> {
        let now = self.clock.now();
        let lease_until = now + chrono::Duration::milliseconds(RELAY_LEASE_MS);
        let pending = self.store.claim_pending(batch, now, lease_until).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let ids: Vec<NotificationId> = pending.iter().map(|n| n.id).collect();
        if let Err(e) = notifier.deliver(&pending).await {
            // Give the batch back for the next round; if even that fails, the lease ends.
            let _ = self.store.release_claims(&ids).await;
            return Err(match e {
                NotifierError::Backend(b) => Error::Backend(b),
                NotifierError::Rejected(why) => Error::Backend(BackendError::msg(why)),
            });
        }
        self.store.set_delivery(&ids, DeliveryStatus::Sent).await?;
        Ok(ids.len())
    }

    /// Notifications written but not yet handed to the notifier (the relay's backlog).
    pub async fn outbox_depth(&self) -> Result<u64> {
        Ok(self.store.outbox_depth().await?)
    }

    /// A user's notifications, newest first, from the `offset`-th.
    pub async fn notifications(&self, user: UserId, limit: u32, offset: u32) -> Result<Vec<Notification>> {
        Ok(self.store.notifications(user, self.page(limit), offset).await?)
    }

    /// Marks one of `user`'s notifications read; `NotFound(Notification)` if it is not
    /// theirs.
    pub async fn mark_read(&self, user: UserId, id: NotificationId) -> Result<()> {
        Ok(self.store.mark_read(user, id).await?)
    }
}
