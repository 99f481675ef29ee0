//! The system's invariants (ARCHITECTURE.md), checked on one event against the store and the admission
//! state. Call at quiescence (no operation in flight).
//!
//! The checks are the production audit's ([`Engine::audit_event`]): one definition of the
//! invariants, which `happening audit` runs against a deployment.

use crate::engine::{AuditOptions, Engine};
use crate::ids::EventId;

/// Checks every invariant of `event`; the error says which broke and how (one line per
/// breach).
pub async fn check(engine: &Engine, event: EventId) -> Result<(), String> {
    let audit = engine.audit_event(event, &AuditOptions::default()).await.map_err(|e| format!("audit of event {event}: {e}"))?;
    if audit.admission_missing {
        return Err(format!("admission has no counter for event {event}"));
    }
    if audit.breaches.is_empty() {
        return Ok(());
    }
    Err(audit.breaches.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("\n"))
}
