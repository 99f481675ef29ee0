//! An admission that runs a step of the test's choosing at one chosen point of the engine's
//! work, so that a race which real traffic hits only now and then happens every time; and
//! that counts the promotion pops of the engine over it in flight at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::domain::WaitlistPolicy;
use crate::ids::{BookingId, EventId};
use crate::ports::*;

/// How long each `pop_fitting` waits: long against a store's round trip, so that two
/// promotion passes running side by side are seen in their pops at once.
pub const POP_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

type Step = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Delegates every call to `inner`; before the next `restore` (the write of a rebuild,
/// after its read of the store), runs the step given to [`Interleave::before_next_restore`].
/// Each `pop_fitting` waits [`POP_DELAY`] before it delegates, so that passes side by side
/// overlap in their pops.
#[derive(Clone)]
pub struct Interleave {
    inner: Arc<dyn Admission>,
    step: Arc<Mutex<Option<Step>>>,
    fired: Arc<AtomicBool>,
    /// `pop_fitting` calls in flight now, and the most at once.
    pops: Arc<Mutex<(u32, u32)>>,
}

impl Interleave {
    /// Wraps `inner`, with no step set yet.
    pub fn new(inner: Arc<dyn Admission>) -> Self {
        Self { inner, step: Arc::default(), fired: Arc::default(), pops: Arc::default() }
    }

    /// The most `pop_fitting` calls that were in flight at once.
    pub fn pops_in_flight_max(&self) -> u32 {
        self.pops.lock().expect("interleave lock poisoned").1
    }

    /// Runs `step` once, before the next `restore` reaches `inner`: a change made between a
    /// rebuild's read of the store and its write.
    pub fn before_next_restore(&self, step: Step) {
        *self.step.lock().expect("interleave lock poisoned") = Some(step);
    }

    /// Whether the step ran.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl SlotCounter for Interleave {
    async fn set_free(&self, event: EventId, free: u32) -> Result<(), AdmissionError> {
        self.inner.set_free(event, free).await
    }
    async fn take(&self, event: EventId, req: TakeRequest) -> Result<Take, AdmissionError> {
        self.inner.take(event, req).await
    }
    fn unchecked_take(&self, event: EventId, req: &TakeRequest) -> bool {
        self.inner.unchecked_take(event, req)
    }
    async fn give(&self, event: EventId, n: u32) -> Result<(), AdmissionError> {
        self.inner.give(event, n).await
    }
    async fn free(&self, event: EventId) -> Result<u32, AdmissionError> {
        self.inner.free(event).await
    }
    async fn forget(&self, event: EventId) -> Result<(), AdmissionError> {
        self.inner.forget(event).await
    }

    async fn generation(&self) -> Result<Option<String>, AdmissionError> {
        self.inner.generation().await
    }
}

#[async_trait]
impl Waitlist for Interleave {
    async fn push(&self, event: EventId, entry: WaitEntry) -> Result<Pushed, AdmissionError> {
        self.inner.push(event, entry).await
    }
    async fn remove(&self, event: EventId, booking: BookingId) -> Result<bool, AdmissionError> {
        self.inner.remove(event, booking).await
    }
    async fn position(&self, event: EventId, booking: BookingId) -> Result<Option<u32>, AdmissionError> {
        self.inner.position(event, booking).await
    }
    async fn len(&self, event: EventId) -> Result<u32, AdmissionError> {
        self.inner.len(event).await
    }
    async fn list(&self, event: EventId, limit: u32) -> Result<Vec<WaitEntry>, AdmissionError> {
        self.inner.list(event, limit).await
    }
    async fn pop_fitting(&self, event: EventId, policy: WaitlistPolicy) -> Result<Option<Promotion>, AdmissionError> {
        {
            let mut pops = self.pops.lock().expect("interleave lock poisoned");
            pops.0 += 1;
            pops.1 = pops.1.max(pops.0);
        }
        tokio::time::sleep(POP_DELAY).await;
        let popped = self.inner.pop_fitting(event, policy).await;
        self.pops.lock().expect("interleave lock poisoned").0 -= 1;
        popped
    }
    fn pop_removes(&self) -> bool {
        self.inner.pop_removes()
    }
    async fn version(&self, event: EventId) -> Result<u64, AdmissionError> {
        self.inner.version(event).await
    }
    async fn restore(&self, event: EventId, version: u64, free: u32, entries: Vec<WaitEntry>) -> Result<bool, AdmissionError> {
        let step = self.step.lock().expect("interleave lock poisoned").take();
        if let Some(step) = step {
            step.await;
            self.fired.store(true, Ordering::SeqCst);
        }
        self.inner.restore(event, version, free, entries).await
    }
}
