//! Driver errors become port errors here, at the seam: callers never see SQL.

use happening_core::error::{BackendError, Entity};
use happening_core::ports::{AdmissionError, StoreError};

/// A database error as a store error. A foreign-key violation on an event's organization
/// is the one the engine can meet in a race (the organization deleted meanwhile); every
/// other failure is opaque.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.constraint() == Some("events_org_id_fkey") {
            return StoreError::NotFound(Entity::Organization);
        }
        if d.constraint() == Some("organization_users_user_id_fkey") {
            return StoreError::NotFound(Entity::User);
        }
    }
    StoreError::Backend(BackendError::new(e))
}

pub(crate) fn adm(e: sqlx::Error) -> AdmissionError {
    AdmissionError::Backend(BackendError::new(e))
}
