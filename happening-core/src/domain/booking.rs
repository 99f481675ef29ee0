use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BookingId, EventId, HoldId, SeatNo, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Confirmed,
    Waiting,
    Cancelled,
    /// Promoted from the waitlist of an event with `offer_ttl_seconds`: its seats are held
    /// for it until `offer_expires_at`, and it becomes `Confirmed` when its owner accepts.
    Offered,
    /// An offer its owner (or an organizer) declined; its seats went back to the event.
    Declined,
    /// An offer not accepted in time; its seats went back to the event.
    Expired,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Waiting => "waiting",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Offered => "offered",
            BookingStatus::Declined => "declined",
            BookingStatus::Expired => "expired",
        }
    }

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

impl std::str::FromStr for BookingStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "confirmed" => Self::Confirmed,
            "waiting" => Self::Waiting,
            "cancelled" => Self::Cancelled,
            "offered" => Self::Offered,
            "declined" => Self::Declined,
            "expired" => Self::Expired,
            _ => return Err(()),
        })
    }
}

/// A booking of one person for some seats of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub id: BookingId,
    pub event_id: EventId,
    pub user_id: UserId,
    /// What was asked for. A partial confirmation (`accept_partial`, the `partial`
    /// policy) keeps the original request here and gets fewer `seat_numbers`.
    pub seats_requested: u32,
    /// The seats a confirmed booking owns (or an offered one is held), ascending; empty
    /// while waiting. An ended booking keeps the seats it had, for the record.
    pub seat_numbers: Vec<SeatNo>,
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
    pub created_at: DateTime<Utc>,
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
    pub id: BookingId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub seats_requested: u32,
    /// Seats to confirm now; `<= seats_requested` (less with `accept_partial`).
    pub seats: u32,
    /// Seats asked for by number (empty: lowest free). Length is `seats` when not empty.
    pub seat_numbers: Vec<SeatNo>,
    /// When set, a taken seat in `seat_numbers` is a conflict instead of a fallback to the
    /// lowest free seats.
    pub strict_seats: bool,
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
    pub user_id: UserId,
    pub key: String,
    pub fingerprint: u64,
}

/// What an idempotency key is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: u64,
    pub booking_id: BookingId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryAction {
    Created,
    Cancelled,
    Promoted,
    Modified,
    /// Promoted as an offer: seats held until the offer expires.
    Offered,
    /// The offer was accepted: the booking is confirmed with the offered seats.
    Accepted,
    Declined,
    Expired,
}

impl HistoryAction {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryAction::Created => "created",
            HistoryAction::Cancelled => "cancelled",
            HistoryAction::Promoted => "promoted",
            HistoryAction::Modified => "modified",
            HistoryAction::Offered => "offered",
            HistoryAction::Accepted => "accepted",
            HistoryAction::Declined => "declined",
            HistoryAction::Expired => "expired",
        }
    }
}

impl std::str::FromStr for HistoryAction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        use HistoryAction::*;
        [Created, Cancelled, Promoted, Modified, Offered, Accepted, Declined, Expired].into_iter().find(|a| a.as_str() == s).ok_or(())
    }
}

/// One line of a booking's history, written in the same atomic step as the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub booking_id: BookingId,
    pub action: HistoryAction,
    /// The booking's status after the change.
    pub status: BookingStatus,
    /// The seats the change concerned (given, freed), ascending.
    pub seat_numbers: Vec<SeatNo>,
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
