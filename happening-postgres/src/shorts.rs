//! The events this engine saw short lately: the admission probes their bookings first.
//!
//! The admission derived from the store lets a whole booking skip its probe
//! (`SlotCounter::unchecked_take`): the store's step checks the seats and the queue anyway,
//! and a probe is a round trip per booking. But on a sold-out event every such booking would
//! cost a failed store step (and a blocking retry) before the probe that turns it away. So a
//! probe that finds an event short marks it for [`MEMORY_MS`], and its bookings probe first
//! meanwhile; a probe that finds seats clears the mark.
//!
//! Only a hint, per engine: a mark another engine would have set, or one forgotten, costs a
//! failed store step, never a wrong answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use happening_core::ids::EventId;

/// How long a mark lasts: long enough that a sold-out event's requests probe (each probe
/// that finds it short marks it again), short enough that an event whose seats came back
/// (cancellations, a capacity raised) soon books without probes again.
const MEMORY_MS: u64 = 1_000;

/// Marks kept at most. At the limit the lapsed ones go; if none has lapsed, all go (the cost
/// of forgetting is one failed store step per event).
const MARKS_MAX: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct Shorts {
    /// When each marked event was last seen short.
    seen: Mutex<HashMap<EventId, Instant>>,
}

impl Shorts {
    /// Whether `event` was seen short less than [`MEMORY_MS`] ago.
    pub(crate) fn recent(&self, event: EventId) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&event).is_some_and(|at| at.elapsed() < Duration::from_millis(MEMORY_MS))
    }

    /// Records what a probe of `event` found: short (or turned away) or not.
    pub(crate) fn saw(&self, event: EventId, short: bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !short {
            seen.remove(&event);
            return;
        }
        if seen.len() >= MARKS_MAX && !seen.contains_key(&event) {
            seen.retain(|_, at| at.elapsed() < Duration::from_millis(MEMORY_MS));
            if seen.len() >= MARKS_MAX {
                seen.clear();
            }
        }
        seen.insert(event, Instant::now());
        debug_assert!(seen.len() <= MARKS_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_probe_marks_the_event_and_a_probe_with_seats_clears_it() {
        let shorts = Shorts::default();
        let (a, b) = (EventId::new(), EventId::new());
        assert!(!shorts.recent(a));
        shorts.saw(a, true);
        assert!(shorts.recent(a));
        assert!(!shorts.recent(b), "only the event seen short");
        shorts.saw(a, false);
        assert!(!shorts.recent(a));
    }

    #[test]
    fn a_mark_lapses() {
        let shorts = Shorts::default();
        let a = EventId::new();
        shorts.seen.lock().unwrap().insert(a, Instant::now() - Duration::from_millis(MEMORY_MS));
        assert!(!shorts.recent(a));
    }

    #[test]
    fn marks_stay_bounded_and_the_newest_is_kept() {
        let shorts = Shorts::default();
        for _ in 0..MARKS_MAX {
            shorts.saw(EventId::new(), true);
        }
        let last = EventId::new();
        shorts.saw(last, true);
        assert!(shorts.seen.lock().unwrap().len() <= MARKS_MAX);
        assert!(shorts.recent(last));
    }
}
