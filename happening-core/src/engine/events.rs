//! Events: create, read, update (capacity per the rules), cancel, delete.

use crate::domain::*;
use crate::error::{Conflict, Error, Result};
use crate::ids::EventId;
use crate::ports::{Take, TakeRequest};

use super::validate;
use super::Engine;

impl Engine {
    /// Creates an event of an existing organization.
    pub async fn create_event(&self, new: NewEvent) -> Result<EventView> {
        let l = &self.limits;
        let now = self.clock.now();
        let event = Event {
            id: EventId::new(),
            org_id: new.org_id,
            name: validate::text("name", &new.name, l.name_bytes_max)?,
            description: validate::optional_text("description", new.description.as_deref(), l.description_bytes_max)?,
            category: validate::optional_text("category", new.category.as_deref(), l.category_bytes_max)?,
            event_date: new.event_date,
            capacity: validate::capacity(new.capacity, l)?,
            status: EventStatus::Upcoming,
            policy: new.policy,
            waitlist_max: validate::waitlist_max(new.waitlist_max, l)?,
            offer_ttl_seconds: validate::offer_ttl_seconds(new.offer_ttl_seconds, l)?,
            created_at: now,
            updated_at: now,
        };
        self.store.org(event.org_id).await?;
        let view = self.store.insert_event(&event).await?;
        // A missing counter is rebuilt from the store on first use.
        let _ = self.derived(event.id, self.admission.set_free(event.id, event.capacity).await.map_err(Error::from));
        Ok(view)
    }

    /// The event with its live counts (`available()`, booked, held, waiting).
    pub async fn event(&self, id: EventId) -> Result<EventView> {
        Ok(self.store.event_view(id).await?)
    }

    /// Events of the given organizations, latest `event_date` first.
    pub async fn list_events(&self, mut filter: EventFilter) -> Result<Vec<EventView>> {
        filter.limit = self.page(filter.limit);
        Ok(self.store.list_events(&filter).await?)
    }

    /// Changes an event. A larger capacity adds seats and promotes; a smaller one must keep
    /// every booked, held and offered seat (409 otherwise). Every live booking is notified of a change it can
    /// see (`EventPatch::notifies_bookings`: not of the waitlist's cap alone).
    pub async fn update_event(&self, id: EventId, patch: EventPatch) -> Result<EventView> {
        let l = &self.limits;
        let patch = EventPatch {
            name: patch.name.as_deref().map(|n| validate::text("name", n, l.name_bytes_max)).transpose()?,
            description: patch
                .description
                .map(|d| validate::optional_text("description", d.as_deref(), l.description_bytes_max))
                .transpose()?,
            category: patch.category.map(|c| validate::optional_text("category", c.as_deref(), l.category_bytes_max)).transpose()?,
            capacity: patch.capacity.map(|c| validate::capacity(c, l)).transpose()?,
            waitlist_max: patch.waitlist_max.map(|m| validate::waitlist_max(m, l)).transpose()?,
            offer_ttl_seconds: patch.offer_ttl_seconds.map(|t| validate::offer_ttl_seconds(t, l)).transpose()?,
            ..patch
        };
        let before = self.store.event(id).await?;
        if before.status == EventStatus::Cancelled {
            return Err(Error::conflict(Conflict::EventCancelled));
        }
        let old = before.capacity;
        let new = patch.capacity.unwrap_or(old);
        // Shrinking: take the removed seats off the counter first, so that no booking in
        // flight can be admitted to them.
        if new < old {
            let cut = old - new;
            match self.take(id, TakeRequest { want: cut, min: cut, behind_queue: false, waitlist_max: None }).await? {
                Take::Taken(_) => {}
                Take::Short { free, .. } => return Err(Error::Capacity { available: free }),
                // Not asked for (no `waitlist_max`); nothing was taken either way.
                Take::WaitlistFull => return Err(Error::Capacity { available: 0 }),
            }
        }
        let updated = self.store.update_event(id, &patch, self.clock.now()).await;
        self.forget_event_grants(id);
        let view = match updated {
            Ok(v) => v,
            Err(e) => {
                if new < old {
                    let _ = self.derived(id, self.give(id, old - new).await);
                }
                return Err(e.into());
            }
        };
        self.changed(id);
        if new > old && self.derived(id, self.give(id, new - old).await).is_none() {
            return Ok(view);
        }
        if new > old || patch.policy.is_some() {
            let _ = self.derived(id, self.promote(id, view.event.policy).await);
            return self.event(id).await;
        }
        Ok(view)
    }

    /// Cancels the event: every booking cancelled and notified, the waitlist emptied.
    pub async fn cancel_event(&self, id: EventId) -> Result<Vec<Booking>> {
        let cancelled = self.store.cancel_event(id, self.clock.now()).await;
        self.forget_event_grants(id);
        let cancelled = cancelled?;
        let _ = self.derived(id, self.admission.forget(id).await.map_err(Error::from));
        self.changed(id);
        Ok(cancelled)
    }

    /// Removes the event and everything of it.
    pub async fn delete_event(&self, id: EventId) -> Result<()> {
        let deleted = self.store.delete_event(id).await;
        self.forget_event_grants(id);
        deleted?;
        let _ = self.derived(id, self.admission.forget(id).await.map_err(Error::from));
        self.changed(id);
        Ok(())
    }

    /// Which seats of the event are booked and which held, as the store has them: what a
    /// seat picker shows.
    pub async fn seat_map(&self, id: EventId) -> Result<SeatMap> {
        Ok(self.store.seat_map(id).await?)
    }

    /// The waiting bookings of an event in order, from the `offset`-th, each with its
    /// 1-based `waiting_number` in the whole queue.
    pub async fn waitlist(&self, id: EventId, limit: u32, offset: u32) -> Result<Vec<Booking>> {
        let mut list = self.store.waiting(id, self.page(limit), offset).await?;
        for (i, b) in list.iter_mut().enumerate() {
            b.waiting_number = Some(offset.saturating_add(i as u32 + 1));
        }
        Ok(list)
    }
}
