//! Counter access with self-repair, waitlist promotion, and reconciliation of the counter
//! and waitlist against the store.

use std::future::Future;

use crate::domain::{BookingStatus, EventStatus, WaitlistPolicy};
use crate::error::{BackendError, Error, Result};
use crate::ids::EventId;
use crate::ports::{AdmissionError, StoreError, Take, TakeRequest, WaitEntry};

use super::Engine;

/// Most rebuilds one reconcile attempts. Each loses only to a change of the event made
/// while it read the store, so losing them all takes a busy event; it is retried on the
/// next tick.
const REBUILD_ATTEMPTS: u32 = 8;

/// What reconciling one event found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// The event reconciled.
    pub event_id: EventId,
    /// The admission's free-seat counter before the repair (`None`: missing).
    pub free_before: Option<u32>,
    /// The counter as the repair wrote it: the store's free seats, before the promotions
    /// it then made (`promoted`).
    pub free_after: u32,
    /// Whether the waitlist differed from the store's waiting bookings.
    pub waitlist_repaired: bool,
    /// Bookings waiting after the repair.
    pub waiting: u32,
    /// Waiting bookings the repair promoted (seats were free).
    pub promoted: u32,
}

impl Reconciled {
    /// Whether anything was repaired: the counter, the waitlist, or a promotion owed.
    pub fn drifted(&self) -> bool {
        self.free_before != Some(self.free_after) || self.waitlist_repaired || self.promoted > 0
    }
}

impl Engine {
    /// Runs an admission call; if the event's counter is missing (cold start, flushed
    /// Redis), rebuilds it from the store and runs the call once more.
    pub(super) async fn with_admission<T, F, Fut>(&self, event: EventId, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, AdmissionError>>,
    {
        match call().await {
            Err(AdmissionError::Missing) => {
                // A rebuild that loses (`None`) lost to another engine's step, i.e. someone
                // else rebuilt the event first: either way, run the call again.
                self.rebuild_once(event).await?;
                Ok(call().await?)
            }
            other => Ok(other?),
        }
    }

    pub(super) async fn take(&self, event: EventId, req: TakeRequest) -> Result<Take> {
        self.with_admission(event, || self.admission.take(event, req)).await
    }

    pub(super) async fn give(&self, event: EventId, n: u32) -> Result<()> {
        match self.admission.give(event, n).await {
            // A missing counter is rebuilt from the store, which already counts these seats.
            Err(AdmissionError::Missing) => Ok(()),
            other => Ok(other?),
        }
    }

    /// Promotes waiting bookings of `event` that fit, per `policy`. Returns how many.
    ///
    /// With an admission whose pop removes what it pops, passes run side by side. With one
    /// whose pop only reads (PostgreSQL's), one pass per event runs at a time in this
    /// engine: a caller that arrives meanwhile waits for the next, which serves every
    /// caller that arrived during the one before (see `passes`); its count may then
    /// include seats freed by those other callers.
    pub(super) async fn promote(&self, event: EventId, policy: WaitlistPolicy) -> Result<u32> {
        if self.admission.pop_removes() {
            return self.promotion_pass(event, policy).await;
        }
        self.passes.run(event, || self.promotion_pass(event, policy)).await
    }

    /// One promotion pass: promotes waiting bookings of `event` that fit, per `policy`, up
    /// to the pass limit. Returns how many were promoted.
    ///
    /// A pass cut short by the limit marks the event for [`Engine::reconcile_dirty`], which
    /// runs the next pass: otherwise, with no further change to the event, the rest would
    /// wait for seats that are free.
    async fn promotion_pass(&self, event: EventId, policy: WaitlistPolicy) -> Result<u32> {
        let mut promoted = 0;
        while promoted < self.limits.promotions_per_pass_max {
            let Some(p) = self.with_admission(event, || self.admission.pop_fitting(event, policy)).await? else { break };
            match self.store.promote(p.entry.booking, p.seats, self.clock.now()).await {
                Ok(_) => promoted += 1,
                // Cancelled (or promoted by another engine) after it was queued: its seats
                // go back, and the next one gets its chance.
                Err(StoreError::NotWaiting(_)) | Err(StoreError::NotFound(_)) => self.give(event, p.seats).await?,
                Err(e) => {
                    // Put things back as they were; a drifted counter (`Short`) is repaired.
                    self.give(event, p.seats).await?;
                    self.with_admission(event, || self.admission.push(event, p.entry)).await?;
                    if let StoreError::Short { .. } = e {
                        self.rebuild(event).await?;
                        continue;
                    }
                    return Err(e.into());
                }
            }
        }
        if promoted == self.limits.promotions_per_pass_max {
            self.mark_dirty(event);
        }
        Ok(promoted)
    }

    /// Reconciles every live event (on start, by `happening reconcile`). Returns the events
    /// that had drifted.
    pub async fn reconcile_all(&self) -> Result<Vec<Reconciled>> {
        let mut drifted = Vec::new();
        for event in self.store.live_event_ids().await? {
            match self.reconcile_event(event).await {
                Ok(r) if r.drifted() => drifted.push(r),
                Ok(_) | Err(crate::Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(drifted)
    }

    /// Rebuilds the counter and waitlist of `event` from the store (the source of truth):
    /// free = capacity - booked - held, the waitlist = waiting bookings in `queue_seq`
    /// order. Run on a missing counter, by `reconcile`, and after a crash.
    ///
    /// Safe while other engines run: a rebuild never overwrites a step made after it read
    /// the store (see `rebuild_once`).
    pub async fn reconcile_event(&self, event: EventId) -> Result<Reconciled> {
        let mut r = self.rebuild(event).await?;
        // A crash between freeing seats and promoting leaves people waiting for free
        // seats; the repaired state is promoted like any other.
        let view = self.store.event(event).await?;
        if view.status != EventStatus::Cancelled {
            // A pass of its own, not a shared one: its count is this repair's.
            r.promoted = self.promotion_pass(event, view.policy).await?;
            r.waiting -= r.promoted;
        }
        if r.drifted() || r.promoted > 0 {
            self.changed(event);
        }
        Ok(r)
    }

    /// The rebuild of `reconcile_event`, without the promotion: attempts until one wins
    /// (see `rebuild_once`), at most [`REBUILD_ATTEMPTS`]; then the event stays marked for
    /// [`Engine::reconcile_dirty`].
    async fn rebuild(&self, event: EventId) -> Result<Reconciled> {
        for _ in 0..REBUILD_ATTEMPTS {
            if let Some(r) = self.rebuild_once(event).await? {
                return Ok(r);
            }
        }
        self.mark_dirty(event);
        Err(Error::Backend(BackendError::msg(format!(
            "event {event} changed during each of {REBUILD_ATTEMPTS} rebuilds; it is marked for the next reconcile"
        ))))
    }

    /// Reads the store and writes what it read as the counter and queue, unless the event's
    /// admission version moved in between: then another engine's step (seats given back,
    /// a booking queued) landed after the read, writing would lose it, and this answers
    /// `None` without writing.
    ///
    /// What the version cannot see is a `take` made *before* the read whose booking the
    /// store writes *after* it: the rebuilt counter then counts those seats as free. It
    /// errs high, never low: the store refuses the seats (no oversell), and the promotion
    /// that finds the store short rebuilds again.
    async fn rebuild_once(&self, event: EventId) -> Result<Option<Reconciled>> {
        let version = self.admission.version(event).await?;
        let view = self.store.event_view(event).await?;
        let waiting = self.store.waiting(event, u32::MAX, 0).await?;
        let entries: Vec<WaitEntry> = waiting
            .iter()
            .filter(|b| b.status == BookingStatus::Waiting)
            .map(|b| WaitEntry { booking: b.id, seats: b.seats_requested, seq: b.queue_seq.expect("waiting booking has a seq") })
            .collect();
        let free_before = match self.admission.free(event).await {
            Ok(n) => Some(n),
            Err(AdmissionError::Missing) => None,
            Err(e) => return Err(e.into()),
        };
        let queued = match free_before {
            Some(_) => self.admission.list(event, u32::MAX).await?,
            None => Vec::new(),
        };
        let free_after = view.available();
        let waitlist_repaired = queued != entries;
        let waiting = entries.len() as u32;
        if !self.admission.restore(event, version, free_after, entries).await? {
            return Ok(None);
        }
        Ok(Some(Reconciled { event_id: event, free_before, free_after, waitlist_repaired, waiting, promoted: 0 }))
    }
}
