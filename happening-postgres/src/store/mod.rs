//! [`SeatStore`] on PostgreSQL: each method is one transaction that writes the change with
//! its history rows and outbox notifications.
//!
//! Isolation: READ COMMITTED plus row locks on the seats, bookings and holds a step touches,
//! and one advisory lock per event: *shared* by every booking step (they never wait for each
//! other on it: the lock lives in memory, not in the event row), *exclusive* by the steps
//! that change the whole event (cancel, resize, delete), so that those never race a booking.
//!
//! One file per concern, and the trait's methods here each one call of theirs: `events.rs`
//! (events and their views), `bookings.rs`, `offers.rs` (an offer accepted, declined,
//! expired), `holds.rs`, `outbox.rs` (notifications),
//! `idempotency.rs` (a key bound to its booking), `locks.rs` (the event's advisory lock),
//! `writes.rs` (a change's rows in one statement).

mod bookings;
mod events;
mod holds;
mod idempotency;
mod locks;
mod offers;
mod outbox;
mod writes;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use happening_core::domain::*;
use happening_core::ids::*;
use happening_core::ports::{SeatStore, StoreError};
use sqlx::PgPool;

use crate::batch::{self, Batcher};

pub(crate) use writes::insert_notification;

/// The PostgreSQL store: a cheap-to-clone handle on a connection pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Group commit of new bookings (see `batch.rs`); `None` when made outside a tokio
    /// runtime, and each booking is then a batch of one.
    batcher: Option<Arc<Batcher>>,
}

impl PgStore {
    /// The store on `pool`; inside a tokio runtime it also starts the booking batcher's
    /// tasks there (they end with the last clone of the store).
    pub fn new(pool: PgPool) -> Self {
        let batcher = batch::start(pool.clone()).map(Arc::new);
        Self { pool, batcher }
    }

    /// The connection pool the store runs on, for an embedder's own queries on the same
    /// database (the store's tables are its own: read them, do not write them).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl SeatStore for PgStore {
    async fn insert_event(&self, event: &Event) -> Result<EventView, StoreError> {
        events::insert_event(self, event).await
    }

    async fn event(&self, id: EventId) -> Result<Event, StoreError> {
        events::event(self, id).await
    }

    async fn event_for(&self, id: EventId, user: UserId) -> Result<(Event, Option<Role>), StoreError> {
        events::event_for(self, id, user).await
    }

    async fn event_view(&self, id: EventId) -> Result<EventView, StoreError> {
        events::event_view(self, id).await
    }

    async fn live_event_ids(&self) -> Result<Vec<EventId>, StoreError> {
        events::live_event_ids(self).await
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventView>, StoreError> {
        events::list_events(self, filter).await
    }

    async fn update_event(&self, id: EventId, patch: &EventPatch, now: DateTime<Utc>) -> Result<EventView, StoreError> {
        events::update_event(self, id, patch, now).await
    }

    async fn cancel_event(&self, id: EventId, now: DateTime<Utc>) -> Result<Vec<Booking>, StoreError> {
        events::cancel_event(self, id, now).await
    }

    async fn delete_event(&self, id: EventId) -> Result<(), StoreError> {
        events::delete_event(self, id).await
    }

    async fn seat_map(&self, id: EventId) -> Result<SeatMap, StoreError> {
        events::seat_map(self, id).await
    }

    async fn confirm(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        bookings::confirm(self, new, now).await
    }

    async fn enqueue(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        bookings::enqueue(self, new, now).await
    }

    async fn promote(&self, id: BookingId, seats: u32, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        bookings::promote(self, id, seats, now).await
    }

    async fn cancel(&self, id: BookingId, key: Option<&IdempotencyKey>, now: DateTime<Utc>) -> Result<Cancellation, StoreError> {
        bookings::cancel(self, id, key, now).await
    }

    async fn cancel_seats(
        &self,
        id: BookingId,
        seats: &[SeatNo],
        key: Option<&IdempotencyKey>,
        now: DateTime<Utc>,
    ) -> Result<Cancellation, StoreError> {
        bookings::cancel_seats(self, id, seats, key, now).await
    }

    async fn accept_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        offers::accept_offer(self, id, now).await
    }

    async fn decline_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Cancellation, StoreError> {
        offers::decline_offer(self, id, now).await
    }

    async fn expire_offers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Booking>, StoreError> {
        offers::expire_offers(self, now, limit).await
    }

    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError> {
        bookings::booking(self, id).await
    }

    async fn user_bookings(&self, user: UserId, orgs: Option<&[OrgId]>, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError> {
        bookings::user_bookings(self, user, orgs, limit, offset).await
    }

    async fn waiting(&self, event: EventId, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError> {
        bookings::waiting(self, event, limit, offset).await
    }

    async fn event_bookings(&self, event: EventId) -> Result<Vec<Booking>, StoreError> {
        bookings::event_bookings(self, event).await
    }

    async fn event_bookings_page(
        &self,
        event: EventId,
        status: Option<BookingStatus>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Booking>, StoreError> {
        bookings::event_bookings_page(self, event, status, limit, offset).await
    }

    async fn history(&self, booking: BookingId) -> Result<Vec<HistoryEntry>, StoreError> {
        bookings::history(self, booking).await
    }

    async fn event_booking_notifications(&self, event: EventId) -> Result<Vec<Notification>, StoreError> {
        outbox::event_booking_notifications(self, event).await
    }

    async fn idempotency(&self, user: UserId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        idempotency::record(&self.pool, user, key).await
    }

    async fn create_hold(&self, new: &NewHold, now: DateTime<Utc>) -> Result<Hold, StoreError> {
        holds::create_hold(self, new, now).await
    }

    async fn hold(&self, id: HoldId) -> Result<Hold, StoreError> {
        holds::hold(self, id).await
    }

    async fn release_hold(&self, id: HoldId) -> Result<Hold, StoreError> {
        holds::release_hold(self, id).await
    }

    async fn convert_hold(&self, hold_id: HoldId, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        holds::convert_hold(self, hold_id, new, now).await
    }

    async fn expire_holds(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Hold>, StoreError> {
        holds::expire_holds(self, now, limit).await
    }

    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError> {
        outbox::notification(self, id).await
    }

    async fn notifications(&self, user: UserId, limit: u32, offset: u32) -> Result<Vec<Notification>, StoreError> {
        outbox::notifications(self, user, limit, offset).await
    }

    async fn mark_read(&self, user: UserId, id: NotificationId) -> Result<(), StoreError> {
        outbox::mark_read(self, user, id).await
    }

    async fn pending_notifications(&self, limit: u32) -> Result<Vec<Notification>, StoreError> {
        outbox::pending_notifications(self, limit).await
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        outbox::outbox_depth(self).await
    }

    async fn claim_pending(&self, limit: u32, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Vec<Notification>, StoreError> {
        outbox::claim_pending(self, limit, now, lease_until).await
    }

    async fn release_claims(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        outbox::release_claims(self, ids).await
    }

    async fn set_delivery(&self, ids: &[NotificationId], status: DeliveryStatus) -> Result<(), StoreError> {
        outbox::set_delivery(self, ids, status).await
    }
}
