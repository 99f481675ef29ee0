//! What an audit reports: the options, each broken invariant as a typed [`Breach`] with the
//! facts that show it, and the per-event and whole reports.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::domain::*;
use crate::ids::{BookingId, EventId, NotificationId, SeatNo, UserId};
use crate::ports::WaitEntry;

/// What to audit besides the invariants themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// A notification still pending (claimed by a relay or not) this long after it was
    /// written is stuck.
    pub stuck_after: Duration,
    /// How many pending notifications, oldest first, to look at for stuck ones.
    pub outbox_scan_max: u32,
    /// Clock skew between servers tolerated by the waiting-order check: a booking queued
    /// ahead of one created earlier by more than this breaks FIFO.
    pub order_tolerance: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self { stuck_after: Duration::seconds(300), outbox_scan_max: 1000, order_tolerance: Duration::seconds(5) }
    }
}

/// One broken invariant, with the facts that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// `booked + held > capacity`.
    Oversold {
        /// The event audited.
        event: EventId,
        /// Its seats.
        capacity: u32,
        /// Seats of confirmed bookings, as the store counts them.
        booked: u32,
        /// Seats under holds and open offers, as the store counts them.
        held: u32,
    },
    /// A confirmed (or offered) booking owns no seat, or more than it requested.
    SeatCount {
        /// The event audited.
        event: EventId,
        /// The booking at fault.
        booking: BookingId,
        /// Seats it owns.
        seats: u32,
        /// Seats it asked for.
        requested: u32,
    },
    /// A confirmed booking owns a seat outside `1..=capacity`.
    SeatOutOfRange {
        /// The event audited.
        event: EventId,
        /// The booking at fault.
        booking: BookingId,
        /// The seat outside the event.
        seat: SeatNo,
        /// The event's seats.
        capacity: u32,
    },
    /// Two bookings (confirmed or offered) own the same seat.
    SeatTwice {
        /// The event audited.
        event: EventId,
        /// The seat owned twice.
        seat: SeatNo,
        /// The booking read first that owns it.
        first: BookingId,
        /// The other booking that owns it.
        second: BookingId,
    },
    /// The event's booked count is not the seats its confirmed bookings own.
    BookedCount {
        /// The event audited.
        event: EventId,
        /// The store's count of booked seats.
        booked: u32,
        /// Seats its confirmed bookings own, counted one by one.
        confirmed_seats: u32,
    },
    /// The seat map's taken seats are not the seats of the confirmed bookings.
    SeatMap {
        /// The event audited.
        event: EventId,
        /// Taken seats as the seat map has them, ascending.
        taken: Vec<SeatNo>,
        /// Seats of the confirmed bookings, ascending.
        confirmed: Vec<SeatNo>,
    },
    /// The seat map's held seats disagree with the held count, overlap booked seats, or
    /// miss an offered booking's seats.
    HeldSeats {
        /// The event audited.
        event: EventId,
        /// The store's count of held seats.
        held: u32,
        /// Held seats as the seat map has them, ascending.
        held_seats: Vec<SeatNo>,
    },
    /// The store's durable waitlist is not its waiting bookings in `queue_seq` order.
    StoreWaitlist {
        /// The event audited.
        event: EventId,
        /// The store's waitlist, head first.
        waitlist: Vec<BookingId>,
        /// The waiting bookings by `queue_seq`: what it should be.
        waiting: Vec<BookingId>,
    },
    /// The event's count of waiting bookings (the queue length the store keeps, which
    /// numbers the next booking to wait) is not the number of its waiting bookings.
    WaitingCount {
        /// The event audited.
        event: EventId,
        /// The count the store keeps.
        count: u32,
        /// Bookings that wait, counted one by one.
        waiting: u32,
    },
    /// FIFO: `booking` is queued ahead of `created_before`, which was created earlier.
    QueueOrder {
        /// The event audited.
        event: EventId,
        /// The booking queued too early.
        booking: BookingId,
        /// The booking it passed, created more than `order_tolerance` before it.
        created_before: BookingId,
    },
    /// A cancelled event still has confirmed, offered or waiting bookings.
    CancelledEventLive {
        /// The cancelled event.
        event: EventId,
        /// How many of its bookings are still live.
        live: u32,
    },
    /// An offer is still open `stuck_after` past its expiry: the background step that
    /// ends offers is not running.
    OfferOverdue {
        /// The event audited.
        event: EventId,
        /// The offered booking.
        booking: BookingId,
        /// When its offer should have ended.
        expires_at: DateTime<Utc>,
    },
    /// The admission's waitlist is not the store's waiting bookings, in order.
    AdmissionWaitlist {
        /// The event audited.
        event: EventId,
        /// The admission's queue, head first.
        admission: Vec<WaitEntry>,
        /// The store's waiting bookings as queue entries, by `queue_seq`: what it should be.
        store: Vec<WaitEntry>,
    },
    /// The admission's free-seat counter is not the store's `capacity - booked - held`.
    CounterDrift {
        /// The event audited.
        event: EventId,
        /// Free seats by the admission's counter.
        counter: u32,
        /// Free seats by the store: what the counter should say.
        store: u32,
    },
    /// Seats are free and a waiting booking fits them under the event's policy.
    WaitingForFreeSeats {
        /// The event audited.
        event: EventId,
        /// The booking that should have been promoted.
        booking: BookingId,
        /// Seats it waits for.
        seats: u32,
        /// Seats free in the store.
        free: u32,
    },
    /// A booking has no history at all.
    HistoryMissing {
        /// The event audited.
        event: EventId,
        /// The booking without history.
        booking: BookingId,
    },
    /// A booking's history does not start with `created` or does not end in its status.
    HistoryMismatch {
        /// The event audited.
        event: EventId,
        /// The booking at fault.
        booking: BookingId,
        /// The action of its first history entry.
        first: HistoryAction,
        /// The status its last history entry left it in.
        last: BookingStatus,
        /// Its status in the store.
        status: BookingStatus,
    },
    /// A booking's history entries and its notifications (one per entry, of the entry's
    /// kind, `event_updated` aside) disagree.
    Notifications {
        /// The event audited.
        event: EventId,
        /// The booking at fault.
        booking: BookingId,
        /// Its history's actions, oldest first.
        history: Vec<HistoryAction>,
        /// Its notifications' kinds in outbox order, `event_updated` left out.
        notifications: Vec<NotificationKind>,
    },
    /// A notification has been pending (claimed or not) since `created_at`.
    OutboxStuck {
        /// The stuck notification.
        notification: NotificationId,
        /// The event it is about, if any.
        event: Option<EventId>,
        /// Who it is for.
        user: UserId,
        /// What it tells.
        kind: NotificationKind,
        /// When it was written to the outbox.
        created_at: DateTime<Utc>,
    },
}

impl Breach {
    /// The event it concerns (none for a stuck notification not about an event).
    pub fn event(&self) -> Option<EventId> {
        use Breach::*;
        match self {
            Oversold { event, .. }
            | SeatCount { event, .. }
            | SeatOutOfRange { event, .. }
            | SeatTwice { event, .. }
            | BookedCount { event, .. }
            | SeatMap { event, .. }
            | HeldSeats { event, .. }
            | StoreWaitlist { event, .. }
            | WaitingCount { event, .. }
            | QueueOrder { event, .. }
            | CancelledEventLive { event, .. }
            | OfferOverdue { event, .. }
            | AdmissionWaitlist { event, .. }
            | CounterDrift { event, .. }
            | WaitingForFreeSeats { event, .. }
            | HistoryMissing { event, .. }
            | HistoryMismatch { event, .. }
            | Notifications { event, .. } => Some(*event),
            OutboxStuck { event, .. } => *event,
        }
    }

    /// The booking, seat or notification it is about, for the kinds that are about one:
    /// with [`event`](Self::event) and [`kind`](Self::kind), what stays the same while a real
    /// breach lasts, though its other facts may change ([`AuditReport::confirmed_by`]).
    pub fn subject(&self) -> Option<uuid::Uuid> {
        use Breach::*;
        match self {
            SeatCount { booking, .. }
            | SeatOutOfRange { booking, .. }
            | QueueOrder { booking, .. }
            | WaitingForFreeSeats { booking, .. }
            | OfferOverdue { booking, .. }
            | HistoryMissing { booking, .. }
            | HistoryMismatch { booking, .. }
            | Notifications { booking, .. } => Some(booking.0),
            SeatTwice { seat, .. } => Some(uuid::Uuid::from_u128(u128::from(*seat))),
            OutboxStuck { notification, .. } => Some(notification.0),
            Oversold { .. }
            | BookedCount { .. }
            | SeatMap { .. }
            | HeldSeats { .. }
            | StoreWaitlist { .. }
            | WaitingCount { .. }
            | CancelledEventLive { .. }
            | AdmissionWaitlist { .. }
            | CounterDrift { .. } => None,
        }
    }

    /// A short stable name of the kind of breach (`oversold`, `seat_twice`, ...).
    pub fn kind(&self) -> &'static str {
        use Breach::*;
        match self {
            Oversold { .. } => "oversold",
            SeatCount { .. } => "seat_count",
            SeatOutOfRange { .. } => "seat_out_of_range",
            SeatTwice { .. } => "seat_twice",
            BookedCount { .. } => "booked_count",
            SeatMap { .. } => "seat_map",
            HeldSeats { .. } => "held_seats",
            StoreWaitlist { .. } => "store_waitlist",
            WaitingCount { .. } => "waiting_count",
            QueueOrder { .. } => "queue_order",
            CancelledEventLive { .. } => "cancelled_event_live",
            OfferOverdue { .. } => "offer_overdue",
            AdmissionWaitlist { .. } => "admission_waitlist",
            CounterDrift { .. } => "counter_drift",
            WaitingForFreeSeats { .. } => "waiting_for_free_seats",
            HistoryMissing { .. } => "history_missing",
            HistoryMismatch { .. } => "history_mismatch",
            Notifications { .. } => "notifications",
            OutboxStuck { .. } => "outbox_stuck",
        }
    }
}

fn entries(list: &[WaitEntry]) -> String {
    let items: Vec<String> = list.iter().map(|e| format!("{}x{}#{}", e.booking, e.seats, e.seq)).collect();
    format!("[{}]", items.join(", "))
}

impl fmt::Display for Breach {
    /// One line: the kind, the event, the facts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Breach::*;
        write!(f, "{}", self.kind())?;
        if let Some(e) = self.event() {
            write!(f, " event {e}")?;
        }
        match self {
            Oversold { capacity, booked, held, .. } => write!(f, ": booked {booked} + held {held} > capacity {capacity}"),
            SeatCount { booking, seats, requested, .. } => {
                write!(f, ": confirmed booking {booking} owns {seats} seat(s) for {requested} requested")
            }
            SeatOutOfRange { booking, seat, capacity, .. } => write!(f, ": booking {booking} owns seat {seat}, outside 1..={capacity}"),
            SeatTwice { seat, first, second, .. } => write!(f, ": seat {seat} owned by bookings {first} and {second}"),
            BookedCount { booked, confirmed_seats, .. } => {
                write!(f, ": booked count {booked}, confirmed bookings own {confirmed_seats} seat(s)")
            }
            SeatMap { taken, confirmed, .. } => write!(f, ": seat map taken {taken:?}, confirmed bookings own {confirmed:?}"),
            HeldSeats { held, held_seats, .. } => {
                write!(f, ": held count {held}, held seats {held_seats:?} (or they overlap booked seats)")
            }
            StoreWaitlist { waitlist, waiting, .. } => {
                write!(f, ": store waitlist {waitlist:?}, waiting bookings by queue_seq {waiting:?}")
            }
            WaitingCount { count, waiting, .. } => write!(f, ": the event counts {count} waiting, {waiting} booking(s) wait"),
            QueueOrder { booking, created_before, .. } => {
                write!(f, ": booking {booking} is queued ahead of {created_before}, created before it")
            }
            CancelledEventLive { live, .. } => write!(f, ": cancelled, yet {live} booking(s) confirmed, offered or waiting"),
            OfferOverdue { booking, expires_at, .. } => {
                write!(f, ": booking {booking} is still offered, its offer expired at {}", expires_at.to_rfc3339())
            }
            AdmissionWaitlist { admission, store, .. } => {
                write!(f, ": admission waitlist {}, store {}", entries(admission), entries(store))
            }
            CounterDrift { counter, store, .. } => write!(f, ": counter {counter} free, store {store} free"),
            WaitingForFreeSeats { booking, seats, free, .. } => write!(f, ": booking {booking} waits for {seats} seat(s), {free} free"),
            HistoryMissing { booking, .. } => write!(f, ": booking {booking} has no history"),
            HistoryMismatch { booking, first, last, status, .. } => write!(
                f,
                ": booking {booking} is {}, its history starts with {} and ends {}",
                status.as_str(),
                first.as_str(),
                last.as_str()
            ),
            Notifications { booking, history, notifications, .. } => {
                write!(f, ": booking {booking} history {history:?}, notifications {notifications:?}")
            }
            OutboxStuck { notification, user, kind, created_at, .. } => {
                write!(f, ": notification {notification} ({}, user {user}) pending since {created_at}", kind.as_str())
            }
        }
    }
}

/// What auditing one event found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAudit {
    /// The event audited.
    pub event_id: EventId,
    /// Bookings checked (any status).
    pub bookings: usize,
    /// The admission has no counter for the event (a cold start, a flushed Redis): not a
    /// breach, the engine rebuilds it from the store on first use; its counter and
    /// waitlist were not compared.
    pub admission_missing: bool,
    /// Every broken invariant found in the event; empty when it is sound.
    pub breaches: Vec<Breach>,
}

/// What auditing a deployment found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Events audited.
    pub events_checked: usize,
    /// Bookings checked across them (any status).
    pub bookings_checked: usize,
    /// Events whose admission counter is missing (see [`EventAudit::admission_missing`]).
    pub admission_missing: Vec<EventId>,
    /// Pending notifications looked at for stuck ones.
    pub pending_scanned: usize,
    /// Every broken invariant found, event by event, then the stuck notifications.
    pub breaches: Vec<Breach>,
}

impl AuditReport {
    /// Whether no invariant is broken (a missing admission counter is not a breach).
    pub fn is_clean(&self) -> bool {
        self.breaches.is_empty()
    }

    /// The breaches of `later`, a second audit of the same events, that this one found too
    /// (the same event, kind and subject). An audit reads each event in several steps (its
    /// bookings, then their histories and notifications, then the admission), not in one
    /// snapshot, so while servers run, a change that commits between two steps looks like a
    /// breach: a promotion between reading a booking and reading its history is a booking
    /// "waiting" whose history ends "confirmed"; a cancel whose promotion pass has not run
    /// yet leaves a booking waiting for a free seat. Such a breach is gone a moment later;
    /// a real one stays. The counts are `later`'s.
    pub fn confirmed_by(&self, later: AuditReport) -> AuditReport {
        let key = |b: &Breach| (b.event(), b.kind(), b.subject());
        let seen: BTreeSet<_> = self.breaches.iter().map(key).collect();
        let mut out = later;
        out.breaches.retain(|b| seen.contains(&key(b)));
        out
    }
}
