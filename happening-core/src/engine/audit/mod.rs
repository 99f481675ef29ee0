//! The audit: every invariant of the system, checked against what the stores hold, through
//! the ports only, and reported as typed [`Breach`]es (`happening audit`, and
//! `testkit::invariants::check` after every step of the property and race tests).
//!
//! It only reads. Run it at rest: an operation in flight can make the counter lower than the
//! store's free seats for a moment (a booking taken from the counter, not yet written), which
//! the audit reports as [`Breach::CounterDrift`].

mod report;

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::*;
use crate::error::Result;
use crate::ids::{BookingId, EventId, SeatNo};
use crate::ports::{AdmissionError, WaitEntry};

use super::Engine;

pub use report::{AuditOptions, AuditReport, Breach, EventAudit};

/// The notification kinds a history entry may have written.
fn kind_fits(action: HistoryAction, kind: NotificationKind) -> bool {
    use NotificationKind::*;
    match action {
        HistoryAction::Created => matches!(kind, BookingConfirmed | BookingWaitlisted),
        HistoryAction::Promoted => kind == WaitlistPromoted,
        HistoryAction::Cancelled => matches!(kind, BookingCancelled | EventCancelled),
        HistoryAction::Modified => kind == SeatsCancelled,
        HistoryAction::Offered => kind == WaitlistOffer,
        HistoryAction::Accepted => kind == OfferAccepted,
        HistoryAction::Declined => kind == OfferDeclined,
        HistoryAction::Expired => kind == OfferExpired,
    }
}

impl Engine {
    /// Audits every live (not cancelled) event and the outbox. Only reads.
    pub async fn audit_all(&self, opts: &AuditOptions) -> Result<AuditReport> {
        let events = self.store.live_event_ids().await?;
        self.audit(&events, None, opts).await
    }

    /// Audits these events, and the outbox's notifications about them. Only reads.
    pub async fn audit_events(&self, events: &[EventId], opts: &AuditOptions) -> Result<AuditReport> {
        let only: BTreeSet<EventId> = events.iter().copied().collect();
        self.audit(events, Some(&only), opts).await
    }

    async fn audit(&self, events: &[EventId], only: Option<&BTreeSet<EventId>>, opts: &AuditOptions) -> Result<AuditReport> {
        let mut report = AuditReport::default();
        for &event in events {
            let a = match self.audit_event(event, opts).await {
                Ok(a) => a,
                // Deleted since it was listed.
                Err(crate::Error::NotFound(_)) if only.is_none() => continue,
                Err(e) => return Err(e),
            };
            report.events_checked += 1;
            report.bookings_checked += a.bookings;
            if a.admission_missing {
                report.admission_missing.push(event);
            }
            report.breaches.extend(a.breaches);
        }
        // Oldest first: the scan stops being stuck at the first young one.
        let pending = self.store.pending_notifications(opts.outbox_scan_max).await?;
        report.pending_scanned = pending.len();
        let cutoff = self.clock.now() - opts.stuck_after;
        for n in pending.into_iter().filter(|n| n.created_at <= cutoff) {
            if only.is_some_and(|only| !n.event_id.is_some_and(|e| only.contains(&e))) {
                continue;
            }
            report.breaches.push(Breach::OutboxStuck {
                notification: n.id,
                event: n.event_id,
                user: n.user_id,
                kind: n.kind,
                created_at: n.created_at,
            });
        }
        Ok(report)
    }

    /// Checks every invariant of one event against the store and the admission (the
    /// outbox's stuck rows aside: see [`Engine::audit_all`]). Only reads.
    pub async fn audit_event(&self, event: EventId, opts: &AuditOptions) -> Result<EventAudit> {
        let store = &self.store;
        let view = store.event_view(event).await?;
        let bookings = store.event_bookings(event).await?;
        let map = store.seat_map(event).await?;
        let cap = view.event.capacity;
        let mut out = Vec::new();

        // No oversell.
        let oversold = u64::from(view.booked) + u64::from(view.held) > u64::from(cap);
        if oversold {
            out.push(Breach::Oversold { event, capacity: cap, booked: view.booked, held: view.held });
        }

        // No seat twice, all in range, the counts and the seat map agree with the bookings.
        let mut owner: BTreeMap<SeatNo, BookingId> = BTreeMap::new();
        let mut offered: BTreeSet<SeatNo> = BTreeSet::new();
        let mut confirmed_seats = 0u32;
        for b in bookings.iter().filter(|b| b.status.owns_seats()) {
            let seats = b.seat_numbers.len() as u32;
            if seats == 0 || seats > b.seats_requested {
                out.push(Breach::SeatCount { event, booking: b.id, seats, requested: b.seats_requested });
            }
            for &seat in &b.seat_numbers {
                if seat < 1 || seat > cap {
                    out.push(Breach::SeatOutOfRange { event, booking: b.id, seat, capacity: cap });
                }
                if let Some(&first) = owner.get(&seat) {
                    out.push(Breach::SeatTwice { event, seat, first, second: b.id });
                } else {
                    owner.insert(seat, b.id);
                }
            }
            if b.status == BookingStatus::Offered {
                offered.extend(&b.seat_numbers);
                if let Some(expires_at) = b.offer_expires_at.filter(|at| *at + opts.stuck_after < self.clock.now()) {
                    out.push(Breach::OfferOverdue { event, booking: b.id, expires_at });
                }
            } else {
                confirmed_seats += seats;
            }
        }
        if confirmed_seats != view.booked {
            out.push(Breach::BookedCount { event, booked: view.booked, confirmed_seats });
        }
        let confirmed: Vec<SeatNo> = owner.keys().copied().filter(|s| !offered.contains(s)).collect();
        if map.taken != confirmed {
            out.push(Breach::SeatMap { event, taken: map.taken.clone(), confirmed });
        }
        let held_seats: BTreeSet<SeatNo> = map.held.iter().copied().collect();
        if map.held.len() as u32 != view.held
            || map.held.iter().any(|s| owner.contains_key(s) && !offered.contains(s))
            || !offered.is_subset(&held_seats)
        {
            out.push(Breach::HeldSeats { event, held: view.held, held_seats: map.held.clone() });
        }
        // `available` is `capacity - booked - held` by construction (`EventView::available`),
        // with the counts checked above.
        let free = if oversold { 0 } else { view.available() };

        // The waitlist is exactly the waiting bookings, in queue order, in the store ...
        let mut waiting: Vec<&Booking> = bookings.iter().filter(|b| b.status == BookingStatus::Waiting).collect();
        waiting.sort_by_key(|b| b.queue_seq);
        let want: Vec<BookingId> = waiting.iter().map(|b| b.id).collect();
        let durable: Vec<BookingId> = store.waiting(event, u32::MAX, 0).await?.iter().map(|b| b.id).collect();
        if durable != want {
            out.push(Breach::StoreWaitlist { event, waitlist: durable, waiting: want.clone() });
        }
        if view.waiting as usize != want.len() {
            out.push(Breach::WaitingCount { event, count: view.waiting, waiting: want.len() as u32 });
        }
        // ... and in the order they came (FIFO), up to the clock skew between servers.
        let mut latest: Option<&Booking> = None;
        for b in &waiting {
            match latest {
                Some(l) if b.created_at + opts.order_tolerance < l.created_at => {
                    out.push(Breach::QueueOrder { event, booking: l.id, created_before: b.id });
                }
                Some(l) if b.created_at <= l.created_at => {}
                _ => latest = Some(b),
            }
        }

        let mut admission_missing = false;
        if view.event.status == EventStatus::Cancelled {
            let live = bookings.iter().filter(|b| !b.status.is_final()).count() as u32;
            if live > 0 {
                out.push(Breach::CancelledEventLive { event, live });
            }
        } else {
            // ... and in the admission, whose counter is the store's free seats.
            match self.admission.free(event).await {
                Err(AdmissionError::Missing) => admission_missing = true,
                Err(e) => return Err(e.into()),
                Ok(counter) => {
                    let store_entries: Vec<WaitEntry> = waiting
                        .iter()
                        .map(|b| WaitEntry { booking: b.id, seats: b.seats_requested, seq: b.queue_seq.unwrap_or_default() })
                        .collect();
                    match self.admission.list(event, u32::MAX).await {
                        Err(AdmissionError::Missing) => admission_missing = true,
                        Err(e) => return Err(e.into()),
                        Ok(queued) if queued != store_entries => {
                            out.push(Breach::AdmissionWaitlist { event, admission: queued, store: store_entries })
                        }
                        Ok(_) => {}
                    }
                    if !oversold && counter != free {
                        out.push(Breach::CounterDrift { event, counter, store: free });
                    }
                }
            }
            // Nobody waits for seats that are free (the policy's promotion ran to its end).
            if !oversold {
                let stuck = match view.event.policy {
                    WaitlistPolicy::Fifo => waiting.first().filter(|b| b.seats_requested <= free),
                    WaitlistPolicy::FirstFit => waiting.iter().find(|b| b.seats_requested <= free),
                    WaitlistPolicy::Partial => waiting.first().filter(|_| free > 0),
                };
                if let Some(b) = stuck {
                    out.push(Breach::WaitingForFreeSeats { event, booking: b.id, seats: b.seats_requested, free });
                }
            }
        }

        // Every booking's history starts with `created` and ends in its status, and each of
        // its entries has its notification (in the same order: written in the same step).
        let mut notes: BTreeMap<BookingId, Vec<NotificationKind>> = BTreeMap::new();
        for n in store.event_booking_notifications(event).await? {
            if let (Some(b), true) = (n.booking_id, n.kind != NotificationKind::EventUpdated) {
                notes.entry(b).or_default().push(n.kind);
            }
        }
        for b in &bookings {
            let h = store.history(b.id).await?;
            let (Some(first), Some(last)) = (h.first(), h.last()) else {
                out.push(Breach::HistoryMissing { event, booking: b.id });
                continue;
            };
            if first.action != HistoryAction::Created || last.status != b.status {
                out.push(Breach::HistoryMismatch { event, booking: b.id, first: first.action, last: last.status, status: b.status });
            }
            let kinds = notes.remove(&b.id).unwrap_or_default();
            if kinds.len() != h.len() || h.iter().zip(&kinds).any(|(e, &k)| !kind_fits(e.action, k)) {
                out.push(Breach::Notifications {
                    event,
                    booking: b.id,
                    history: h.iter().map(|e| e.action).collect(),
                    notifications: kinds,
                });
            }
        }

        Ok(EventAudit { event_id: event, bookings: bookings.len(), admission_missing, breaches: out })
    }
}

#[cfg(test)]
mod tests {
    //! The audit on the in-memory stores: each breach is made behind the engine's back by
    //! calling the adapters' ports directly, and reported as its own variant.

    use std::sync::Arc;

    use chrono::TimeZone;

    use chrono::{Duration, Utc};

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::ids::UserId;
    use crate::memory::MemoryNotifier;
    use crate::ports::TakeRequest;
    use crate::BookRequest;

    struct World {
        engine: Engine,
        clock: Arc<ManualClock>,
    }

    async fn world() -> World {
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()));
        World { engine: Engine::in_memory().with_clock(clock.clone()), clock }
    }

    impl World {
        async fn event(&self, capacity: u32, policy: WaitlistPolicy) -> EventId {
            let admin = self.engine.upsert_user(&format!("admin-{}", UserId::new()), None, None).await.unwrap();
            let org = self.engine.create_org(admin.id, "Audit").await.unwrap();
            let new = NewEvent::new(org.id, "Audit", self.clock.now(), capacity).with_policy(policy);
            self.engine.create_event(new).await.unwrap().event.id
        }

        async fn book(&self, event: EventId, seats: u32) -> Booking {
            let req = BookRequest { event_id: event, user_id: UserId::new(), seats: Some(seats), ..Default::default() };
            self.engine.book(req).await.unwrap()
        }

        /// An event of 4 seats, 3 booked, and two bookings of 2 waiting: (event, confirmed, waiting).
        async fn busy(&self) -> (EventId, Vec<Booking>, Vec<Booking>) {
            let event = self.event(4, WaitlistPolicy::Fifo).await;
            let confirmed = vec![self.book(event, 2).await, self.book(event, 1).await];
            let waiting = vec![self.book(event, 2).await, self.book(event, 2).await];
            assert!(waiting.iter().all(|b| b.status == BookingStatus::Waiting));
            (event, confirmed, waiting)
        }

        async fn audit(&self) -> AuditReport {
            self.engine.audit_all(&AuditOptions::default()).await.unwrap()
        }

        async fn event_breaches(&self, event: EventId) -> Vec<Breach> {
            let a = self.engine.audit_event(event, &AuditOptions::default()).await.unwrap();
            assert!(!a.admission_missing);
            a.breaches
        }
    }

    #[tokio::test]
    async fn a_clean_state_has_no_breach() {
        let w = world().await;
        let (event, _, _) = w.busy().await;
        let other = w.event(2, WaitlistPolicy::FirstFit).await;
        let b = w.book(other, 1).await;
        w.engine.cancel(b.id, b.user_id, None).await.unwrap();
        let r = w.audit().await;
        assert_eq!(r.breaches, vec![], "{r:?}");
        assert_eq!((r.events_checked, r.bookings_checked), (2, 5));
        assert!(r.admission_missing.is_empty());
        assert_eq!(r.pending_scanned, 6, "one notification per booking change");
        assert!(w.engine.audit_events(&[event], &AuditOptions::default()).await.unwrap().is_clean());
    }

    #[tokio::test]
    async fn seats_taken_from_the_counter_without_a_booking_are_counter_drift() {
        let w = world().await;
        let event = w.event(5, WaitlistPolicy::Fifo).await;
        w.book(event, 2).await;
        w.engine.admission().take(event, TakeRequest { want: 2, min: 2, behind_queue: false, waitlist_max: None }).await.unwrap();
        assert_eq!(w.event_breaches(event).await, vec![Breach::CounterDrift { event, counter: 1, store: 3 }]);
        // A counter above the store's free seats too (a hand edit).
        w.engine.admission().set_free(event, 5).await.unwrap();
        assert_eq!(w.event_breaches(event).await, vec![Breach::CounterDrift { event, counter: 5, store: 3 }]);
        w.engine.reconcile_event(event).await.unwrap();
        assert_eq!(w.event_breaches(event).await, vec![]);
    }

    #[tokio::test]
    async fn a_bogus_waitlist_entry_is_reported() {
        let w = world().await;
        let (event, _, waiting) = w.busy().await;
        let bogus = WaitEntry { booking: BookingId::new(), seats: 1, seq: u64::MAX };
        w.engine.admission().push(event, bogus).await.unwrap();
        let store: Vec<WaitEntry> = waiting.iter().map(|b| WaitEntry { booking: b.id, seats: 2, seq: b.queue_seq.unwrap() }).collect();
        let mut admission = store.clone();
        admission.push(bogus);
        assert_eq!(w.event_breaches(event).await, vec![Breach::AdmissionWaitlist { event, admission, store }]);
    }

    #[tokio::test]
    async fn a_reordered_waitlist_is_reported() {
        let w = world().await;
        let (event, _, waiting) = w.busy().await;
        let (a, b) = (&waiting[0], &waiting[1]);
        let (sa, sb) = (a.queue_seq.unwrap(), b.queue_seq.unwrap());
        // b first, with the seqs still ascending.
        let swapped = vec![WaitEntry { booking: b.id, seats: 2, seq: sa }, WaitEntry { booking: a.id, seats: 2, seq: sb }];
        let adm = w.engine.admission();
        let free = adm.free(event).await.unwrap();
        assert!(adm.restore(event, adm.version(event).await.unwrap(), free, swapped.clone()).await.unwrap());
        let breaches = w.event_breaches(event).await;
        assert!(matches!(&breaches[..], [Breach::AdmissionWaitlist { admission, .. }] if *admission == swapped), "{breaches:?}");
        // A waitlist entry removed: the booking is in the store's queue only.
        w.engine.reconcile_event(event).await.unwrap();
        w.engine.admission().remove(event, a.id).await.unwrap();
        let breaches = w.event_breaches(event).await;
        assert!(matches!(&breaches[..], [Breach::AdmissionWaitlist { admission, store, .. }] if admission.len() == 1 && store.len() == 2));
    }

    #[tokio::test]
    async fn seats_freed_in_the_store_alone_leave_a_booking_waiting_for_free_seats() {
        let w = world().await;
        let (event, confirmed, waiting) = w.busy().await;
        // The store cancels, the engine never gives the seats back nor promotes.
        w.engine.store().cancel(confirmed[0].id, None, w.clock.now()).await.unwrap();
        let breaches = w.event_breaches(event).await;
        assert!(breaches.contains(&Breach::CounterDrift { event, counter: 1, store: 3 }), "{breaches:?}");
        assert!(breaches.contains(&Breach::WaitingForFreeSeats { event, booking: waiting[0].id, seats: 2, free: 3 }), "{breaches:?}");
        assert_eq!(breaches.len(), 2, "{breaches:?}");
        // Reconcile promotes the head: clean again.
        w.engine.reconcile_event(event).await.unwrap();
        assert_eq!(w.event_breaches(event).await, vec![]);
    }

    #[tokio::test]
    async fn a_missing_counter_is_noted_not_a_breach() {
        let w = world().await;
        let (event, _, _) = w.busy().await;
        w.engine.admission().forget(event).await.unwrap();
        let r = w.audit().await;
        assert_eq!(r.admission_missing, vec![event]);
        assert!(r.is_clean(), "{r:?}");
    }

    #[tokio::test]
    async fn notifications_left_pending_are_stuck_after_the_threshold() {
        let w = world().await;
        let event = w.event(3, WaitlistPolicy::Fifo).await;
        let other = w.event(3, WaitlistPolicy::Fifo).await;
        let b = w.book(event, 1).await;
        w.book(other, 1).await;
        w.clock.advance_ms(299_000);
        assert!(w.audit().await.is_clean());
        w.clock.advance_ms(1_000);
        let r = w.audit().await;
        let stuck: Vec<_> =
            r.breaches.iter().filter_map(|b| if let Breach::OutboxStuck { event, .. } = b { *event } else { None }).collect();
        assert_eq!(stuck.len(), 2, "{r:?}");
        assert_eq!(r.breaches.len(), 2, "{r:?}");
        assert!(
            matches!(&r.breaches[0], Breach::OutboxStuck { event: Some(e), user, kind: NotificationKind::BookingConfirmed, .. } if *e == event && *user == b.user_id)
        );
        // Scoped to one event: the other one's notification is not reported.
        let one = w.engine.audit_events(&[event], &AuditOptions::default()).await.unwrap();
        assert_eq!(one.breaches.len(), 1, "{one:?}");
        // A longer threshold, or the relay having run: none.
        let lenient = AuditOptions { stuck_after: Duration::seconds(600), ..Default::default() };
        assert!(w.engine.audit_all(&lenient).await.unwrap().is_clean());
        let notifier = MemoryNotifier::new();
        while w.engine.relay(&notifier, 100).await.unwrap() > 0 {}
        assert!(w.audit().await.is_clean());
    }

    #[tokio::test]
    async fn every_breach_prints_on_one_line_with_its_kind() {
        let event = EventId::new();
        let b = BookingId::new();
        let breaches = [
            Breach::Oversold { event, capacity: 2, booked: 2, held: 1 },
            Breach::SeatTwice { event, seat: 3, first: b, second: BookingId::new() },
            Breach::CounterDrift { event, counter: 1, store: 2 },
            Breach::Notifications { event, booking: b, history: vec![HistoryAction::Created], notifications: vec![] },
        ];
        for br in breaches {
            let line = br.to_string();
            assert!(line.starts_with(br.kind()) && line.contains(&event.to_string()) && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn a_second_audit_confirms_what_stays_and_drops_what_went() {
        let (event, b1, b2) = (EventId::new(), BookingId::new(), BookingId::new());
        let waiting = |booking, free| Breach::WaitingForFreeSeats { event, booking, seats: 1, free };
        let drift = |counter| Breach::CounterDrift { event, counter, store: 0 };
        let report = |breaches: Vec<Breach>| AuditReport { events_checked: 1, breaches, ..Default::default() };
        let first = report(vec![waiting(b1, 1), waiting(b2, 1), drift(2)]);
        // b1 still waits (for more seats now), b2's promotion ran, the drift stays (another
        // value), and a breach new in the second audit is not confirmed either.
        let again = report(vec![waiting(b1, 2), drift(3), Breach::HistoryMissing { event, booking: b2 }]);
        assert_eq!(first.confirmed_by(again).breaches, vec![waiting(b1, 2), drift(3)]);
        assert!(first.confirmed_by(report(vec![])).is_clean());
    }
}
