//! Live changes per event, for the SSE stream: a tokio broadcast channel per watched event
//! carrying a bare "something changed" tick. Each subscriber then reads the current seat map
//! and waitlist itself, so a burst of changes costs one snapshot per subscriber, and events
//! nobody watches cost one atomic load.
//!
//! The engine tells [`Live`] of every change it makes ([`ChangeListener`]), promotions and
//! hold expiry included. With a [`ChangeFeed`] attached (the shared stores' publish and
//! subscribe: PostgreSQL's `LISTEN`/`NOTIFY`, or Redis), the changes made here are also told
//! to every other server, gathered every [`FLUSH_MS`] so that a burst is one message, and
//! the changes the others make reach the streams open here. When the feed's subscription
//! was lost and is back, every stream here sends a fresh snapshot: nothing is missed in
//! silence.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use happening_core::ids::{EventId, UserId};
use happening_core::ports::{ChangeFeed, Heard};
use happening_core::ChangeListener;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// How often the changes made here are told to the other servers: a burst of bookings
/// within it is one message per server, and a watcher on another server hears of a change
/// within about this much plus the store's delivery.
pub const FLUSH_MS: u64 = 50;

/// How long opening a stream waits for the feed to subscribe to its event; past it the
/// stream starts anyway, and the feed's `Resync` covers what it missed once it is back.
const WATCH_WAIT_MS: u64 = 2_000;

/// Events waiting to be told to the other servers, at most: past it (a feed down for long)
/// the oldest changes are dropped, and the others resync when the feed is back.
const OUTGOING_MAX: usize = 100_000;

#[derive(Default)]
pub struct Live {
    channels: Mutex<HashMap<EventId, broadcast::Sender<()>>>,
    subscribers: AtomicUsize,
    /// Open subscriptions per user, so that one user cannot take every stream of the server.
    per_user: Mutex<HashMap<UserId, usize>>,
    /// Set once a feed is attached ([`relay_changes`]).
    feed: OnceLock<Attached>,
}

/// The feed's side of [`Live`]: what is still to be told, and the (un)subscriptions.
struct Attached {
    outgoing: Mutex<HashSet<EventId>>,
    commands: mpsc::UnboundedSender<Command>,
}

/// A change of the feed's subscriptions, made in order by one task.
enum Command {
    Watch(EventId, oneshot::Sender<()>),
    /// The last stream of the event here closed (unless one opened since).
    Unwatch(EventId),
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
            if let Some(a) = self.live.feed.get() {
                let _ = a.commands.send(Command::Unwatch(self.event));
            }
        }
    }
}

impl Live {
    /// Subscribes `user` to `event`, unless the server has `max_total` subscriptions open or
    /// the user `max_per_user` (both counted under one lock, so concurrent opens cannot pass
    /// either limit). Then [`Live::watch`] before the first snapshot.
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

    /// Makes sure the feed (if any) hears of `event`'s changes on other servers, so that a
    /// snapshot read after this misses none of them. Waits at most [`WATCH_WAIT_MS`].
    pub async fn watch(&self, event: EventId) {
        let Some(a) = self.feed.get() else { return };
        let (done, subscribed) = oneshot::channel();
        if a.commands.send(Command::Watch(event, done)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_millis(WATCH_WAIT_MS), subscribed).await;
        }
    }

    /// Tells the watchers of `event` here that it changed.
    fn touch(&self, event: EventId) {
        if self.subscribers.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(tx) = self.channels.lock().expect("live lock").get(&event) {
            let _ = tx.send(());
        }
    }

    /// Tells every watcher here (after changes that may have gone unheard).
    fn touch_all(&self) {
        if self.subscribers.load(Ordering::Relaxed) == 0 {
            return;
        }
        for tx in self.channels.lock().expect("live lock").values() {
            let _ = tx.send(());
        }
    }

    fn watched(&self, event: EventId) -> bool {
        self.channels.lock().expect("live lock").contains_key(&event)
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }
}

/// Every change the engine makes: the streams here, and (with a feed) the other servers.
impl ChangeListener for Live {
    fn changed(&self, event: EventId) {
        self.touch(event);
        if let Some(a) = self.feed.get() {
            let mut out = a.outgoing.lock().expect("live lock");
            if out.len() < OUTGOING_MAX {
                out.insert(event);
            }
        }
    }
}

/// Attaches `feed` to `live` and runs it until `stop`: the changes made here are published
/// every [`FLUSH_MS`], the changes heard from the other servers reach the streams here, and
/// the feed's subscriptions follow the events watched here. Call once.
pub async fn relay_changes(live: Arc<Live>, feed: Arc<dyn ChangeFeed>, mut stop: watch::Receiver<bool>) {
    let (commands, mut queue) = mpsc::unbounded_channel();
    if live.feed.set(Attached { outgoing: Mutex::default(), commands }).is_err() {
        tracing::error!("a change feed is attached already");
        return;
    }
    let attached = live.feed.get().expect("just set");
    // Events watched before the feed was attached.
    for event in live.channels.lock().expect("live lock").keys() {
        let (done, _) = oneshot::channel();
        let _ = attached.commands.send(Command::Watch(*event, done));
    }
    let subscriptions = {
        let (live, feed) = (live.clone(), feed.clone());
        async move {
            while let Some(c) = queue.recv().await {
                match c {
                    Command::Watch(event, done) => {
                        feed.watch(event).await;
                        let _ = done.send(());
                    }
                    // A stream of the event may have opened since: then it stays watched.
                    Command::Unwatch(event) if !live.watched(event) => feed.unwatch(event).await,
                    Command::Unwatch(_) => {}
                }
            }
        }
    };
    let listening = {
        let (live, feed) = (live.clone(), feed.clone());
        async move {
            loop {
                match feed.next().await {
                    Heard::Changed(events) => events.into_iter().for_each(|e| live.touch(e)),
                    Heard::Resync => {
                        tracing::info!("listening to the other servers' changes again: every live stream here reads afresh");
                        live.touch_all();
                    }
                }
            }
        }
    };
    let publishing = async {
        let mut tick = tokio::time::interval(Duration::from_millis(FLUSH_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let events: Vec<EventId> = std::mem::take(&mut *attached.outgoing.lock().expect("live lock")).into_iter().collect();
            if events.is_empty() {
                continue;
            }
            if let Err(e) = feed.publish(&events).await {
                // Told with the next round; the others resync if their side was down too.
                tracing::warn!(error = %e, events = events.len(), "telling the other servers of changes failed; will retry");
                let mut out = attached.outgoing.lock().expect("live lock");
                for e in events {
                    if out.len() >= OUTGOING_MAX {
                        break;
                    }
                    out.insert(e);
                }
            }
        }
    };
    tokio::select! {
        _ = subscriptions => {}
        _ = listening => {}
        _ = publishing => {}
        _ = stop.changed() => {}
    }
}
