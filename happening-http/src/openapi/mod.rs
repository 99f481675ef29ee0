//! The OpenAPI document, derived with utoipa: the models' schemas (`ToSchema` on
//! `models.rs`, with `fields.rs` for what a Rust type cannot say), one declaration per route
//! (`paths.rs`), and the [`Shared`] modifier that adds by rule what every route of a kind
//! answers (the errors), the operation ids and the links between operations. It is the one
//! list of the routes: `route_table.rs` reads the metrics' route labels, `Allow` and the
//! tests' route list from it.

use std::sync::OnceLock;

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

mod bodies;
pub mod fields;
mod params;
mod paths;

pub use params::IDEMPOTENCY_KEY;

#[derive(OpenApi)]
#[openapi(
    info(title = "Happening", description = "Seat booking for events with limited capacity"),
    paths(
        paths::post_bookings,
        paths::get_bookings_id,
        paths::get_bookings_id_history,
        paths::get_bookings_user_user_id,
        paths::post_bookings_id_cancel,
        paths::post_bookings_id_cancelseats,
        paths::post_bookings_id_accept,
        paths::post_bookings_id_decline,
        paths::post_events,
        paths::get_events,
        paths::get_events_id,
        paths::put_events_id,
        paths::delete_events_id,
        paths::post_events_id_cancel,
        paths::get_events_id_seats,
        paths::get_events_id_waitlist,
        paths::get_events_id_bookings,
        paths::get_events_id_bookingscsv,
        paths::get_events_id_stream,
        paths::post_events_id_holds,
        paths::get_events_id_holds_hold_id,
        paths::delete_events_id_holds_hold_id,
        paths::post_users,
        paths::get_users,
        paths::get_users_me,
        paths::post_organizations,
        paths::get_organizations,
        paths::get_organizations_user_user_id,
        paths::get_organizations_id,
        paths::get_organizations_id_members,
        paths::post_organizations_id_members,
        paths::put_organizations_id_members_user_id,
        paths::delete_organizations_id_members_user_id,
        paths::post_orginvites,
        paths::get_orginvites_token,
        paths::post_orginvites_token_accept,
        paths::get_notifications,
        paths::post_notifications_id_read,
        paths::get_healthz,
        paths::get_readyz,
        paths::get_metrics,
        paths::get_openapijson
    ),
    // Not reached from a declaration's types: the errors (added by rule), the stream's
    // items (a hand-built schema) and `POST /users`' body (a reference, so that the body may
    // be absent without being `null`).
    components(schemas(bodies::ErrorBody, crate::models::LiveSnapshot, crate::models::UpsertUser)),
    modifiers(&Shared),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The document, derived once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The document as `GET /openapi.json` serves it: OpenAPI 3.0.3. utoipa derives 3.1, whose
/// JSON Schema counts `2.0` as an integer, while the server refuses a fraction's spelling
/// where it takes an integer (serde's `u32`); in 3.0 an integer is written without one, as
/// the server reads it. The two differ only in spelling here: 3.1's `type: [T, "null"]` is
/// 3.0's `type: T, nullable: true`, and 3.1's `propertyNames` and the license's SPDX
/// `identifier` have no 3.0 counterpart (map keys are strings anyway).
pub fn served() -> serde_json::Value {
    let mut doc = serde_json::to_value(document()).expect("the document serializes");
    doc["openapi"] = "3.0.3".into();
    if let Some(license) = doc["info"].get_mut("license").and_then(serde_json::Value::as_object_mut) {
        license.remove("identifier");
    }
    as_openapi_30(&mut doc);
    doc
}

fn as_openapi_30(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.remove("propertyNames");
            let nullable = match o.get("type").and_then(serde_json::Value::as_array) {
                Some(types) => match types.as_slice() {
                    [t, n] | [n, t] if n == "null" => Some(t.clone()),
                    _ => None,
                },
                None => None,
            };
            if let Some(t) = nullable {
                o.insert("type".into(), t);
                o.insert("nullable".into(), true.into());
            }
            o.values_mut().for_each(as_openapi_30);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(as_openapi_30),
        _ => {}
    }
}

/// What the declarations leave to rules: the bearer scheme, every operation's id (from its
/// method and path, as the links name them), its error answers, and its links.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                op.operation_id = Some(operation_id(method, path));
                op.tags = None;
                errors(method, path, op);
                if let Some((_, RefOr::T(ok))) = op.responses.responses.iter_mut().find(|(status, _)| status.starts_with('2')) {
                    for (id, link) in links(method, path) {
                        ok.links.insert(id, link.into());
                    }
                }
            }
        }
    }
}

/// A path's operations with their methods.
fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [("GET", &mut item.get), ("POST", &mut item.post), ("PUT", &mut item.put), ("DELETE", &mut item.delete)]
        .into_iter()
        .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
}

/// Whether an operation needs the bearer token: the document's default, unless it says
/// `security: [{}]` (anonymous).
pub fn needs_auth(op: &Operation) -> bool {
    !op.security.as_ref().is_some_and(|s| s.contains(&SecurityRequirement::default()))
}

/// The name of a request body's schema (`CreateBooking`).
pub fn body_schema(op: &Operation) -> Option<String> {
    let RefOr::T(body) = op.request_body.as_ref()? else { return None };
    let RefOr::T(json) = body.content.get("application/json")? else { return None };
    let RefOr::Ref(r) = json.schema.as_ref()? else { return None };
    r.ref_location.rsplit('/').next().map(str::to_string)
}

/// Whether an operation takes an `Idempotency-Key` header.
pub fn idempotent(op: &Operation) -> bool {
    op.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.name == IDEMPOTENCY_KEY))
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name("Error"))))
        .build()
        .into()
}

/// The error answers, by what the route takes and whether it needs a token.
fn errors(method: &str, path: &str, op: &mut Operation) {
    let auth = needs_auth(op);
    let has_body = op.request_body.is_some();
    let has_query = op.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
    let idempotent = idempotent(op);
    let r = &mut op.responses.responses;
    let mut add = |status: &str, description: &str| {
        r.insert(status.to_string(), error_response(description));
    };
    if has_body || has_query || idempotent {
        add(
            "400",
            "Malformed JSON, an unknown field, a wrong type or an invalid value, in the body, the query or a header (named in `field`)",
        );
    }
    if has_body {
        add("413", "Body over the size limit");
    }
    // Any origin not allowed by --cors-origins, on every route when CORS is configured.
    add("403", "Role too small in the organization, or (with --cors-origins) an origin not allowed");
    if auth {
        add("401", "Missing or invalid bearer token");
        add("404", "Not found, or of another organization");
        add("429", "Per-user rate limit (when configured)");
        add("503", "A store is unavailable (or, for streams, too many are open)");
    }
    if path.ends_with("/stream") {
        add("429", "Per-user rate limit (when configured), or too many live streams open for this user");
    }
    if method != "GET" && auth {
        add("409", "Conflict with the current state (seats taken, capacity, cancelled, ...); `reason` says which");
    }
    if idempotent {
        add("422", "Idempotency-Key reused with another request");
    }
}

/// `GET /events/{id}/holds/{holdId}` is `get_events_id_holds_holdId`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(seg.chars().filter(|c| c.is_ascii_alphanumeric()));
    }
    id
}

/// What a created row leads to (OpenAPI links, so that clients and stateful testers such as
/// schemathesis can chain calls with real ids): (source operation, target operation, path
/// parameters, request body fields), each value a runtime expression (`$response...`) or a
/// JSON literal.
#[allow(clippy::type_complexity)]
const LINKS: &[(&str, &str, &[(&str, &str)], &[(&str, &str)])] = &[
    ("POST /users", "GET /bookings/user/{userId}", &[("userId", "$response.body#/id")], &[]),
    ("POST /users", "GET /organizations/user/{userId}", &[("userId", "$response.body#/id")], &[]),
    ("POST /organizations", "GET /organizations/{id}", &[("id", "$response.body#/id")], &[]),
    ("POST /organizations", "GET /organizations/{id}/members", &[("id", "$response.body#/id")], &[]),
    (
        "POST /organizations",
        "POST /events",
        &[],
        &[("org_id", "$response.body#/id"), ("name", "\"Linked\""), ("event_date", "\"2030-05-01T19:00:00Z\""), ("total_slots", "5")],
    ),
    ("POST /organizations", "GET /events", &[("org_id", "$response.body#/id")], &[]),
    ("POST /organizations", "POST /org-invites", &[], &[("organization_id", "$response.body#/id"), ("email", "\"invitee@example.com\"")]),
    ("POST /org-invites", "GET /org-invites/{token}", &[("token", "$response.body#/token")], &[]),
    ("POST /org-invites", "POST /org-invites/{token}/accept", &[("token", "$response.body#/token")], &[]),
    ("POST /events", "GET /events/{id}", &[("id", "$response.body#/id")], &[]),
    ("POST /events", "PUT /events/{id}", &[("id", "$response.body#/id")], &[]),
    ("POST /events", "DELETE /events/{id}", &[("id", "$response.body#/id")], &[]),
    ("POST /events", "POST /events/{id}/cancel", &[("id", "$response.body#/id")], &[]),
    ("POST /events", "GET /events/{id}/seats", &[("id", "$response.body#/id")], &[]),
    ("POST /events", "GET /events/{id}/waitlist", &[("id", "$response.body#/id")], &[]),
    ("POST /events", "GET /events/{id}/bookings", &[("id", "$response.body#/id")], &[]),
    ("POST /events", "GET /events/{id}/stream", &[("id", "$response.body#/id")], &[]),
    // Seats within the event's capacity (which no schema can say).
    ("POST /events", "POST /events/{id}/holds", &[("id", "$response.body#/id")], &[("seats", "1"), ("seat_numbers", "null")]),
    (
        "POST /events",
        "POST /bookings",
        &[],
        &[("event_id", "$response.body#/id"), ("seats", "2"), ("seat_numbers", "null"), ("hold_id", "null"), ("user_id", "null")],
    ),
    (
        "POST /events/{id}/holds",
        "GET /events/{id}/holds/{holdId}",
        &[("id", "$response.body#/event_id"), ("holdId", "$response.body#/id")],
        &[],
    ),
    (
        "POST /events/{id}/holds",
        "DELETE /events/{id}/holds/{holdId}",
        &[("id", "$response.body#/event_id"), ("holdId", "$response.body#/id")],
        &[],
    ),
    (
        "POST /events/{id}/holds",
        "POST /bookings",
        &[],
        &[
            ("event_id", "$response.body#/event_id"),
            ("hold_id", "$response.body#/id"),
            ("seats", "null"),
            ("seat_numbers", "null"),
            ("user_id", "null"),
        ],
    ),
    ("POST /bookings", "GET /bookings/{id}", &[("id", "$response.body#/id")], &[]),
    ("POST /bookings", "GET /bookings/{id}/history", &[("id", "$response.body#/id")], &[]),
    ("POST /bookings", "POST /bookings/{id}/cancel", &[("id", "$response.body#/id")], &[]),
    ("POST /bookings", "POST /bookings/{id}/cancel-seats", &[("id", "$response.body#/id")], &[]),
    ("POST /bookings", "POST /bookings/{id}/accept", &[("id", "$response.body#/id")], &[]),
    ("POST /bookings", "POST /bookings/{id}/decline", &[("id", "$response.body#/id")], &[]),
    ("POST /bookings", "GET /events/{id}/waitlist", &[("id", "$response.body#/event_id")], &[]),
];

fn links(method: &str, path: &str) -> Vec<(String, utoipa::openapi::link::Link)> {
    let from = format!("{method} {path}");
    let mut out = Vec::new();
    for (src, dst, params, body) in LINKS {
        if *src != from {
            continue;
        }
        let (m, p) = dst.split_once(' ').expect("METHOD /path");
        let mut link = LinkBuilder::new().operation_id(operation_id(m, p));
        for (k, v) in *params {
            link = link.parameter(*k, *v);
        }
        if !body.is_empty() {
            let value = |v: &str| if v.starts_with('$') { serde_json::json!(v) } else { serde_json::from_str(v).expect("a JSON literal") };
            let body: serde_json::Map<String, serde_json::Value> = body.iter().map(|(k, v)| (k.to_string(), value(v))).collect();
            link = link.request_body(Some(body));
        }
        out.push((operation_id(m, p), link.build()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route_table::routes;

    #[test]
    fn served_as_openapi_30() {
        let doc = served();
        assert_eq!(doc["openapi"], "3.0.3");
        let text = doc.to_string();
        assert!(!text.contains("\"null\"") && !text.contains("propertyNames"), "3.1 only spellings left");
        let hold = &doc["components"]["schemas"]["Booking"]["properties"]["hold_id"];
        assert_eq!((&hold["type"], &hold["nullable"]), (&"string".into(), &true.into()), "{hold}");
        assert_eq!(doc["components"]["schemas"]["CreateEvent"]["properties"]["waitlist_max"]["nullable"], true);
    }

    #[test]
    fn links_join_routes() {
        let ops: Vec<String> = routes().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        for (src, dst, params, body) in LINKS {
            assert!(ops.iter().any(|o| o == src), "{src}");
            assert!(ops.iter().any(|o| o == dst), "{dst}");
            for (_, v) in *body {
                assert!(v.starts_with('$') || serde_json::from_str::<serde_json::Value>(v).is_ok(), "{v}");
            }
            for (name, _) in *params {
                assert!(dst.contains(&format!("{{{name}}}")) || *name == "org_id", "{dst} has no {name}");
            }
        }
        let doc = served();
        let ids: Vec<&str> =
            routes().iter().map(|r| doc["paths"][&r.path][r.method.to_ascii_lowercase()]["operationId"].as_str().unwrap()).collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "operationIds are unique");
    }
}
