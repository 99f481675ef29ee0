use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::domain::Notification;
use crate::ports::{Notifier, NotifierError};

/// A Notifier that keeps what it was given, in order: for tests and for embedding
/// (read it with [`MemoryNotifier::take`]).
#[derive(Clone, Default)]
pub struct MemoryNotifier {
    delivered: Arc<Mutex<Vec<Notification>>>,
}

impl MemoryNotifier {
    /// A notifier that has been given nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes and returns everything delivered so far.
    pub fn take(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.delivered.lock().expect("notifier lock poisoned"))
    }

    /// How many notifications it holds: delivered and not yet taken.
    pub fn len(&self) -> usize {
        self.delivered.lock().expect("notifier lock poisoned").len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn deliver(&self, batch: &[Notification]) -> Result<(), NotifierError> {
        self.delivered.lock().expect("notifier lock poisoned").extend_from_slice(batch);
        Ok(())
    }
}
