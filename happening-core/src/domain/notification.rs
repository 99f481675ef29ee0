use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BookingId, EventId, NotificationId, OrgId, UserId};

/// What a notification tells its user of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A new booking got its seats at once.
    BookingConfirmed,
    /// A new booking joined the event's waitlist.
    BookingWaitlisted,
    /// A booking was cancelled, by its owner, an organizer or with its event.
    BookingCancelled,
    /// Some seats of a confirmed booking were cancelled; the booking lives on.
    SeatsCancelled,
    /// A waiting booking was confirmed with seats that freed up.
    WaitlistPromoted,
    /// Seats freed for the waitlist are offered until `expires_at`.
    WaitlistOffer,
    /// An offer was accepted: the booking is confirmed with the offered seats.
    OfferAccepted,
    /// An offer was not accepted in time and its seats passed on.
    OfferExpired,
    /// An offer was declined (by its owner or an organizer) and its seats passed on.
    OfferDeclined,
    /// A hold ran out before it was booked; its seats went back to the event.
    HoldExpired,
    /// An event the user has a live booking of changed in a way they can see (name, text,
    /// date, capacity, policy).
    EventUpdated,
    /// An event the user had a booking or hold of was cancelled, and those with it.
    EventCancelled,
    /// The user, known by the invited email address, was invited to an organization.
    InvitationReceived,
}

names!(NotificationKind {
    BookingConfirmed => "booking_confirmed",
    BookingWaitlisted => "booking_waitlisted",
    BookingCancelled => "booking_cancelled",
    SeatsCancelled => "seats_cancelled",
    WaitlistPromoted => "waitlist_promoted",
    WaitlistOffer => "waitlist_offer",
    OfferAccepted => "offer_accepted",
    OfferExpired => "offer_expired",
    OfferDeclined => "offer_declined",
    HoldExpired => "hold_expired",
    EventUpdated => "event_updated",
    EventCancelled => "event_cancelled",
    InvitationReceived => "invitation_received",
});

/// Where a notification stands on its way to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// In the outbox, not yet handed to the Notifier.
    Pending,
    /// Accepted by the Notifier.
    Sent,
    /// Handled by a consumer. Final.
    Delivered,
    /// A consumer gave up (dead-lettered); turns `Delivered` if the message comes back and
    /// is handled after all.
    Failed,
}

names!(DeliveryStatus {
    Pending => "pending",
    Sent => "sent",
    Delivered => "delivered",
    Failed => "failed",
});

/// A notification, written to the outbox in the same atomic step as the change it reports.
/// `id` is unique, so consumers of an at-least-once Notifier de-duplicate by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per notification, and the message id on the wire: what consumers
    /// de-duplicate by.
    pub id: NotificationId,
    /// Who is told.
    pub user_id: UserId,
    /// What happened.
    pub kind: NotificationKind,
    /// The event concerned; `None` for an invitation.
    pub event_id: Option<EventId>,
    /// The booking concerned; `None` for a hold's notifications and an invitation.
    pub booking_id: Option<BookingId>,
    /// The organization of an invitation; `None` otherwise.
    pub org_id: Option<OrgId>,
    /// Seats concerned (booked, promoted, offered, freed), 0 where it does not apply.
    pub seats: u32,
    /// Until when the offer it tells of is open (`WaitlistOffer` only).
    pub expires_at: Option<DateTime<Utc>>,
    /// How far delivery got: pending in the outbox, sent, delivered or failed.
    pub status: DeliveryStatus,
    /// Whether the user marked it read (`Engine::mark_read`); delivery does not touch it.
    pub read: bool,
    /// When the change it reports was made, on the engine's clock.
    pub created_at: DateTime<Utc>,
}

impl Notification {
    /// A human-readable line for logs and simple sinks.
    pub fn message(&self) -> String {
        match self.kind {
            NotificationKind::BookingConfirmed => format!("Your booking of {} seat(s) is confirmed", self.seats),
            NotificationKind::BookingWaitlisted => format!("Your booking of {} seat(s) is on the waitlist", self.seats),
            NotificationKind::BookingCancelled => "Your booking was cancelled".to_string(),
            NotificationKind::SeatsCancelled => format!("{} seat(s) of your booking were cancelled", self.seats),
            NotificationKind::WaitlistPromoted => format!("You got {} seat(s) from the waitlist", self.seats),
            NotificationKind::WaitlistOffer => match self.expires_at {
                Some(at) => format!("{} seat(s) are offered to you until {}: accept to book them", self.seats, at.to_rfc3339()),
                None => format!("{} seat(s) are offered to you: accept to book them", self.seats),
            },
            NotificationKind::OfferAccepted => format!("You accepted the offer: your booking of {} seat(s) is confirmed", self.seats),
            NotificationKind::OfferExpired => format!("Your offer of {} seat(s) expired", self.seats),
            NotificationKind::OfferDeclined => format!("Your offer of {} seat(s) was declined", self.seats),
            NotificationKind::HoldExpired => format!("Your hold on {} seat(s) expired", self.seats),
            NotificationKind::EventUpdated => "An event you booked was updated".to_string(),
            NotificationKind::EventCancelled => "An event you booked was cancelled".to_string(),
            NotificationKind::InvitationReceived => "You were invited to an organization".to_string(),
        }
    }
}
