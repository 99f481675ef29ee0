use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EventId, HoldId, SeatNo, UserId};

/// Seats kept aside for one person until `expires_at`, while they choose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Identifies the hold when it is booked (`BookRequest::hold_id`) or released.
    pub id: HoldId,
    /// The event whose seats are held.
    pub event_id: EventId,
    /// The person the seats are kept for: only they may book or release the hold.
    pub user_id: UserId,
    /// The seats kept aside, ascending; they count as held, not free, until the hold ends.
    pub seat_numbers: Vec<SeatNo>,
    /// When the seats go back to the event unless booked first (`Engine::expire_due`).
    pub expires_at: DateTime<Utc>,
    /// When the hold was made, on the engine's clock.
    pub created_at: DateTime<Utc>,
}

impl Hold {
    /// The hold a store writes for `new` with the `seats` it allocated, at `now`: one
    /// constructor for every store, as `Booking::new`.
    pub fn new(new: &NewHold, seats: Vec<SeatNo>, now: DateTime<Utc>) -> Self {
        Hold { id: new.id, event_id: new.event_id, user_id: new.user_id, seat_numbers: seats, expires_at: new.expires_at, created_at: now }
    }
}

/// A hold to be written by the SeatStore.
#[derive(Debug, Clone)]
pub struct NewHold {
    /// The id the hold gets, chosen by the engine before the write.
    pub id: HoldId,
    /// The event whose seats to hold.
    pub event_id: EventId,
    /// The person to keep them for.
    pub user_id: UserId,
    /// How many seats (1 to `Limits::seats_per_booking_max`).
    pub seats: u32,
    /// Seats asked for by number (empty: lowest free). Taken seats are a conflict.
    pub seat_numbers: Vec<SeatNo>,
    /// When the hold ends: now plus a TTL of `Limits::hold_ttl_ms_min` to `hold_ttl_ms_max`.
    pub expires_at: DateTime<Utc>,
}
