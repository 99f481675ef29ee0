//! Request handlers: parse, authorize (role per organization, tenancy as 404), call the
//! engine, answer JSON. They never reject: errors are answered through [`ApiError`].

pub mod attendees;
pub mod bookings;
pub mod events;
pub mod orgs;
pub mod system;
pub mod users;

use std::collections::HashMap;

use bytes::Bytes;
use happening_core::domain::{Booking, Event, Role};
use happening_core::error::Entity;
use happening_core::ids::{BookingId, EventId};
use happening_core::Error as CoreError;
use serde::Serialize;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::error::ApiError;
use crate::idempotency::{self, Lookup, Stored};
use crate::state::Ctx;

pub fn to_bytes<T: Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("response serializes"))
}

pub fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

pub fn json<T: Serialize>(status: StatusCode, v: &T) -> Response {
    json_bytes(status, to_bytes(v))
}

pub fn ok<T: Serialize>(v: &T) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, v))
}

pub fn no_content() -> Result<Response, ApiError> {
    let mut res = Response::new(warp::hyper::Body::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    Ok(res)
}

/// The event, if the caller has at least `role` in its organization. To a non-member the
/// event does not exist (404); a member with too small a role gets 403.
///
/// Reads the event row and the caller's membership in one store read, not the event's live
/// counts (on PostgreSQL those are counted over the event's seat rows: too much to pay on
/// every booking just to authorize it).
///
/// A grant read less than `--auth-cache-ms` ago is used without reading the store
/// ([`Engine::with_auth_cache`](happening_core::Engine::with_auth_cache)); a refusal is
/// always read again.
pub async fn event_as(ctx: &Ctx, id: EventId, role: Role) -> Result<Event, ApiError> {
    Ok(ctx.engine().event_as(ctx.user(), id, role).await?.0)
}

/// The booking, if the caller owns it or is an organizer (or orgAdmin) of its event's
/// organization. Another organization's booking does not exist (404); a co-member who is
/// neither gets 403.
pub async fn booking_as(ctx: &Ctx, id: BookingId) -> Result<Booking, ApiError> {
    let b = ctx.engine().booking(id).await?;
    if b.user_id == ctx.user() {
        return Ok(b);
    }
    let view = ctx.engine().event(b.event_id).await.map_err(|_| ApiError::not_found(Entity::Booking))?;
    match ctx.engine().authorize(ctx.user(), view.event.org_id, Role::Organizer).await {
        Ok(_) => Ok(b),
        Err(CoreError::NotFound(_)) => Err(ApiError::not_found(Entity::Booking)),
        Err(CoreError::Forbidden(_)) => {
            Err(ApiError::Forbidden("forbidden: only the booking's owner or an organizer of the event may do this".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks an `Idempotency-Key` and looks it up: `Ok(Some(response))` is the replay of the
/// first answer, `Err` a malformed key or one used with another request (422).
pub fn idempotency_check(ctx: &Ctx, key: Option<&str>, fingerprint: u64) -> Result<Option<Response>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    if !ctx.engine().limits().idempotency_key_ok(key) {
        let max = ctx.engine().limits().idempotency_key_bytes_max;
        return Err(ApiError::bad("Idempotency-Key", format!("invalid Idempotency-Key: must be 1 to {max} visible ASCII characters")));
    }
    match ctx.st.idempotency.lookup(ctx.user(), key, fingerprint) {
        Lookup::Miss => Ok(None),
        Lookup::Mismatch => Err(ApiError::IdempotencyMismatch),
        Lookup::Replay(s) => {
            let mut res = json_bytes(s.status, s.body);
            res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(Some(res))
        }
    }
}

/// Answers `status` with `v`, remembering it under the idempotency key if there is one.
pub fn respond_idempotent<T: Serialize>(ctx: &Ctx, key: Option<&str>, fingerprint: u64, status: StatusCode, v: &T) -> Response {
    let body = to_bytes(v);
    if let Some(key) = key {
        ctx.st.idempotency.store(ctx.user(), key, Stored { fingerprint, status, body: body.clone() });
    }
    json_bytes(status, body)
}

pub fn fingerprint(op: &str, path: &str, body: &Bytes) -> u64 {
    idempotency::fingerprint(op, path, body)
}

/// Rows per page when a list request gives no `limit` (the engine caps any at its
/// `Limits::page_size_max`, 500).
pub const PAGE_SIZE_DEFAULT: u32 = 100;

/// `limit` and `offset` from a query string, each a number if present.
pub fn paging(q: &HashMap<String, String>) -> Result<(u32, u32), ApiError> {
    let num = |name: &str| -> Result<Option<u32>, ApiError> {
        q.get(name)
            .map(|v| v.parse::<u32>().map_err(|_| ApiError::bad(name, format!("invalid {name}: must be a non-negative integer"))))
            .transpose()
    };
    Ok((num("limit")?.unwrap_or(PAGE_SIZE_DEFAULT), num("offset")?.unwrap_or(0)))
}
