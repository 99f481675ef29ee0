use std::convert::Infallible;
use std::time::Duration;

use happening_core::domain::Role;
use happening_core::error::Entity;
use happening_core::ids::EventId;
use happening_core::{Engine, Error as CoreError};
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::sse::Event as SseEvent;
use warp::Reply;

use super::*;
use crate::live::Full;
use crate::models::{LiveSnapshot, WaitingDto};
use crate::state::{Ctx, State};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Response {
    json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// `GET /readyz`: every configured store answers (and we are not shutting down). Each
/// check has a short timeout; a failure answers 503 naming the store, never its error
/// (that is logged).
pub async fn readyz(st: State) -> Response {
    let backends: serde_json::Map<String, serde_json::Value> =
        st.settings.backends.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    if st.shutting_down() {
        return json(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": "shutting down", "status": "shutting down", "stores": backends }));
    }
    let mut failing: Vec<&'static str> = Vec::new();
    // A read that touches the seat store through the engine: a missing user is a healthy answer.
    let seat_store = st.settings.backends.iter().find(|(k, _)| *k == "seat_store").map_or("seat_store", |(_, v)| *v);
    match tokio::time::timeout(crate::readiness::CHECK_TIMEOUT, st.engine.user_by_subject("readyz-probe")).await {
        Ok(Ok(_)) | Ok(Err(CoreError::NotFound(_))) => {}
        Ok(Err(e)) => {
            tracing::warn!(store = seat_store, error = %e, "readiness probe failed");
            failing.push(seat_store);
        }
        Err(_) => {
            tracing::warn!(store = seat_store, "readiness probe timed out");
            failing.push(seat_store);
        }
    }
    // Stores that are not required (RabbitMQ): reported, but the server stays ready.
    let mut degraded: Vec<&'static str> = Vec::new();
    for check in &st.checks {
        if let Err(e) = crate::readiness::run(check.as_ref()).await {
            tracing::warn!(store = check.name(), error = %e, required = check.required(), "readiness check failed");
            let list = if check.required() { &mut failing } else { &mut degraded };
            if !list.contains(&check.name()) {
                list.push(check.name());
            }
        }
    }
    if failing.is_empty() && degraded.is_empty() {
        json(StatusCode::OK, &json!({ "status": "ready", "stores": backends }))
    } else if failing.is_empty() {
        json(StatusCode::OK, &json!({ "status": "degraded", "degraded": degraded, "stores": backends }))
    } else {
        let error = format!("{} unavailable", failing.join(", "));
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": error, "status": "unavailable", "failing": failing, "degraded": degraded, "stores": backends }),
        )
    }
}

/// `GET /metrics` (Prometheus text format)
pub async fn metrics(st: State) -> Response {
    let depth = match st.engine.outbox_depth().await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: reading the outbox depth failed");
            None
        }
    };
    let mut res = Response::new(st.metrics.render(depth).into());
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    res
}

/// `GET /openapi.json`: the document, serialized once when the routes are built.
pub async fn openapi(document: Bytes) -> Response {
    json_bytes(StatusCode::OK, document)
}

/// The seat map and waitlist of an event, as the stream sends them.
pub async fn snapshot(engine: &Engine, id: EventId) -> Result<LiveSnapshot, CoreError> {
    let view = engine.event(id).await?;
    let map = engine.seat_map(id).await?;
    let waiting = engine
        .waitlist(id, 0, 0)
        .await?
        .into_iter()
        .map(|b| WaitingDto { booking_id: b.id, seats: b.seats_requested, waiting_number: b.waiting_number.unwrap_or(0) })
        .collect();
    let available_slots = map.total.saturating_sub(map.taken.len() as u32 + map.held.len() as u32);
    Ok(LiveSnapshot {
        event_id: id,
        status: view.event.status,
        total: map.total,
        taken: map.taken,
        held: map.held,
        available_slots,
        waiting,
    })
}

struct Stream {
    ctx: Ctx,
    id: EventId,
    sub: crate::live::Subscription,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// When to check again that the caller may see the event.
    recheck: tokio::time::Interval,
    /// When the caller's token expires: the stream ends with it.
    expires: std::pin::Pin<Box<tokio::time::Sleep>>,
    first: bool,
    done: bool,
}

/// The `error` item that ends a stream.
fn stream_error(message: &str) -> SseEvent {
    SseEvent::default().event("error").data(json!({ "error": message }).to_string())
}

/// `GET /events/:id/stream`: server-sent events. A `seats` event with the seat map and the
/// waitlist at once, then after every change (bursts coalesced); `deleted` when the event
/// goes away. Ends when the server shuts down, when the caller's token expires, or when a
/// periodic check finds the caller no longer a member (an `error` item says which): the
/// check made at the start must not let a removed member watch for as long as they like.
pub async fn stream(id: EventId, ctx: Ctx) -> Result<Response, ApiError> {
    event_as(&ctx, id, Role::User).await?;
    let st = ctx.st.clone();
    let sub = match st.live.subscribe(id, ctx.user(), st.settings.max_streams, st.settings.max_streams_per_user) {
        Ok(sub) => sub,
        Err(Full::Server) => return Err(ApiError::Unavailable("too many live streams open, try again later".into())),
        Err(Full::User) => {
            return Err(ApiError::TooManyRequests(format!(
                "too many live streams open for this user (at most {}); close one first",
                st.settings.max_streams_per_user
            )))
        }
    };
    // Heard from the other servers from now on: the first snapshot, read after, misses none.
    st.live.watch(id).await;
    let period = Duration::from_millis(st.settings.stream_recheck_ms.max(1));
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let left = Duration::from_secs(ctx.id.claims.exp.saturating_sub(crate::auth::now_secs()).max(0) as u64);
    let expires = Box::pin(tokio::time::sleep(left));
    let s = Stream { sub, shutdown: st.shutdown.subscribe(), ctx, id, recheck, expires, first: true, done: false };
    let events = futures_util::stream::unfold(s, |mut s| async move {
        if s.done || *s.shutdown.borrow() {
            return None;
        }
        if !s.first {
            loop {
                tokio::select! {
                    r = s.sub.rx.recv() => {
                        if let Err(RecvError::Closed) = r {
                            return None;
                        }
                        break;
                    }
                    _ = s.shutdown.changed() => return None,
                    _ = &mut s.expires => {
                        s.done = true;
                        return Some((Ok(stream_error("token expired")), s));
                    }
                    _ = s.recheck.tick() => match event_as(&s.ctx, s.id, Role::User).await {
                        Ok(_) => continue,
                        // Removed from the organization: as a 404 would say. (A deleted
                        // event is told as `deleted`, as when its change arrives first.)
                        Err(ApiError::Core(CoreError::NotFound(_))) => {
                            s.done = true;
                            let ev = match s.ctx.engine().event(s.id).await {
                                Err(CoreError::NotFound(Entity::Event)) => SseEvent::default().event("deleted").data(json!({ "event_id": s.id }).to_string()),
                                _ => stream_error("event not found"),
                            };
                            return Some((Ok(ev), s));
                        }
                        Err(e) => {
                            tracing::warn!(error = ?e, "live stream access check failed");
                            s.done = true;
                            return Some((Ok(stream_error("service unavailable")), s));
                        }
                    },
                }
            }
            // Coalesce whatever else arrived meanwhile into this one snapshot.
            while let Ok(()) | Err(TryRecvError::Lagged(_)) = s.sub.rx.try_recv() {}
        }
        s.first = false;
        let ev = match snapshot(&s.ctx.st.engine, s.id).await {
            Ok(snap) => SseEvent::default().event("seats").json_data(&snap).expect("snapshot serializes"),
            Err(CoreError::NotFound(Entity::Event)) => {
                s.done = true;
                SseEvent::default().event("deleted").data(json!({ "event_id": s.id }).to_string())
            }
            Err(e) => {
                tracing::warn!(error = %e, "live stream snapshot failed");
                s.done = true;
                stream_error("service unavailable")
            }
        };
        Some((Ok::<_, Infallible>(ev), s))
    });
    Ok(warp::sse::reply(warp::sse::keep_alive().stream(events)).into_response())
}
