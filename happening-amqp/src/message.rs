//! The message on the wire: one notification as JSON.

use chrono::{DateTime, Utc};
use happening_core::domain::{Notification, NotificationKind};
use happening_core::ids::{BookingId, EventId, NotificationId, OrgId, UserId};
use serde::{Deserialize, Serialize};

/// The JSON body of every message on the notifications queue.
///
/// `id` is the outbox row's id, also sent as the AMQP `message_id` property: a message may
/// arrive more than once (at-least-once delivery), and consumers de-duplicate by it.
/// `type` is the notification kind (`booking_confirmed`, `waitlist_promoted`, ...), also
/// sent as the AMQP `type` property so that a consumer can route without parsing the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationMessage {
    /// The notification's id: what consumers de-duplicate by.
    pub id: NotificationId,
    /// What happened (`type` in the JSON).
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    /// Who is to be told.
    pub user_id: UserId,
    /// The event concerned; `null` for an invitation.
    pub event_id: Option<EventId>,
    /// The booking concerned; `null` for a hold's notifications and an invitation.
    pub booking_id: Option<BookingId>,
    /// The organization of an invitation; `null` otherwise.
    pub org_id: Option<OrgId>,
    /// Seats concerned (booked, promoted, offered, freed), 0 where it does not apply.
    pub seats: u32,
    /// Until when the offer a `waitlist_offer` tells of is open; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// A human-readable line (`Notification::message`).
    pub message: String,
    /// When the change it reports was made (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
}

impl From<&Notification> for NotificationMessage {
    fn from(n: &Notification) -> Self {
        Self {
            id: n.id,
            kind: n.kind,
            user_id: n.user_id,
            event_id: n.event_id,
            booking_id: n.booking_id,
            org_id: n.org_id,
            seats: n.seats,
            expires_at: n.expires_at,
            message: n.message(),
            created_at: n.created_at,
        }
    }
}

impl NotificationMessage {
    /// The message body as published: compact JSON, UTF-8.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a NotificationMessage always serializes")
    }

    /// Parses a message body; an error for anything that is not this JSON (a poison message,
    /// which the worker dead-letters).
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use happening_core::domain::DeliveryStatus;

    #[test]
    fn json_round_trip_with_type_field() {
        let n = Notification {
            id: NotificationId::new(),
            user_id: UserId::new(),
            kind: NotificationKind::WaitlistPromoted,
            event_id: Some(EventId::new()),
            booking_id: Some(BookingId::new()),
            org_id: None,
            seats: 2,
            expires_at: None,
            status: DeliveryStatus::Pending,
            read: false,
            created_at: Utc::now(),
        };
        let m = NotificationMessage::from(&n);
        let v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(v["type"], "waitlist_promoted");
        assert_eq!(v["id"], n.id.to_string());
        assert_eq!(v["seats"], 2);
        assert_eq!(v["message"], "You got 2 seat(s) from the waitlist");
        assert_eq!(NotificationMessage::from_json(&m.to_json()).unwrap(), m);
        assert!(NotificationMessage::from_json(b"{not json").is_err());
        assert!(v.get("expires_at").is_none(), "only an offer has an expiry");

        let until = Utc::now();
        let offer = Notification { kind: NotificationKind::WaitlistOffer, expires_at: Some(until), ..n };
        let m = NotificationMessage::from(&offer);
        let v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(v["type"], "waitlist_offer");
        assert_eq!(v["expires_at"], serde_json::to_value(until).unwrap());
        assert_eq!(NotificationMessage::from_json(&m.to_json()).unwrap(), m);
    }
}
