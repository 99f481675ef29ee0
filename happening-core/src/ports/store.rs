use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::{BackendError, Conflict, Entity};
use crate::ids::{BookingId, EventId, HoldId, NotificationId, OrgId, SeatNo, UserId};

/// Errors of [`SeatStore`] and [`Directory`](crate::ports::Directory).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row named does not exist (an event, booking, hold, user, ...).
    #[error("{0} not found")]
    NotFound(Entity),
    /// The step does not fit the stored state; nothing was written.
    #[error("{reason}: {seats:?}")]
    Conflict {
        /// Why it conflicts.
        reason: Conflict,
        /// The seats in conflict (taken, not in the booking), ascending; often empty.
        seats: Vec<SeatNo>,
    },
    /// Fewer seats are free than the operation needs (or, for a confirm that queues behind
    /// the waitlist, someone waits).
    #[error("only {free} seats free")]
    Short {
        /// Seats free in the store at that step: what the engine repairs its counter to.
        free: u32,
    },
    /// `promote` of a booking that is no longer waiting (cancelled or promoted meanwhile).
    #[error("booking is {0:?}, not waiting")]
    NotWaiting(BookingStatus),
    /// The idempotency key is already bound (a concurrent twin won); nothing was written.
    #[error("idempotency key already used")]
    IdempotencyKeyTaken(IdempotencyRecord),
    /// The backend failed; nothing can be said of the step's outcome but what the store's
    /// atomicity says: whole or not at all.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl StoreError {
    /// A conflict that names no seats.
    pub fn conflict(reason: Conflict) -> Self {
        StoreError::Conflict { reason, seats: Vec::new() }
    }

    /// The conflict of changing a booking that has ended (`status.is_final()`).
    pub fn ended(status: BookingStatus) -> Self {
        Self::conflict(match status {
            BookingStatus::Declined => Conflict::OfferDeclined,
            BookingStatus::Expired => Conflict::OfferExpired,
            _ => Conflict::BookingCancelled,
        })
    }

    /// The conflict of accepting or declining a booking of `status`, not an open offer.
    pub fn not_offered(status: BookingStatus) -> Self {
        Self::conflict(match status {
            BookingStatus::Declined => Conflict::OfferDeclined,
            BookingStatus::Expired => Conflict::OfferExpired,
            _ => Conflict::NotOffered,
        })
    }
}

/// The durable record of events, bookings, seats, holds, history and the notification
/// outbox: the source of truth from which counters and waitlists are rebuilt.
///
/// Contract, for every implementation:
/// - every method is one atomic step (one transaction): it happens whole or not at all,
///   together with the history entries and outbox notifications it writes;
/// - a seat number is owned by at most one confirmed booking or live hold, and
///   `booked + held <= capacity` always: the store checks this itself and answers
///   `Short` or `Conflict(SeatsTaken)` rather than trusting its caller;
/// - history and notifications are written exactly as the `effects` module builds them,
///   so that every backend reports the same changes;
/// - a method that changes a booking of a cancelled event answers
///   `Conflict(EventCancelled)`.
#[async_trait]
pub trait SeatStore: Send + Sync + 'static {
    // ---- events ----

    /// Writes a new event with every seat free and nothing booked, held or waiting, and
    /// answers its view. The engine has checked its fields and that its organization exists.
    async fn insert_event(&self, event: &Event) -> Result<EventView, StoreError>;

    /// The event alone: a cheap read, on the path of every booking.
    async fn event(&self, id: EventId) -> Result<Event, StoreError>;

    /// The event and `user`'s role in its organization (`None`: not a member), read
    /// together: what authorizing a request on an event needs, in one round trip (it is on
    /// the path of every booking over HTTP). MUST return `NotFound(Event)` if there is no
    /// such event, whoever asks.
    async fn event_for(&self, id: EventId, user: UserId) -> Result<(Event, Option<Role>), StoreError>;

    /// The event with its live counts.
    async fn event_view(&self, id: EventId) -> Result<EventView, StoreError>;

    /// Every event that is not cancelled, for reconciliation (on start, `happening
    /// reconcile`). Reads every event: not for request paths.
    async fn live_event_ids(&self) -> Result<Vec<EventId>, StoreError>;

    /// Events of `filter.org_ids`, by `event_date` descending, then id.
    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventView>, StoreError>;

    /// Applies `patch`. A new capacity MUST NOT be below the highest booked, held or
    /// offered seat (`Conflict(CapacityBelowTakenSeat)`) nor below `booked + held`
    /// (`Short`). If `patch.notifies_bookings()`, writes an `EventUpdated` notification to
    /// the user of every live (confirmed, offered or waiting) booking; else none.
    async fn update_event(&self, id: EventId, patch: &EventPatch, now: DateTime<Utc>) -> Result<EventView, StoreError>;

    /// Marks the event cancelled, cancels every live booking (confirmed, offered, waiting;
    /// history, `EventCancelled` notification) and drops its holds. Returns the bookings it cancelled.
    async fn cancel_event(&self, id: EventId, now: DateTime<Utc>) -> Result<Vec<Booking>, StoreError>;

    /// Removes the event and everything of it.
    async fn delete_event(&self, id: EventId) -> Result<(), StoreError>;

    /// The event's booked seats (confirmed bookings) and held ones (live holds, open
    /// offers), ascending, as of one atomic read. `NotFound(Event)` if there is none.
    async fn seat_map(&self, id: EventId) -> Result<SeatMap, StoreError>;

    // ---- bookings ----

    /// Writes a confirmed booking of `new.seats` seats: `new.seat_numbers` if all are free,
    /// else (unless `strict_seats`: `Conflict(SeatsTaken)` naming the taken ones) the lowest
    /// free seats. `Short` if fewer than `new.seats` are free, or if `new.behind_queue` is
    /// set and any booking of the event waits (read in the same atomic step). History
    /// `created`, notification `BookingConfirmed`. Binds `new.idempotency` or answers
    /// `IdempotencyKeyTaken` without writing anything.
    async fn confirm(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError>;

    /// Writes a waiting booking, giving it the next `queue_seq` of the event. History
    /// `created`, notification `BookingWaitlisted`. Idempotency as in `confirm`.
    ///
    /// MUST answer the booking with its `waiting_number`: its 1-based place in the event's
    /// queue as it joined, decided in the same atomic step that gave it its `queue_seq`
    /// (never read afterwards). So the bookings that join one queue are told 1, 2, 3, ...
    /// in queue order, each number once, however many engines write at once: those joining
    /// an event's queue are serialized with each other (and with those leaving it).
    async fn enqueue(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError>;

    /// Gives a waiting booking `seats` of the lowest free seats. If its event has no
    /// `offer_ttl_seconds`, it is confirmed (history `promoted`, notification
    /// `WaitlistPromoted`); otherwise it is offered them: status `Offered`, the seats held
    /// for it (counted in `held`, never free) until `offer_expires_at = now + ttl`
    /// (history `offered`, notification `WaitlistOffer` with that time). The event's setting
    /// is read in the same atomic step. `NotWaiting` if it is not waiting any more, `Short`
    /// if fewer are free.
    async fn promote(&self, id: BookingId, seats: u32, now: DateTime<Utc>) -> Result<Booking, StoreError>;

    /// Accepts an open offer: an `Offered` booking with `offer_expires_at > now` becomes
    /// `Confirmed` with exactly its offered seats. History `accepted`, notification
    /// `BookingConfirmed`. Otherwise it changes nothing and answers
    /// `Conflict(OfferExpired)` (expired, or due: `offer_expires_at <= now`),
    /// `Conflict(OfferDeclined)`, or `Conflict(NotOffered)` (any other status). Accept,
    /// decline and expiry of one offer are atomic steps on its status, so however they
    /// race (several engines), exactly one of them ends it.
    async fn accept_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Booking, StoreError>;

    /// Declines an offer that is still `Offered` (even if due: declining frees its seats
    /// as its expiry would): it becomes `Declined` and its seats are freed. History
    /// `declined`, notification `OfferDeclined`. Otherwise the conflicts of
    /// `accept_offer`, and nothing changes.
    async fn decline_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Cancellation, StoreError>;

    /// Ends up to `limit` offers with `offer_expires_at <= now`, oldest expiry first: each
    /// becomes `Expired` and its seats are freed, history `expired`, notification
    /// `OfferExpired`; each is its own atomic step. Returns those it ended, even if others
    /// failed (they stay due); an error only when it ended none.
    async fn expire_offers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Booking>, StoreError>;

    /// Cancels a confirmed, offered or waiting booking, freeing its seats.
    /// `Conflict(BookingCancelled)` if already cancelled (`OfferDeclined`, `OfferExpired`
    /// for an offer that ended). History `cancelled`, notification `BookingCancelled`.
    async fn cancel(&self, id: BookingId, idempotency: Option<&IdempotencyKey>, now: DateTime<Utc>) -> Result<Cancellation, StoreError>;

    /// Frees some seats of a confirmed booking (`Conflict(SeatsNotInBooking)` naming the
    /// strangers, `Conflict(BookingNotConfirmed)`); cancels it when none is left. History
    /// `modified` (or `cancelled`), notification `SeatsCancelled` (or `BookingCancelled`).
    async fn cancel_seats(
        &self,
        id: BookingId,
        seats: &[SeatNo],
        idempotency: Option<&IdempotencyKey>,
        now: DateTime<Utc>,
    ) -> Result<Cancellation, StoreError>;

    /// One booking, any status, as stored (`waiting_number` unset). `NotFound(Booking)` if
    /// there is none.
    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError>;

    /// A user's bookings, newest first: at most `limit` after skipping `offset`. With `orgs`,
    /// only the bookings of events of these organizations, the page counted after that
    /// filter (so that an organizer's pages of a user's bookings are full and do not overlap).
    async fn user_bookings(&self, user: UserId, orgs: Option<&[OrgId]>, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError>;

    /// Waiting bookings of an event in queue order (the durable waitlist): at most `limit`
    /// after skipping the first `offset`.
    async fn waiting(&self, event: EventId, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError>;

    /// Every booking of an event, any status, oldest first. For audits and tests: it reads
    /// the whole event.
    async fn event_bookings(&self, event: EventId) -> Result<Vec<Booking>, StoreError>;

    /// A page of an event's bookings, oldest first (`created_at`, then id): with `status`,
    /// only the bookings of that status, the page counted after that filter; at most
    /// `limit` after skipping `offset`. The organizers' list of attendees: it reads one
    /// page, not the whole event.
    async fn event_bookings_page(
        &self,
        event: EventId,
        status: Option<BookingStatus>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Booking>, StoreError>;

    /// A booking's history, oldest first.
    async fn history(&self, booking: BookingId) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Every notification about a booking of `event` (`booking_id` set, `event_id` =
    /// `event`), any delivery status, in outbox order (oldest first); none for an unknown
    /// event. A read for audits (each history entry has its notification): it reads every
    /// such row of the event.
    async fn event_booking_notifications(&self, event: EventId) -> Result<Vec<Notification>, StoreError>;

    /// What `user`'s idempotency `key` is bound to, if anything: the engine answers a
    /// replay with that booking. Keys are never unbound.
    async fn idempotency(&self, user: UserId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    // ---- holds ----

    /// Holds `new.seat_numbers` (`Conflict(SeatsTaken)` naming taken ones) or the lowest
    /// `new.seats` free seats (`Short`).
    async fn create_hold(&self, new: &NewHold, now: DateTime<Utc>) -> Result<Hold, StoreError>;

    /// A hold that still exists (not released, expired or booked), even if due and not yet
    /// expired by `expire_holds`. `NotFound(Hold)` otherwise.
    async fn hold(&self, id: HoldId) -> Result<Hold, StoreError>;

    /// Drops a hold and frees its seats.
    async fn release_hold(&self, id: HoldId) -> Result<Hold, StoreError>;

    /// Turns a live hold into a confirmed booking of its seats (`new.seats` and
    /// `new.seat_numbers` are ignored). `Conflict(HoldExpired)` if `expires_at <= now`.
    async fn convert_hold(&self, hold: HoldId, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError>;

    /// Drops up to `limit` holds with `expires_at <= now`, freeing their seats, each with a
    /// `HoldExpired` notification. Returns them.
    async fn expire_holds(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Hold>, StoreError>;

    // ---- outbox ----

    /// One notification, by id (consumers de-duplicate against its delivery status).
    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError>;

    /// A user's notifications, newest first: at most `limit` after skipping `offset`.
    async fn notifications(&self, user: UserId, limit: u32, offset: u32) -> Result<Vec<Notification>, StoreError>;

    /// Sets `read` on one of `user`'s notifications; `NotFound(Notification)` if there is
    /// none or it is another user's. Leaves its delivery status alone.
    async fn mark_read(&self, user: UserId, id: NotificationId) -> Result<(), StoreError>;

    /// Up to `limit` pending notifications, oldest first (a read: claims nothing).
    async fn pending_notifications(&self, limit: u32) -> Result<Vec<Notification>, StoreError>;

    /// How many notifications are pending, claimed by a relay or not: the outbox's backlog
    /// (a read; for metrics, so it MAY cost a scan of the pending rows).
    async fn outbox_depth(&self) -> Result<u64, StoreError>;

    /// Claims up to `limit` pending notifications, oldest first, until `lease_until`: a
    /// claimed notification is not handed to another relay (another server) until its lease
    /// ends, then it can be claimed again (at least once, when a relay dies mid-batch).
    /// A store MAY hold back notifications for as long as a write that could still commit
    /// one before them is running (PostgreSQL's outbox reads in the order of the writing
    /// transactions), so a round MAY claim fewer than are pending; it MUST NOT pass over any
    /// for good.
    async fn claim_pending(&self, limit: u32, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Vec<Notification>, StoreError>;

    /// Ends a relay's claim on notifications it could not deliver, so that the next round
    /// (of any relay) retries them at once instead of after the lease.
    async fn release_claims(&self, ids: &[NotificationId]) -> Result<(), StoreError>;

    /// Moves notifications forward to `status`: pending to sent (handed to the Notifier),
    /// pending or sent to delivered or failed (reported by a consumer), and failed to
    /// delivered (a dead letter moved back to the queue by an operator, or a late copy,
    /// handled after all). Never backwards, and delivered is final; unknown ids are ignored.
    async fn set_delivery(&self, ids: &[NotificationId], status: DeliveryStatus) -> Result<(), StoreError>;
}
