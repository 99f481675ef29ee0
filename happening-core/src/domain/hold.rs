use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EventId, HoldId, SeatNo, UserId};

/// Seats kept aside for one person until `expires_at`, while they choose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: HoldId,
    pub event_id: EventId,
    pub user_id: UserId,
    /// Ascending.
    pub seat_numbers: Vec<SeatNo>,
    pub expires_at: DateTime<Utc>,
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
    pub id: HoldId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub seats: u32,
    /// Seats asked for by number (empty: lowest free). Taken seats are a conflict.
    pub seat_numbers: Vec<SeatNo>,
    pub expires_at: DateTime<Utc>,
}
