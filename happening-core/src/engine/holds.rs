//! Holds: seats kept aside for a while, then released, expired or booked.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::domain::{EventStatus, Hold, NewHold};
use crate::error::{Conflict, Error, Result};
use crate::ids::{EventId, HoldId, SeatNo, UserId};
use crate::ports::{StoreError, Take, TakeRequest};

use super::validate;
use super::Engine;

/// A request to keep seats of an event aside for a user for a while ([`Engine::hold`]).
#[derive(Debug, Clone, Default)]
pub struct HoldRequest {
    /// The event whose seats to hold.
    pub event_id: EventId,
    /// The person to keep them for: the only one who may book or release the hold.
    pub user_id: UserId,
    /// How many of the lowest free seats (or the number of `seat_numbers`).
    pub seats: Option<u32>,
    /// Exactly these seats; any taken is a conflict naming it.
    pub seat_numbers: Option<Vec<SeatNo>>,
    /// How long the seats are kept, in milliseconds (`Limits::hold_ttl_ms_min` to
    /// `hold_ttl_ms_max`).
    pub ttl_ms: u64,
}

impl Engine {
    /// Holds seats for `ttl_ms`. Held seats are not free; the hold expires by itself
    /// (see [`Engine::expire_holds`]), is released, or becomes a booking.
    pub async fn hold(&self, req: HoldRequest) -> Result<Hold> {
        let l = &self.limits;
        if req.ttl_ms < l.hold_ttl_ms_min || req.ttl_ms > l.hold_ttl_ms_max {
            return Err(Error::invalid("ttl", format!("must be between {} and {} ms", l.hold_ttl_ms_min, l.hold_ttl_ms_max)));
        }
        let event = self.store.event(req.event_id).await?;
        if event.status == EventStatus::Cancelled {
            return Err(Error::conflict(Conflict::EventCancelled));
        }
        let (seats, wanted) = validate::seats(req.seats, req.seat_numbers.as_deref(), event.capacity, l)?;
        let behind_queue = event.policy.newcomers_queue_behind();
        match self.take(req.event_id, TakeRequest { want: seats, min: seats, behind_queue, waitlist_max: None }).await? {
            Take::Taken(_) => {}
            Take::Short { free, queued } => return Err(Error::Capacity { available: if queued { 0 } else { free } }),
            // Not asked for (no `waitlist_max`); a hold never waits.
            Take::WaitlistFull => return Err(Error::Capacity { available: 0 }),
        }
        let now = self.clock.now();
        let new = NewHold {
            id: HoldId::new(),
            event_id: req.event_id,
            user_id: req.user_id,
            seats,
            seat_numbers: wanted,
            expires_at: now + Duration::milliseconds(req.ttl_ms as i64),
        };
        match self.store.create_hold(&new, now).await {
            Ok(h) => {
                self.changed(h.event_id);
                Ok(h)
            }
            Err(e) => {
                let _ = self.derived(req.event_id, self.give(req.event_id, seats).await);
                Err(e.into())
            }
        }
    }

    /// The hold, while it lasts; `NotFound(Hold)` once released, expired or booked.
    pub async fn get_hold(&self, id: HoldId) -> Result<Hold> {
        Ok(self.store.hold(id).await?)
    }

    /// Releases a hold before it expires (only its owner may).
    pub async fn release_hold(&self, id: HoldId, user: UserId) -> Result<Hold> {
        let hold = self.store.hold(id).await?;
        if hold.user_id != user {
            return Err(Error::Forbidden("only the hold's owner may release it"));
        }
        let hold = self.store.release_hold(id).await?;
        self.after_free(hold.event_id, hold.seat_numbers.len() as u32).await;
        Ok(hold)
    }

    /// Expires every hold due by the clock, frees its seats and promotes. The server calls
    /// this on a timer; tests call it after moving a manual clock. Returns how many expired.
    pub async fn expire_holds(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let expired = match self.store.expire_holds(self.clock.now(), self.limits.page_size_max).await {
                Ok(v) => v,
                Err(StoreError::NotFound(_)) => break,
                Err(e) => return Err(e.into()),
            };
            if expired.is_empty() {
                break;
            }
            total += expired.len();
            // Holds that ran out together free their seats together: give each event all
            // of its seats back before promoting, so the waitlist sees them at once.
            let mut freed: BTreeMap<EventId, u32> = BTreeMap::new();
            for h in &expired {
                *freed.entry(h.event_id).or_default() += h.seat_numbers.len() as u32;
            }
            for (event, n) in freed {
                self.after_free(event, n).await;
            }
        }
        Ok(total)
    }
}
