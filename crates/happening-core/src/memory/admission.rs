use std::collections::VecDeque;
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
}

impl MemoryAdmission {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, event: EventId, f: impl FnOnce(&mut Gate) -> R) -> Result<R, AdmissionError> {
        let mut shard = self.gates.shard(&event);
        shard.get_mut(&event).map(f).ok_or(AdmissionError::Missing)
    }
}

#[async_trait]
impl SlotCounter for MemoryAdmission {
    async fn set_free(&self, event: EventId, free: u32) -> Result<(), AdmissionError> {
        self.gates.shard(&event).entry(event).or_default().free = free;
        Ok(())
    }

    async fn take(&self, event: EventId, req: TakeRequest) -> Result<Take, AdmissionError> {
        debug_assert!(req.min >= 1 && req.min <= req.want);
        self.with(event, |g| {
            if req.behind_queue && !g.queue.is_empty() {
                return Take::Short { free: g.free, queued: true };
            }
            let n = req.want.min(g.free);
            if n >= req.min {
                g.free -= n;
                Take::Taken(n)
            } else {
                Take::Short { free: g.free, queued: false }
            }
        })
    }

    async fn give(&self, event: EventId, n: u32) -> Result<(), AdmissionError> {
        self.with(event, |g| g.free += n)
    }

    async fn free(&self, event: EventId) -> Result<u32, AdmissionError> {
        self.with(event, |g| g.free)
    }

    async fn forget(&self, event: EventId) -> Result<(), AdmissionError> {
        self.gates.remove(&event);
        Ok(())
    }
}

#[async_trait]
impl Waitlist for MemoryAdmission {
    async fn push(&self, event: EventId, entry: WaitEntry) -> Result<u32, AdmissionError> {
        self.with(event, |g| {
            if let Some(i) = g.find(entry.booking) {
                return i as u32 + 1;
            }
            let i = match g.queue.back() {
                Some(last) if last.seq > entry.seq => g.index_of(entry.seq).unwrap_or_else(|i| i),
                _ => g.queue.len(),
            };
            g.queue.insert(i, entry);
            g.seqs.insert(entry.booking, entry.seq);
            i as u32 + 1
        })
    }

    async fn remove(&self, event: EventId, booking: BookingId) -> Result<bool, AdmissionError> {
        self.with(event, |g| match g.find(booking) {
            Some(i) => {
                g.remove_at(i);
                true
            }
            None => false,
        })
    }

    async fn position(&self, event: EventId, booking: BookingId) -> Result<Option<u32>, AdmissionError> {
        self.with(event, |g| g.find(booking).map(|i| i as u32 + 1))
    }

    async fn len(&self, event: EventId) -> Result<u32, AdmissionError> {
        self.with(event, |g| g.queue.len() as u32)
    }

    async fn list(&self, event: EventId, limit: u32) -> Result<Vec<WaitEntry>, AdmissionError> {
        self.with(event, |g| g.queue.iter().take(limit as usize).copied().collect())
    }

    async fn pop_fitting(&self, event: EventId, policy: WaitlistPolicy) -> Result<Option<Promotion>, AdmissionError> {
        self.with(event, |g| {
            let (i, seats) = match policy {
                WaitlistPolicy::Fifo => match g.queue.front() {
                    Some(e) if e.seats <= g.free => (0, e.seats),
                    _ => return None,
                },
                WaitlistPolicy::FirstFit => match g.queue.iter().position(|e| e.seats <= g.free) {
                    Some(i) => (i, g.queue[i].seats),
                    None => return None,
                },
                WaitlistPolicy::Partial => match g.queue.front() {
                    Some(e) if g.free >= 1 => (0, e.seats.min(g.free)),
                    _ => return None,
                },
            };
            let entry = g.remove_at(i);
            g.free -= seats;
            Some(Promotion { entry, seats })
        })
    }

    async fn replace(&self, event: EventId, entries: Vec<WaitEntry>) -> Result<(), AdmissionError> {
        debug_assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));
        let mut shard = self.gates.shard(&event);
        let gate = shard.entry(event).or_default();
        gate.seqs = entries.iter().map(|e| (e.booking, e.seq)).collect();
        gate.queue = entries.into();
        Ok(())
    }
}
