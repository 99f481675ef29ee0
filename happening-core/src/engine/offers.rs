//! Offers: a seat freed for the waitlist of an event with `offer_ttl_seconds` is held for
//! the next in line until they accept it, decline it, or the time runs out.
//!
//! The store ends an offer in one atomic step on its status (accept, decline, expiry), so
//! however engines race for one offer, exactly one of them ends it; the others are told
//! how it ended. The seats an offer holds stay taken in the admission's counter from the
//! promotion that made it until it is declined or expires, when they are given back and
//! promoted like any freed seats: to the next in line, as the event's policy says.

use std::collections::BTreeMap;

use crate::domain::{Booking, BookingStatus, HistoryAction};
use crate::error::{Conflict, Result};
use crate::ids::{BookingId, EventId};
use crate::ports::StoreError;

use super::Engine;

/// What one background step ended ([`Engine::expire_due`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Holds that ran out, their seats given back.
    pub holds: usize,
    /// Offers that ran out, their seats passed on to the waitlist.
    pub offers: usize,
}

impl Engine {
    /// Accepts an open offer: the booking is confirmed with exactly the seats it was
    /// offered. Accepting again answers the same booking. `Conflict(OfferExpired)` once its
    /// time has run out, `Conflict(OfferDeclined)` after a decline, `Conflict(NotOffered)`
    /// for a booking that was never offered.
    ///
    /// Who may accept is the caller's policy (the HTTP server allows the booking's owner).
    pub async fn accept_offer(&self, id: BookingId) -> Result<Booking> {
        match self.store.accept_offer(id, self.clock.now()).await {
            Ok(b) => {
                self.changed(b.event_id);
                Ok(b)
            }
            Err(StoreError::Conflict { reason: Conflict::NotOffered, .. }) => self.ended_as(id, HistoryAction::Accepted).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Declines an offer: its seats go to the next in line. Declining again answers the
    /// same booking; the conflicts otherwise are those of [`Engine::accept_offer`].
    ///
    /// Who may decline is the caller's policy (the HTTP server allows the booking's owner
    /// and the organizers of its event).
    pub async fn decline_offer(&self, id: BookingId) -> Result<Booking> {
        match self.store.decline_offer(id, self.clock.now()).await {
            Ok(c) => {
                self.after_free(c.booking.event_id, c.freed.len() as u32).await;
                Ok(c.booking)
            }
            Err(StoreError::Conflict { reason: Conflict::OfferDeclined, .. }) => self.ended_as(id, HistoryAction::Declined).await,
            Err(e) => Err(e.into()),
        }
    }

    /// A repeated accept (or decline) answers the booking it ended; anything else the
    /// conflict of the way the booking did end.
    async fn ended_as(&self, id: BookingId, action: HistoryAction) -> Result<Booking> {
        let b = self.store.booking(id).await?;
        let history = self.store.history(id).await?;
        let repeated = match action {
            HistoryAction::Accepted => accepted(&b, &history),
            _ => history.last().is_some_and(|h| h.action == action),
        };
        if repeated {
            return Ok(b);
        }
        Err(StoreError::not_offered(b.status).into())
    }

    /// Ends every offer due by the clock, frees its seats and offers (or gives) them to
    /// the next in line. Returns how many ended.
    pub async fn expire_offers(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let expired = self.store.expire_offers(self.clock.now(), self.limits.page_size_max).await?;
            if expired.is_empty() {
                break;
            }
            total += expired.len();
            // Offers that ran out together free their seats together, as holds do.
            let mut freed: BTreeMap<EventId, u32> = BTreeMap::new();
            for b in &expired {
                *freed.entry(b.event_id).or_default() += b.seat_numbers.len() as u32;
            }
            for (event, n) in freed {
                self.after_free(event, n).await;
            }
        }
        Ok(total)
    }

    /// The background step of everything that runs out by the clock: holds, then offers.
    /// A server (or an embedder) calls it on a timer; each runs even if the other fails,
    /// and the first failure is returned.
    pub async fn expire_due(&self) -> Result<Expired> {
        let holds = self.expire_holds().await;
        let offers = self.expire_offers().await;
        Ok(Expired { holds: holds?, offers: offers? })
    }
}

/// Whether `b` is confirmed by accepting its offer (seats cancelled since included: the
/// booking is still the one the accept made).
fn accepted(b: &Booking, history: &[crate::domain::HistoryEntry]) -> bool {
    b.status == BookingStatus::Confirmed && history.iter().any(|h| h.action == HistoryAction::Accepted)
}
