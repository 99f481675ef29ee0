//! The admission's derived state (counter and queue): rebuilt when missing, never erasing a step made meanwhile.

use super::*;

/// A missing counter and queue (an emptied Redis) are rebuilt from the store on first use, in
/// order; a drifted counter is repaired by `reconcile_event`.
pub async fn counter_rebuilt_when_missing(h: &Harness) {
    let e = h.event(2, Fifo).await;
    h.book(e, UserId::new(), 2).await.unwrap();
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    // As if Redis restarted empty.
    h.engine.admission().forget(e).await.unwrap();
    let late = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!((late.status, late.waiting_number), (BookingStatus::Waiting, Some(2)), "rebuilt queue keeps order");
    assert_eq!(h.engine.booking(w.id).await.unwrap().waiting_number, Some(1));
    // Drift is found and repaired by reconcile. A backend that derives its counter from
    // the store (PostgreSQL alone) keeps no count of its own to drift: it reads the truth.
    h.engine.admission().set_free(e, 7).await.unwrap();
    let keeps_own_count = h.engine.admission().free(e).await.unwrap() == 7;
    let r = h.engine.reconcile_event(e).await.unwrap();
    let before = if keeps_own_count { 7 } else { 0 };
    assert_eq!((r.free_before, r.free_after, r.waitlist_repaired, r.waiting), (Some(before), 0, false, 2));
    assert_eq!(r.drifted(), keeps_own_count);
    assert!(!h.engine.reconcile_event(e).await.unwrap().drifted());
    check(h, e).await;
}

/// A `fifo` event of `capacity` seats, all booked, and one booking of `seats` waiting: the
/// event, the waiting booking and its queue entry.
async fn sold_out_with_one_waiting(h: &Harness, capacity: u32, seats: u32) -> (EventId, Booking, WaitEntry) {
    let e = h.event(capacity, Fifo).await;
    h.book(e, UserId::new(), capacity).await.unwrap();
    let w = h.book(e, UserId::new(), seats).await.unwrap();
    assert_eq!(w.status, BookingStatus::Waiting);
    let entry = WaitEntry { booking: w.id, seats, seq: w.queue_seq.unwrap() };
    (e, w, entry)
}

/// The admission port's versions: every change, and every `give`, `push` and `remove`
/// (even on a missing event), moves the version; a `restore` with a version read before
/// any of them changes nothing. A backend that keeps no state of its own stays at 0 and
/// always restores.
pub async fn restore_loses_to_any_step_after_its_version(h: &Harness) {
    let adm = h.engine.admission();
    let (e, w, entry) = sold_out_with_one_waiting(h, 5, 2).await;
    let stateless = adm.version(e).await.unwrap() == 0;
    if stateless {
        assert!(adm.restore(e, 0, 3, vec![]).await.unwrap(), "nothing to overwrite, nothing to lose");
        assert_eq!(adm.version(e).await.unwrap(), 0);
        assert_eq!(adm.free(e).await.unwrap(), 0, "derived from the store, not written");
        return;
    }
    let state = |adm: &std::sync::Arc<dyn crate::ports::Admission>| {
        let adm = adm.clone();
        async move { (adm.free(e).await.ok(), adm.list(e, u32::MAX).await.ok()) }
    };
    let take = TakeRequest { want: 1, min: 1, behind_queue: false, waitlist_max: None };
    let short = TakeRequest { want: 99, min: 99, behind_queue: false, waitlist_max: None };
    for what in ["give", "take", "push again", "remove unknown", "set_free"] {
        let v = adm.version(e).await.unwrap();
        match what {
            "take" => assert!(matches!(adm.take(e, take).await.unwrap(), Take::Taken(1))),
            "give" => adm.give(e, 1).await.unwrap(),
            "push again" => {
                adm.push(e, entry).await.unwrap();
                assert_eq!(adm.position(e, w.id).await.unwrap(), Some(1), "an entry pushed again stays where it is");
            }
            "remove unknown" => assert!(!adm.remove(e, BookingId::new()).await.unwrap()),
            _ => adm.set_free(e, 5).await.unwrap(),
        }
        let after = state(adm).await;
        assert_ne!(adm.version(e).await.unwrap(), v, "{what} moves the version");
        assert!(!adm.restore(e, v, 0, vec![]).await.unwrap(), "{what}: a restore from before it loses");
        assert_eq!(state(adm).await, after, "{what}: a losing restore changes nothing");
    }
    // Reads, and a take that finds too few seats, leave it alone.
    let v = adm.version(e).await.unwrap();
    assert!(matches!(adm.take(e, short).await.unwrap(), Take::Short { .. }));
    adm.free(e).await.unwrap();
    adm.list(e, 10).await.unwrap();
    adm.position(e, w.id).await.unwrap();
    assert_eq!(adm.version(e).await.unwrap(), v, "reads and a short take do not move it");
    assert!(adm.restore(e, v, 5, vec![entry]).await.unwrap(), "nothing happened since: it restores");
    assert_eq!(state(adm).await, (Some(5), Some(vec![entry])));
    assert!(!adm.restore(e, v, 5, vec![entry]).await.unwrap(), "a restore moves the version too");
    // A popped entry moves it; forgetting does, and so does a give on the missing event,
    // which a rebuild begun before must not overwrite.
    let v = adm.version(e).await.unwrap();
    assert!(adm.pop_fitting(e, Partial).await.unwrap().is_some());
    assert_ne!(adm.version(e).await.unwrap(), v, "a pop moves it");
    let v = adm.version(e).await.unwrap();
    adm.forget(e).await.unwrap();
    let forgotten = adm.version(e).await.unwrap();
    assert_ne!(forgotten, v, "forget moves it");
    assert!(matches!(adm.give(e, 2).await, Err(AdmissionError::Missing)));
    assert_ne!(adm.version(e).await.unwrap(), forgotten, "a give on a missing event moves it");
    assert!(!adm.restore(e, forgotten, 5, vec![]).await.unwrap());
    assert!(matches!(adm.free(e).await, Err(AdmissionError::Missing)), "still missing");
    // The engine's own rebuild settles everything.
    h.engine.reconcile_event(e).await.unwrap();
    check(h, e).await;
}

/// `push` answers, in its own atomic step, whether any seat is free: a request queued on a
/// sold-out event needs no promotion pass of its own (whoever frees seats will find it
/// queued). A backend that keeps no counter of its own cannot tell and says `true`.
pub async fn push_says_whether_seats_are_free(h: &Harness) {
    let adm = h.engine.admission();
    let e = h.event(2, Fifo).await;
    let holder = h.book(e, UserId::new(), 2).await.unwrap();
    let w = h.book(e, UserId::new(), 1).await.unwrap();
    assert_eq!(w.waiting_number, Some(1));
    let entry = WaitEntry { booking: w.id, seats: 1, seq: w.queue_seq.unwrap() };
    assert_eq!(adm.push(e, entry).await.unwrap(), Pushed { seats_free: false }, "sold out");
    if adm.version(e).await.unwrap() == 0 {
        // Derived from the store (PostgreSQL alone): a seat freed there, by a cancellation
        // whose promotion pass has not run yet, and now it says so.
        h.engine.store().cancel(holder.id, None, h.clock.now()).await.unwrap();
        assert_eq!(adm.push(e, entry).await.unwrap(), Pushed { seats_free: true }, "seats are free");
        // That pass.
        assert_eq!(h.engine.reconcile_event(e).await.unwrap().promoted, 1);
    } else {
        // A seat given back (a cancellation whose promotion pass has not run yet).
        adm.give(e, 1).await.unwrap();
        assert_eq!(adm.push(e, entry).await.unwrap(), Pushed { seats_free: true }, "a seat is free");
        let one = TakeRequest { want: 1, min: 1, behind_queue: false, waitlist_max: None };
        assert!(matches!(adm.take(e, one).await.unwrap(), Take::Taken(1)), "put the counter back");
    }
    check(h, e).await;
}

/// A rebuild reads the store, then writes the counter and queue. A cancellation that
/// lands in between (committed in the store, its seats given back) must survive it: the
/// rebuild's write loses, it reads again, and the counter ends right. (A rebuild that wrote
/// anyway would leave the counter a seat short, and someone waiting while a seat is free.)
/// Cancels at once through one engine: everyone waiting is promoted; and where the
/// admission's pop only reads (PostgreSQL's), the engine never runs two promotion passes of
/// the event side by side, since they would all queue on the same head in the store.
pub async fn cancels_at_once_promote_everyone_one_pass_at_a_time_where_pops_only_read(h: &Harness) {
    const SEATS: u32 = 16;
    let e = h.event(SEATS, Fifo).await;
    let mut confirmed = Vec::new();
    for _ in 0..SEATS {
        let u = UserId::new();
        confirmed.push((h.book(e, u, 1).await.unwrap().id, u));
    }
    let mut waiting = Vec::new();
    for _ in 0..SEATS {
        let b = h.book(e, UserId::new(), 1).await.unwrap();
        assert_eq!(b.status, BookingStatus::Waiting);
        waiting.push(b.id);
    }
    let observed = Interleave::new(h.engine.admission().clone());
    let engine = crate::Engine::new(h.engine.store().clone(), std::sync::Arc::new(observed.clone())).with_clock(h.clock.clone());
    let cancels: Vec<_> = confirmed
        .into_iter()
        .map(|(id, u)| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.cancel(id, u, None).await })
        })
        .collect();
    for c in cancels {
        c.await.expect("cancel task").expect("cancel");
    }
    for id in waiting {
        assert_eq!(h.engine.booking(id).await.unwrap().status, BookingStatus::Confirmed, "{id} left waiting");
    }
    let pops = observed.pops_in_flight_max();
    assert!(pops >= 1, "no promotion pass ran");
    if !observed.pop_removes() {
        assert_eq!(pops, 1, "promotion passes of one event ran side by side");
    }
    check(h, e).await;
}

/// A cancellation made between a rebuild's read of the store and its write is not lost: its seat
/// stays free.
pub async fn rebuild_keeps_a_step_made_while_it_read_the_store(h: &Harness) {
    let e = h.event(3, Fifo).await;
    let u = UserId::new();
    let b = h.book(e, u, 1).await.unwrap();
    h.book(e, UserId::new(), 2).await.unwrap();
    let between = Interleave::new(h.engine.admission().clone());
    let rebuilder = crate::Engine::new(h.engine.store().clone(), std::sync::Arc::new(between.clone())).with_clock(h.clock.clone());
    let other = h.engine.clone();
    between.before_next_restore(Box::pin(async move {
        other.cancel(b.id, u, None).await.expect("cancel between the read and the write");
    }));
    rebuilder.reconcile_event(e).await.unwrap();
    assert!(between.fired(), "the cancellation ran between the rebuild's read and its write");
    assert_eq!(h.engine.admission().free(e).await.unwrap(), 1, "the seat given back is free");
    check(h, e).await;
}
