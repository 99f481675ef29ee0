use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use happening_core::domain::EventView;
use happening_core::ids::{BookingId, EventId, OrgId, UserId};
use happening_core::BookRequest;
use warp::http::StatusCode;
use warp::reply::Response;

use super::*;
use crate::models::*;

/// `POST /bookings`
pub async fn create(ctx: Ctx, key: Option<String>, body: Bytes) -> Result<Response, ApiError> {
    let req: CreateBooking = crate::models::parse(&body)?;
    let fp = fingerprint("book", "/bookings", &body);
    if let Some(replay) = idempotency_check(&ctx, key.as_deref(), fp)? {
        return Ok(replay);
    }
    // Who may book what (members only, for others only as an organizer) is the
    // engine's rule: `Engine::book_as`.
    let b = ctx
        .engine()
        .book_as(
            ctx.user(),
            BookRequest {
                event_id: req.event_id,
                user_id: req.user_id.unwrap_or(ctx.user()),
                seats: req.seats,
                seat_numbers: req.seat_numbers,
                hold_id: req.hold_id,
                accept_partial: req.accept_partial,
                strict_seats: req.strict_seats,
                idempotency_key: key.clone(),
            },
        )
        .await?;
    Ok(respond_idempotent(&ctx, key.as_deref(), fp, StatusCode::CREATED, &BookingDto::from(b)))
}

/// `GET /bookings/:id`
pub async fn get(id: BookingId, ctx: Ctx) -> Result<Response, ApiError> {
    let b = booking_as(&ctx, id).await?;
    ok(&BookingDto::from(b))
}

/// `GET /bookings/:id/history`
pub async fn history(id: BookingId, ctx: Ctx) -> Result<Response, ApiError> {
    booking_as(&ctx, id).await?;
    let h: Vec<HistoryDto> = ctx.engine().history(id).await?.into_iter().map(Into::into).collect();
    ok(&h)
}

/// `GET /bookings/user/:userId?limit=&offset=`: the caller's own bookings; an organizer may
/// read another user's bookings of the events of the organizations they organize (filtered
/// in the store, so that pages count only those).
pub async fn of_user(user: UserId, ctx: Ctx, q: HashMap<String, String>) -> Result<Response, ApiError> {
    let (limit, offset) = paging(&q)?;
    let mut events: HashMap<EventId, Option<EventView>> = HashMap::new();
    let bookings = if user == ctx.user() {
        ctx.engine().user_bookings(user, None, limit, offset).await?
    } else {
        let mine = ctx.engine().orgs_of(ctx.user()).await?;
        // A user of no organization of the caller's does not exist to the caller (404, as
        // anything of another organization), whatever the caller's role elsewhere.
        let theirs: HashSet<_> = ctx.engine().orgs_of(user).await?.into_iter().map(|(o, _)| o.id).collect();
        let shares_an_org = mine.iter().any(|(o, _)| theirs.contains(&o.id));
        let managed: Vec<OrgId> = mine.into_iter().filter(|(_, r)| r.manages_events()).map(|(o, _)| o.id).collect();
        if managed.is_empty() {
            if !shares_an_org {
                return Err(ApiError::not_found(happening_core::error::Entity::User));
            }
            return Err(ApiError::Forbidden("forbidden: only organizers may read another user's bookings".into()));
        }
        let page = ctx.engine().user_bookings(user, Some(&managed), limit, offset).await?;
        // (A former member's bookings of the caller's events stay visible to its organizers;
        // one with none there does not exist to them, whichever page is asked.)
        if page.is_empty() && !shares_an_org && ctx.engine().user_bookings(user, Some(&managed), 1, 0).await?.is_empty() {
            return Err(ApiError::not_found(happening_core::error::Entity::User));
        }
        page
    };
    let mut out = Vec::with_capacity(bookings.len());
    for mut b in bookings {
        if b.status == happening_core::domain::BookingStatus::Waiting {
            // The list is read from the store; the live place in the queue comes with a read.
            if let Ok(live) = ctx.engine().booking(b.id).await {
                b = live;
            }
        }
        let view = match events.get(&b.event_id) {
            Some(v) => v.clone(),
            None => {
                let v = ctx.engine().event(b.event_id).await.ok();
                events.insert(b.event_id, v.clone());
                v
            }
        };
        let dto = BookingDto::from(b);
        out.push(match view {
            Some(v) => dto.with_event(v),
            None => dto,
        });
    }
    ok(&out)
}

/// `POST /bookings/:id/cancel`
pub async fn cancel(id: BookingId, ctx: Ctx, key: Option<String>) -> Result<Response, ApiError> {
    let fp = fingerprint("cancel", &id.to_string(), &Bytes::new());
    if let Some(replay) = idempotency_check(&ctx, key.as_deref(), fp)? {
        return Ok(replay);
    }
    booking_as(&ctx, id).await?;
    let b = ctx.engine().cancel(id, ctx.user(), key.as_deref()).await?;
    Ok(respond_idempotent(&ctx, key.as_deref(), fp, StatusCode::OK, &BookingDto::from(b)))
}

/// `POST /bookings/:id/cancel-seats {seat_numbers}`
pub async fn cancel_seats(id: BookingId, ctx: Ctx, key: Option<String>, body: Bytes) -> Result<Response, ApiError> {
    let req: CancelSeats = crate::models::parse(&body)?;
    let fp = fingerprint("cancel_seats", &id.to_string(), &body);
    if let Some(replay) = idempotency_check(&ctx, key.as_deref(), fp)? {
        return Ok(replay);
    }
    booking_as(&ctx, id).await?;
    let b = ctx.engine().cancel_seats(id, ctx.user(), &req.seat_numbers, key.as_deref()).await?;
    Ok(respond_idempotent(&ctx, key.as_deref(), fp, StatusCode::OK, &BookingDto::from(b)))
}

/// `POST /bookings/:id/accept`: the owner accepts an offer (a repeat answers the same).
/// An organizer who may see the booking is told that only its owner may accept.
pub async fn accept(id: BookingId, ctx: Ctx) -> Result<Response, ApiError> {
    let b = booking_as(&ctx, id).await?;
    if b.user_id != ctx.user() {
        return Err(ApiError::Forbidden("forbidden: only the booking's owner may accept its offer".into()));
    }
    let b = ctx.engine().accept_offer(id).await?;
    ok(&BookingDto::from(b))
}

/// `POST /bookings/:id/decline`: the owner (or an organizer) declines an offer; its seats
/// go to the next in line (a repeat answers the same).
pub async fn decline(id: BookingId, ctx: Ctx) -> Result<Response, ApiError> {
    booking_as(&ctx, id).await?;
    let b = ctx.engine().decline_offer(id).await?;
    ok(&BookingDto::from(b))
}
