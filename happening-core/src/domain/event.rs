use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EventId, OrgId, SeatNo};

/// How waiting bookings are promoted when seats free up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitlistPolicy {
    /// The head is promoted when all its seats fit; promotion stops at the first that
    /// doesn't. Newcomers never pass anyone waiting.
    #[default]
    Fifo,
    /// Every waiting booking that fits is promoted, in queue order; a newcomer that fits
    /// is confirmed even while larger requests wait.
    FirstFit,
    /// The head takes the free seats up to its request and leaves the queue (the original
    /// platform's per-seat behaviour). Newcomers never pass anyone waiting.
    Partial,
}

impl WaitlistPolicy {
    /// Whether a newcomer must queue behind anyone already waiting.
    pub fn newcomers_queue_behind(self) -> bool {
        !matches!(self, WaitlistPolicy::FirstFit)
    }
}

names!(WaitlistPolicy {
    Fifo => "fifo",
    FirstFit => "first_fit",
    Partial => "partial",
});

/// Whether an event still takes bookings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Open: it books, queues and promotes.
    Upcoming,
    /// Cancelled with every booking of it; it takes no bookings and no changes
    /// ([`crate::error::Conflict::EventCancelled`]). Final.
    Cancelled,
}

names!(EventStatus {
    Upcoming => "upcoming",
    Cancelled => "cancelled",
});

/// An event: `capacity` seats numbered `1..=capacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Identifies the event in every call and in every booking, hold and notification of it.
    pub id: EventId,
    /// The organization that owns it: its organizers manage the event, and
    /// `Engine::book_as` books it for members only.
    pub org_id: OrgId,
    /// Shown to people; trimmed, 1 to `Limits::name_bytes_max` bytes.
    pub name: String,
    /// Free text, trimmed, at most `Limits::description_bytes_max` bytes; `None` when blank.
    pub description: Option<String>,
    /// A label to sort events by, trimmed, at most `Limits::category_bytes_max` bytes;
    /// `None` when blank.
    pub category: Option<String>,
    /// When the event takes place (UTC); events are listed latest first by it.
    pub event_date: DateTime<Utc>,
    /// Seats, numbered `1..=capacity` (1 to `Limits::capacity_max`). A change may grow
    /// it, or shrink it while every booked, held and offered seat stays.
    pub capacity: u32,
    /// Open or cancelled.
    pub status: EventStatus,
    /// How the waitlist is promoted when seats free up.
    pub policy: WaitlistPolicy,
    /// Most bookings that may wait; a booking that would wait beyond it is refused
    /// ([`crate::error::Conflict::WaitlistFull`]) and nothing is written. `None`: no cap;
    /// `Some(0)`: no waitlist, a sold-out event turns newcomers away.
    pub waitlist_max: Option<u32>,
    /// How long a seat freed for the waitlist is offered before it passes on. `None`: a
    /// promotion confirms at once. `Some(ttl)`: a promotion makes the booking `Offered`,
    /// its seats held for it for `ttl` seconds, until its owner accepts or declines.
    pub offer_ttl_seconds: Option<u32>,
    /// When the event was created, on the engine's clock.
    pub created_at: DateTime<Utc>,
    /// When its fields, capacity or status last changed, on the engine's clock.
    pub updated_at: DateTime<Utc>,
}

/// An event with its live counts, as the SeatStore sees them (the source of truth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// The event's own fields.
    pub event: Event,
    /// Seats of confirmed bookings.
    pub booked: u32,
    /// Seats under live holds and open offers.
    pub held: u32,
    /// Bookings waiting.
    pub waiting: u32,
}

impl EventView {
    /// `capacity - booked - held`: the seats a new booking could get right now.
    pub fn available(&self) -> u32 {
        self.event.capacity - self.booked - self.held
    }
}

/// What to create. [`NewEvent::new`] gives the defaults (no description or category,
/// `fifo`, no waitlist cap, promotions confirm at once); set the other fields on it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The organization it belongs to, which must exist.
    pub org_id: OrgId,
    /// See [`Event::name`]: required, trimmed, bounded.
    pub name: String,
    /// See [`Event::description`].
    pub description: Option<String>,
    /// See [`Event::category`].
    pub category: Option<String>,
    /// When the event takes place (UTC).
    pub event_date: DateTime<Utc>,
    /// Seats, 1 to `Limits::capacity_max`.
    pub capacity: u32,
    /// How its waitlist is promoted; `fifo` by default.
    pub policy: WaitlistPolicy,
    /// See [`Event::waitlist_max`]; at most `Limits::waitlist_max_limit`.
    pub waitlist_max: Option<u32>,
    /// See [`Event::offer_ttl_seconds`]; `Limits::offer_ttl_seconds_min` to
    /// `offer_ttl_seconds_max` seconds.
    pub offer_ttl_seconds: Option<u32>,
}

impl NewEvent {
    /// An event of `capacity` seats with every optional field at its default.
    pub fn new(org_id: OrgId, name: impl Into<String>, event_date: DateTime<Utc>, capacity: u32) -> Self {
        NewEvent {
            org_id,
            name: name.into(),
            description: None,
            category: None,
            event_date,
            capacity,
            policy: WaitlistPolicy::default(),
            waitlist_max: None,
            offer_ttl_seconds: None,
        }
    }

    /// Promotes its waitlist by `policy` instead of `fifo`.
    pub fn with_policy(self, policy: WaitlistPolicy) -> Self {
        NewEvent { policy, ..self }
    }

    /// At most `max` bookings wait; more are refused.
    pub fn with_waitlist_max(self, max: u32) -> Self {
        NewEvent { waitlist_max: Some(max), ..self }
    }

    /// Seats freed for the waitlist are offered for `ttl_seconds` (see
    /// [`Event::offer_ttl_seconds`]).
    pub fn with_offer_ttl_seconds(self, ttl_seconds: u32) -> Self {
        NewEvent { offer_ttl_seconds: Some(ttl_seconds), ..self }
    }
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EventPatch {
    /// A new name, checked as on creation.
    pub name: Option<String>,
    /// `Some(None)` (or blank) removes the description.
    pub description: Option<Option<String>>,
    /// `Some(None)` (or blank) removes the category.
    pub category: Option<Option<String>>,
    /// A new date; bookings are told of it.
    pub event_date: Option<DateTime<Utc>>,
    /// A new capacity: larger adds seats and promotes the waitlist; smaller must keep
    /// every booked, held and offered seat, or the update is refused.
    pub capacity: Option<u32>,
    /// A new policy; the waitlist is promoted by it at once.
    pub policy: Option<WaitlistPolicy>,
    /// `Some(None)` removes the cap. Lowering it below the current queue keeps everyone
    /// queued; only newcomers are refused until the queue is shorter.
    pub waitlist_max: Option<Option<u32>>,
    /// `Some(None)`: promotions confirm at once again. Offers already open keep their
    /// expiry; a new time applies to the offers made from then on.
    pub offer_ttl_seconds: Option<Option<u32>>,
}

impl EventPatch {
    /// Applies every field but the capacity (which the store changes with its seats) and
    /// stamps `updated_at`.
    pub fn apply(&self, e: &mut Event, now: DateTime<Utc>) {
        if let Some(name) = &self.name {
            e.name = name.clone();
        }
        if let Some(d) = &self.description {
            e.description = d.clone();
        }
        if let Some(c) = &self.category {
            e.category = c.clone();
        }
        if let Some(date) = self.event_date {
            e.event_date = date;
        }
        if let Some(p) = self.policy {
            e.policy = p;
        }
        if let Some(m) = self.waitlist_max {
            e.waitlist_max = m;
        }
        if let Some(t) = self.offer_ttl_seconds {
            e.offer_ttl_seconds = t;
        }
        e.updated_at = now;
    }

    /// Whether the live bookings are told (`event_updated`): a change they can see. The
    /// waitlist's cap and the offers' time alone concern later steps only, and an empty
    /// patch changes nothing.
    pub fn notifies_bookings(&self) -> bool {
        self.name.is_some()
            || self.description.is_some()
            || self.category.is_some()
            || self.event_date.is_some()
            || self.capacity.is_some()
            || self.policy.is_some()
    }
}

/// Which seats are taken by bookings and which are held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatMap {
    /// The event's capacity: seats are numbered `1..=total`; the ones in neither list are free.
    pub total: u32,
    /// Seats of confirmed bookings, ascending.
    pub taken: Vec<SeatNo>,
    /// Seats under live holds and open offers, ascending.
    pub held: Vec<SeatNo>,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events of these organizations.
    pub org_ids: Vec<OrgId>,
    /// Most events to return; 0, or more than `Limits::page_size_max`, is `page_size_max`.
    pub limit: u32,
    /// Events to skip first, for paging.
    pub offset: u32,
}
