use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BookingId, EventId, NotificationId, OrgId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    BookingConfirmed,
    BookingWaitlisted,
    BookingCancelled,
    /// Some seats of a confirmed booking were cancelled; the booking lives on.
    SeatsCancelled,
    WaitlistPromoted,
    HoldExpired,
    EventUpdated,
    EventCancelled,
    InvitationReceived,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BookingConfirmed => "booking_confirmed",
            Self::BookingWaitlisted => "booking_waitlisted",
            Self::BookingCancelled => "booking_cancelled",
            Self::SeatsCancelled => "seats_cancelled",
            Self::WaitlistPromoted => "waitlist_promoted",
            Self::HoldExpired => "hold_expired",
            Self::EventUpdated => "event_updated",
            Self::EventCancelled => "event_cancelled",
            Self::InvitationReceived => "invitation_received",
        }
    }
}

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

/// A notification, written to the outbox in the same atomic step as the change it reports.
/// `id` is unique, so consumers of an at-least-once Notifier de-duplicate by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: NotificationId,
    pub user_id: UserId,
    pub kind: NotificationKind,
    pub event_id: Option<EventId>,
    pub booking_id: Option<BookingId>,
    pub org_id: Option<OrgId>,
    /// Seats concerned (booked, promoted, freed), 0 where it does not apply.
    pub seats: u32,
    pub status: DeliveryStatus,
    pub read: bool,
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
            NotificationKind::HoldExpired => format!("Your hold on {} seat(s) expired", self.seats),
            NotificationKind::EventUpdated => "An event you booked was updated".to_string(),
            NotificationKind::EventCancelled => "An event you booked was cancelled".to_string(),
            NotificationKind::InvitationReceived => "You were invited to an organization".to_string(),
        }
    }
}
