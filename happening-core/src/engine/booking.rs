//! Book, cancel, cancel seats, idempotent replays.

use crate::domain::*;
use crate::error::{Conflict, Entity, Error, Result};
use crate::ids::{BookingId, EventId, HoldId, OrgId, SeatNo, UserId};
use crate::ports::{StoreError, Take, TakeRequest, WaitEntry};

use super::validate::{self, Fingerprint};
use super::Engine;

/// A request to book seats of an event for a user.
#[derive(Debug, Clone, Default)]
pub struct BookRequest {
    /// The event to book.
    pub event_id: EventId,
    /// The person the seats are for (with [`Engine::book_as`], a member of the event's
    /// organization).
    pub user_id: UserId,
    /// How many seats; defaults to the number of `seat_numbers`, or 1.
    pub seats: Option<u32>,
    /// Seats wanted by number; if any is taken the lowest free seats are given instead
    /// (or, with `strict_seats`, a conflict naming the taken ones).
    pub seat_numbers: Option<Vec<SeatNo>>,
    /// Book the seats of this hold (only its owner may).
    pub hold_id: Option<HoldId>,
    /// Take what is free (at least one seat) instead of waiting for all.
    pub accept_partial: bool,
    /// With `seat_numbers`: a taken seat is `Conflict(SeatsTaken)` naming it, instead of
    /// the lowest free seats.
    pub strict_seats: bool,
    /// Repeating a request with the same key returns the first result; never books twice.
    pub idempotency_key: Option<String>,
}

impl BookRequest {
    fn fingerprint(&self) -> u64 {
        let mut f = Fingerprint::new("book");
        f.bytes(self.event_id.0.as_bytes()).u32(self.seats.unwrap_or(0));
        for &s in self.seat_numbers.iter().flatten() {
            f.u32(s);
        }
        f.bytes(self.hold_id.map(|h| *h.0.as_bytes()).unwrap_or_default().as_slice());
        f.u32(self.accept_partial as u32).u32(self.strict_seats as u32);
        f.finish()
    }
}

impl Engine {
    /// Books seats: confirmed if they are free (and, under `fifo` and `partial`, nobody
    /// waits), else waiting at the back of the event's waitlist.
    pub async fn book(&self, req: BookRequest) -> Result<Booking> {
        self.book_read(None, req).await
    }

    /// As [`Engine::book`], on behalf of `caller`, with the organization's rules: `caller`
    /// must be a member of the event's organization (to anyone else the event does not
    /// exist: `NotFound(Event)`); booking for another user (`req.user_id` not `caller`)
    /// needs the organizer role (`Forbidden`) and a user who is a member (`Invalid` on
    /// `user_id`); a hold of an event `caller` cannot see does not exist (`NotFound(Hold)`).
    /// The event row and the role are read once, in one store read ([`Engine::event_as`];
    /// with [`Engine::with_auth_cache`], seldom), and that row serves the booking.
    pub async fn book_as(&self, caller: UserId, req: BookRequest) -> Result<Booking> {
        let (event, _) = self.event_as(caller, req.event_id, Role::User).await?;
        if let Some(hold_id) = req.hold_id {
            // Else the hold's "only its owner" refusal would tell another organization
            // that it exists.
            if let Ok(hold) = self.get_hold(hold_id).await {
                if hold.event_id != req.event_id {
                    match self.event_as(caller, hold.event_id, Role::User).await {
                        Ok(_) => {}
                        Err(Error::NotFound(_)) => return Err(Error::NotFound(Entity::Hold)),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if req.user_id != caller {
            match self.authorize(caller, event.org_id, Role::Organizer).await {
                Ok(_) => {}
                Err(Error::Forbidden(_)) => return Err(Error::Forbidden("booking for another user needs the organizer role")),
                Err(e) => return Err(e),
            }
            self.user(req.user_id).await?;
            if self.authorize(req.user_id, event.org_id, Role::User).await.is_err() {
                return Err(Error::invalid("user_id", "not a member of the event's organization"));
            }
        }
        self.book_read(Some(event), req).await
    }

    /// As [`Engine::book`], given the event row just read (to check who may book it),
    /// which saves reading it again: a store round trip per booking. The row only validates
    /// the request; the store's atomic steps check again whatever a concurrent change could
    /// make stale (the event cancelled, its seats). `None` reads it.
    async fn book_read(&self, event: Option<Event>, req: BookRequest) -> Result<Booking> {
        let event_id = req.event_id;
        let b = self.book_now(event, req).await?;
        self.changed(event_id);
        Ok(b)
    }

    async fn book_now(&self, event: Option<Event>, req: BookRequest) -> Result<Booking> {
        let key = self.key(req.user_id, req.idempotency_key.as_deref(), || req.fingerprint())?;
        if let Some(b) = self.replay(key.as_ref(), Replay::AsCreated).await? {
            return Ok(b);
        }
        let event = match event {
            Some(e) if e.id == req.event_id => e,
            // A caller's mistake, not a client's: still an error, never a panic in a server.
            Some(_) => return Err(Error::invalid("event_id", "is not the id of the event row read for it")),
            None => self.store.event(req.event_id).await?,
        };
        if event.status == EventStatus::Cancelled {
            return Err(Error::conflict(Conflict::EventCancelled));
        }
        if let Some(hold) = req.hold_id {
            return self.book_hold(&req, hold, key).await;
        }
        let (seats, wanted) = validate::seats(req.seats, req.seat_numbers.as_deref(), event.capacity, &self.limits)?;
        let policy = event.policy;
        let min = if req.accept_partial { 1 } else { seats };
        let take = TakeRequest { want: seats, min, behind_queue: policy.newcomers_queue_behind(), waitlist_max: event.waitlist_max };
        let mut new = NewBooking {
            id: BookingId::new(),
            event_id: req.event_id,
            user_id: req.user_id,
            seats_requested: seats,
            seats,
            seat_numbers: wanted,
            strict_seats: req.strict_seats,
            idempotency: key,
            behind_queue: false,
        };
        // Seats asked by number are the counter's first (a sold-out event queues them rather
        // than naming the taken ones, which the store's step would).
        if new.seat_numbers.is_empty() && self.admission.unchecked_take(req.event_id, &take) {
            // The store checks the seats and the queue in its own step; the admission is
            // asked only if that falls short (the waitlist's cap, a partial share).
            new.behind_queue = take.behind_queue;
            if let Some(b) = self.confirm_new(&new, None).await? {
                return Ok(b);
            }
            new.behind_queue = false;
        }
        let taken = match self.take(req.event_id, take).await? {
            Take::Taken(n) => Some(n),
            Take::Short { .. } => None,
            // Turned away by the admission alone: nothing was written.
            Take::WaitlistFull => return Err(Error::conflict(Conflict::WaitlistFull)),
        };
        if let Some(n) = taken {
            new.seats = n;
            if n < seats {
                new.seat_numbers.clear();
            }
            // Short here: the counter let us through but the store has fewer seats, it
            // drifted. The store is right: queue like any short request.
            if let Some(b) = self.confirm_new(&new, Some(n)).await? {
                return Ok(b);
            }
        }
        self.enqueue(new, policy).await
    }

    /// Confirms `new` in the store; `None` if the store is short. `taken`: the seats the
    /// admission took for it, given back whatever the store's refusal.
    async fn confirm_new(&self, new: &NewBooking, taken: Option<u32>) -> Result<Option<Booking>> {
        let e = match self.store.confirm(new, self.clock.now()).await {
            Ok(b) => return Ok(Some(b)),
            Err(e) => e,
        };
        if let Some(n) = taken {
            let _ = self.derived(new.event_id, self.give(new.event_id, n).await);
        }
        match e {
            StoreError::Short { .. } => Ok(None),
            StoreError::IdempotencyKeyTaken(rec) => self.replay_record(rec, new.idempotency.as_ref(), Replay::AsCreated).await.map(Some),
            e => Err(e.into()),
        }
    }

    async fn enqueue(&self, new: NewBooking, policy: WaitlistPolicy) -> Result<Booking> {
        let b = match self.store.enqueue(&new, self.clock.now()).await {
            Ok(b) => b,
            Err(StoreError::IdempotencyKeyTaken(rec)) => return self.replay_record(rec, new.idempotency.as_ref(), Replay::AsCreated).await,
            Err(e) => return Err(e.into()),
        };
        let entry = WaitEntry { booking: b.id, seats: b.seats_requested, seq: b.queue_seq.expect("waiting booking has a seq") };
        // From here on the booking is written: failures of the queue only mark the event for
        // reconciliation (which queues it from the store), they do not fail the booking.
        let pushed = self.derived(b.event_id, self.with_admission(b.event_id, || self.admission.push(b.event_id, entry)).await);
        // Seats may have been freed between our short answer and the push, by someone who
        // then found the queue empty: promote now so that nobody waits for free seats. If
        // none were free at the push, whoever frees some will find us queued (`Pushed`).
        if pushed.is_some_and(|p| p.seats_free) && self.derived(b.event_id, self.promote(b.event_id, policy).await).unwrap_or(0) > 0 {
            return self.booking(b.id).await;
        }
        // Its number is the store's, from the step that queued it: a position read here
        // could miss a booking queued just before and still on its way to the admission.
        Ok(b)
    }

    async fn book_hold(&self, req: &BookRequest, hold_id: HoldId, key: Option<IdempotencyKey>) -> Result<Booking> {
        let hold = self.store.hold(hold_id).await?;
        if hold.user_id != req.user_id {
            return Err(Error::Forbidden("only the hold's owner may book it"));
        }
        if hold.event_id != req.event_id {
            return Err(Error::invalid("hold_id", "belongs to another event"));
        }
        let n = hold.seat_numbers.len() as u32;
        if req.seats.is_some_and(|s| s != n) {
            return Err(Error::invalid("seats", format!("the hold has {n} seats")));
        }
        if let Some(list) = &req.seat_numbers {
            let mut sorted = list.clone();
            sorted.sort_unstable();
            if sorted != hold.seat_numbers {
                return Err(Error::invalid("seat_numbers", "differ from the hold's seats"));
            }
        }
        let new = NewBooking {
            id: BookingId::new(),
            event_id: req.event_id,
            user_id: req.user_id,
            seats_requested: n,
            seats: n,
            seat_numbers: hold.seat_numbers.clone(),
            strict_seats: true,
            idempotency: key,
            behind_queue: false,
        };
        match self.store.convert_hold(hold_id, &new, self.clock.now()).await {
            Ok(b) => Ok(b),
            Err(StoreError::IdempotencyKeyTaken(rec)) => self.replay_record(rec, new.idempotency.as_ref(), Replay::AsCreated).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Cancels a booking, confirmed or waiting; its seats go to the waitlist.
    ///
    /// `user` is who asks: it scopes the idempotency key. Who may cancel whose booking is
    /// the caller's policy, not checked here (the HTTP server allows the booking's owner and
    /// the organizers of its event's organization); holds, which have no organizer role,
    /// are checked here.
    pub async fn cancel(&self, id: BookingId, user: UserId, idempotency_key: Option<&str>) -> Result<Booking> {
        let key = self.key(user, idempotency_key, || Fingerprint::new("cancel").bytes(id.0.as_bytes()).finish())?;
        if let Some(b) = self.replay(key.as_ref(), Replay::Current).await? {
            return Ok(b);
        }
        let b = self.store.booking(id).await?;
        let removed =
            b.status == BookingStatus::Waiting && self.with_admission(b.event_id, || self.admission.remove(b.event_id, id)).await?;
        let c = match self.store.cancel(id, key.as_ref(), self.clock.now()).await {
            Ok(c) => c,
            Err(e) => {
                if removed {
                    let entry = WaitEntry { booking: id, seats: b.seats_requested, seq: b.queue_seq.expect("waiting") };
                    let _ = self.derived(b.event_id, self.with_admission(b.event_id, || self.admission.push(b.event_id, entry)).await);
                }
                return match e {
                    StoreError::IdempotencyKeyTaken(rec) => self.replay_record(rec, key.as_ref(), Replay::Current).await,
                    e => Err(e.into()),
                };
            }
        };
        self.after_free(b.event_id, c.freed.len() as u32).await;
        Ok(c.booking)
    }

    /// Cancels some seats of a confirmed booking; the booking is cancelled when none is left.
    pub async fn cancel_seats(&self, id: BookingId, user: UserId, seats: &[SeatNo], idempotency_key: Option<&str>) -> Result<Booking> {
        let seats = validate::seats_to_cancel(seats, &self.limits)?;
        let key = self.key(user, idempotency_key, || {
            let mut f = Fingerprint::new("cancel_seats");
            f.bytes(id.0.as_bytes());
            for &s in &seats {
                f.u32(s);
            }
            f.finish()
        })?;
        if let Some(b) = self.replay(key.as_ref(), Replay::Current).await? {
            return Ok(b);
        }
        let c = match self.store.cancel_seats(id, &seats, key.as_ref(), self.clock.now()).await {
            Ok(c) => c,
            Err(StoreError::IdempotencyKeyTaken(rec)) => return self.replay_record(rec, key.as_ref(), Replay::Current).await,
            Err(e) => return Err(e.into()),
        };
        self.after_free(c.booking.event_id, c.freed.len() as u32).await;
        Ok(c.booking)
    }

    /// After the store freed `n` seats of `event` (or a waiting booking left): give them
    /// back to the counter and promote. The store's change stands whatever happens here.
    pub(super) async fn after_free(&self, event: EventId, n: u32) {
        self.changed(event);
        if n > 0 && self.derived(event, self.give(event, n).await).is_none() {
            return;
        }
        let Some(e) = self.derived(event, self.store.event(event).await.map_err(Error::from)) else { return };
        let _ = self.derived(event, self.promote(event, e.policy).await);
    }

    /// A booking, with its live waitlist position if waiting.
    pub async fn booking(&self, id: BookingId) -> Result<Booking> {
        let mut b = self.store.booking(id).await?;
        if b.status == BookingStatus::Waiting {
            b.waiting_number = self.admission.position(b.event_id, id).await.ok().flatten();
        }
        Ok(b)
    }

    /// A user's bookings, newest first, from the `offset`-th; with `orgs`, only those of
    /// these organizations' events (counted after that filter).
    pub async fn user_bookings(&self, user: UserId, orgs: Option<&[OrgId]>, limit: u32, offset: u32) -> Result<Vec<Booking>> {
        Ok(self.store.user_bookings(user, orgs, self.page(limit), offset).await?)
    }

    /// A page of an event's bookings, oldest first, from the `offset`-th; with `status`, only
    /// those of it (counted after that filter).
    pub async fn event_bookings(&self, event: EventId, status: Option<BookingStatus>, limit: u32, offset: u32) -> Result<Vec<Booking>> {
        Ok(self.store.event_bookings_page(event, status, self.page(limit), offset).await?)
    }

    /// A booking's history, oldest first.
    pub async fn history(&self, id: BookingId) -> Result<Vec<HistoryEntry>> {
        Ok(self.store.history(id).await?)
    }

    /// The idempotency key of a request, if it has one; the fingerprint is computed only then.
    fn key(&self, user: UserId, key: Option<&str>, fingerprint: impl FnOnce() -> u64) -> Result<Option<IdempotencyKey>> {
        let Some(key) = key else { return Ok(None) };
        validate::idempotency_key(key, &self.limits)?;
        Ok(Some(IdempotencyKey { user_id: user, key: key.to_string(), fingerprint: fingerprint() }))
    }

    /// The result of an earlier request with the same key, if there was one.
    async fn replay(&self, key: Option<&IdempotencyKey>, how: Replay) -> Result<Option<Booking>> {
        let Some(key) = key else { return Ok(None) };
        match self.store.idempotency(key.user_id, &key.key).await? {
            Some(rec) => self.replay_record(rec, Some(key), how).await.map(Some),
            None => Ok(None),
        }
    }

    async fn replay_record(&self, rec: IdempotencyRecord, key: Option<&IdempotencyKey>, how: Replay) -> Result<Booking> {
        if key.is_some_and(|k| k.fingerprint != rec.fingerprint) {
            return Err(Error::IdempotencyMismatch);
        }
        let b = self.booking(rec.booking_id).await?;
        match how {
            Replay::Current => Ok(b),
            Replay::AsCreated => self.as_created(b).await,
        }
    }

    /// A booking as its booking request answered: its status and seats from its `Created`
    /// history entry. A booking that waited and was promoted since replays as waiting (its
    /// position then is not kept, so `waiting_number` is empty); one unchanged since is
    /// returned as it is, with its live position.
    async fn as_created(&self, b: Booking) -> Result<Booking> {
        let history = self.store.history(b.id).await?;
        let Some(created) = history.iter().find(|h| h.action == HistoryAction::Created) else { return Ok(b) };
        if (created.status, &created.seat_numbers) == (b.status, &b.seat_numbers) {
            return Ok(b);
        }
        Ok(Booking {
            status: created.status,
            seat_numbers: created.seat_numbers.clone(),
            queue_seq: None,
            waiting_number: None,
            updated_at: created.at,
            ..b
        })
    }
}

/// What a repeated request answers. A booking request answers the booking as it made
/// it (the first result). A cancellation answers the booking now: a
/// full cancellation is final, so that is its first result; after a cancellation of some
/// seats, later changes to the booking show.
#[derive(Clone, Copy)]
enum Replay {
    AsCreated,
    Current,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NewEvent;

    /// The row given with a booking must be the booked event's: a caller's mistake is an
    /// error, never a booking validated against another event.
    #[tokio::test]
    async fn a_row_of_another_event_is_refused() {
        let en = Engine::in_memory();
        let admin = en.upsert_user("admin", None, None).await.unwrap();
        let org = en.create_org(admin.id, "Org").await.unwrap().id;
        let new = |name| NewEvent::new(org, name, chrono::Utc::now(), 5);
        let (e, other) = (en.create_event(new("A")).await.unwrap().event, en.create_event(new("B")).await.unwrap().event);
        let req = BookRequest { event_id: e.id, user_id: admin.id, seats: Some(1), ..Default::default() };
        match en.book_read(Some(other), req).await {
            Err(Error::Invalid { field: "event_id", .. }) => {}
            r => panic!("expected invalid event_id, got {r:?}"),
        }
        assert_eq!(en.event(e.id).await.unwrap().booked, 0, "nothing written");
    }
}
