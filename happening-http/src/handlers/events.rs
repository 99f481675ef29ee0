use std::collections::HashMap;

use bytes::Bytes;
use happening_core::domain::{EventFilter, EventPatch, NewEvent, Role, WaitlistPolicy};
use happening_core::error::Entity;
use happening_core::ids::{EventId, HoldId, OrgId};
use happening_core::HoldRequest;
use warp::http::StatusCode;
use warp::reply::Response;

use super::*;
use crate::models::*;

/// `POST /events`: organizers and orgAdmins of `org_id`.
pub async fn create(ctx: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let req: CreateEvent = crate::models::parse(&body)?;
    ctx.engine().authorize(ctx.user(), req.org_id, Role::Organizer).await?;
    let view = ctx
        .engine()
        .create_event(NewEvent {
            org_id: req.org_id,
            name: req.name,
            description: req.description,
            category: req.category,
            event_date: req.event_date,
            capacity: req.total_slots,
            policy: req.waitlist_policy.unwrap_or(WaitlistPolicy::Fifo),
            waitlist_max: req.waitlist_max,
            offer_ttl_seconds: req.offer_ttl_seconds,
        })
        .await?;
    Ok(json(StatusCode::CREATED, &EventDto::from(view)))
}

/// `GET /events?org_id=&limit=&offset=`: events of the caller's organizations.
pub async fn list(ctx: Ctx, q: HashMap<String, String>) -> Result<Response, ApiError> {
    let (limit, offset) = paging(&q)?;
    let mine: Vec<OrgId> = ctx.engine().orgs_of(ctx.user()).await?.into_iter().map(|(o, _)| o.id).collect();
    let org_ids = match q.get("org_id") {
        Some(s) => {
            let id: OrgId = s.parse().map_err(|_| ApiError::bad("org_id", "invalid org_id: must be a UUID"))?;
            if !mine.contains(&id) {
                return Err(ApiError::not_found(Entity::Organization));
            }
            vec![id]
        }
        None => mine,
    };
    if org_ids.is_empty() {
        return ok(&Vec::<EventDto>::new());
    }
    let list: Vec<EventDto> = ctx.engine().list_events(EventFilter { org_ids, limit, offset }).await?.into_iter().map(Into::into).collect();
    ok(&list)
}

/// `GET /events/:id`
pub async fn get(id: EventId, ctx: Ctx) -> Result<Response, ApiError> {
    event_as(&ctx, id, Role::User).await?;
    ok(&EventDto::from(ctx.engine().event(id).await?))
}

/// `PUT /events/:id` (partial)
pub async fn update(id: EventId, ctx: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let req: UpdateEvent = crate::models::parse(&body)?;
    event_as(&ctx, id, Role::Organizer).await?;
    let patch = EventPatch {
        name: req.name,
        description: req.description,
        category: req.category,
        event_date: req.event_date,
        capacity: req.total_slots,
        policy: req.waitlist_policy,
        waitlist_max: req.waitlist_max,
        offer_ttl_seconds: req.offer_ttl_seconds,
    };
    let view = ctx.engine().update_event(id, patch).await?;
    ok(&EventDto::from(view))
}

/// `DELETE /events/:id`
pub async fn delete(id: EventId, ctx: Ctx) -> Result<Response, ApiError> {
    event_as(&ctx, id, Role::Organizer).await?;
    ctx.engine().delete_event(id).await?;
    no_content()
}

/// `POST /events/:id/cancel`
pub async fn cancel(id: EventId, ctx: Ctx) -> Result<Response, ApiError> {
    event_as(&ctx, id, Role::Organizer).await?;
    ctx.engine().cancel_event(id).await?;
    ok(&EventDto::from(ctx.engine().event(id).await?))
}

/// `GET /events/:id/seats`
pub async fn seats(id: EventId, ctx: Ctx) -> Result<Response, ApiError> {
    event_as(&ctx, id, Role::User).await?;
    ok(&SeatMapDto::from(ctx.engine().seat_map(id).await?))
}

/// `GET /events/:id/waitlist?limit=&offset=`
pub async fn waitlist(id: EventId, ctx: Ctx, q: HashMap<String, String>) -> Result<Response, ApiError> {
    let (limit, offset) = paging(&q)?;
    event_as(&ctx, id, Role::User).await?;
    let list: Vec<BookingDto> = ctx.engine().waitlist(id, limit, offset).await?.into_iter().map(Into::into).collect();
    ok(&list)
}

/// `POST /events/:id/holds {seats | seat_numbers, ttl_seconds}`
pub async fn hold(id: EventId, ctx: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let req: CreateHold = crate::models::parse(&body)?;
    let l = ctx.engine().limits();
    let (min, max) = (l.hold_ttl_ms_min.div_ceil(1000), l.hold_ttl_ms_max / 1000);
    let ttl = req.ttl_seconds.unwrap_or(ctx.st.settings.default_hold_ttl_secs);
    if ttl < min || ttl > max {
        return Err(ApiError::bad("ttl_seconds", format!("invalid ttl_seconds: must be between {min} and {max}")));
    }
    event_as(&ctx, id, Role::User).await?;
    let h = ctx
        .engine()
        .hold(HoldRequest { event_id: id, user_id: ctx.user(), seats: req.seats, seat_numbers: req.seat_numbers, ttl_ms: ttl * 1000 })
        .await?;
    Ok(json(StatusCode::CREATED, &HoldDto::from(h)))
}

/// The hold, if it is of this event and the caller owns it or organizes the event.
async fn hold_as(ctx: &Ctx, id: EventId, hold: HoldId) -> Result<happening_core::domain::Hold, ApiError> {
    event_as(ctx, id, Role::User).await?;
    let h = ctx.engine().get_hold(hold).await?;
    if h.event_id != id {
        return Err(ApiError::not_found(Entity::Hold));
    }
    if h.user_id != ctx.user() && event_as(ctx, id, Role::Organizer).await.is_err() {
        return Err(ApiError::not_found(Entity::Hold));
    }
    Ok(h)
}

/// `GET /events/:id/holds/:hold_id`
pub async fn get_hold(id: EventId, hold: HoldId, ctx: Ctx) -> Result<Response, ApiError> {
    ok(&HoldDto::from(hold_as(&ctx, id, hold).await?))
}

/// `DELETE /events/:id/holds/:hold_id` (its owner)
pub async fn release_hold(id: EventId, hold: HoldId, ctx: Ctx) -> Result<Response, ApiError> {
    hold_as(&ctx, id, hold).await?;
    let h = ctx.engine().release_hold(hold, ctx.user()).await?;
    ok(&HoldDto::from(h))
}
