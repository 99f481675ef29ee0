use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BookingId, EventId, HoldId, SeatNo, UserId};

/// Where a booking stands. `Waiting` and `Offered` move on (by promotion, acceptance,
/// expiry); the final states never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Owns its `seat_numbers`; they count against the event's capacity until cancelled.
    Confirmed,
    /// In the event's queue for `seats_requested` seats, owning none yet.
    Waiting,
    /// Cancelled by its owner or an organizer, or with its event; its seats went back to
    /// the event.
    Cancelled,
    /// Promoted from the waitlist of an event with `offer_ttl_seconds`: its seats are held
    /// for it until `offer_expires_at`, and it becomes `Confirmed` when its owner accepts.
    Offered,
    /// An offer its owner (or an organizer) declined; its seats went back to the event.
    Declined,
    /// An offer not accepted in time; its seats went back to the event.
    Expired,
}

names!(BookingStatus {
    Confirmed => "confirmed",
    Waiting => "waiting",
    Cancelled => "cancelled",
    Offered => "offered",
    Declined => "declined",
    Expired => "expired",
});

impl BookingStatus {
    /// Whether the booking has ended: cancelled, declined or expired. An ended booking
    /// keeps the seats it had, for the record, and never changes again.
    pub fn is_final(self) -> bool {
        matches!(self, BookingStatus::Cancelled | BookingStatus::Declined | BookingStatus::Expired)
    }

    /// Whether the booking's `seat_numbers` are its own right now (confirmed, or offered
    /// and held for it).
    pub fn owns_seats(self) -> bool {
        matches!(self, BookingStatus::Confirmed | BookingStatus::Offered)
    }
}

/// A booking of one person for some seats of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// Identifies the booking in every later call (cancel, accept, decline) and in its
    /// history and notifications.
    pub id: BookingId,
    /// The event whose seats it books.
    pub event_id: EventId,
    /// The person the seats are for, who is told of every change to the booking.
    pub user_id: UserId,
    /// What was asked for. A partial confirmation (`accept_partial`, the `partial`
    /// policy) keeps the original request here and gets fewer `seat_numbers`.
    pub seats_requested: u32,
    /// The seats a confirmed booking owns (or an offered one is held), ascending; empty
    /// while waiting. An ended booking keeps the seats it had, for the record.
    pub seat_numbers: Vec<SeatNo>,
    /// Where the booking stands now.
    pub status: BookingStatus,
    /// Place in the event's waiting order (increasing, never reused). Only while waiting.
    pub queue_seq: Option<u64>,
    /// 1-based position in the waitlist right now. Filled in by the engine when read,
    /// never stored: positions shift as the queue moves.
    pub waiting_number: Option<u32>,
    /// The hold this booking was made from, if any.
    pub hold_id: Option<HoldId>,
    /// Until when an offer is open: set when the booking is offered, kept after it ends.
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// When the booking was made, on the engine's clock.
    pub created_at: DateTime<Utc>,
    /// When its status or seats last changed, on the engine's clock.
    pub updated_at: DateTime<Utc>,
}

impl Booking {
    /// The booking a store writes for `new`, with `status` and `seats`, at `now`.
    pub fn new(new: &NewBooking, status: BookingStatus, seats: Vec<SeatNo>, now: DateTime<Utc>) -> Self {
        Booking {
            id: new.id,
            event_id: new.event_id,
            user_id: new.user_id,
            seats_requested: new.seats_requested,
            seat_numbers: seats,
            status,
            queue_seq: None,
            waiting_number: None,
            hold_id: None,
            offer_expires_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Seats this booking counts against capacity (confirmed, offered) or waits for
    /// (waiting).
    pub fn seats(&self) -> u32 {
        match self.status {
            BookingStatus::Waiting => self.seats_requested,
            _ => self.seat_numbers.len() as u32,
        }
    }
}

/// A booking to be written by the SeatStore.
#[derive(Debug, Clone)]
pub struct NewBooking {
    /// The id the booking gets, chosen by the engine before the write.
    pub id: BookingId,
    /// The event to book.
    pub event_id: EventId,
    /// The person the seats are for.
    pub user_id: UserId,
    /// Seats asked for (1 to `Limits::seats_per_booking_max`); what a waiting booking
    /// waits for.
    pub seats_requested: u32,
    /// Seats to confirm now; `<= seats_requested` (less with `accept_partial`).
    pub seats: u32,
    /// Seats asked for by number (empty: lowest free). Length is `seats` when not empty.
    pub seat_numbers: Vec<SeatNo>,
    /// When set, a taken seat in `seat_numbers` is a conflict instead of a fallback to the
    /// lowest free seats.
    pub strict_seats: bool,
    /// The key the request came with, bound to the booking in the same atomic step, so
    /// that a replay finds this booking. `None`: no key.
    pub idempotency: Option<IdempotencyKey>,
    /// When set, a confirm is `Short` while any booking of the event waits: the admission
    /// did not check the queue (`SlotCounter::unchecked_take`), so the store does, in the
    /// same atomic step as the seats.
    pub behind_queue: bool,
}

/// An idempotency key, scoped to the user who sent it, with a fingerprint of the request
/// it came with so that a reuse with another request is told apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// Whose key it is: the same key from another user is another key.
    pub user_id: UserId,
    /// The key as the client sent it (1 to `Limits::idempotency_key_bytes_max` visible
    /// ASCII characters).
    pub key: String,
    /// A hash of the request's fields: a replay has the same, a reuse of the key for
    /// another request does not (`Error::IdempotencyMismatch`).
    pub fingerprint: u64,
}

/// What an idempotency key is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The fingerprint of the request that first used the key.
    pub fingerprint: u64,
    /// The booking that request made, which a replay answers with.
    pub booking_id: BookingId,
}

/// What a change did to a booking, as its history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryAction {
    /// The booking was made, confirmed or waiting.
    Created,
    /// All its seats were given back (by its owner, an organizer, or with its event).
    Cancelled,
    /// It left the waitlist confirmed, with the seats freed for it.
    Promoted,
    /// Some of its seats were cancelled; it keeps the rest.
    Modified,
    /// Promoted as an offer: seats held until the offer expires.
    Offered,
    /// The offer was accepted: the booking is confirmed with the offered seats.
    Accepted,
    /// The offer was declined; its seats went back to the event.
    Declined,
    /// The offer was not accepted in time; its seats went back to the event.
    Expired,
}

names!(HistoryAction {
    Created => "created",
    Cancelled => "cancelled",
    Promoted => "promoted",
    Modified => "modified",
    Offered => "offered",
    Accepted => "accepted",
    Declined => "declined",
    Expired => "expired",
});

/// One line of a booking's history, written in the same atomic step as the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The booking the change was made to.
    pub booking_id: BookingId,
    /// What the change did.
    pub action: HistoryAction,
    /// The booking's status after the change.
    pub status: BookingStatus,
    /// The seats the change concerned (given, freed), ascending.
    pub seat_numbers: Vec<SeatNo>,
    /// When the change was made, on the engine's clock.
    pub at: DateTime<Utc>,
}

/// Result of cancelling (all or some seats of) a booking.
#[derive(Debug, Clone)]
pub struct Cancellation {
    /// The booking after the change.
    pub booking: Booking,
    /// What it was before.
    pub previous: BookingStatus,
    /// Seats given back to the event.
    pub freed: Vec<SeatNo>,
}
