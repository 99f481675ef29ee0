//! A reference model of the booking rules, for model-based property tests: a few plain
//! `Vec`s and `BTreeSet`s, no concurrency, no cleverness. A random sequence of operations
//! runs on the model and on an engine; after every step the two must agree exactly (results,
//! every booking's status and seats, the waitlist, the seat map, the notifications of the
//! step), and the engine must keep every invariant.

use std::collections::BTreeSet;

use proptest::prelude::*;

use crate::clock::Clock;
use crate::domain::*;
use crate::engine::{BookRequest, HoldRequest};
use crate::error::{Conflict, Entity, Error};
use crate::ids::*;
use crate::testkit::{invariants, Harness};

const USERS: usize = 3;
const SEATS_MAX: u32 = 50;

/// One generated operation. Indices pick among what exists (modulo its count).
#[derive(Debug, Clone)]
pub enum Op {
    /// Book seats for one of the case's users.
    Book {
        /// Which user books (an index among the case's few).
        user: usize,
        /// `BookRequest::seats`: how many, or `None` for the default.
        seats: Option<u32>,
        /// `BookRequest::seat_numbers`, possibly out of range or repeated.
        numbers: Option<Vec<u32>>,
        /// `BookRequest::accept_partial`.
        partial: bool,
        /// `BookRequest::strict_seats`.
        strict: bool,
    },
    /// Cancel a booking, by its owner.
    Cancel {
        /// Which booking (an index among those made so far).
        booking: usize,
    },
    /// Cancel some seats of a booking, by its owner.
    CancelSeats {
        /// Which booking (an index among those made so far).
        booking: usize,
        /// A bit mask over the booking's own seats: which of them to cancel.
        own: u8,
        /// Seats added to the list, the booking's or not.
        extra: Vec<u32>,
    },
    /// Change the event's capacity (0 and shrinking below taken seats included).
    Resize {
        /// The capacity asked for.
        capacity: u32,
    },
    /// Hold seats for one of the case's users.
    Hold {
        /// Which user holds (an index among the case's few).
        user: usize,
        /// `HoldRequest::seats`.
        seats: Option<u32>,
        /// `HoldRequest::seat_numbers`, possibly out of range or repeated.
        numbers: Option<Vec<u32>>,
        /// The hold's time, in seconds (0 is below the limit, so invalid).
        ttl_s: u64,
    },
    /// Release a hold.
    ReleaseHold {
        /// Which hold (an index among those made so far).
        hold: usize,
        /// Whether its owner asks, or a stranger (refused).
        owner: bool,
    },
    /// Book the seats of a hold.
    BookHold {
        /// Which hold (an index among those made so far).
        hold: usize,
        /// Whether its owner asks, or a stranger (refused).
        owner: bool,
    },
    /// Move the clock forward and run the background step that ends holds and offers.
    Advance {
        /// How far, in seconds.
        secs: u32,
    },
    /// Cancel the event.
    CancelEvent,
    /// Accept the offer of a booking (whether it has one or not).
    Accept {
        /// Which booking (an index among those made so far).
        booking: usize,
    },
    /// Decline the offer of a booking (whether it has one or not).
    Decline {
        /// Which booking (an index among those made so far).
        booking: usize,
    },
}

/// A generated test case: an event and what happens to it.
#[derive(Debug, Clone)]
pub struct Case {
    /// The event's seats (1 to 12, so that seats run out).
    pub capacity: u32,
    /// The event's waitlist policy.
    pub policy: WaitlistPolicy,
    /// The event's cap on its waitlist (`None`, or 0 to 3).
    pub waitlist_max: Option<u32>,
    /// The event's `offer_ttl_seconds`.
    pub offer_ttl_s: Option<u32>,
    /// The operations, run in order on the model and on the engine.
    pub ops: Vec<Op>,
}

fn numbers() -> impl Strategy<Value = Option<Vec<u32>>> {
    prop_oneof![3 => Just(None), 2 => prop::collection::vec(0u32..=13, 0..4).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..USERS, prop_oneof![Just(None), (0u32..=7).prop_map(Some)], numbers(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(user, seats, numbers, partial, strict)| Op::Book { user, seats, numbers, partial, strict }),
        4 => any::<usize>().prop_map(|booking| Op::Cancel { booking }),
        3 => (any::<usize>(), any::<u8>(), prop::collection::vec(1u32..=13, 0..2))
            .prop_map(|(booking, own, extra)| Op::CancelSeats { booking, own, extra }),
        2 => (0u32..=14).prop_map(|capacity| Op::Resize { capacity }),
        3 => (0..USERS, prop_oneof![Just(None), (0u32..=4).prop_map(Some)], numbers(), prop_oneof![1 => Just(0u64), 8 => 1u64..=120])
            .prop_map(|(user, seats, numbers, ttl_s)| Op::Hold { user, seats, numbers, ttl_s }),
        1 => (any::<usize>(), prop::bool::weighted(0.9)).prop_map(|(hold, owner)| Op::ReleaseHold { hold, owner }),
        2 => (any::<usize>(), prop::bool::weighted(0.9)).prop_map(|(hold, owner)| Op::BookHold { hold, owner }),
        2 => (1u32..=90).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::CancelEvent),
        3 => any::<usize>().prop_map(|booking| Op::Accept { booking }),
        2 => any::<usize>().prop_map(|booking| Op::Decline { booking }),
    ]
}

/// Cases of up to `ops_max` operations on events of 1 to 12 seats.
pub fn cases(ops_max: usize) -> impl Strategy<Value = Case> {
    (
        1u32..=12,
        prop_oneof![Just(WaitlistPolicy::Fifo), Just(WaitlistPolicy::FirstFit), Just(WaitlistPolicy::Partial)],
        prop::collection::vec(op(), 1..=ops_max),
        prop_oneof![2 => Just(None), 1 => (0u32..=3).prop_map(Some)],
        prop_oneof![1 => Just(None), 1 => (1u32..=120).prop_map(Some)],
    )
        .prop_map(|(capacity, policy, ops, waitlist_max, offer_ttl_s)| Case { capacity, policy, waitlist_max, offer_ttl_s, ops })
}

/// An error, as far as the model can predict it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrKind {
    Invalid(&'static str),
    Conflict(Conflict, Vec<SeatNo>),
    NotFound(Entity),
    Capacity(u32),
    Forbidden,
    Other(String),
}

impl From<Error> for ErrKind {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { field, .. } => ErrKind::Invalid(field),
            Error::Conflict { reason, seats } => ErrKind::Conflict(reason, seats),
            Error::NotFound(what) => ErrKind::NotFound(what),
            Error::Capacity { available } => ErrKind::Capacity(available),
            Error::Forbidden(_) => ErrKind::Forbidden,
            other => ErrKind::Other(other.to_string()),
        }
    }
}

type Outcome = Result<(), ErrKind>;

struct MBooking {
    user: usize,
    requested: u32,
    seats: Vec<SeatNo>,
    status: BookingStatus,
    history: Vec<HistoryAction>,
    /// When its offer expires (ms on the model's clock), once offered.
    offer_expires_ms: Option<i64>,
}

impl MBooking {
    fn new(user: usize, requested: u32, seats: Vec<SeatNo>, status: BookingStatus) -> Self {
        MBooking { user, requested, seats, status, history: vec![HistoryAction::Created], offer_expires_ms: None }
    }
}

struct MHold {
    user: usize,
    seats: Vec<SeatNo>,
    expires_ms: i64,
    id: HoldId,
    live: bool,
}

#[derive(Default)]
struct Model {
    capacity: u32,
    policy: WaitlistPolicy,
    waitlist_max: Option<u32>,
    offer_ttl_s: Option<u32>,
    cancelled: bool,
    booked: BTreeSet<SeatNo>,
    holds: Vec<MHold>,
    bookings: Vec<MBooking>,
    /// Waiting bookings, in order.
    queue: Vec<usize>,
    now_ms: i64,
    /// Notifications of the current step: (user, kind, seats).
    notes: Vec<(usize, NotificationKind, u32)>,
    /// The `waiting_number` the last booking was told: its place as it joined the queue,
    /// if it is still waiting.
    told: Option<u32>,
}

impl Model {
    /// Seats of live holds and open offers.
    fn held(&self) -> impl Iterator<Item = SeatNo> + '_ {
        let offered = self.bookings.iter().filter(|b| b.status == BookingStatus::Offered).flat_map(|b| b.seats.iter().copied());
        self.holds.iter().filter(|h| h.live).flat_map(|h| h.seats.iter().copied()).chain(offered)
    }

    fn occupied(&self, s: SeatNo) -> bool {
        self.booked.contains(&s) || self.held().any(|h| h == s)
    }

    fn free(&self) -> u32 {
        self.capacity - self.booked.len() as u32 - self.held().count() as u32
    }

    fn lowest(&self, n: u32) -> Vec<SeatNo> {
        (1..=self.capacity).filter(|&s| !self.occupied(s)).take(n as usize).collect()
    }

    fn note(&mut self, b: usize, kind: NotificationKind, seats: u32) {
        self.notes.push((self.bookings[b].user, kind, seats));
    }

    /// The engine's seat checks, in its order.
    fn validate(&self, seats: Option<u32>, numbers: &Option<Vec<u32>>) -> Result<(u32, Vec<SeatNo>), ErrKind> {
        let cap = self.capacity;
        let list = match numbers.as_deref() {
            Some([]) if seats.is_none() => return Err(ErrKind::Invalid("seat_numbers")),
            Some([]) | None => Vec::new(),
            Some(list) => {
                if list.iter().any(|&s| s < 1 || s > cap) {
                    return Err(ErrKind::Invalid("seat_numbers"));
                }
                let set: BTreeSet<_> = list.iter().copied().collect();
                if set.len() != list.len() {
                    return Err(ErrKind::Invalid("seat_numbers"));
                }
                set.into_iter().collect()
            }
        };
        let n = match (seats, list.len() as u32) {
            (Some(n), k) if k > 0 && n != k => return Err(ErrKind::Invalid("seats")),
            (Some(n), _) => n,
            (None, 0) => 1,
            (None, k) => k,
        };
        if !(1..=SEATS_MAX).contains(&n) || n > cap {
            return Err(ErrKind::Invalid("seats"));
        }
        Ok((n, list))
    }

    fn live(&self) -> Outcome {
        if self.cancelled {
            Err(ErrKind::Conflict(Conflict::EventCancelled, vec![]))
        } else {
            Ok(())
        }
    }

    /// Promotion to the end, per policy.
    fn promote(&mut self) {
        loop {
            let free = self.free();
            let pick = match self.policy {
                WaitlistPolicy::Fifo => self.queue.first().filter(|&&b| self.bookings[b].requested <= free).map(|_| 0),
                WaitlistPolicy::FirstFit => self.queue.iter().position(|&b| self.bookings[b].requested <= free),
                WaitlistPolicy::Partial => (free > 0 && !self.queue.is_empty()).then_some(0),
            };
            let Some(i) = pick else { return };
            let b = self.queue.remove(i);
            let n = self.bookings[b].requested.min(free);
            let seats = self.lowest(n);
            let now = self.now_ms;
            let (status, action, kind) = match self.offer_ttl_s {
                None => {
                    self.booked.extend(&seats);
                    (BookingStatus::Confirmed, HistoryAction::Promoted, NotificationKind::WaitlistPromoted)
                }
                Some(ttl_s) => {
                    self.bookings[b].offer_expires_ms = Some(now + i64::from(ttl_s) * 1000);
                    (BookingStatus::Offered, HistoryAction::Offered, NotificationKind::WaitlistOffer)
                }
            };
            let mb = &mut self.bookings[b];
            mb.seats = seats;
            mb.status = status;
            mb.history.push(action);
            self.note(b, kind, n);
        }
    }

    /// The conflict of accepting or declining a booking that is not an open offer.
    fn not_offered(status: BookingStatus) -> ErrKind {
        let reason = match status {
            BookingStatus::Declined => Conflict::OfferDeclined,
            BookingStatus::Expired => Conflict::OfferExpired,
            _ => Conflict::NotOffered,
        };
        ErrKind::Conflict(reason, vec![])
    }

    /// The conflict of changing a booking that has ended.
    fn ended(status: BookingStatus) -> ErrKind {
        match status {
            BookingStatus::Cancelled => ErrKind::Conflict(Conflict::BookingCancelled, vec![]),
            other => Self::not_offered(other),
        }
    }

    fn accept(&mut self, b: usize) -> Outcome {
        self.live()?;
        let mb = &self.bookings[b];
        match mb.status {
            BookingStatus::Offered if mb.offer_expires_ms.is_some_and(|at| at > self.now_ms) => {}
            BookingStatus::Offered => return Err(ErrKind::Conflict(Conflict::OfferExpired, vec![])),
            // Accepted before: the same answer.
            BookingStatus::Confirmed if mb.history.contains(&HistoryAction::Accepted) => return Ok(()),
            other => return Err(Self::not_offered(other)),
        }
        let n = mb.seats.len() as u32;
        let seats = mb.seats.clone();
        self.booked.extend(&seats);
        let mb = &mut self.bookings[b];
        mb.status = BookingStatus::Confirmed;
        mb.history.push(HistoryAction::Accepted);
        self.note(b, NotificationKind::OfferAccepted, n);
        Ok(())
    }

    fn decline(&mut self, b: usize) -> Outcome {
        self.live()?;
        match self.bookings[b].status {
            BookingStatus::Offered => {}
            BookingStatus::Declined => return Ok(()),
            other => return Err(Self::not_offered(other)),
        }
        self.end_offer(b, BookingStatus::Declined, HistoryAction::Declined, NotificationKind::OfferDeclined);
        self.promote();
        Ok(())
    }

    fn end_offer(&mut self, b: usize, status: BookingStatus, action: HistoryAction, kind: NotificationKind) {
        let mb = &mut self.bookings[b];
        mb.status = status;
        mb.history.push(action);
        let n = mb.seats.len() as u32;
        self.note(b, kind, n);
    }

    fn book(&mut self, user: usize, seats: Option<u32>, numbers: &Option<Vec<u32>>, partial: bool, strict: bool) -> Outcome {
        self.live()?;
        self.told = None;
        let (n, wanted) = self.validate(seats, numbers)?;
        let behind = self.policy.newcomers_queue_behind() && !self.queue.is_empty();
        let min = if partial { 1 } else { n };
        let free = self.free();
        let mut booking = MBooking::new(user, n, vec![], BookingStatus::Waiting);
        if !behind && free >= min {
            let k = n.min(free);
            let seats = if k == n && !wanted.is_empty() {
                let taken: Vec<SeatNo> = wanted.iter().copied().filter(|&s| self.occupied(s)).collect();
                if taken.is_empty() {
                    wanted
                } else if strict {
                    return Err(ErrKind::Conflict(Conflict::SeatsTaken, taken));
                } else {
                    self.lowest(k)
                }
            } else {
                self.lowest(k)
            };
            self.booked.extend(&seats);
            booking.seats = seats;
            booking.status = BookingStatus::Confirmed;
            self.bookings.push(booking);
            self.note(self.bookings.len() - 1, NotificationKind::BookingConfirmed, k);
            return Ok(());
        }
        if self.waitlist_max.is_some_and(|m| self.queue.len() >= m as usize) {
            return Err(ErrKind::Conflict(Conflict::WaitlistFull, vec![]));
        }
        self.bookings.push(booking);
        let b = self.bookings.len() - 1;
        self.queue.push(b);
        let number = self.queue.len() as u32;
        self.note(b, NotificationKind::BookingWaitlisted, n);
        self.promote();
        if self.bookings[b].status == BookingStatus::Waiting {
            self.told = Some(number);
        }
        Ok(())
    }

    fn cancel(&mut self, b: usize) -> Outcome {
        self.live()?;
        if self.bookings[b].status.is_final() {
            return Err(Self::ended(self.bookings[b].status));
        }
        let freed = std::mem::take(&mut self.bookings[b].seats);
        for s in &freed {
            self.booked.remove(s);
        }
        self.queue.retain(|&q| q != b);
        let mb = &mut self.bookings[b];
        mb.seats = freed.clone();
        mb.status = BookingStatus::Cancelled;
        mb.history.push(HistoryAction::Cancelled);
        self.note(b, NotificationKind::BookingCancelled, freed.len() as u32);
        self.promote();
        Ok(())
    }

    fn cancel_seats(&mut self, b: usize, list: &[SeatNo]) -> Outcome {
        if list.is_empty() {
            return Err(ErrKind::Invalid("seat_numbers"));
        }
        let sorted: BTreeSet<SeatNo> = list.iter().copied().collect();
        if sorted.len() != list.len() {
            return Err(ErrKind::Invalid("seat_numbers"));
        }
        self.live()?;
        match self.bookings[b].status {
            BookingStatus::Confirmed => {}
            status if status.is_final() => return Err(Self::ended(status)),
            _ => return Err(ErrKind::Conflict(Conflict::BookingNotConfirmed, vec![])),
        }
        let strangers: Vec<SeatNo> = sorted.iter().copied().filter(|s| !self.bookings[b].seats.contains(s)).collect();
        if !strangers.is_empty() {
            return Err(ErrKind::Conflict(Conflict::SeatsNotInBooking, strangers));
        }
        for s in &sorted {
            self.booked.remove(s);
        }
        let mb = &mut self.bookings[b];
        mb.seats.retain(|s| !sorted.contains(s));
        let n = sorted.len() as u32;
        if mb.seats.is_empty() {
            mb.seats = sorted.into_iter().collect();
            mb.status = BookingStatus::Cancelled;
            mb.history.push(HistoryAction::Cancelled);
            self.note(b, NotificationKind::BookingCancelled, n);
        } else {
            mb.history.push(HistoryAction::Modified);
            self.note(b, NotificationKind::SeatsCancelled, n);
        }
        self.promote();
        Ok(())
    }

    fn resize(&mut self, capacity: u32) -> Outcome {
        if capacity < 1 {
            return Err(ErrKind::Invalid("total_slots"));
        }
        self.live()?;
        let old = self.capacity;
        if capacity < old && self.free() < old - capacity {
            return Err(ErrKind::Capacity(self.free()));
        }
        let highest = self.booked.iter().copied().chain(self.held()).max().unwrap_or(0);
        if capacity < highest {
            return Err(ErrKind::Conflict(Conflict::CapacityBelowTakenSeat { highest }, vec![]));
        }
        self.capacity = capacity;
        for b in 0..self.bookings.len() {
            if !self.bookings[b].status.is_final() {
                let seats = match self.bookings[b].status {
                    BookingStatus::Waiting => self.bookings[b].requested,
                    _ => self.bookings[b].seats.len() as u32,
                };
                self.note(b, NotificationKind::EventUpdated, seats);
            }
        }
        if capacity > old {
            self.promote();
        }
        Ok(())
    }

    fn hold(&mut self, user: usize, seats: Option<u32>, numbers: &Option<Vec<u32>>, ttl_s: u64) -> Result<(u32, Vec<SeatNo>), ErrKind> {
        if ttl_s < 1 {
            return Err(ErrKind::Invalid("ttl"));
        }
        self.live()?;
        let (n, wanted) = self.validate(seats, numbers)?;
        let _ = user;
        if self.policy.newcomers_queue_behind() && !self.queue.is_empty() {
            return Err(ErrKind::Capacity(0));
        }
        if self.free() < n {
            return Err(ErrKind::Capacity(self.free()));
        }
        if wanted.is_empty() {
            return Ok((n, self.lowest(n)));
        }
        let taken: Vec<SeatNo> = wanted.iter().copied().filter(|&s| self.occupied(s)).collect();
        if !taken.is_empty() {
            return Err(ErrKind::Conflict(Conflict::SeatsTaken, taken));
        }
        Ok((n, wanted))
    }

    fn release(&mut self, h: usize, owner: bool) -> Outcome {
        if !self.holds[h].live {
            return Err(ErrKind::NotFound(Entity::Hold));
        }
        if !owner {
            return Err(ErrKind::Forbidden);
        }
        self.holds[h].live = false;
        self.promote();
        Ok(())
    }

    fn book_hold(&mut self, h: usize, owner: bool) -> Outcome {
        self.live()?;
        if !self.holds[h].live {
            return Err(ErrKind::NotFound(Entity::Hold));
        }
        if !owner {
            return Err(ErrKind::Forbidden);
        }
        if self.holds[h].expires_ms <= self.now_ms {
            return Err(ErrKind::Conflict(Conflict::HoldExpired, vec![]));
        }
        let hold = &mut self.holds[h];
        hold.live = false;
        let seats = hold.seats.clone();
        let user = hold.user;
        self.booked.extend(&seats);
        let n = seats.len() as u32;
        self.bookings.push(MBooking::new(user, n, seats, BookingStatus::Confirmed));
        self.note(self.bookings.len() - 1, NotificationKind::BookingConfirmed, n);
        Ok(())
    }

    fn expire(&mut self) {
        let now = self.now_ms;
        let mut due: Vec<usize> = (0..self.holds.len()).filter(|&h| self.holds[h].live && self.holds[h].expires_ms <= now).collect();
        due.sort_by_key(|&h| (self.holds[h].expires_ms, self.holds[h].id));
        for h in due {
            self.holds[h].live = false;
            self.notes.push((self.holds[h].user, NotificationKind::HoldExpired, self.holds[h].seats.len() as u32));
        }
        self.promote();
        // Then the offers, as the engine's background step does: the promotion above only
        // makes offers that are not due yet (a TTL is at least a second).
        let due: Vec<usize> = (0..self.bookings.len())
            .filter(|&b| self.bookings[b].status == BookingStatus::Offered && self.bookings[b].offer_expires_ms.is_some_and(|at| at <= now))
            .collect();
        for &b in &due {
            self.end_offer(b, BookingStatus::Expired, HistoryAction::Expired, NotificationKind::OfferExpired);
        }
        if !due.is_empty() {
            self.promote();
        }
    }

    fn cancel_event(&mut self) -> Outcome {
        self.live()?;
        self.cancelled = true;
        for b in 0..self.bookings.len() {
            let mb = &mut self.bookings[b];
            if mb.status.is_final() {
                continue;
            }
            let freed = if mb.status.owns_seats() { mb.seats.len() as u32 } else { 0 };
            mb.status = BookingStatus::Cancelled;
            mb.history.push(HistoryAction::Cancelled);
            self.note(b, NotificationKind::EventCancelled, freed);
        }
        self.booked.clear();
        self.queue.clear();
        for h in self.holds.iter_mut().filter(|h| h.live) {
            h.live = false;
            self.notes.push((h.user, NotificationKind::EventCancelled, h.seats.len() as u32));
        }
        Ok(())
    }
}

/// Runs one case on the model and on `h.engine`, step by step. `Err` says where they
/// parted or which invariant broke.
pub async fn run(h: &Harness, case: &Case) -> Result<(), String> {
    let users: Vec<UserId> = (0..USERS).map(|_| UserId::new()).collect();
    let e = h.event(case.capacity, case.policy).await;
    if case.waitlist_max.is_some() || case.offer_ttl_s.is_some() {
        let patch = EventPatch { waitlist_max: Some(case.waitlist_max), offer_ttl_seconds: Some(case.offer_ttl_s), ..Default::default() };
        h.engine.update_event(e, patch).await.map_err(|e| format!("setting waitlist_max and offer_ttl_seconds: {e}"))?;
    }
    h.delivered().await;
    let mut m = Model {
        capacity: case.capacity,
        policy: case.policy,
        waitlist_max: case.waitlist_max,
        offer_ttl_s: case.offer_ttl_s,
        now_ms: 0,
        ..Default::default()
    };
    let start = h.clock.now();
    let mut ids: Vec<BookingId> = Vec::new();
    let en = &h.engine;
    for (step, op) in case.ops.iter().enumerate() {
        m.notes.clear();
        let (want, got): (Outcome, Outcome) = match op {
            Op::Book { user, seats, numbers, partial, strict } => {
                let want = m.book(*user, *seats, numbers, *partial, *strict);
                let req = BookRequest {
                    event_id: e,
                    user_id: users[*user],
                    seats: *seats,
                    seat_numbers: numbers.clone(),
                    accept_partial: *partial,
                    strict_seats: *strict,
                    ..Default::default()
                };
                let got = match en.book(req).await {
                    Ok(b) if b.waiting_number != m.told => {
                        return Err(format!("step {step} {op:?}: told waiting number {:?}, model {:?}", b.waiting_number, m.told));
                    }
                    got => got.map(|b| ids.push(b.id)).map_err(ErrKind::from),
                };
                (want, got)
            }
            Op::Cancel { booking } => {
                if ids.is_empty() {
                    continue;
                }
                let b = booking % ids.len();
                (m.cancel(b), en.cancel(ids[b], users[m.bookings[b].user], None).await.map(drop).map_err(ErrKind::from))
            }
            Op::CancelSeats { booking, own, extra } => {
                if ids.is_empty() {
                    continue;
                }
                let b = booking % ids.len();
                let mut list: Vec<SeatNo> =
                    m.bookings[b].seats.iter().enumerate().filter(|(i, _)| own & (1 << (i % 8)) != 0).map(|(_, &s)| s).collect();
                if m.bookings[b].status != BookingStatus::Confirmed {
                    list.clear();
                }
                list.extend(extra);
                let user = users[m.bookings[b].user];
                (m.cancel_seats(b, &list), en.cancel_seats(ids[b], user, &list, None).await.map(drop).map_err(ErrKind::from))
            }
            Op::Resize { capacity } => {
                let want = m.resize(*capacity);
                let patch = EventPatch { capacity: Some(*capacity), ..Default::default() };
                (want, en.update_event(e, patch).await.map(drop).map_err(ErrKind::from))
            }
            Op::Hold { user, seats, numbers, ttl_s } => {
                let want = m.hold(*user, *seats, numbers, *ttl_s);
                let req =
                    HoldRequest { event_id: e, user_id: users[*user], seats: *seats, seat_numbers: numbers.clone(), ttl_ms: ttl_s * 1000 };
                match (want, en.hold(req).await) {
                    (Ok((_, seats)), Ok(hold)) => {
                        if hold.seat_numbers != seats {
                            return Err(format!("step {step} {op:?}: hold seats {:?}, model {seats:?}", hold.seat_numbers));
                        }
                        let expires_ms = m.now_ms + *ttl_s as i64 * 1000;
                        m.holds.push(MHold { user: *user, seats, expires_ms, id: hold.id, live: true });
                        (Ok(()), Ok(()))
                    }
                    (want, got) => (want.map(drop), got.map(drop).map_err(ErrKind::from)),
                }
            }
            Op::ReleaseHold { hold, owner } => {
                if m.holds.is_empty() {
                    continue;
                }
                let i = hold % m.holds.len();
                let user = if *owner { users[m.holds[i].user] } else { UserId::new() };
                (m.release(i, *owner), en.release_hold(m.holds[i].id, user).await.map(drop).map_err(ErrKind::from))
            }
            Op::BookHold { hold, owner } => {
                if m.holds.is_empty() {
                    continue;
                }
                let i = hold % m.holds.len();
                let user = if *owner { users[m.holds[i].user] } else { UserId::new() };
                let want = m.book_hold(i, *owner);
                let req = BookRequest { event_id: e, user_id: user, hold_id: Some(m.holds[i].id), ..Default::default() };
                (want, en.book(req).await.map(|b| ids.push(b.id)).map_err(ErrKind::from))
            }
            Op::Advance { secs } => {
                m.now_ms += *secs as i64 * 1000;
                h.clock.set(start + chrono::Duration::milliseconds(m.now_ms));
                m.expire();
                (Ok(()), en.expire_due().await.map(drop).map_err(ErrKind::from))
            }
            Op::CancelEvent => (m.cancel_event(), en.cancel_event(e).await.map(drop).map_err(ErrKind::from)),
            Op::Accept { booking } => {
                if ids.is_empty() {
                    continue;
                }
                let b = booking % ids.len();
                (m.accept(b), en.accept_offer(ids[b]).await.map(drop).map_err(ErrKind::from))
            }
            Op::Decline { booking } => {
                if ids.is_empty() {
                    continue;
                }
                let b = booking % ids.len();
                (m.decline(b), en.decline_offer(ids[b]).await.map(drop).map_err(ErrKind::from))
            }
        };
        let at = |what: String| format!("step {step} {op:?}: {what}");
        if want != got {
            return Err(at(format!("model says {want:?}, engine says {got:?}")));
        }
        if ids.len() != m.bookings.len() {
            return Err(at(format!("{} bookings in the engine, {} in the model", ids.len(), m.bookings.len())));
        }
        for (i, id) in ids.iter().enumerate() {
            let b = en.booking(*id).await.map_err(|e| at(e.to_string()))?;
            let mb = &m.bookings[i];
            let place = m.queue.iter().position(|&q| q == i).map(|p| p as u32 + 1);
            if b.waiting_number != place {
                return Err(at(format!("booking {i}: waiting number {:?}, model {place:?}", b.waiting_number)));
            }
            let offer_expires_at = mb.offer_expires_ms.map(|ms| start + chrono::Duration::milliseconds(ms));
            if b.offer_expires_at != offer_expires_at {
                return Err(at(format!("booking {i}: offer expires at {:?}, model {offer_expires_at:?}", b.offer_expires_at)));
            }
            if (b.status, &b.seat_numbers, b.seats_requested) != (mb.status, &mb.seats, mb.requested) {
                return Err(at(format!(
                    "booking {i}: engine {:?} {:?} of {}, model {:?} {:?} of {}",
                    b.status, b.seat_numbers, b.seats_requested, mb.status, mb.seats, mb.requested
                )));
            }
        }
        let queue: Vec<BookingId> = en.waitlist(e, 0, 0).await.map_err(|e| at(e.to_string()))?.iter().map(|b| b.id).collect();
        let model_queue: Vec<BookingId> = m.queue.iter().map(|&b| ids[b]).collect();
        if queue != model_queue {
            return Err(at(format!("waitlist {queue:?}, model {model_queue:?}")));
        }
        let map = en.seat_map(e).await.map_err(|e| at(e.to_string()))?;
        let mut held: Vec<SeatNo> = m.held().collect();
        held.sort_unstable();
        let booked: Vec<SeatNo> = m.booked.iter().copied().collect();
        if (map.total, &map.taken, &map.held) != (m.capacity, &booked, &held) {
            return Err(at(format!("seat map {map:?}, model booked {booked:?} held {held:?} of {}", m.capacity)));
        }
        // Only this case's users: a store shared by several cases may relay others' too.
        let mut got_notes: Vec<(UserId, NotificationKind, u32)> =
            h.delivered().await.into_iter().filter(|n| users.contains(&n.user_id)).map(|n| (n.user_id, n.kind, n.seats)).collect();
        let mut want_notes: Vec<(UserId, NotificationKind, u32)> = m.notes.iter().map(|&(u, k, s)| (users[u], k, s)).collect();
        got_notes.sort();
        want_notes.sort();
        if got_notes != want_notes {
            return Err(at(format!("notifications {got_notes:?}, model {want_notes:?}")));
        }
        invariants::check(en, e).await.map_err(at)?;
    }
    for (i, id) in ids.iter().enumerate() {
        let actions: Vec<HistoryAction> = en.history(*id).await.map_err(|e| e.to_string())?.iter().map(|h| h.action).collect();
        if actions != m.bookings[i].history {
            return Err(format!("booking {i} history {actions:?}, model {:?}", m.bookings[i].history));
        }
    }
    Ok(())
}

/// Runs `cases` generated cases of at most `ops_max` operations each on one harness from
/// `make` (cases run one after another; each has its own organization, event and users),
/// on the model and on the harness's engine. Panics with the smallest failing case found.
/// Failures are kept beside `source_file` (`*.proptest-regressions`) and replayed first.
/// Returns at once when `make` gives no harness (the backend is not configured).
pub fn check<F, Fut>(make: F, ops_max: usize, cases_max: u32, source_file: &'static str)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future,
    Fut::Output: crate::testkit::MaybeHarness,
{
    use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let Some(harness) = crate::testkit::MaybeHarness::get(rt.block_on(make())) else { return };
    let mut runner = TestRunner::new(Config {
        cases: cases_max,
        max_shrink_iters: 2_000,
        source_file: Some(source_file),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..Config::default()
    });
    let result = runner.run(&cases(ops_max), |case| rt.block_on(run(&harness, &case)).map_err(TestCaseError::fail));
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Expands to the model test: [`check`] with `cases` cases (or as many as the environment
/// variable `cases_env` says, for a longer soak) of at most `ops_max` operations, on a
/// harness from `$make` (as for [`conformance_tests!`](crate::conformance_tests)).
///
/// ```ignore
/// happening_core::model_tests!(|| async { Harness::in_memory(0) }, ops_max = 60, cases = 5_000, cases_env = "PROPTEST_CASES");
/// ```
#[macro_export]
macro_rules! model_tests {
    ($make:expr, ops_max = $ops:expr, cases = $cases:expr, cases_env = $env:literal) => {
        #[test]
        fn engine_agrees_with_model() {
            let cases: u32 = std::env::var($env).ok().and_then(|v| v.parse().ok()).unwrap_or($cases);
            $crate::testkit::model::check($make, $ops, cases, file!());
        }
    };
}
