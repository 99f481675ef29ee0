//! The engine: the booking rules, composed over the ports.
//!
//! Every operation follows one order so that the counter stays conservative (never above
//! the store's free seats): take from the counter, then write the store; free in the
//! store, then give back to the counter. The store re-checks capacity itself, so a stale or
//! drifted counter can make the engine queue or retry, never oversell.

mod audit;
mod booking;
mod directory;
mod events;
mod grants;
mod holds;
mod offers;
mod passes;
mod promotion;
mod relay;
mod validate;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::clock::{Clock, SystemClock};
use crate::error::{BackendError, Conflict, Error, Result};
use crate::ids::EventId;
use crate::limits::Limits;
use crate::memory::{MemoryAdmission, MemoryStore};
use crate::ports::{Admission, AdmissionError, Store, StoreError};

pub use audit::{AuditOptions, AuditReport, Breach, EventAudit};
pub use booking::BookRequest;
pub use holds::HoldRequest;
pub use offers::Expired;
pub use promotion::Reconciled;
pub use relay::RELAY_LEASE_MS;

/// The booking engine. Cheap to clone: every clone shares the same stores.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    admission: Arc<dyn Admission>,
    clock: Arc<dyn Clock>,
    limits: Arc<Limits>,
    /// Events whose counter or waitlist may be stale after a failure of the admission
    /// backend, for [`Engine::reconcile_dirty`].
    dirty: Arc<Mutex<BTreeSet<EventId>>>,
    /// The promotion pass running per event, and who waits for the next.
    passes: Arc<passes::Passes>,
    /// Told of every change of an event ([`Engine::with_change_listener`]).
    changes: Option<Arc<dyn ChangeListener>>,
    /// The admission backend's generation last seen ([`SlotCounter::generation`]).
    ///
    /// [`SlotCounter::generation`]: crate::ports::SlotCounter::generation
    generation: Arc<Mutex<Option<String>>>,
    /// Event rows and roles read lately, for [`Engine::event_as`] (none unless
    /// [`Engine::with_auth_cache`]).
    grants: Option<Arc<grants::AuthCache>>,
}

/// Told of every change the engine makes to an event: its seats, its queue or its row (a
/// booking, a cancellation, a promotion, a hold and its end, an update, a repair), after the
/// change is committed, from the task that made it. It must not block: note the event and
/// return. The HTTP server's live streams listen this way, and tell the other servers.
pub trait ChangeListener: Send + Sync + 'static {
    /// `event` changed. Called once per change; the same event may come many times in a row.
    fn changed(&self, event: EventId);
}

impl Engine {
    /// An engine over the given stores, on the wall clock, with default limits.
    pub fn new(store: Arc<dyn Store>, admission: Arc<dyn Admission>) -> Self {
        Self {
            store,
            admission,
            clock: Arc::new(SystemClock),
            limits: Arc::new(Limits::default()),
            dirty: Arc::default(),
            passes: Arc::default(),
            changes: None,
            generation: Arc::default(),
            grants: None,
        }
    }

    /// An engine with in-memory stores: no setup, nothing persisted.
    pub fn in_memory() -> Self {
        Self::new(Arc::new(MemoryStore::new()), Arc::new(MemoryAdmission::new()))
    }

    /// Reads time from `clock` instead of the wall clock (a `ManualClock` in tests). Every
    /// timestamp and expiry goes through it.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps the event rows and roles that [`Engine::event_as`] (and so
    /// [`Engine::book_as`]) read for `ttl_ms` (0: not at all, the default), so that a sale
    /// of one event reads its row and each buyer's membership once per `ttl_ms` rather than
    /// once per request. What it trades: a member removed or a role lowered through another
    /// engine (another server) keeps the old role here for up to `ttl_ms`, and an event
    /// changed there is validated against its old row as long (the store's own steps check
    /// again whatever could make a booking wrong: a cancelled event, missing seats). Changes
    /// made through this engine, or a clone of it, are dropped at once; refusals are never
    /// kept. At most 100,000 rows and as many roles; a full map starts over.
    pub fn with_auth_cache(mut self, ttl_ms: u64) -> Self {
        let ttl = chrono::Duration::milliseconds(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        self.grants = grants::AuthCache::new(ttl, grants::ENTRIES_MAX).map(Arc::new);
        self
    }

    /// Checks every input against `limits` instead of `Limits::default()`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Arc::new(limits);
        self
    }

    /// Tells `listener` of every change this engine (and its clones made from now on) makes.
    pub fn with_change_listener(mut self, listener: Arc<dyn ChangeListener>) -> Self {
        self.changes = Some(listener);
        self
    }

    /// Tells the listener, if any, that `event` changed.
    pub(super) fn changed(&self, event: EventId) {
        if let Some(l) = &self.changes {
            l.changed(event);
        }
    }

    /// The seat store and directory, for tests that look behind the engine (the `testkit`
    /// feature): callers go through the engine, which keeps the stores consistent.
    #[cfg(any(test, feature = "testkit"))]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The admission, for tests that look behind the engine (the `testkit` feature).
    #[cfg(any(test, feature = "testkit"))]
    pub fn admission(&self) -> &Arc<dyn Admission> {
        &self.admission
    }

    /// The limits every input is checked against, for callers that check or show them
    /// before calling the engine (the HTTP server's hold time in seconds, idempotency keys).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The clock the engine reads time from, for callers that must agree with it.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Takes a derived-state step (counter, waitlist, promotion) that follows a change the
    /// store already committed, or undoes a step of a change the store refused. If it fails
    /// (the admission backend is down), the store's answer stands, the caller gets it, and the
    /// event is marked for [`Engine::reconcile_dirty`], which rebuilds the derived state from
    /// the store.
    pub(super) fn derived<T>(&self, event: EventId, step: Result<T>) -> Option<T> {
        match step {
            Ok(v) => Some(v),
            Err(_) => {
                self.mark_dirty(event);
                None
            }
        }
    }

    pub(super) fn mark_dirty(&self, event: EventId) {
        self.dirty.lock().expect("dirty set lock poisoned").insert(event);
    }

    /// Reconciles every event marked after a failure of the admission backend (or whose
    /// rebuild kept losing to traffic), and every live event when the backend may have lost
    /// acknowledged writes since the last call (its generation changed: a Redis failover or
    /// restart). The server calls this on its timer. Returns how many events had drifted.
    pub async fn reconcile_dirty(&self) -> Result<usize> {
        let mut drifted = self.reconcile_if_new_generation().await?;
        let events = std::mem::take(&mut *self.dirty.lock().expect("dirty set lock poisoned"));
        let mut left = events.iter();
        while let Some(&event) = left.next() {
            match self.reconcile_event(event).await {
                Ok(r) => drifted += r.drifted() as usize,
                Err(Error::NotFound(_)) => {}
                Err(e) => {
                    // Still down: keep this one and the rest for the next round.
                    self.mark_dirty(event);
                    for &rest in left {
                        self.mark_dirty(rest);
                    }
                    return Err(e);
                }
            }
        }
        Ok(drifted)
    }

    /// When the admission backend's generation changed since the last look, rebuilds every
    /// live event from the store; the new generation counts as seen once that is done, so
    /// a rebuild that fails is tried again on the next call. The first look only notes it.
    async fn reconcile_if_new_generation(&self) -> Result<usize> {
        // Unreadable (the backend is down): the calls failing meanwhile mark their events.
        let Ok(Some(now)) = self.admission.generation().await else { return Ok(0) };
        let seen = self.generation.lock().expect("generation lock poisoned").clone();
        if seen.as_ref().is_some_and(|s| *s != now) {
            let drifted = self.reconcile_all().await?.len();
            *self.generation.lock().expect("generation lock poisoned") = Some(now);
            return Ok(drifted);
        }
        *self.generation.lock().expect("generation lock poisoned") = Some(now);
        Ok(0)
    }

    /// Clamps a requested page size to the limit (0 means the limit).
    fn page(&self, limit: u32) -> u32 {
        if limit == 0 {
            self.limits.page_size_max
        } else {
            limit.min(self.limits.page_size_max)
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Error::NotFound(what),
            StoreError::Conflict { reason, seats } => Error::Conflict { reason, seats },
            StoreError::Short { free } => Error::Capacity { available: free },
            StoreError::NotWaiting(_) => Error::conflict(Conflict::BookingNotConfirmed),
            StoreError::IdempotencyKeyTaken(_) => Error::IdempotencyMismatch,
            StoreError::Backend(b) => Error::Backend(b),
        }
    }
}

impl From<AdmissionError> for Error {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::Missing => Error::Backend(BackendError::msg("admission state missing for event")),
            AdmissionError::Backend(b) => Error::Backend(b),
        }
    }
}
