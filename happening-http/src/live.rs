//! Live changes per event, for the SSE stream: a tokio broadcast channel per watched event
//! carrying a bare "something changed" tick. Each subscriber then reads the current seat map
//! and waitlist itself, so a burst of changes costs one snapshot per subscriber, promotions
//! made inside the engine are seen, and events nobody watches cost one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use happening_core::ids::{EventId, UserId};
use tokio::sync::broadcast;

#[derive(Default)]
pub struct Live {
    channels: Mutex<HashMap<EventId, broadcast::Sender<()>>>,
    subscribers: AtomicUsize,
    /// Open subscriptions per user, so that one user cannot take every stream of the server.
    per_user: Mutex<HashMap<UserId, usize>>,
}

/// Why a subscription was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// The server has its most streams open.
    Server,
    /// This user has their most streams open.
    User,
}

/// A subscription; dropping it unsubscribes.
pub struct Subscription {
    pub rx: broadcast::Receiver<()>,
    live: Arc<Live>,
    event: EventId,
    user: UserId,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        {
            let mut per_user = self.live.per_user.lock().expect("live lock");
            if let Some(n) = per_user.get_mut(&self.user) {
                *n -= 1;
                if *n == 0 {
                    per_user.remove(&self.user);
                }
            }
            self.live.subscribers.fetch_sub(1, Ordering::Relaxed);
        }
        let mut ch = self.live.channels.lock().expect("live lock");
        // Our receiver is still alive here, hence `<= 1`.
        if ch.get(&self.event).is_some_and(|tx| tx.receiver_count() <= 1) {
            ch.remove(&self.event);
        }
    }
}

impl Live {
    /// Subscribes `user` to `event`, unless the server has `max_total` subscriptions open or
    /// the user `max_per_user` (both counted under one lock, so concurrent opens cannot pass
    /// either limit).
    pub fn subscribe(self: &Arc<Self>, event: EventId, user: UserId, max_total: usize, max_per_user: usize) -> Result<Subscription, Full> {
        {
            let mut per_user = self.per_user.lock().expect("live lock");
            if per_user.get(&user).copied().unwrap_or(0) >= max_per_user {
                return Err(Full::User);
            }
            if self.subscribers.load(Ordering::Relaxed) >= max_total {
                return Err(Full::Server);
            }
            *per_user.entry(user).or_insert(0) += 1;
            self.subscribers.fetch_add(1, Ordering::Relaxed);
        }
        let rx = self.channels.lock().expect("live lock").entry(event).or_insert_with(|| broadcast::channel(16).0).subscribe();
        Ok(Subscription { rx, live: self.clone(), event, user })
    }

    /// Tells the watchers of `event` that it changed.
    pub fn touch(&self, event: EventId) {
        if self.subscribers.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(tx) = self.channels.lock().expect("live lock").get(&event) {
            let _ = tx.send(());
        }
    }

    /// Tells every watcher (after changes whose events are not known, e.g. hold expiry).
    pub fn touch_all(&self) {
        if self.subscribers.load(Ordering::Relaxed) == 0 {
            return;
        }
        for tx in self.channels.lock().expect("live lock").values() {
            let _ = tx.send(());
        }
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }
}
