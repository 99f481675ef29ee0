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
    /// Wraps a driver's error, kept for [`BackendError::downcast_ref`] and the logs.
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(err))
    }

    /// A failure with no driver error behind it (a reply of the wrong shape, a broken
    /// invariant of the backend), described for the logs.
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
    /// An event; also what a non-member is told of an event of another organization.
    Event,
    /// A booking.
    Booking,
    /// A hold; also one that was released, expired or booked, which no longer exists.
    Hold,
    /// A user, by id or by the identity provider's subject.
    User,
    /// An organization; also what a non-member is told of it.
    Organization,
    /// A membership: the user is not a member of the organization.
    Membership,
    /// An invite, by its token.
    Invite,
    /// A notification; also one of another user's, which the caller may not see.
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
    /// The event is cancelled: it takes no bookings, holds or changes.
    EventCancelled,
    /// The booking has ended (cancelled), so it cannot change again.
    BookingCancelled,
    /// The operation needs a confirmed booking and this one is waiting.
    BookingNotConfirmed,
    /// Capacity may not go below the highest booked or held seat number.
    CapacityBelowTakenSeat {
        /// The highest seat number still booked or held: the smallest capacity allowed.
        highest: SeatNo,
    },
    /// The hold ran out before it was booked; its seats may be anyone's now.
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
    /// The user is already a member of the organization (adding, or accepting an invite).
    AlreadyMember,
    /// An organization keeps at least one orgAdmin.
    LastOrgAdmin,
    /// The invite was already accepted or revoked.
    InviteNotPending,
    /// The invite's `expires_at` has passed.
    InviteExpired,
}

codes!(Conflict {
    SeatsTaken => "seats_taken",
    SeatsNotInBooking => "seats_not_in_booking",
    EventCancelled => "event_cancelled",
    BookingCancelled => "booking_cancelled",
    BookingNotConfirmed => "booking_not_confirmed",
    CapacityBelowTakenSeat => "capacity_below_taken_seat",
    HoldExpired => "hold_expired",
    OfferExpired => "offer_expired",
    OfferDeclined => "offer_declined",
    NotOffered => "not_offered",
    WaitlistFull => "waitlist_full",
    AlreadyMember => "already_member",
    LastOrgAdmin => "last_org_admin",
    InviteNotPending => "invite_not_pending",
    InviteExpired => "invite_expired",
});

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
    /// The thing named does not exist, or the caller may not know that it does (a
    /// non-member asking about an organization's event).
    #[error("{0} not found")]
    NotFound(Entity),
    /// The request does not fit the current state; `seats` names the seats in conflict,
    /// where there are any.
    #[error("{reason}{}", seats_suffix(.seats))]
    Conflict {
        /// Why it conflicts.
        reason: Conflict,
        /// The seats in conflict (taken, not in the booking), ascending; often empty.
        seats: Vec<SeatNo>,
    },
    /// An input is malformed or out of its limits; nothing was read or written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The input's name as the API spells it (`seats`, `seat_numbers`, `name`, ...).
        field: &'static str,
        /// What is wrong with it, for the person who sent it.
        reason: String,
    },
    /// Not enough free seats for what was asked (a hold, a capacity decrease).
    #[error("not enough free seats: {available} available")]
    Capacity {
        /// Seats free for this request right now (0 when others wait ahead of it).
        available: u32,
    },
    /// The caller's role does not allow the operation; the text says which rule refused it.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// An idempotency key was reused with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// A backend failed (connection lost, timeout, driver error). The message is for logs;
    /// a retry with the same idempotency key cannot book twice.
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
    /// A conflict that names no seats.
    pub fn conflict(reason: Conflict) -> Self {
        Error::Conflict { reason, seats: Vec::new() }
    }

    /// An invalid input: `field` as the API spells it, and why.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid { field, reason: reason.into() }
    }
}

/// What engine operations return: [`Error`] unless another error is named.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod conflict_codes {
    use super::Conflict;

    /// Every conflict has its own code, listed in `CODES` in declaration order.
    #[test]
    fn each_conflict_has_its_own_listed_code() {
        use Conflict::*;
        let all = [
            SeatsTaken,
            SeatsNotInBooking,
            EventCancelled,
            BookingCancelled,
            BookingNotConfirmed,
            CapacityBelowTakenSeat { highest: 7 },
            HoldExpired,
            OfferExpired,
            OfferDeclined,
            NotOffered,
            WaitlistFull,
            AlreadyMember,
            LastOrgAdmin,
            InviteNotPending,
            InviteExpired,
        ];
        let codes: Vec<&str> = all.iter().map(Conflict::code).collect();
        assert_eq!(codes, Conflict::CODES);
        assert_eq!(CapacityBelowTakenSeat { highest: 7 }.code(), "capacity_below_taken_seat");
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len(), "no two conflicts share a code");
    }
}
