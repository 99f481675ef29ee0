//! The invariants of the brief, checked on one event against the store and the admission
//! state. Call at quiescence (no operation in flight).

use std::collections::BTreeSet;

use crate::domain::*;
use crate::engine::Engine;
use crate::ids::{EventId, SeatNo};

/// Checks every invariant of `event`; the error says which broke and how.
pub async fn check(engine: &Engine, event: EventId) -> Result<(), String> {
    let store = engine.store();
    let view = store.event_view(event).await.map_err(|e| format!("event: {e}"))?;
    let bookings = store.event_bookings(event).await.map_err(|e| format!("bookings: {e}"))?;
    let map = store.seat_map(event).await.map_err(|e| format!("seat map: {e}"))?;
    let cap = view.event.capacity;

    // No oversell.
    if view.booked + view.held > cap {
        return Err(format!("oversold: booked {} + held {} > capacity {cap}", view.booked, view.held));
    }
    // No seat twice, all in range, seat map agrees with the bookings.
    let mut taken = BTreeSet::new();
    let mut booked = 0;
    for b in bookings.iter().filter(|b| b.status == BookingStatus::Confirmed) {
        if b.seat_numbers.is_empty() || b.seat_numbers.len() as u32 > b.seats_requested {
            return Err(format!("booking {} has {} seats for {} requested", b.id, b.seat_numbers.len(), b.seats_requested));
        }
        for &s in &b.seat_numbers {
            if s < 1 || s > cap {
                return Err(format!("seat {s} out of range 1..={cap}"));
            }
            if !taken.insert(s) {
                return Err(format!("seat {s} taken twice"));
            }
        }
        booked += b.seat_numbers.len() as u32;
    }
    if booked != view.booked {
        return Err(format!("booked count {} but confirmed bookings hold {booked} seats", view.booked));
    }
    if map.taken != taken.iter().copied().collect::<Vec<SeatNo>>() {
        return Err(format!("seat map taken {:?} != confirmed seats {:?}", map.taken, taken));
    }
    if map.held.len() as u32 != view.held || map.held.iter().any(|s| taken.contains(s)) {
        return Err(format!("held seats {:?} disagree with held count {} or overlap bookings", map.held, view.held));
    }
    if view.available() != cap - booked - view.held {
        return Err("available != capacity - booked - held".into());
    }

    // The waitlist is exactly the waiting bookings, in order, in the store and in admission.
    let mut waiting: Vec<&Booking> = bookings.iter().filter(|b| b.status == BookingStatus::Waiting).collect();
    waiting.sort_by_key(|b| b.queue_seq);
    let want: Vec<_> = waiting.iter().map(|b| b.id).collect();
    let durable: Vec<_> = store.waiting(event, u32::MAX).await.map_err(|e| e.to_string())?.iter().map(|b| b.id).collect();
    if durable != want {
        return Err(format!("store waitlist {durable:?} != waiting bookings {want:?}"));
    }
    if view.event.status == EventStatus::Cancelled {
        if !want.is_empty() || booked > 0 {
            return Err("cancelled event still has live bookings".into());
        }
        return Ok(());
    }
    let queued: Vec<_> = engine.admission().list(event, u32::MAX).await.map_err(|e| e.to_string())?.iter().map(|e| e.booking).collect();
    if queued != want {
        return Err(format!("admission waitlist {queued:?} != waiting bookings {want:?}"));
    }
    let free = engine.admission().free(event).await.map_err(|e| e.to_string())?;
    if free != view.available() {
        return Err(format!("counter says {free} free, store says {}", view.available()));
    }

    // Nobody waits for seats that are free (the policy's promotion ran to its end).
    let free = view.available();
    let stuck = match view.event.policy {
        WaitlistPolicy::Fifo => waiting.first().is_some_and(|b| b.seats_requested <= free),
        WaitlistPolicy::FirstFit => waiting.iter().any(|b| b.seats_requested <= free),
        WaitlistPolicy::Partial => !waiting.is_empty() && free > 0,
    };
    if stuck {
        return Err(format!("a waiting booking fits in {free} free seats but was not promoted"));
    }

    // Every booking's history starts with `created` and ends in its current status.
    for b in &bookings {
        let h = store.history(b.id).await.map_err(|e| e.to_string())?;
        match (h.first(), h.last()) {
            (Some(first), Some(last)) if first.action == HistoryAction::Created && last.status == b.status => {}
            _ => return Err(format!("booking {} history {h:?} does not match status {:?}", b.id, b.status)),
        }
    }
    Ok(())
}
