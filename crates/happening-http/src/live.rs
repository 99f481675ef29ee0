//! Live changes per event, for the SSE stream: a tokio broadcast channel per watched event
//! carrying a bare "something changed" tick. Each subscriber then reads the current seat map
//! and waitlist itself, so a burst of changes costs one snapshot per subscriber, promotions
//! made inside the engine are seen, and events nobody watches cost one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use happening_core::ids::EventId;
use tokio::sync::broadcast;

#[derive(Default)]
pub struct Live {
    channels: Mutex<HashMap<EventId, broadcast::Sender<()>>>,
    subscribers: AtomicUsize,
}

/// A subscription; dropping it unsubscribes.
pub struct Subscription {
    pub rx: broadcast::Receiver<()>,
    live: Arc<Live>,
    event: EventId,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.live.subscribers.fetch_sub(1, Ordering::Relaxed);
        let mut ch = self.live.channels.lock().expect("live lock");
        // Our receiver is still alive here, hence `<= 1`.
        if ch.get(&self.event).is_some_and(|tx| tx.receiver_count() <= 1) {
            ch.remove(&self.event);
        }
    }
}

impl Live {
    pub fn subscribe(self: &Arc<Self>, event: EventId) -> Subscription {
        let rx = self.channels.lock().expect("live lock").entry(event).or_insert_with(|| broadcast::channel(16).0).subscribe();
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        Subscription { rx, live: self.clone(), event }
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
