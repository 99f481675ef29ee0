//! The engine's error, and the opaque backend error every port carries.
//!
//! Each port has its own `thiserror` enum (in `ports`) with the domain outcomes it can
//! report plus one `Backend` variant; adapters translate driver errors into `Backend` at
//! the seam, and the engine maps port errors to [`Error`].

use std::fmt;

use crate::ids::SeatNo;

/// An opaque failure of a store (connection lost, timeout, driver error). Its message is
/// for logs; never show it to an end user.
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl BackendError {
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(err))
    }

    pub fn msg(msg: impl Into<String>) -> Self {
        Self(msg.into().into())
    }

    /// The driver's error, for the adapter that made it (e.g. to tell a deadlock, which
    /// may be tried again, from other failures).
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendError({:?})", self.0)
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Event,
    Booking,
    Hold,
    User,
    Organization,
    Membership,
    Invite,
    Notification,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Event => "event",
            Entity::Booking => "booking",
            Entity::Hold => "hold",
            Entity::User => "user",
            Entity::Organization => "organization",
            Entity::Membership => "membership",
            Entity::Invite => "invite",
            Entity::Notification => "notification",
        })
    }
}

/// Why a request conflicts with the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Requested seats (with `strict_seats`, or for a hold) are booked or held.
    SeatsTaken,
    /// Seats asked to cancel are not seats of the booking.
    SeatsNotInBooking,
    EventCancelled,
    BookingCancelled,
    /// The operation needs a confirmed booking and this one is waiting.
    BookingNotConfirmed,
    /// Capacity may not go below the highest booked or held seat number.
    CapacityBelowTakenSeat {
        highest: SeatNo,
    },
    HoldExpired,
    /// The offer's time ran out (it is `expired`, or about to be by the next background
    /// step).
    OfferExpired,
    /// The offer was declined.
    OfferDeclined,
    /// Accept or decline of a booking that is not an open offer (waiting, confirmed
    /// without an offer, cancelled).
    NotOffered,
    /// The booking would wait and the event's waitlist holds `waitlist_max` bookings.
    WaitlistFull,
    AlreadyMember,
    /// An organization keeps at least one orgAdmin.
    LastOrgAdmin,
    InviteNotPending,
    InviteExpired,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::SeatsTaken => f.write_str("seats already taken"),
            Conflict::SeatsNotInBooking => f.write_str("seats are not part of the booking"),
            Conflict::EventCancelled => f.write_str("event is cancelled"),
            Conflict::BookingCancelled => f.write_str("booking is cancelled"),
            Conflict::BookingNotConfirmed => f.write_str("booking is not confirmed"),
            Conflict::CapacityBelowTakenSeat { highest } => {
                write!(f, "capacity below the highest taken seat ({highest})")
            }
            Conflict::HoldExpired => f.write_str("hold expired"),
            Conflict::OfferExpired => f.write_str("offer expired"),
            Conflict::OfferDeclined => f.write_str("offer was declined"),
            Conflict::NotOffered => f.write_str("booking is not an open offer"),
            Conflict::WaitlistFull => f.write_str("sold out and the waitlist is full"),
            Conflict::AlreadyMember => f.write_str("already a member"),
            Conflict::LastOrgAdmin => f.write_str("an organization must keep an orgAdmin"),
            Conflict::InviteNotPending => f.write_str("invite is no longer pending"),
            Conflict::InviteExpired => f.write_str("invite expired"),
        }
    }
}

/// Every way an engine operation can fail. A failed operation changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(Entity),
    /// `seats` names the seats in conflict, where there are any.
    #[error("{reason}{}", seats_suffix(.seats))]
    Conflict { reason: Conflict, seats: Vec<SeatNo> },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Not enough free seats for what was asked (a hold, a capacity decrease).
    #[error("not enough free seats: {available} available")]
    Capacity { available: u32 },
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// An idempotency key was reused with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    #[error("backend failure: {0}")]
    Backend(#[from] BackendError),
}

fn seats_suffix(seats: &[SeatNo]) -> String {
    if seats.is_empty() {
        String::new()
    } else {
        format!(": {seats:?}")
    }
}

impl Error {
    pub fn conflict(reason: Conflict) -> Self {
        Error::Conflict { reason, seats: Vec::new() }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid { field, reason: reason.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
