//! A seat store of your own: `JournaledStore` wraps the in-memory store and writes every
//! change it commits to a journal (here, a bounded list; in a real service, say, a stream
//! to a data warehouse). Any `SeatStore` + `Directory` the engine runs on must keep the
//! same booking rules; the testkit's conformance suite checks them, and this file runs it
//! (`cargo test --example journaled_store`) as every backend of this workspace does.
//!
//! Run: `cargo run --example journaled_store`

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use happening::core::domain::*;
use happening::core::ids::*;
use happening::core::memory::{MemoryAdmission, MemoryStore};
use happening::core::ports::{Directory, SeatStore, StoreError};
use happening::core::{BookRequest, Engine};

/// Entries the journal keeps; older ones are dropped (a bound on memory).
const JOURNAL_ENTRIES_MAX: usize = 10_000;

/// The in-memory store, with a journal of the changes it committed. Cheap to clone:
/// clones share the store and the journal.
#[derive(Clone, Default)]
pub struct JournaledStore {
    inner: MemoryStore,
    journal: Arc<Mutex<VecDeque<&'static str>>>,
}

impl JournaledStore {
    /// The changes committed so far, oldest first (at most `JOURNAL_ENTRIES_MAX`).
    pub fn journal(&self) -> Vec<&'static str> {
        self.journal.lock().expect("journal lock").iter().copied().collect()
    }

    /// Writes `change` to the journal if it was committed: a refused change wrote nothing.
    fn record<T>(&self, change: &'static str, done: &Result<T, StoreError>) {
        if done.is_ok() {
            let mut journal = self.journal.lock().expect("journal lock");
            if journal.len() == JOURNAL_ENTRIES_MAX {
                journal.pop_front();
            }
            journal.push_back(change);
        }
    }
}

#[async_trait]
impl SeatStore for JournaledStore {
    async fn insert_event(&self, event: &Event) -> Result<EventView, StoreError> {
        let done = self.inner.insert_event(event).await;
        self.record("insert_event", &done);
        done
    }

    async fn event(&self, id: EventId) -> Result<Event, StoreError> {
        self.inner.event(id).await
    }

    async fn event_for(&self, id: EventId, user: UserId) -> Result<(Event, Option<Role>), StoreError> {
        self.inner.event_for(id, user).await
    }

    async fn event_view(&self, id: EventId) -> Result<EventView, StoreError> {
        self.inner.event_view(id).await
    }

    async fn live_event_ids(&self) -> Result<Vec<EventId>, StoreError> {
        self.inner.live_event_ids().await
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventView>, StoreError> {
        self.inner.list_events(filter).await
    }

    async fn update_event(&self, id: EventId, patch: &EventPatch, now: DateTime<Utc>) -> Result<EventView, StoreError> {
        let done = self.inner.update_event(id, patch, now).await;
        self.record("update_event", &done);
        done
    }

    async fn cancel_event(&self, id: EventId, now: DateTime<Utc>) -> Result<Vec<Booking>, StoreError> {
        let done = self.inner.cancel_event(id, now).await;
        self.record("cancel_event", &done);
        done
    }

    async fn delete_event(&self, id: EventId) -> Result<(), StoreError> {
        let done = self.inner.delete_event(id).await;
        self.record("delete_event", &done);
        done
    }

    async fn seat_map(&self, id: EventId) -> Result<SeatMap, StoreError> {
        self.inner.seat_map(id).await
    }

    async fn confirm(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let done = self.inner.confirm(new, now).await;
        self.record("confirm", &done);
        done
    }

    async fn enqueue(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let done = self.inner.enqueue(new, now).await;
        self.record("enqueue", &done);
        done
    }

    async fn promote(&self, id: BookingId, seats: u32, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let done = self.inner.promote(id, seats, now).await;
        self.record("promote", &done);
        done
    }

    async fn accept_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let done = self.inner.accept_offer(id, now).await;
        self.record("accept_offer", &done);
        done
    }

    async fn decline_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Cancellation, StoreError> {
        let done = self.inner.decline_offer(id, now).await;
        self.record("decline_offer", &done);
        done
    }

    async fn expire_offers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Booking>, StoreError> {
        let done = self.inner.expire_offers(now, limit).await;
        self.record("expire_offers", &done);
        done
    }

    async fn cancel(&self, id: BookingId, idempotency: Option<&IdempotencyKey>, now: DateTime<Utc>) -> Result<Cancellation, StoreError> {
        let done = self.inner.cancel(id, idempotency, now).await;
        self.record("cancel", &done);
        done
    }

    async fn cancel_seats(
        &self,
        id: BookingId,
        seats: &[SeatNo],
        idempotency: Option<&IdempotencyKey>,
        now: DateTime<Utc>,
    ) -> Result<Cancellation, StoreError> {
        let done = self.inner.cancel_seats(id, seats, idempotency, now).await;
        self.record("cancel_seats", &done);
        done
    }

    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError> {
        self.inner.booking(id).await
    }

    async fn user_bookings(&self, user: UserId, orgs: Option<&[OrgId]>, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError> {
        self.inner.user_bookings(user, orgs, limit, offset).await
    }

    async fn waiting(&self, event: EventId, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError> {
        self.inner.waiting(event, limit, offset).await
    }

    async fn event_bookings(&self, event: EventId) -> Result<Vec<Booking>, StoreError> {
        self.inner.event_bookings(event).await
    }

    async fn event_bookings_page(
        &self,
        event: EventId,
        status: Option<BookingStatus>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Booking>, StoreError> {
        self.inner.event_bookings_page(event, status, limit, offset).await
    }

    async fn history(&self, booking: BookingId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(booking).await
    }

    async fn event_booking_notifications(&self, event: EventId) -> Result<Vec<Notification>, StoreError> {
        self.inner.event_booking_notifications(event).await
    }

    async fn idempotency(&self, user: UserId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.idempotency(user, key).await
    }

    async fn create_hold(&self, new: &NewHold, now: DateTime<Utc>) -> Result<Hold, StoreError> {
        let done = self.inner.create_hold(new, now).await;
        self.record("create_hold", &done);
        done
    }

    async fn hold(&self, id: HoldId) -> Result<Hold, StoreError> {
        self.inner.hold(id).await
    }

    async fn release_hold(&self, id: HoldId) -> Result<Hold, StoreError> {
        let done = self.inner.release_hold(id).await;
        self.record("release_hold", &done);
        done
    }

    async fn convert_hold(&self, hold: HoldId, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let done = self.inner.convert_hold(hold, new, now).await;
        self.record("convert_hold", &done);
        done
    }

    async fn expire_holds(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Hold>, StoreError> {
        let done = self.inner.expire_holds(now, limit).await;
        self.record("expire_holds", &done);
        done
    }

    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError> {
        self.inner.notification(id).await
    }

    async fn notifications(&self, user: UserId, limit: u32, offset: u32) -> Result<Vec<Notification>, StoreError> {
        self.inner.notifications(user, limit, offset).await
    }

    async fn mark_read(&self, user: UserId, id: NotificationId) -> Result<(), StoreError> {
        self.inner.mark_read(user, id).await
    }

    async fn pending_notifications(&self, limit: u32) -> Result<Vec<Notification>, StoreError> {
        self.inner.pending_notifications(limit).await
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        self.inner.outbox_depth().await
    }

    async fn claim_pending(&self, limit: u32, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Vec<Notification>, StoreError> {
        self.inner.claim_pending(limit, now, lease_until).await
    }

    async fn release_claims(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        self.inner.release_claims(ids).await
    }

    async fn set_delivery(&self, ids: &[NotificationId], status: DeliveryStatus) -> Result<(), StoreError> {
        self.inner.set_delivery(ids, status).await
    }
}

#[async_trait]
impl Directory for JournaledStore {
    async fn upsert_user(&self, subject: &str, email: Option<&str>, name: Option<&str>, now: DateTime<Utc>) -> Result<User, StoreError> {
        self.inner.upsert_user(subject, email, name, now).await
    }

    async fn user(&self, id: UserId) -> Result<User, StoreError> {
        self.inner.user(id).await
    }

    async fn users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        self.inner.users(ids).await
    }

    async fn user_by_subject(&self, subject: &str) -> Result<User, StoreError> {
        self.inner.user_by_subject(subject).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.inner.user_by_email(email).await
    }

    async fn create_org(&self, org: &Organization, admin: UserId) -> Result<Organization, StoreError> {
        self.inner.create_org(org, admin).await
    }

    async fn org(&self, id: OrgId) -> Result<Organization, StoreError> {
        self.inner.org(id).await
    }

    async fn user_orgs(&self, user: UserId) -> Result<Vec<(Organization, Role)>, StoreError> {
        self.inner.user_orgs(user).await
    }

    async fn role(&self, org: OrgId, user: UserId) -> Result<Option<Role>, StoreError> {
        self.inner.role(org, user).await
    }

    async fn members(&self, org: OrgId) -> Result<Vec<Membership>, StoreError> {
        self.inner.members(org).await
    }

    async fn add_member(&self, member: &Membership) -> Result<Membership, StoreError> {
        self.inner.add_member(member).await
    }

    async fn set_role(&self, org: OrgId, user: UserId, role: Role) -> Result<Membership, StoreError> {
        self.inner.set_role(org, user, role).await
    }

    async fn remove_member(&self, org: OrgId, user: UserId) -> Result<(), StoreError> {
        self.inner.remove_member(org, user).await
    }

    async fn create_invite(&self, invite: &Invite, notify: Option<&Notification>) -> Result<Invite, StoreError> {
        self.inner.create_invite(invite, notify).await
    }

    async fn invite(&self, token: &str) -> Result<Invite, StoreError> {
        self.inner.invite(token).await
    }

    async fn accept_invite(&self, token: &str, user: UserId, now: DateTime<Utc>) -> Result<Membership, StoreError> {
        self.inner.accept_invite(token, user, now).await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), happening::core::Error> {
    let store = JournaledStore::default();
    let engine = Engine::new(Arc::new(store.clone()), Arc::new(MemoryAdmission::new()));
    let admin = engine.upsert_user("organizer", None, None).await?;
    let org = engine.create_org(admin.id, "Chess Club").await?;
    let event = engine.create_event(NewEvent::new(org.id, "Simultaneous exhibition", Utc::now(), 2)).await?.event;
    let book = |seats| BookRequest { event_id: event.id, user_id: UserId::new(), seats: Some(seats), ..Default::default() };
    let first = engine.book(book(2)).await?;
    let second = engine.book(book(1)).await?;
    println!("first: {:?} {:?}; second: {:?} #{:?}", first.status, first.seat_numbers, second.status, second.waiting_number);
    engine.cancel(first.id, first.user_id, None).await?;
    println!("second after the first cancels: {:?}", engine.booking(second.id).await?.status);
    println!("journal: {}", store.journal().join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use happening::core::testkit::Harness;

    use super::*;

    /// Every booking rule, on this store (with a replica engine sharing it, as a second
    /// server would).
    mod conformance {
        use super::*;

        happening::core::conformance_tests!(|| async {
            let (store, admission) = (JournaledStore::default(), MemoryAdmission::new());
            Harness::new(1, || (Arc::new(store.clone()), Arc::new(admission.clone())))
        });
    }

    /// The journal holds what was committed, in order, and nothing that was refused.
    #[tokio::test]
    async fn the_journal_holds_committed_changes_only() {
        let store = JournaledStore::default();
        let engine = Engine::new(Arc::new(store.clone()), Arc::new(MemoryAdmission::new()));
        let admin = engine.upsert_user("organizer", None, None).await.unwrap();
        let org = engine.create_org(admin.id, "Org").await.unwrap();
        let event = engine.create_event(NewEvent::new(org.id, "Show", Utc::now(), 1)).await.unwrap().event;
        let req = |seats| BookRequest { event_id: event.id, user_id: admin.id, seats: Some(seats), ..Default::default() };
        let b = engine.book(req(1)).await.unwrap();
        engine.book(req(2)).await.expect_err("two seats of one");
        engine.cancel(b.id, admin.id, None).await.unwrap();
        engine.cancel(b.id, admin.id, None).await.expect_err("cancelled twice");
        assert_eq!(store.journal(), vec!["insert_event", "confirm", "cancel"]);
    }
}
