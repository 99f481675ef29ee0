//! The routes as warp filters. Each route matches its path and method first, then
//! authenticates, then reads its body; handlers never reject (they answer errors as
//! responses), so the only rejections are "no such route", "wrong method" and the
//! authentication and body filters, all turned into JSON by the one `recover`.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use happening_core::ids::*;
use std::collections::HashMap;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::error::{done, recover, reject, ApiError};
use crate::handlers::{attendees, bookings, events, orgs, system, users};
use crate::route_table::{self, fits};
use crate::state::{Ctx, State};

fn with_state(st: State) -> impl Filter<Extract = (State,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || st.clone())
}

/// The caller: a verified bearer token, its user, within the rate limit.
pub fn auth(st: State) -> impl Filter<Extract = (Ctx,), Error = Rejection> + Clone {
    authorization().and(with_state(st)).and_then(|h: Option<String>, st: State| caller(st, h))
}

/// The caller of the live stream: as [`auth`], or with the token in `?access_token=` when
/// there is no `Authorization` header, because a browser's `EventSource` cannot send one.
/// Only this route takes it: a token in a URL can reach proxies' logs (the server's own log
/// lines carry the path without the query).
pub fn stream_auth(st: State) -> impl Filter<Extract = (Ctx,), Error = Rejection> + Clone {
    let token = query().map(|q: HashMap<String, String>| q.get("access_token").map(|t| format!("Bearer {t}")));
    authorization().and(token).and(with_state(st)).and_then(|h: Option<String>, q: Option<String>, st: State| caller(st, h.or(q)))
}

/// The `Authorization` header, if any. Read as bytes: one that is not visible ASCII is a
/// malformed token (401 like any other), not a 400 "invalid header" from warp.
fn authorization() -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    warp::header::value("authorization")
        .map(|v: warp::http::HeaderValue| Some(v.to_str().unwrap_or("").to_string()))
        .or(warp::any().map(|| None))
        .unify()
}

async fn caller(st: State, header: Option<String>) -> Result<Ctx, Rejection> {
    match st.authenticate(header.as_deref()).await {
        Ok(id) => Ok(Ctx { st, id }),
        Err(e) => Err(reject(e)),
    }
}

/// The request body, at most `limit` bytes (413 past it, with or without Content-Length).
pub fn body(limit: u64) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length").and(warp::body::stream()).and_then(move |len: Option<u64>, s| collect(limit, len, s))
}

async fn collect<S, B>(limit: u64, len: Option<u64>, s: S) -> Result<Bytes, Rejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    if len.is_some_and(|l| l > limit) {
        return Err(reject(ApiError::PayloadTooLarge(limit)));
    }
    futures_util::pin_mut!(s);
    let mut buf = BytesMut::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|_| reject(ApiError::BadRequest { field: None, message: "could not read the request body".into() }))?;
        let chunk: &[u8] = chunk.chunk();
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(reject(ApiError::PayloadTooLarge(limit)));
        }
        buf.extend_from_slice(chunk);
    }
    Ok(buf.freeze())
}

fn idem() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("idempotency-key")
}

fn query() -> impl Filter<Extract = (HashMap<String, String>,), Error = Rejection> + Clone {
    warp::query::<HashMap<String, String>>()
}

/// Every route, with the recover and the metrics and request logging around them.
pub fn routes(st: State) -> BoxedFilter<(Response,)> {
    let limit = st.settings.body_limit;
    let a = || auth(st.clone());

    let bookings = {
        let create = warp::path!("bookings").and(warp::post()).and(a()).and(idem()).and(body(limit)).then(bookings::create).map(done);
        let get = warp::path!("bookings" / BookingId).and(warp::get()).and(a()).then(bookings::get).map(done);
        let history = warp::path!("bookings" / BookingId / "history").and(warp::get()).and(a()).then(bookings::history).map(done);
        let of_user = warp::path!("bookings" / "user" / UserId).and(warp::get()).and(a()).and(query()).then(bookings::of_user).map(done);
        let cancel = warp::path!("bookings" / BookingId / "cancel").and(warp::post()).and(a()).and(idem()).then(bookings::cancel).map(done);
        let cancel_seats = warp::path!("bookings" / BookingId / "cancel-seats")
            .and(warp::post())
            .and(a())
            .and(idem())
            .and(body(limit))
            .then(bookings::cancel_seats)
            .map(done);
        let accept = warp::path!("bookings" / BookingId / "accept").and(warp::post()).and(a()).then(bookings::accept).map(done);
        let decline = warp::path!("bookings" / BookingId / "decline").and(warp::post()).and(a()).then(bookings::decline).map(done);
        create
            .or(get)
            .unify()
            .or(history)
            .unify()
            .or(of_user)
            .unify()
            .or(cancel)
            .unify()
            .or(cancel_seats)
            .unify()
            .or(accept)
            .unify()
            .or(decline)
            .unify()
            .boxed()
    };

    let events = {
        let create = warp::path!("events").and(warp::post()).and(a()).and(body(limit)).then(events::create).map(done);
        let list = warp::path!("events").and(warp::get()).and(a()).and(query()).then(events::list).map(done);
        let get = warp::path!("events" / EventId).and(warp::get()).and(a()).then(events::get).map(done);
        let update = warp::path!("events" / EventId).and(warp::put()).and(a()).and(body(limit)).then(events::update).map(done);
        let delete = warp::path!("events" / EventId).and(warp::delete()).and(a()).then(events::delete).map(done);
        let cancel = warp::path!("events" / EventId / "cancel").and(warp::post()).and(a()).then(events::cancel).map(done);
        let seats = warp::path!("events" / EventId / "seats").and(warp::get()).and(a()).then(events::seats).map(done);
        let waitlist = warp::path!("events" / EventId / "waitlist").and(warp::get()).and(a()).and(query()).then(events::waitlist).map(done);
        let attendees = warp::path!("events" / EventId / "bookings").and(warp::get()).and(a()).and(query()).then(attendees::list).map(done);
        let attendees_csv =
            warp::path!("events" / EventId / "bookings.csv").and(warp::get()).and(a()).and(query()).then(attendees::csv).map(done);
        let stream =
            warp::path!("events" / EventId / "stream").and(warp::get()).and(stream_auth(st.clone())).then(system::stream).map(done);
        let hold = warp::path!("events" / EventId / "holds").and(warp::post()).and(a()).and(body(limit)).then(events::hold).map(done);
        let get_hold = warp::path!("events" / EventId / "holds" / HoldId).and(warp::get()).and(a()).then(events::get_hold).map(done);
        let release = warp::path!("events" / EventId / "holds" / HoldId).and(warp::delete()).and(a()).then(events::release_hold).map(done);
        create
            .or(list)
            .unify()
            .or(get)
            .unify()
            .or(update)
            .unify()
            .or(delete)
            .unify()
            .or(cancel)
            .unify()
            .or(seats)
            .unify()
            .or(waitlist)
            .unify()
            .or(attendees)
            .unify()
            .or(attendees_csv)
            .unify()
            .or(stream)
            .unify()
            .or(hold)
            .unify()
            .or(get_hold)
            .unify()
            .or(release)
            .unify()
            .boxed()
    };

    let people = {
        let upsert = warp::path!("users").and(warp::post()).and(a()).and(body(limit)).then(users::upsert).map(done);
        let me = warp::path!("users" / "me").and(warp::get()).and(a()).then(users::me).map(done);
        let by_sub = warp::path!("users").and(warp::get()).and(a()).and(query()).then(users::by_subject).map(done);
        let org_of_user = warp::path!("organizations" / "user" / UserId).and(warp::get()).and(a()).then(orgs::of_user).map(done);
        let notes = warp::path!("notifications").and(warp::get()).and(a()).and(query()).then(users::notifications).map(done);
        let read = warp::path!("notifications" / NotificationId / "read").and(warp::post()).and(a()).then(users::mark_read).map(done);
        let org_create = warp::path!("organizations").and(warp::post()).and(a()).and(body(limit)).then(orgs::create).map(done);
        let org_list = warp::path!("organizations").and(warp::get()).and(a()).then(orgs::list).map(done);
        let org_get = warp::path!("organizations" / OrgId).and(warp::get()).and(a()).then(orgs::get).map(done);
        let members = warp::path!("organizations" / OrgId / "members").and(warp::get()).and(a()).then(orgs::members).map(done);
        let add =
            warp::path!("organizations" / OrgId / "members").and(warp::post()).and(a()).and(body(limit)).then(orgs::add_member).map(done);
        let set_role = warp::path!("organizations" / OrgId / "members" / UserId)
            .and(warp::put())
            .and(a())
            .and(body(limit))
            .then(orgs::set_role)
            .map(done);
        let remove =
            warp::path!("organizations" / OrgId / "members" / UserId).and(warp::delete()).and(a()).then(orgs::remove_member).map(done);
        let invite = warp::path!("org-invites").and(warp::post()).and(a()).and(body(limit)).then(orgs::invite).map(done);
        let get_invite = warp::path!("org-invites" / String).and(warp::get()).and(a()).then(orgs::get_invite).map(done);
        let accept = warp::path!("org-invites" / String / "accept").and(warp::post()).and(a()).then(orgs::accept_invite).map(done);
        upsert
            .or(me)
            .unify()
            .or(by_sub)
            .unify()
            .or(org_of_user)
            .unify()
            .or(notes)
            .unify()
            .or(read)
            .unify()
            .or(org_create)
            .unify()
            .or(org_list)
            .unify()
            .or(org_get)
            .unify()
            .or(members)
            .unify()
            .or(add)
            .unify()
            .or(set_role)
            .unify()
            .or(remove)
            .unify()
            .or(invite)
            .unify()
            .or(get_invite)
            .unify()
            .or(accept)
            .unify()
            .boxed()
    };

    let ops = {
        let s = || with_state(st.clone());
        let health = warp::path!("healthz").and(warp::get()).then(system::healthz);
        let ready = warp::path!("readyz").and(warp::get()).and(s()).then(system::readyz);
        let metrics = warp::path!("metrics").and(warp::get()).and(s()).then(system::metrics);
        let document = Bytes::from(serde_json::to_vec_pretty(&crate::openapi::served()).expect("openapi serializes"));
        let openapi = warp::path!("openapi.json").and(warp::get()).map(move || document.clone()).then(system::openapi);
        health.or(ready).unify().or(metrics).unify().or(openapi).unify().boxed()
    };

    let metrics_st = st.clone();
    let log = warp::log::custom(move |info| {
        let status = info.status().as_u16();
        metrics_st.metrics.observe(info.method().as_str(), info.path(), status, info.elapsed());
        if status >= 500 {
            tracing::warn!(method = %info.method(), path = info.path(), status, elapsed_us = info.elapsed().as_micros() as u64, "request failed");
        } else {
            tracing::debug!(method = %info.method(), path = info.path(), status, elapsed_us = info.elapsed().as_micros() as u64, "request");
        }
    });

    let console = console(st.clone());
    let api = bookings.or(events).unify().or(people).unify().or(ops).unify().or(console).unify().recover(recover).unify().boxed();
    let api = match cors(&st.settings.cors_origins) {
        // CORS outside the recover, so that error answers carry its headers too; a refused
        // preflight is recovered into JSON as well.
        Some(cors) => api.with(cors).map(warp::Reply::into_response).recover(recover).unify().boxed(),
        None => api,
    };
    // A 405 says which methods the path takes (RFC 9110 requires `Allow` on it).
    let api = warp::path::full().and(api).map(|path: warp::path::FullPath, res: Response| with_allow(path.as_str(), res));
    api.with(log).map(warp::Reply::into_response).boxed()
}

/// `/app` and everything below it: GET and HEAD; other methods 405.
fn console(st: State) -> BoxedFilter<(Response,)> {
    warp::path("app")
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::header::optional::<String>("if-none-match"))
        .map(move |tail: warp::path::Tail, method: Method, inm: Option<String>| {
            let console = &st.console;
            if method != Method::GET && method != Method::HEAD {
                let mut res = crate::handlers::json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &serde_json::json!({ "error": "method not allowed: the console answers GET and HEAD" }),
                );
                res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return res;
            }
            console.answer(tail.as_str(), inm.as_deref(), method == Method::HEAD)
        })
        .boxed()
}

/// Adds `Allow` to a 405: the methods of the route templates the path matches.
fn with_allow(path: &str, mut res: Response) -> Response {
    if res.status() != warp::http::StatusCode::METHOD_NOT_ALLOWED || res.headers().contains_key(warp::http::header::ALLOW) {
        return res;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut methods: Vec<&str> = Vec::new();
    for m in route_table::routes().iter().filter(|r| fits(&r.path, &segments)).map(|r| r.method) {
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    if let Ok(v) = warp::http::HeaderValue::from_str(&methods.join(", ")) {
        res.headers_mut().insert(warp::http::header::ALLOW, v);
    }
    res
}

fn cors(origins: &[String]) -> Option<warp::cors::Builder> {
    if origins.is_empty() {
        return None;
    }
    let b = warp::cors()
        .allow_methods(["GET", "POST", "PUT", "DELETE"])
        .allow_headers(["authorization", "content-type", "idempotency-key"])
        .expose_headers(["retry-after", "idempotent-replayed"])
        .max_age(600);
    Some(if origins.iter().any(|o| o == "*") { b.allow_any_origin() } else { b.allow_origins(origins.iter().map(String::as_str)) })
}
