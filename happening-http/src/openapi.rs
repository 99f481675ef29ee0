//! The OpenAPI document, built from the route table (`route_table.rs`).

use serde_json::{json, Map, Value};

use crate::route_table::ROUTES;

fn schema_ref(name: &str) -> Value {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(inner) => json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{inner}") } }),
        None => json!({ "$ref": format!("#/components/schemas/{name}") }),
    }
}

fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}
fn nullable(mut v: Value) -> Value {
    v["nullable"] = json!(true);
    v
}
fn int() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}
fn range(min: u64, max: u64) -> Value {
    json!({ "type": "integer", "minimum": min, "maximum": max })
}
fn string() -> Value {
    json!({ "type": "string" })
}
fn date() -> Value {
    json!({ "type": "string", "format": "date-time" })
}
fn seats() -> Value {
    json!({ "type": "array", "items": { "type": "integer", "minimum": 1 } })
}
/// Seat numbers a request may name: 1 to 50 distinct seats (each also within the event's
/// capacity, which no schema can say: a seat past it is a 400 naming `seat_numbers`).
fn seat_request() -> Value {
    json!({ "type": "array", "items": range(1, u32::MAX as u64), "minItems": 1, "maxItems": 50, "uniqueItems": true })
}
fn booking_status() -> Value {
    json!({ "type": "string", "enum": ["confirmed", "waiting", "cancelled", "offered", "declined", "expired"] })
}
/// An event's `offer_ttl_seconds`: null (promotions confirm at once) or 1 s to 30 days.
fn offer_ttl() -> Value {
    let mut v = nullable(range(1, 30 * 24 * 3600));
    v["description"] = json!("seats freed for the waitlist are offered this long before they pass on; null: promotions confirm at once");
    v
}
fn role() -> Value {
    json!({ "type": "string", "enum": ["user", "organizer", "orgAdmin"] })
}
fn object(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}
/// A request body: unknown fields are refused (400 naming them).
fn strict(required: &[&str], props: Value) -> Value {
    let mut v = object(required, props);
    v["additionalProperties"] = json!(false);
    v
}
/// A response row: every property is always there (`null` where the schema says nullable).
fn row(props: Value) -> Value {
    let required: Vec<String> = props.as_object().expect("properties").keys().cloned().collect();
    json!({ "type": "object", "required": required, "properties": props })
}

// The engine's text rules (happening-core `validate::text`): trimmed of Unicode white space,
// then at most `max` UTF-8 bytes with no control character but tab and newline. The
// patterns bound the trimmed text to `max` characters (so a text of multi-byte characters
// may still be refused below it): `maxLength` would count the white space around it too.
const WS: &str = r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
const CTRL: &str = r"\u0000-\u0008\u000b-\u001f\u007f-\u009f";

/// The trimmed text: 1 to `max` characters, first and last not white space.
fn content(max: usize) -> String {
    format!("[^{CTRL}{WS}]([^{CTRL}]{{0,{}}}[^{CTRL}{WS}])?", max - 2)
}
fn described(pattern: String, max: usize) -> Value {
    json!({ "type": "string", "pattern": pattern, "description": format!("trimmed: at most {max} bytes, no control characters but tab and newline") })
}
/// A required text: not blank.
fn text(max: usize) -> Value {
    described(format!("^[{WS}]*{}[{WS}]*$", content(max)), max)
}
/// An optional text: blank means none.
fn optional_text(max: usize) -> Value {
    described(format!("^[{WS}]*({}[{WS}]*)?$", content(max)), max)
}
/// An email: a text with an `@` (blank allowed where `optional`).
fn email(optional: bool) -> Value {
    let blank = if optional { "?" } else { "" };
    described(format!("^[{WS}]*((?=[^{CTRL}]*@){}[{WS}]*){blank}$", content(320)), 320)
}

/// `POST /users`' `email`: only the token's own is taken (the identity provider vouches for it).
fn upsert_email() -> Value {
    let mut v = nullable(email(true));
    v["description"] =
        json!("must be the token's `email` claim (case aside), else 403 (400 if it is no address); the stored email is always the claim");
    v
}

fn schemas() -> Value {
    let policy = json!({ "type": "string", "enum": ["fifo", "first_fit", "partial"] });
    let conflict = json!({ "type": "string", "enum": ["seats_taken", "seats_not_in_booking", "event_cancelled", "booking_cancelled",
        "booking_not_confirmed", "capacity_below_taken_seat", "hold_expired", "offer_expired", "offer_declined", "not_offered", "waitlist_full", "already_member", "last_org_admin",
        "invite_not_pending", "invite_expired"] });
    let event = row(json!({
        "id": uuid(), "org_id": uuid(), "name": string(), "description": nullable(string()), "category": nullable(string()), "event_date": date(),
        "total_slots": int(), "available_slots": int(), "booked_slots": int(), "held_slots": int(), "waiting_count": int(),
        "status": { "type": "string", "enum": ["upcoming", "cancelled"] }, "waitlist_policy": policy, "waitlist_max": nullable(int()), "offer_ttl_seconds": nullable(int()), "created_at": date(), "updated_at": date() }));
    let mut booking = row(json!({
        "id": uuid(), "event_id": uuid(), "user_id": uuid(), "seats": int(), "seats_requested": int(), "seat_numbers": seats(),
        "status": booking_status(), "waiting_number": nullable(json!({ "type": "integer", "minimum": 1 })),
        "hold_id": nullable(uuid()), "offer_expires_at": nullable(date()), "created_at": date(), "updated_at": date() }));
    let mut attendee = booking.clone();
    attendee["properties"]["user_email"] = nullable(string());
    attendee["properties"]["user_name"] = nullable(string());
    attendee["required"].as_array_mut().expect("required").extend([json!("user_email"), json!("user_name")]);
    // Only with `GET /bookings/user/{userId}` (and absent there when the event is gone).
    booking["properties"]["event_name"] = string();
    booking["properties"]["event_date"] = date();
    booking["properties"]["event"] = json!({ "$ref": "#/components/schemas/Event" });
    let store_names = json!({ "type": "object", "additionalProperties": string() });
    json!({
        "Error": object(&["error"], json!({ "error": { "type": "string", "minLength": 1 }, "field": string(), "reason": conflict, "seats": seats(), "available": int() })),
        "Health": row(json!({ "status": { "type": "string", "enum": ["ok"] } })),
        "Ready": object(&["status", "stores"], json!({ "status": { "type": "string", "enum": ["ready", "degraded"] },
            "degraded": { "type": "array", "items": string() }, "stores": store_names })),
        "NotReady": object(&["error", "status", "stores"], json!({ "error": string(), "status": { "type": "string", "enum": ["unavailable", "shutting down"] },
            "failing": { "type": "array", "items": string() }, "degraded": { "type": "array", "items": string() }, "stores": store_names })),
        "User": row(json!({ "id": uuid(), "keycloak_id": string(), "email": nullable(string()), "name": nullable(string()), "created_at": date() })),
        "UpsertUser": strict(&[], json!({ "keycloak_id": nullable(string()), "email": upsert_email(), "name": nullable(optional_text(200)) })),
        "Organization": row(json!({ "id": uuid(), "name": string(), "role": role(), "created_at": date() })),
        "CreateOrganization": strict(&["name"], json!({ "name": text(200) })),
        "Member": row(json!({ "organization_id": uuid(), "user_id": uuid(), "role": role(), "email": nullable(string()), "name": nullable(string()), "created_at": date() })),
        "AddMember": strict(&["user_id", "role"], json!({ "user_id": uuid(), "role": role() })),
        "SetRole": strict(&["role"], json!({ "role": role() })),
        "Invite": row(json!({ "token": string(), "organization_id": uuid(), "email": string(), "role": role(), "status": { "type": "string", "enum": ["pending", "accepted", "revoked"] }, "invited_by": uuid(), "expires_at": date(), "created_at": date() })),
        "CreateInvite": strict(&["organization_id", "email"], json!({ "organization_id": uuid(), "email": email(false), "role": role(), "ttl_hours": { "type": "integer", "minimum": 1, "maximum": 720, "default": 168, "nullable": true } })),
        "Event": event,
        "CreateEvent": strict(&["org_id", "name", "event_date", "total_slots"], json!({ "org_id": uuid(), "name": text(200), "description": nullable(optional_text(5000)), "category": nullable(optional_text(50)), "event_date": date(), "total_slots": range(1, 1_000_000), "waitlist_policy": nullable(policy.clone()), "waitlist_max": nullable(range(0, 10_000_000)), "offer_ttl_seconds": offer_ttl() })),
        "UpdateEvent": strict(&[], json!({ "name": nullable(text(200)), "description": nullable(optional_text(5000)), "category": nullable(optional_text(50)), "event_date": date(), "total_slots": nullable(range(1, 1_000_000)), "waitlist_policy": nullable(policy), "waitlist_max": nullable(range(0, 10_000_000)), "offer_ttl_seconds": offer_ttl() })),
        "SeatMap": row(json!({ "total": int(), "taken": seats(), "held": seats(), "available_slots": int() })),
        "Hold": row(json!({ "id": uuid(), "event_id": uuid(), "user_id": uuid(), "seats": int(), "seat_numbers": seats(), "expires_at": date(), "created_at": date() })),
        "CreateHold": strict(&[], json!({ "seats": nullable(range(1, 50)), "seat_numbers": nullable(seat_request()), "ttl_seconds": { "type": "integer", "minimum": 1, "maximum": 3600, "nullable": true, "description": "default: the server's --hold-ttl (300)" } })),
        "Booking": booking,
        "Attendee": attendee,
        "CreateBooking": strict(&["event_id"], json!({ "event_id": uuid(), "seats": nullable(range(1, 50)), "seat_numbers": nullable(seat_request()), "hold_id": nullable(uuid()), "accept_partial": { "type": "boolean" }, "strict_seats": { "type": "boolean" }, "user_id": nullable(uuid()) })),
        "CancelSeats": strict(&["seat_numbers"], json!({ "seat_numbers": seat_request() })),
        "History": row(json!({ "booking_id": uuid(), "action": { "type": "string", "enum": ["created", "cancelled", "promoted", "modified", "offered", "accepted", "declined", "expired"] }, "status": booking_status(), "seat_numbers": seats(), "created_at": date() })),
        "Notification": row(json!({ "id": uuid(), "type": string(), "message": string(), "event_id": nullable(uuid()), "booking_id": nullable(uuid()), "organization_id": nullable(uuid()), "seats": int(), "expires_at": nullable(date()), "status": { "type": "string", "enum": ["pending", "sent", "delivered", "failed"] }, "read": { "type": "boolean" }, "created_at": date() })),
        "LiveSnapshot": row(json!({ "event_id": uuid(), "status": { "type": "string", "enum": ["upcoming", "cancelled"] }, "total": int(), "taken": seats(), "held": seats(), "available_slots": int(), "waiting": { "type": "array", "items": row(json!({ "booking_id": uuid(), "seats": int(), "waiting_number": int() })) } })),
    })
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

fn links(method: &str, path: &str) -> Map<String, Value> {
    let from = format!("{method} {path}");
    let mut out = Map::new();
    for (src, dst, params, body) in LINKS {
        if *src != from {
            continue;
        }
        let (m, p) = dst.split_once(' ').expect("METHOD /path");
        let mut link = json!({ "operationId": operation_id(m, p) });
        if !params.is_empty() {
            link["parameters"] = params.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>().into();
        }
        if !body.is_empty() {
            let value = |v: &str| if v.starts_with('$') { json!(v) } else { serde_json::from_str(v).expect("a JSON literal") };
            link["requestBody"] = body.iter().map(|(k, v)| (k.to_string(), value(v))).collect::<Map<_, _>>().into();
        }
        out.insert(operation_id(m, p), link);
    }
    out
}

/// One server-sent event of the live stream: its name and its JSON data.
fn sse_event(snapshot: &str) -> Value {
    let item = |name: &str, data: Value| {
        json!({ "type": "object", "required": ["event", "data"], "properties": {
            "event": { "type": "string", "enum": [name] },
            "data": { "type": "string", "contentMediaType": "application/json", "contentSchema": data } } })
    };
    json!({ "oneOf": [
        item("seats", schema_ref(snapshot)),
        item("deleted", row(json!({ "event_id": uuid() }))),
        item("error", schema_ref("Error")),
    ] })
}

fn error_response(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The OpenAPI 3 document of [`ROUTES`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let schema = if name == "token" { string() } else { uuid() };
                json!({ "name": name, "in": "path", "required": true, "schema": schema })
            })
            .collect();
        let (default, max) = (crate::handlers::PAGE_SIZE_DEFAULT, happening_core::limits::Limits::default().page_size_max);
        let page = || {
            json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX, "default": default,
                "description": format!("rows per page: {default} when absent, at most {max} (0 or more than {max}: {max})") })
        };
        let offset = || json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX, "default": 0, "description": "rows to skip: the next page starts at offset + limit" });
        let query: Vec<(&str, bool, Value)> = match (r.method, r.path) {
            ("GET", "/events") => vec![("org_id", false, uuid()), ("limit", false, page()), ("offset", false, offset())],
            ("GET", "/events/{id}/waitlist") | ("GET", "/notifications") | ("GET", "/bookings/user/{userId}") => {
                vec![("limit", false, page()), ("offset", false, offset())]
            }
            ("GET", "/events/{id}/bookings") => {
                vec![("status", false, booking_status()), ("limit", false, page()), ("offset", false, offset())]
            }
            ("GET", "/events/{id}/bookings.csv") => vec![
                ("status", false, booking_status()),
                (
                    "limit",
                    false,
                    json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX, "default": crate::handlers::attendees::CSV_ROWS_MAX,
                    "description": format!("rows at most: {max} when absent or 0, and at most {max}", max = crate::handlers::attendees::CSV_ROWS_MAX) }),
                ),
                ("offset", false, offset()),
            ],
            ("GET", "/users") => vec![("keycloak_id", true, string())],
            ("GET", "/events/{id}/stream") => vec![(
                "access_token",
                false,
                json!({ "type": "string", "description": "the bearer token, for clients that cannot send an Authorization header (a browser's EventSource); the header wins when both are given" }),
            )],
            _ => vec![],
        };
        let has_query = !query.is_empty();
        for (name, required, schema) in query {
            params.push(json!({ "name": name, "in": "query", "required": required, "schema": schema }));
        }
        if r.idempotent {
            params.push(json!({ "name": "Idempotency-Key", "in": "header", "required": false,
                "schema": { "type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$" },
                "description": "1 to 200 visible ASCII characters. A repeat returns the first response (with `Idempotent-Replayed: true`) and changes nothing; the same key with another request is a 422" }));
        }
        let mut responses = Map::new();
        let ok = match (r.ok.1, r.path) {
            (Some(s), _) if r.path.ends_with("/stream") => json!({
                "description": "Server-sent events: `seats` (data: a LiveSnapshot) at once and after every change, `deleted` (data: `{event_id}`) when the event goes, `error` (data: an Error) when a store fails, the token expires or the caller is no longer a member (then the stream ends); each item as below",
                "content": { "text/event-stream": { "schema": sse_event(s) } }
            }),
            (Some(s), _) => json!({ "description": "OK", "content": { "application/json": { "schema": schema_ref(s) } } }),
            (None, p) if p.ends_with(".csv") => {
                json!({ "description": "CSV (RFC 4180, a header line first): booking_id, status, seats, seat_numbers (space-separated), user_id, user_email, user_name, created_at, updated_at",
                "content": { "text/csv": { "schema": string() } } })
            }
            (None, "/metrics") => json!({ "description": "Prometheus text format", "content": { "text/plain": { "schema": string() } } }),
            (None, "/healthz") => {
                json!({ "description": "The process answers", "content": { "application/json": { "schema": schema_ref("Health") } } })
            }
            (None, "/readyz") => {
                json!({ "description": "Every required store answers (`degraded` names the optional ones that do not)", "content": { "application/json": { "schema": schema_ref("Ready") } } })
            }
            (None, "/openapi.json") => {
                json!({ "description": "This document", "content": { "application/json": { "schema": { "type": "object" } } } })
            }
            (None, _) => json!({ "description": "Done" }),
        };
        responses.insert(r.ok.0.to_string(), ok);
        if r.body.is_some() || has_query || r.idempotent {
            responses.insert(
                "400".into(),
                error_response("Malformed JSON, an unknown field, a wrong type or an invalid value, in the body, the query or a header (named in `field`)"),
            );
        }
        if r.body.is_some() {
            responses.insert("413".into(), error_response("Body over the size limit"));
        }
        // Any origin not allowed by --cors-origins, on every route when CORS is configured.
        responses
            .insert("403".into(), error_response("Role too small in the organization, or (with --cors-origins) an origin not allowed"));
        if r.auth {
            responses.insert("401".into(), error_response("Missing or invalid bearer token"));
            responses.insert("404".into(), error_response("Not found, or of another organization"));
            responses.insert("429".into(), error_response("Per-user rate limit (when configured)"));
            responses.insert("503".into(), error_response("A store is unavailable (or, for streams, too many are open)"));
        }
        if r.path.ends_with("/stream") {
            responses
                .insert("429".into(), error_response("Per-user rate limit (when configured), or too many live streams open for this user"));
        }
        if r.path == "/readyz" {
            responses.insert(
                "503".into(),
                json!({ "description": "A required store does not answer, or the server is shutting down", "content": { "application/json": { "schema": schema_ref("NotReady") } } }),
            );
        }
        if r.method != "GET" && r.auth {
            responses.insert(
                "409".into(),
                error_response("Conflict with the current state (seats taken, capacity, cancelled, ...); `reason` says which"),
            );
        }
        if r.idempotent {
            responses.insert("422".into(), error_response("Idempotency-Key reused with another request"));
        }
        let links = links(r.method, r.path);
        if !links.is_empty() {
            responses.get_mut(&r.ok.0.to_string()).expect("the success response")["links"] = Value::Object(links);
        }
        let mut op =
            json!({ "operationId": operation_id(r.method, r.path), "summary": r.summary, "parameters": params, "responses": responses });
        if let Some(b) = r.body {
            // `POST /users` takes an empty body as `{}`.
            let required = r.path != "/users";
            op["requestBody"] = json!({ "required": required, "content": { "application/json": { "schema": schema_ref(b) } } });
        }
        if !r.auth {
            op["security"] = json!([]);
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Happening", "version": env!("CARGO_PKG_VERSION"), "description": "Seat booking for events with limited capacity" },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        },
        "security": [{ "bearer": [] }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_routes() {
        let ops: Vec<String> = ROUTES.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        for (src, dst, params, body) in LINKS {
            assert!(ops.iter().any(|o| o == src), "{src}");
            assert!(ops.iter().any(|o| o == dst), "{dst}");
            for (_, v) in *body {
                assert!(v.starts_with('$') || serde_json::from_str::<Value>(v).is_ok(), "{v}");
            }
            for (name, _) in *params {
                assert!(dst.contains(&format!("{{{name}}}")) || *name == "org_id", "{dst} has no {name}");
            }
        }
        let doc = document();
        let ids: Vec<&str> =
            ROUTES.iter().map(|r| doc["paths"][r.path][r.method.to_ascii_lowercase()]["operationId"].as_str().unwrap()).collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "operationIds are unique");
    }
}
