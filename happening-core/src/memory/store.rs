use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::effects;
use crate::error::{Conflict, Entity};
use crate::ids::*;
use crate::ports::{Directory, SeatStore, StoreError};
use crate::seats::SeatSet;

use super::directory::DirectoryData;
use super::outbox::Outbox;
use super::sharded::{IdMap, Sharded};

/// In-memory [`SeatStore`] and [`Directory`](crate::ports::Directory).
///
/// Lock order (never taken the other way): an event's ledger, then the idempotency shard,
/// then any other index shard or the outbox, one at a time.
#[derive(Clone, Default)]
pub struct MemoryStore {
    pub(super) inner: Arc<Inner>,
}

#[derive(Default)]
pub(super) struct Inner {
    events: RwLock<IdMap<EventId, Arc<Mutex<Ledger>>>>,
    booking_event: Sharded<BookingId, EventId>,
    hold_event: Sharded<HoldId, EventId>,
    hold_expiry: Mutex<BTreeSet<(DateTime<Utc>, HoldId)>>,
    offer_expiry: Mutex<BTreeSet<(DateTime<Utc>, BookingId)>>,
    user_bookings: Sharded<UserId, Vec<BookingId>>,
    idempotency: Sharded<UserId, std::collections::HashMap<String, IdempotencyRecord>>,
    pub(super) outbox: Mutex<Outbox>,
    queue_seq: AtomicU64,
    pub(super) directory: Mutex<DirectoryData>,
}

/// Everything of one event, under one lock.
struct Ledger {
    event: Event,
    /// Seats of confirmed and offered bookings and of live holds.
    seats: SeatSet,
    /// Seats of live holds and open offers.
    held: u32,
    bookings: IdMap<BookingId, Record>,
    /// Waiting bookings by `queue_seq`.
    waiting: BTreeMap<u64, BookingId>,
    holds: IdMap<HoldId, Hold>,
    /// Open offers.
    offers: BTreeSet<BookingId>,
}

struct Record {
    booking: Booking,
    history: Vec<HistoryEntry>,
}

impl Ledger {
    fn view(&self) -> EventView {
        EventView {
            event: self.event.clone(),
            booked: self.seats.occupied() - self.held,
            held: self.held,
            waiting: self.waiting.len() as u32,
        }
    }

    fn live(&self) -> Result<(), StoreError> {
        match self.event.status {
            EventStatus::Cancelled => Err(StoreError::conflict(Conflict::EventCancelled)),
            EventStatus::Upcoming => Ok(()),
        }
    }

    fn record(&mut self, id: BookingId) -> Result<&mut Record, StoreError> {
        self.bookings.get_mut(&id).ok_or(StoreError::NotFound(Entity::Booking))
    }

    /// The seats of an open offer stop being held (they are booked now, or freed).
    fn close_offer(&mut self, id: BookingId, seats: u32) {
        self.offers.remove(&id);
        self.held -= seats;
    }

    /// Occupies `wanted` if all are free, else (unless `strict`) the `n` lowest free seats.
    fn allocate(&mut self, n: u32, wanted: &[SeatNo], strict: bool) -> Result<Vec<SeatNo>, StoreError> {
        if !wanted.is_empty() {
            let taken = self.seats.taken_of(wanted);
            if taken.is_empty() {
                let mut seats = wanted.to_vec();
                seats.sort_unstable();
                self.seats.occupy(&seats);
                return Ok(seats);
            }
            if strict {
                return Err(StoreError::Conflict { reason: Conflict::SeatsTaken, seats: taken });
            }
        }
        self.seats.occupy_lowest(n).ok_or(StoreError::Short { free: self.seats.free() })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("store lock poisoned")
}

impl MemoryStore {
    /// An empty store: no users, organizations or events. Nothing outlives the process.
    pub fn new() -> Self {
        Self::default()
    }

    fn ledger(&self, id: EventId) -> Result<Arc<Mutex<Ledger>>, StoreError> {
        self.inner.events.read().expect("events lock poisoned").get(&id).cloned().ok_or(StoreError::NotFound(Entity::Event))
    }

    fn ledger_of_booking(&self, id: BookingId) -> Result<Arc<Mutex<Ledger>>, StoreError> {
        let event = self.inner.booking_event.get_cloned(&id).ok_or(StoreError::NotFound(Entity::Booking))?;
        self.ledger(event).map_err(|_| StoreError::NotFound(Entity::Booking))
    }

    fn ledger_of_hold(&self, id: HoldId) -> Result<Arc<Mutex<Ledger>>, StoreError> {
        let event = self.inner.hold_event.get_cloned(&id).ok_or(StoreError::NotFound(Entity::Hold))?;
        self.ledger(event).map_err(|_| StoreError::NotFound(Entity::Hold))
    }

    /// Binds an idempotency key, atomically with the caller's change: call with the ledger
    /// locked and before changing anything, then `f` makes the change; the key is bound only
    /// if `f` succeeds.
    fn with_key<T>(
        &self,
        key: Option<&IdempotencyKey>,
        booking: BookingId,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(key) = key else { return f() };
        let mut shard = self.inner.idempotency.shard(&key.user_id);
        let keys = shard.entry(key.user_id).or_default();
        if let Some(rec) = keys.get(&key.key) {
            return Err(StoreError::IdempotencyKeyTaken(rec.clone()));
        }
        let out = f()?;
        keys.insert(key.key.clone(), IdempotencyRecord { fingerprint: key.fingerprint, booking_id: booking });
        Ok(out)
    }

    /// Indexes a new booking and writes its effects.
    fn record_new(&self, l: &mut Ledger, booking: Booking, effects: (HistoryEntry, Notification)) -> Booking {
        let (entry, note) = effects;
        self.inner.booking_event.insert(booking.id, booking.event_id);
        self.inner.user_bookings.shard(&booking.user_id).entry(booking.user_id).or_default().push(booking.id);
        lock(&self.inner.outbox).push(note);
        l.bookings.insert(booking.id, Record { booking: booking.clone(), history: vec![entry] });
        booking
    }

    fn notify(&self, note: Notification) {
        lock(&self.inner.outbox).push(note);
    }

    /// Ends the open offer `id` (which must be one) as `status`, freeing its seats, with
    /// the effects `effects` builds. The caller holds the ledger's lock.
    fn end_offer(
        &self,
        l: &mut Ledger,
        id: BookingId,
        status: BookingStatus,
        now: DateTime<Utc>,
        effects: fn(&Booking, DateTime<Utc>) -> (HistoryEntry, Notification),
    ) -> Result<Cancellation, StoreError> {
        let rec = l.record(id)?;
        debug_assert_eq!(rec.booking.status, BookingStatus::Offered);
        rec.booking.status = status;
        rec.booking.updated_at = now;
        let (entry, note) = effects(&rec.booking, now);
        rec.history.push(entry);
        let booking = rec.booking.clone();
        let freed = booking.seat_numbers.clone();
        l.close_offer(id, freed.len() as u32);
        l.seats.release(&freed);
        lock(&self.inner.offer_expiry).remove(&(booking.offer_expires_at.expect("an offer has an expiry"), id));
        self.notify(note);
        Ok(Cancellation { booking, previous: BookingStatus::Offered, freed })
    }

    fn drop_hold_index(&self, hold: &Hold) {
        self.inner.hold_event.remove(&hold.id);
        lock(&self.inner.hold_expiry).remove(&(hold.expires_at, hold.id));
    }
}

#[async_trait]
impl SeatStore for MemoryStore {
    async fn insert_event(&self, event: &Event) -> Result<EventView, StoreError> {
        let ledger = Ledger {
            event: event.clone(),
            seats: SeatSet::new(event.capacity),
            held: 0,
            bookings: IdMap::default(),
            waiting: BTreeMap::new(),
            holds: IdMap::default(),
            offers: BTreeSet::new(),
        };
        let view = ledger.view();
        self.inner.events.write().expect("events lock poisoned").insert(event.id, Arc::new(Mutex::new(ledger)));
        Ok(view)
    }

    async fn event(&self, id: EventId) -> Result<Event, StoreError> {
        let ledger = self.ledger(id)?;
        let event = lock(&ledger).event.clone();
        Ok(event)
    }

    async fn event_for(&self, id: EventId, user: UserId) -> Result<(Event, Option<Role>), StoreError> {
        let event = self.event(id).await?;
        let role = self.role(event.org_id, user).await?;
        Ok((event, role))
    }

    async fn event_view(&self, id: EventId) -> Result<EventView, StoreError> {
        let ledger = self.ledger(id)?;
        let view = lock(&ledger).view();
        Ok(view)
    }

    async fn live_event_ids(&self) -> Result<Vec<EventId>, StoreError> {
        let ledgers: Vec<_> = self.inner.events.read().expect("events lock poisoned").values().cloned().collect();
        Ok(ledgers.iter().map(|l| lock(l).event.clone()).filter(|e| e.status != EventStatus::Cancelled).map(|e| e.id).collect())
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventView>, StoreError> {
        let ledgers: Vec<_> = self.inner.events.read().expect("events lock poisoned").values().cloned().collect();
        let mut views: Vec<EventView> =
            ledgers.iter().map(|l| lock(l).view()).filter(|v| filter.org_ids.contains(&v.event.org_id)).collect();
        views.sort_by(|a, b| b.event.event_date.cmp(&a.event.event_date).then(a.event.id.cmp(&b.event.id)));
        Ok(views.into_iter().skip(filter.offset as usize).take(filter.limit as usize).collect())
    }

    async fn update_event(&self, id: EventId, patch: &EventPatch, now: DateTime<Utc>) -> Result<EventView, StoreError> {
        let ledger = self.ledger(id)?;
        let mut l = lock(&ledger);
        l.live()?;
        if let Some(capacity) = patch.capacity {
            let highest = l.seats.highest_occupied();
            if capacity < highest {
                return Err(StoreError::conflict(Conflict::CapacityBelowTakenSeat { highest }));
            }
            l.seats.resize(capacity);
            l.event.capacity = capacity;
        }
        patch.apply(&mut l.event, now);
        if patch.notifies_bookings() {
            for rec in l.bookings.values().filter(|r| !r.booking.status.is_final()) {
                self.notify(effects::event_updated(&rec.booking, now));
            }
        }
        Ok(l.view())
    }

    async fn cancel_event(&self, id: EventId, now: DateTime<Utc>) -> Result<Vec<Booking>, StoreError> {
        let ledger = self.ledger(id)?;
        let mut l = lock(&ledger);
        l.live()?;
        let mut cancelled = Vec::new();
        let mut ended_offers = Vec::new();
        for rec in l.bookings.values_mut().filter(|r| !r.booking.status.is_final()) {
            let freed = match rec.booking.status {
                BookingStatus::Confirmed => rec.booking.seat_numbers.clone(),
                BookingStatus::Offered => {
                    ended_offers.push((rec.booking.offer_expires_at.expect("an offer has an expiry"), rec.booking.id));
                    rec.booking.seat_numbers.clone()
                }
                _ => Vec::new(),
            };
            rec.booking.status = BookingStatus::Cancelled;
            rec.booking.queue_seq = None;
            rec.booking.updated_at = now;
            let (entry, note) = effects::event_cancelled(&rec.booking, &freed, now);
            rec.history.push(entry);
            self.notify(note);
            cancelled.push(rec.booking.clone());
        }
        for hold in std::mem::take(&mut l.holds).into_values() {
            self.drop_hold_index(&hold);
            self.notify(effects::hold_event_cancelled(&hold, now));
        }
        let mut expiry = lock(&self.inner.offer_expiry);
        for due in ended_offers {
            expiry.remove(&due);
        }
        drop(expiry);
        l.offers.clear();
        l.waiting.clear();
        l.held = 0;
        l.seats = SeatSet::new(l.event.capacity);
        l.event.status = EventStatus::Cancelled;
        l.event.updated_at = now;
        Ok(cancelled)
    }

    async fn delete_event(&self, id: EventId) -> Result<(), StoreError> {
        let ledger = self.inner.events.write().expect("events lock poisoned").remove(&id).ok_or(StoreError::NotFound(Entity::Event))?;
        let l = lock(&ledger);
        for rec in l.bookings.values() {
            self.inner.booking_event.remove(&rec.booking.id);
            if let Some(ids) = self.inner.user_bookings.shard(&rec.booking.user_id).get_mut(&rec.booking.user_id) {
                ids.retain(|b| *b != rec.booking.id);
            }
        }
        for hold in l.holds.values() {
            self.drop_hold_index(hold);
        }
        let mut expiry = lock(&self.inner.offer_expiry);
        for id in &l.offers {
            expiry.remove(&(l.bookings[id].booking.offer_expires_at.expect("an offer has an expiry"), *id));
        }
        Ok(())
    }

    async fn seat_map(&self, id: EventId) -> Result<SeatMap, StoreError> {
        let ledger = self.ledger(id)?;
        let l = lock(&ledger);
        let offered = l.offers.iter().flat_map(|id| l.bookings[id].booking.seat_numbers.iter().copied());
        let held: BTreeSet<SeatNo> = l.holds.values().flat_map(|h| h.seat_numbers.iter().copied()).chain(offered).collect();
        let taken = l.seats.iter().filter(|s| !held.contains(s)).collect();
        Ok(SeatMap { total: l.event.capacity, taken, held: held.into_iter().collect() })
    }

    async fn confirm(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let ledger = self.ledger(new.event_id)?;
        let mut l = lock(&ledger);
        l.live()?;
        let booking = self.with_key(new.idempotency.as_ref(), new.id, || {
            if new.behind_queue && !l.waiting.is_empty() {
                return Err(StoreError::Short { free: l.seats.free() });
            }
            let seats = l.allocate(new.seats, &new.seat_numbers, new.strict_seats)?;
            Ok(Booking::new(new, BookingStatus::Confirmed, seats, now))
        })?;
        let effects = effects::created(&booking, now);
        Ok(self.record_new(&mut l, booking, effects))
    }

    async fn enqueue(&self, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let ledger = self.ledger(new.event_id)?;
        let mut l = lock(&ledger);
        l.live()?;
        let mut booking =
            self.with_key(new.idempotency.as_ref(), new.id, || Ok(Booking::new(new, BookingStatus::Waiting, Vec::new(), now)))?;
        // Under the event's lock: the place and the number are one step.
        let seq = self.inner.queue_seq.fetch_add(1, Ordering::Relaxed) + 1;
        booking.queue_seq = Some(seq);
        l.waiting.insert(seq, booking.id);
        let number = l.waiting.len() as u32;
        let effects = effects::created(&booking, now);
        let booking = self.record_new(&mut l, booking, effects);
        Ok(Booking { waiting_number: Some(number), ..booking })
    }

    async fn promote(&self, id: BookingId, seats: u32, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let ledger = self.ledger_of_booking(id)?;
        let mut l = lock(&ledger);
        let status = l.record(id)?.booking.status;
        if status != BookingStatus::Waiting {
            return Err(StoreError::NotWaiting(status));
        }
        let got = l.seats.occupy_lowest(seats).ok_or(StoreError::Short { free: l.seats.free() })?;
        let offer_ttl = l.event.offer_ttl_seconds;
        let rec = l.record(id)?;
        let seq = rec.booking.queue_seq.take().expect("waiting booking has a queue_seq");
        rec.booking.seat_numbers = got;
        rec.booking.updated_at = now;
        let (entry, note) = match offer_ttl {
            None => {
                rec.booking.status = BookingStatus::Confirmed;
                effects::promoted(&rec.booking, now)
            }
            Some(ttl) => {
                rec.booking.status = BookingStatus::Offered;
                rec.booking.offer_expires_at = Some(now + chrono::Duration::seconds(ttl.into()));
                effects::offered(&rec.booking, now)
            }
        };
        rec.history.push(entry);
        let booking = rec.booking.clone();
        l.waiting.remove(&seq);
        if let Some(until) = booking.offer_expires_at.filter(|_| booking.status == BookingStatus::Offered) {
            l.offers.insert(id);
            l.held += booking.seat_numbers.len() as u32;
            lock(&self.inner.offer_expiry).insert((until, id));
        }
        self.notify(note);
        Ok(booking)
    }

    async fn accept_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let ledger = self.ledger_of_booking(id)?;
        let mut l = lock(&ledger);
        l.live()?;
        let rec = l.record(id)?;
        match (rec.booking.status, rec.booking.offer_expires_at) {
            (BookingStatus::Offered, Some(until)) if until > now => {}
            (BookingStatus::Offered, _) => return Err(StoreError::conflict(Conflict::OfferExpired)),
            (status, _) => return Err(StoreError::not_offered(status)),
        }
        rec.booking.status = BookingStatus::Confirmed;
        rec.booking.updated_at = now;
        let (entry, note) = effects::accepted(&rec.booking, now);
        rec.history.push(entry);
        let booking = rec.booking.clone();
        l.close_offer(id, booking.seat_numbers.len() as u32);
        lock(&self.inner.offer_expiry).remove(&(booking.offer_expires_at.expect("an offer has an expiry"), id));
        self.notify(note);
        Ok(booking)
    }

    async fn decline_offer(&self, id: BookingId, now: DateTime<Utc>) -> Result<Cancellation, StoreError> {
        let ledger = self.ledger_of_booking(id)?;
        let mut l = lock(&ledger);
        l.live()?;
        match l.record(id)?.booking.status {
            BookingStatus::Offered => self.end_offer(&mut l, id, BookingStatus::Declined, now, effects::declined),
            status => Err(StoreError::not_offered(status)),
        }
    }

    async fn expire_offers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Booking>, StoreError> {
        let due: Vec<BookingId> = {
            let expiry = lock(&self.inner.offer_expiry);
            expiry.iter().take_while(|(at, _)| *at <= now).take(limit as usize).map(|(_, id)| *id).collect()
        };
        let mut expired = Vec::with_capacity(due.len());
        for id in due {
            let Ok(ledger) = self.ledger_of_booking(id) else { continue };
            let mut l = lock(&ledger);
            // Accepted or declined since it was read: not this step's to end.
            if !l.offers.contains(&id) {
                continue;
            }
            expired.push(self.end_offer(&mut l, id, BookingStatus::Expired, now, effects::offer_expired)?.booking);
        }
        Ok(expired)
    }

    async fn cancel(&self, id: BookingId, key: Option<&IdempotencyKey>, now: DateTime<Utc>) -> Result<Cancellation, StoreError> {
        let ledger = self.ledger_of_booking(id)?;
        let mut l = lock(&ledger);
        l.live()?;
        // The key is checked first, so a repeated cancel replays instead of conflicting.
        let previous = self.with_key(key, id, || match l.record(id)?.booking.status {
            status if status.is_final() => Err(StoreError::ended(status)),
            status => Ok(status),
        })?;
        let rec = l.record(id)?;
        let freed = if previous.owns_seats() { rec.booking.seat_numbers.clone() } else { Vec::new() };
        let offer_until = rec.booking.offer_expires_at.filter(|_| previous == BookingStatus::Offered);
        let seq = rec.booking.queue_seq.take();
        rec.booking.status = BookingStatus::Cancelled;
        rec.booking.updated_at = now;
        let (entry, note) = effects::cancelled(&rec.booking, &freed, now);
        rec.history.push(entry);
        let booking = rec.booking.clone();
        l.seats.release(&freed);
        if let Some(seq) = seq {
            l.waiting.remove(&seq);
        }
        if let Some(until) = offer_until {
            l.close_offer(id, freed.len() as u32);
            lock(&self.inner.offer_expiry).remove(&(until, id));
        }
        self.notify(note);
        Ok(Cancellation { booking, previous, freed })
    }

    async fn cancel_seats(
        &self,
        id: BookingId,
        seats: &[SeatNo],
        key: Option<&IdempotencyKey>,
        now: DateTime<Utc>,
    ) -> Result<Cancellation, StoreError> {
        let ledger = self.ledger_of_booking(id)?;
        let mut l = lock(&ledger);
        l.live()?;
        self.with_key(key, id, || {
            let rec = l.record(id)?;
            match rec.booking.status {
                BookingStatus::Confirmed => {}
                status if status.is_final() => return Err(StoreError::ended(status)),
                _ => return Err(StoreError::conflict(Conflict::BookingNotConfirmed)),
            }
            let strangers: Vec<SeatNo> = seats.iter().copied().filter(|s| !rec.booking.seat_numbers.contains(s)).collect();
            if !strangers.is_empty() {
                return Err(StoreError::Conflict { reason: Conflict::SeatsNotInBooking, seats: strangers });
            }
            Ok(())
        })?;
        let rec = l.record(id)?;
        let mut freed = seats.to_vec();
        freed.sort_unstable();
        rec.booking.seat_numbers.retain(|s| freed.binary_search(s).is_err());
        rec.booking.updated_at = now;
        let (entry, note) = if rec.booking.seat_numbers.is_empty() {
            rec.booking.status = BookingStatus::Cancelled;
            rec.booking.seat_numbers = freed.clone();
            effects::cancelled(&rec.booking, &freed, now)
        } else {
            effects::seats_cancelled(&rec.booking, &freed, now)
        };
        rec.history.push(entry);
        let booking = rec.booking.clone();
        l.seats.release(&freed);
        self.notify(note);
        Ok(Cancellation { booking, previous: BookingStatus::Confirmed, freed })
    }

    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError> {
        let ledger = self.ledger_of_booking(id)?;
        let mut l = lock(&ledger);
        Ok(l.record(id)?.booking.clone())
    }

    async fn user_bookings(&self, user: UserId, orgs: Option<&[OrgId]>, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError> {
        let ids = self.inner.user_bookings.get_cloned(&user).unwrap_or_default();
        let mut out = Vec::with_capacity(ids.len().min(limit as usize));
        let mut skip = offset as usize;
        for id in ids.into_iter().rev() {
            if out.len() >= limit as usize {
                break;
            }
            // Bookings of deleted events are gone, as in PostgreSQL: they take no place.
            let Ok(ledger) = self.ledger_of_booking(id) else { continue };
            let l = lock(&ledger);
            if orgs.is_some_and(|orgs| !orgs.contains(&l.event.org_id)) {
                continue;
            }
            let Some(record) = l.bookings.get(&id) else { continue };
            if skip > 0 {
                skip -= 1;
            } else {
                out.push(record.booking.clone());
            }
        }
        Ok(out)
    }

    async fn waiting(&self, event: EventId, limit: u32, offset: u32) -> Result<Vec<Booking>, StoreError> {
        let ledger = self.ledger(event)?;
        let l = lock(&ledger);
        Ok(l.waiting.values().skip(offset as usize).take(limit as usize).map(|id| l.bookings[id].booking.clone()).collect())
    }

    async fn event_bookings(&self, event: EventId) -> Result<Vec<Booking>, StoreError> {
        let ledger = self.ledger(event)?;
        let l = lock(&ledger);
        let mut all: Vec<Booking> = l.bookings.values().map(|r| r.booking.clone()).collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    async fn event_bookings_page(
        &self,
        event: EventId,
        status: Option<BookingStatus>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Booking>, StoreError> {
        let ledger = self.ledger(event)?;
        let l = lock(&ledger);
        let mut kept: Vec<&Booking> = l.bookings.values().map(|r| &r.booking).filter(|b| status.is_none_or(|s| b.status == s)).collect();
        kept.sort_unstable_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(kept.into_iter().skip(offset as usize).take(limit as usize).cloned().collect())
    }

    async fn history(&self, booking: BookingId) -> Result<Vec<HistoryEntry>, StoreError> {
        let ledger = self.ledger_of_booking(booking)?;
        let mut l = lock(&ledger);
        Ok(l.record(booking)?.history.clone())
    }

    async fn event_booking_notifications(&self, event: EventId) -> Result<Vec<Notification>, StoreError> {
        Ok(lock(&self.inner.outbox).of_event_bookings(event))
    }

    async fn idempotency(&self, user: UserId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.inner.idempotency.shard(&user).get(&user).and_then(|keys| keys.get(key).cloned()))
    }

    async fn create_hold(&self, new: &NewHold, now: DateTime<Utc>) -> Result<Hold, StoreError> {
        let ledger = self.ledger(new.event_id)?;
        let mut l = lock(&ledger);
        l.live()?;
        let seats = l.allocate(new.seats, &new.seat_numbers, true)?;
        let hold = Hold::new(new, seats, now);
        l.held += hold.seat_numbers.len() as u32;
        l.holds.insert(hold.id, hold.clone());
        self.inner.hold_event.insert(hold.id, hold.event_id);
        lock(&self.inner.hold_expiry).insert((hold.expires_at, hold.id));
        Ok(hold)
    }

    async fn hold(&self, id: HoldId) -> Result<Hold, StoreError> {
        let ledger = self.ledger_of_hold(id)?;
        let l = lock(&ledger);
        l.holds.get(&id).cloned().ok_or(StoreError::NotFound(Entity::Hold))
    }

    async fn release_hold(&self, id: HoldId) -> Result<Hold, StoreError> {
        let ledger = self.ledger_of_hold(id)?;
        let mut l = lock(&ledger);
        let hold = l.holds.remove(&id).ok_or(StoreError::NotFound(Entity::Hold))?;
        l.seats.release(&hold.seat_numbers);
        l.held -= hold.seat_numbers.len() as u32;
        self.drop_hold_index(&hold);
        Ok(hold)
    }

    async fn convert_hold(&self, hold_id: HoldId, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, StoreError> {
        let ledger = self.ledger_of_hold(hold_id)?;
        let mut l = lock(&ledger);
        l.live()?;
        let hold = l.holds.get(&hold_id).cloned().ok_or(StoreError::NotFound(Entity::Hold))?;
        if hold.expires_at <= now {
            return Err(StoreError::conflict(Conflict::HoldExpired));
        }
        let mut booking = self.with_key(new.idempotency.as_ref(), new.id, || {
            Ok(Booking::new(new, BookingStatus::Confirmed, hold.seat_numbers.clone(), now))
        })?;
        booking.seats_requested = hold.seat_numbers.len() as u32;
        booking.hold_id = Some(hold_id);
        l.holds.remove(&hold_id);
        l.held -= hold.seat_numbers.len() as u32;
        self.drop_hold_index(&hold);
        let effects = effects::created(&booking, now);
        Ok(self.record_new(&mut l, booking, effects))
    }

    async fn expire_holds(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Hold>, StoreError> {
        let due: Vec<HoldId> = {
            let expiry = lock(&self.inner.hold_expiry);
            expiry.iter().take_while(|(at, _)| *at <= now).take(limit as usize).map(|(_, id)| *id).collect()
        };
        let mut expired = Vec::with_capacity(due.len());
        for id in due {
            let Ok(ledger) = self.ledger_of_hold(id) else { continue };
            let mut l = lock(&ledger);
            match l.holds.get(&id) {
                Some(h) if h.expires_at <= now => {}
                _ => continue,
            }
            let hold = l.holds.remove(&id).expect("checked above");
            l.seats.release(&hold.seat_numbers);
            l.held -= hold.seat_numbers.len() as u32;
            self.drop_hold_index(&hold);
            self.notify(effects::hold_expired(&hold, now));
            expired.push(hold);
        }
        Ok(expired)
    }

    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError> {
        lock(&self.inner.outbox).get(id).ok_or(StoreError::NotFound(Entity::Notification))
    }

    async fn notifications(&self, user: UserId, limit: u32, offset: u32) -> Result<Vec<Notification>, StoreError> {
        Ok(lock(&self.inner.outbox).of_user(user, limit as usize, offset as usize))
    }

    async fn mark_read(&self, user: UserId, id: NotificationId) -> Result<(), StoreError> {
        if lock(&self.inner.outbox).mark_read(user, id) {
            Ok(())
        } else {
            Err(StoreError::NotFound(Entity::Notification))
        }
    }

    async fn pending_notifications(&self, limit: u32) -> Result<Vec<Notification>, StoreError> {
        Ok(lock(&self.inner.outbox).pending(limit as usize))
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        Ok(lock(&self.inner.outbox).depth())
    }

    async fn claim_pending(&self, limit: u32, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Vec<Notification>, StoreError> {
        Ok(lock(&self.inner.outbox).claim(limit as usize, now, lease_until))
    }

    async fn release_claims(&self, ids: &[NotificationId]) -> Result<(), StoreError> {
        lock(&self.inner.outbox).release(ids);
        Ok(())
    }

    async fn set_delivery(&self, ids: &[NotificationId], status: DeliveryStatus) -> Result<(), StoreError> {
        lock(&self.inner.outbox).set_delivery(ids, status);
        Ok(())
    }
}
