use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::WaitlistPolicy;
use crate::ids::{BookingId, EventId};
use crate::ports::*;

use super::sharded::{IdMap, Sharded};

/// Counter and waitlist of one event, under one lock: `take` (behind the queue) and
/// `pop_fitting` are atomic over both.
#[derive(Default)]
struct Gate {
    /// `false` for a forgotten event, or one only a `give`, `push` or `remove` has touched:
    /// it is missing, and is kept only for its version.
    live: bool,
    /// See [`Waitlist`]'s docs; drawn from [`MemoryAdmission::versions`].
    version: u64,
    free: u32,
    /// Sorted by `seq`; pushes land at the back in the normal case.
    queue: VecDeque<WaitEntry>,
    /// The `seq` of each queued booking, so that finding one is a binary search.
    seqs: IdMap<BookingId, u64>,
}

impl Gate {
    fn index_of(&self, seq: u64) -> Result<usize, usize> {
        self.queue.binary_search_by_key(&seq, |e| e.seq)
    }

    fn find(&self, booking: BookingId) -> Option<usize> {
        self.seqs.get(&booking).and_then(|&seq| self.index_of(seq).ok())
    }

    fn remove_at(&mut self, i: usize) -> WaitEntry {
        let entry = self.queue.remove(i).expect("index in range");
        self.seqs.remove(&entry.booking);
        entry
    }
}

/// In-memory [`SlotCounter`] + [`Waitlist`].
#[derive(Clone, Default)]
pub struct MemoryAdmission {
    gates: Arc<Sharded<EventId, Gate>>,
    /// The last version given out, to any event: one sequence for all, so that a version
    /// is never given twice (not even to an event forgotten and created again).
    versions: Arc<AtomicU64>,
}

impl MemoryAdmission {
    /// An admission with no events: each event's counter is made on creation, or rebuilt
    /// from the store on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn next_version(&self) -> u64 {
        self.versions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Runs `f` on the live gate of `event`; `f` returns what it answers and whether it
    /// changed the gate (which moves the version).
    fn with<R>(&self, event: EventId, f: impl FnOnce(&mut Gate) -> (R, bool)) -> Result<R, AdmissionError> {
        let mut shard = self.gates.shard(&event);
        let gate = shard.get_mut(&event).filter(|g| g.live).ok_or(AdmissionError::Missing)?;
        let (answer, changed) = f(gate);
        if changed {
            gate.version = self.next_version();
        }
        Ok(answer)
    }

    /// For `give`, `push` and `remove`, which move the version whatever happens: runs `f`
    /// on the live gate, or answers `Missing`.
    fn after_store_change<R>(&self, event: EventId, f: impl FnOnce(&mut Gate) -> R) -> Result<R, AdmissionError> {
        let mut shard = self.gates.shard(&event);
        let gate = shard.entry(event).or_default();
        gate.version = self.next_version();
        if gate.live {
            Ok(f(gate))
        } else {
            Err(AdmissionError::Missing)
        }
    }
}

#[async_trait]
impl SlotCounter for MemoryAdmission {
    async fn set_free(&self, event: EventId, free: u32) -> Result<(), AdmissionError> {
        let mut shard = self.gates.shard(&event);
        let gate = shard.entry(event).or_default();
        if !gate.live {
            *gate = Gate { live: true, ..Gate::default() };
        }
        gate.free = free;
        gate.version = self.next_version();
        Ok(())
    }

    async fn take(&self, event: EventId, req: TakeRequest) -> Result<Take, AdmissionError> {
        debug_assert!(req.min >= 1 && req.min <= req.want);
        self.with(event, |g| {
            let queued = req.behind_queue && !g.queue.is_empty();
            let n = req.want.min(g.free);
            if !queued && n >= req.min {
                g.free -= n;
                return (Take::Taken(n), true);
            }
            if req.waitlist_max.is_some_and(|m| g.queue.len() >= m as usize) {
                return (Take::WaitlistFull, false);
            }
            (Take::Short { free: g.free, queued }, false)
        })
    }

    async fn give(&self, event: EventId, n: u32) -> Result<(), AdmissionError> {
        self.after_store_change(event, |g| g.free += n)
    }

    async fn free(&self, event: EventId) -> Result<u32, AdmissionError> {
        self.with(event, |g| (g.free, false))
    }

    async fn forget(&self, event: EventId) -> Result<(), AdmissionError> {
        // A missing gate that keeps the version, so that a rebuild begun before cannot win.
        let mut shard = self.gates.shard(&event);
        *shard.entry(event).or_default() = Gate { version: self.next_version(), ..Gate::default() };
        Ok(())
    }
}

#[async_trait]
impl Waitlist for MemoryAdmission {
    async fn push(&self, event: EventId, entry: WaitEntry) -> Result<Pushed, AdmissionError> {
        self.after_store_change(event, |g| {
            if g.find(entry.booking).is_none() {
                let i = match g.queue.back() {
                    Some(last) if last.seq > entry.seq => g.index_of(entry.seq).unwrap_or_else(|i| i),
                    _ => g.queue.len(),
                };
                g.queue.insert(i, entry);
                g.seqs.insert(entry.booking, entry.seq);
            }
            Pushed { seats_free: g.free > 0 }
        })
    }

    async fn remove(&self, event: EventId, booking: BookingId) -> Result<bool, AdmissionError> {
        self.after_store_change(event, |g| match g.find(booking) {
            Some(i) => {
                g.remove_at(i);
                true
            }
            None => false,
        })
    }

    async fn position(&self, event: EventId, booking: BookingId) -> Result<Option<u32>, AdmissionError> {
        self.with(event, |g| (g.find(booking).map(|i| i as u32 + 1), false))
    }

    async fn len(&self, event: EventId) -> Result<u32, AdmissionError> {
        self.with(event, |g| (g.queue.len() as u32, false))
    }

    async fn list(&self, event: EventId, limit: u32) -> Result<Vec<WaitEntry>, AdmissionError> {
        self.with(event, |g| (g.queue.iter().take(limit as usize).copied().collect(), false))
    }

    async fn pop_fitting(&self, event: EventId, policy: WaitlistPolicy) -> Result<Option<Promotion>, AdmissionError> {
        self.with(event, |g| {
            let (i, seats) = match policy {
                WaitlistPolicy::Fifo => match g.queue.front() {
                    Some(e) if e.seats <= g.free => (0, e.seats),
                    _ => return (None, false),
                },
                WaitlistPolicy::FirstFit => match g.queue.iter().position(|e| e.seats <= g.free) {
                    Some(i) => (i, g.queue[i].seats),
                    None => return (None, false),
                },
                WaitlistPolicy::Partial => match g.queue.front() {
                    Some(e) if g.free >= 1 => (0, e.seats.min(g.free)),
                    _ => return (None, false),
                },
            };
            let entry = g.remove_at(i);
            g.free -= seats;
            (Some(Promotion { entry, seats }), true)
        })
    }

    fn pop_removes(&self) -> bool {
        true
    }

    async fn version(&self, event: EventId) -> Result<u64, AdmissionError> {
        Ok(self.gates.shard(&event).get(&event).map_or(0, |g| g.version))
    }

    async fn restore(&self, event: EventId, version: u64, free: u32, entries: Vec<WaitEntry>) -> Result<bool, AdmissionError> {
        debug_assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));
        let mut shard = self.gates.shard(&event);
        if shard.get(&event).map_or(0, |g| g.version) != version {
            return Ok(false);
        }
        let seqs = entries.iter().map(|e| (e.booking, e.seq)).collect();
        shard.insert(event, Gate { live: true, version: self.next_version(), free, queue: entries.into(), seqs });
        Ok(true)
    }
}
