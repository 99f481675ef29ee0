//! An admission that runs a step of the test's choosing at one chosen point of the engine's
//! work, so that a race which real traffic hits only now and then happens every time.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::domain::WaitlistPolicy;
use crate::ids::{BookingId, EventId};
use crate::ports::*;

type Step = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Delegates every call to `inner`; before the next `restore` (the write of a rebuild,
/// after its read of the store), runs the step given to [`Interleave::before_next_restore`].
#[derive(Clone)]
pub struct Interleave {
    inner: Arc<dyn Admission>,
    step: Arc<Mutex<Option<Step>>>,
    fired: Arc<AtomicBool>,
}

impl Interleave {
    pub fn new(inner: Arc<dyn Admission>) -> Self {
        Self { inner, step: Arc::default(), fired: Arc::default() }
    }

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
    async fn give(&self, event: EventId, n: u32) -> Result<(), AdmissionError> {
        self.inner.give(event, n).await
    }
    async fn free(&self, event: EventId) -> Result<u32, AdmissionError> {
        self.inner.free(event).await
    }
    async fn forget(&self, event: EventId) -> Result<(), AdmissionError> {
        self.inner.forget(event).await
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
        self.inner.pop_fitting(event, policy).await
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
