//! The history entries and notifications each kind of change writes. Every SeatStore builds
//! them here, so every backend reports a change the same way.

use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::ids::{EventId, NotificationId, OrgId, SeatNo, UserId};

fn history(b: &Booking, action: HistoryAction, seats: &[SeatNo], now: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry { booking_id: b.id, action, status: b.status, seat_numbers: seats.to_vec(), at: now }
}

/// A notification about a booking.
fn about(b: &Booking, kind: NotificationKind, seats: u32, now: DateTime<Utc>) -> Notification {
    Notification {
        id: NotificationId::new(),
        user_id: b.user_id,
        kind,
        event_id: Some(b.event_id),
        booking_id: Some(b.id),
        org_id: None,
        seats,
        expires_at: None,
        status: DeliveryStatus::Pending,
        read: false,
        created_at: now,
    }
}

/// A booking was written, confirmed or waiting.
pub fn created(b: &Booking, now: DateTime<Utc>) -> (HistoryEntry, Notification) {
    let kind = match b.status {
        BookingStatus::Waiting => NotificationKind::BookingWaitlisted,
        _ => NotificationKind::BookingConfirmed,
    };
    (history(b, HistoryAction::Created, &b.seat_numbers, now), about(b, kind, b.seats(), now))
}

/// A waiting booking was confirmed.
pub fn promoted(b: &Booking, now: DateTime<Utc>) -> (HistoryEntry, Notification) {
    (history(b, HistoryAction::Promoted, &b.seat_numbers, now), about(b, NotificationKind::WaitlistPromoted, b.seats(), now))
}

/// A waiting booking was offered seats (`b.offer_expires_at` set).
pub fn offered(b: &Booking, now: DateTime<Utc>) -> (HistoryEntry, Notification) {
    let note = Notification { expires_at: b.offer_expires_at, ..about(b, NotificationKind::WaitlistOffer, b.seats(), now) };
    (history(b, HistoryAction::Offered, &b.seat_numbers, now), note)
}

/// An offer was accepted: the booking is confirmed with the seats it was offered.
pub fn accepted(b: &Booking, now: DateTime<Utc>) -> (HistoryEntry, Notification) {
    (history(b, HistoryAction::Accepted, &b.seat_numbers, now), about(b, NotificationKind::OfferAccepted, b.seats(), now))
}

/// An offer was declined; its seats went back to the event.
pub fn declined(b: &Booking, now: DateTime<Utc>) -> (HistoryEntry, Notification) {
    let n = b.seat_numbers.len() as u32;
    (history(b, HistoryAction::Declined, &b.seat_numbers, now), about(b, NotificationKind::OfferDeclined, n, now))
}

/// An offer ran out; its seats went back to the event.
pub fn offer_expired(b: &Booking, now: DateTime<Utc>) -> (HistoryEntry, Notification) {
    let n = b.seat_numbers.len() as u32;
    (history(b, HistoryAction::Expired, &b.seat_numbers, now), about(b, NotificationKind::OfferExpired, n, now))
}

/// A booking was cancelled by its owner (or an organizer); `freed` are the seats it gave back.
pub fn cancelled(b: &Booking, freed: &[SeatNo], now: DateTime<Utc>) -> (HistoryEntry, Notification) {
    (history(b, HistoryAction::Cancelled, freed, now), about(b, NotificationKind::BookingCancelled, freed.len() as u32, now))
}

/// Some seats of a confirmed booking were cancelled and some remain.
pub fn seats_cancelled(b: &Booking, freed: &[SeatNo], now: DateTime<Utc>) -> (HistoryEntry, Notification) {
    (history(b, HistoryAction::Modified, freed, now), about(b, NotificationKind::SeatsCancelled, freed.len() as u32, now))
}

/// A booking was cancelled because its event was.
pub fn event_cancelled(b: &Booking, freed: &[SeatNo], now: DateTime<Utc>) -> (HistoryEntry, Notification) {
    (history(b, HistoryAction::Cancelled, freed, now), about(b, NotificationKind::EventCancelled, freed.len() as u32, now))
}

/// The event of a live booking changed.
pub fn event_updated(b: &Booking, now: DateTime<Utc>) -> Notification {
    about(b, NotificationKind::EventUpdated, b.seats(), now)
}

/// A hold ran out.
pub fn hold_expired(h: &Hold, now: DateTime<Utc>) -> Notification {
    plain(h.user_id, NotificationKind::HoldExpired, Some(h.event_id), None, h.seat_numbers.len() as u32, now)
}

/// A hold was dropped because its event was cancelled.
pub fn hold_event_cancelled(h: &Hold, now: DateTime<Utc>) -> Notification {
    plain(h.user_id, NotificationKind::EventCancelled, Some(h.event_id), None, h.seat_numbers.len() as u32, now)
}

/// Someone with an account was invited to an organization.
pub fn invited(user: UserId, org: OrgId, now: DateTime<Utc>) -> Notification {
    plain(user, NotificationKind::InvitationReceived, None, Some(org), 0, now)
}

fn plain(
    user_id: UserId,
    kind: NotificationKind,
    event_id: Option<EventId>,
    org_id: Option<OrgId>,
    seats: u32,
    now: DateTime<Utc>,
) -> Notification {
    Notification {
        id: NotificationId::new(),
        user_id,
        kind,
        event_id,
        booking_id: None,
        org_id,
        seats,
        expires_at: None,
        status: DeliveryStatus::Pending,
        read: false,
        created_at: now,
    }
}
