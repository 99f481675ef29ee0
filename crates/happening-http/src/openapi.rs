//! The route table (used by the metrics to label routes, and by a test that sends a request
//! to every entry) and the OpenAPI document built from it.

use serde_json::{json, Map, Value};

pub struct Route {
    pub method: &'static str,
    /// OpenAPI style: `/events/{id}`.
    pub path: &'static str,
    pub auth: bool,
    pub summary: &'static str,
    /// Name of the request body schema in `components.schemas`.
    pub body: Option<&'static str>,
    /// Success status and the response schema (`[X]` for an array of X).
    pub ok: (u16, Option<&'static str>),
    /// Whether the route takes an `Idempotency-Key` header.
    pub idempotent: bool,
}

macro_rules! r {
    ($m:literal $p:literal, $auth:literal, $s:literal, $body:expr, $ok:expr, $idem:literal) => {
        Route { method: $m, path: $p, auth: $auth, summary: $s, body: $body, ok: $ok, idempotent: $idem }
    };
}

pub const ROUTES: &[Route] = &[
    r!("POST" "/bookings", true, "Book seats (confirmed, or waiting with a waiting_number)", Some("CreateBooking"), (201, Some("Booking")), true),
    r!("GET" "/bookings/{id}", true, "A booking (its owner, or an organizer of the event's organization)", None, (200, Some("Booking")), false),
    r!("GET" "/bookings/{id}/history", true, "A booking's history", None, (200, Some("[History]")), false),
    r!("GET" "/bookings/user/{userId}", true, "A user's bookings with event details, newest first", None, (200, Some("[Booking]")), false),
    r!("POST" "/bookings/{id}/cancel", true, "Cancel a booking; freed seats promote the waitlist", None, (200, Some("Booking")), true),
    r!("POST" "/bookings/{id}/cancel-seats", true, "Cancel some seats of a confirmed booking", Some("CancelSeats"), (200, Some("Booking")), true),
    r!("POST" "/events", true, "Create an event (organizer or orgAdmin of org_id)", Some("CreateEvent"), (201, Some("Event")), false),
    r!("GET" "/events", true, "Events of the caller's organizations, latest event_date first (?org_id=&limit=&offset=)", None, (200, Some("[Event]")), false),
    r!("GET" "/events/{id}", true, "An event", None, (200, Some("Event")), false),
    r!("PUT" "/events/{id}", true, "Update an event (partial); total_slots may grow, or shrink down to the highest taken seat", Some("UpdateEvent"), (200, Some("Event")), false),
    r!("DELETE" "/events/{id}", true, "Delete an event and everything of it", None, (204, None), false),
    r!("POST" "/events/{id}/cancel", true, "Cancel an event: every booking cancelled and notified", None, (200, Some("Event")), false),
    r!("GET" "/events/{id}/seats", true, "Seat map", None, (200, Some("SeatMap")), false),
    r!("GET" "/events/{id}/waitlist", true, "Waiting bookings in order, with waiting_number", None, (200, Some("[Booking]")), false),
    r!("GET" "/events/{id}/stream", true, "Server-sent events: a `seats` snapshot (seat map and waitlist) at start and after every change", None, (200, Some("LiveSnapshot")), false),
    r!("POST" "/events/{id}/holds", true, "Hold seats for ttl_seconds", Some("CreateHold"), (201, Some("Hold")), false),
    r!("GET" "/events/{id}/holds/{holdId}", true, "A hold", None, (200, Some("Hold")), false),
    r!("DELETE" "/events/{id}/holds/{holdId}", true, "Release a hold (its owner)", None, (200, Some("Hold")), false),
    r!("POST" "/users", true, "Create or refresh the caller's user from the token (keycloak_id = sub)", Some("UpsertUser"), (200, Some("User")), false),
    r!("GET" "/users", true, "The caller's user by `?keycloak_id=` (the seed's lookup; only the caller's own)", None, (200, Some("User")), false),
    r!("GET" "/users/me", true, "The caller's user", None, (200, Some("User")), false),
    r!("POST" "/organizations", true, "Create an organization; the caller becomes its orgAdmin", Some("CreateOrganization"), (201, Some("Organization")), false),
    r!("GET" "/organizations", true, "The caller's organizations with the caller's role", None, (200, Some("[Organization]")), false),
    r!("GET" "/organizations/user/{userId}", true, "The caller's organizations (the seed's path; only the caller's own)", None, (200, Some("[Organization]")), false),
    r!("GET" "/organizations/{id}", true, "An organization of the caller", None, (200, Some("Organization")), false),
    r!("GET" "/organizations/{id}/members", true, "Members and roles", None, (200, Some("[Member]")), false),
    r!("POST" "/organizations/{id}/members", true, "Add a member (orgAdmin)", Some("AddMember"), (201, Some("Member")), false),
    r!("PUT" "/organizations/{id}/members/{userId}", true, "Change a member's role (orgAdmin)", Some("SetRole"), (200, Some("Member")), false),
    r!("DELETE" "/organizations/{id}/members/{userId}", true, "Remove a member (orgAdmin), or leave", None, (204, None), false),
    r!("POST" "/org-invites", true, "Invite an email to an organization (orgAdmin); returns the token", Some("CreateInvite"), (201, Some("Invite")), false),
    r!("GET" "/org-invites/{token}", true, "An invite, by its token", None, (200, Some("Invite")), false),
    r!("POST" "/org-invites/{token}/accept", true, "Accept an invite (the caller's email must be the invited one)", None, (200, Some("Member")), false),
    r!("GET" "/notifications", true, "The caller's notifications, newest first (?limit=)", None, (200, Some("[Notification]")), false),
    r!("POST" "/notifications/{id}/read", true, "Mark a notification read", None, (204, None), false),
    r!("GET" "/healthz", false, "Liveness", None, (200, None), false),
    r!("GET" "/readyz", false, "Readiness: every configured store answers", None, (200, None), false),
    r!("GET" "/metrics", false, "Prometheus metrics", None, (200, None), false),
    r!("GET" "/openapi.json", false, "This document", None, (200, None), false),
];

fn schema_ref(name: &str) -> Value {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(inner) => json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{inner}") } }),
        None => json!({ "$ref": format!("#/components/schemas/{name}") }),
    }
}

fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}
fn int() -> Value {
    json!({ "type": "integer", "minimum": 0 })
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
fn role() -> Value {
    json!({ "type": "string", "enum": ["user", "organizer", "orgAdmin"] })
}
fn object(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

fn schemas() -> Value {
    let policy = json!({ "type": "string", "enum": ["fifo", "first_fit", "partial"] });
    json!({
        "Error": object(&["error"], json!({ "error": string(), "field": string(), "seats": seats(), "available": int() })),
        "User": object(&["id", "keycloak_id"], json!({ "id": uuid(), "keycloak_id": string(), "email": string(), "name": string(), "created_at": date() })),
        "UpsertUser": object(&[], json!({ "keycloak_id": string(), "email": string(), "name": string() })),
        "Organization": object(&["id", "name", "role"], json!({ "id": uuid(), "name": string(), "role": role(), "created_at": date() })),
        "CreateOrganization": object(&["name"], json!({ "name": string() })),
        "Member": object(&["organization_id", "user_id", "role"], json!({ "organization_id": uuid(), "user_id": uuid(), "role": role(), "email": string(), "name": string(), "created_at": date() })),
        "AddMember": object(&["user_id", "role"], json!({ "user_id": uuid(), "role": role() })),
        "SetRole": object(&["role"], json!({ "role": role() })),
        "Invite": object(&["token", "organization_id", "email", "role", "status"], json!({ "token": string(), "organization_id": uuid(), "email": string(), "role": role(), "status": { "type": "string", "enum": ["pending", "accepted", "revoked"] }, "invited_by": uuid(), "expires_at": date(), "created_at": date() })),
        "CreateInvite": object(&["organization_id", "email"], json!({ "organization_id": uuid(), "email": string(), "role": role(), "ttl_hours": { "type": "integer", "minimum": 1, "maximum": 720, "default": 168 } })),
        "Event": object(&["id", "org_id", "name", "event_date", "total_slots", "available_slots", "status"], json!({
            "id": uuid(), "org_id": uuid(), "name": string(), "description": string(), "category": string(), "event_date": date(),
            "total_slots": int(), "available_slots": int(), "booked_slots": int(), "held_slots": int(), "waiting_count": int(),
            "status": { "type": "string", "enum": ["upcoming", "cancelled"] }, "waitlist_policy": policy, "created_at": date(), "updated_at": date() })),
        "CreateEvent": object(&["org_id", "name", "event_date", "total_slots"], json!({ "org_id": uuid(), "name": string(), "description": string(), "category": string(), "event_date": date(), "total_slots": { "type": "integer", "minimum": 1, "maximum": 1000000 }, "waitlist_policy": policy })),
        "UpdateEvent": object(&[], json!({ "name": string(), "description": string(), "category": string(), "event_date": date(), "total_slots": { "type": "integer", "minimum": 1 }, "waitlist_policy": policy })),
        "SeatMap": object(&["total", "taken", "held"], json!({ "total": int(), "taken": seats(), "held": seats(), "available_slots": int() })),
        "Hold": object(&["id", "event_id", "seat_numbers", "expires_at"], json!({ "id": uuid(), "event_id": uuid(), "user_id": uuid(), "seats": int(), "seat_numbers": seats(), "expires_at": date(), "created_at": date() })),
        "CreateHold": object(&[], json!({ "seats": { "type": "integer", "minimum": 1, "maximum": 50 }, "seat_numbers": seats(), "ttl_seconds": { "type": "integer", "minimum": 1, "maximum": 3600, "default": 300 } })),
        "Booking": object(&["id", "event_id", "user_id", "seats", "seat_numbers", "status"], json!({
            "id": uuid(), "event_id": uuid(), "user_id": uuid(), "seats": int(), "seats_requested": int(), "seat_numbers": seats(),
            "status": { "type": "string", "enum": ["confirmed", "waiting", "cancelled"] }, "waiting_number": { "type": "integer", "minimum": 1, "nullable": true },
            "hold_id": uuid(), "created_at": date(), "updated_at": date(), "event_name": string(), "event_date": date(), "event": { "$ref": "#/components/schemas/Event" } })),
        "CreateBooking": object(&["event_id"], json!({ "event_id": uuid(), "seats": { "type": "integer", "minimum": 1, "maximum": 50 }, "seat_numbers": seats(), "hold_id": uuid(), "accept_partial": { "type": "boolean" }, "strict_seats": { "type": "boolean" }, "user_id": uuid() })),
        "CancelSeats": object(&["seat_numbers"], json!({ "seat_numbers": seats() })),
        "History": object(&["booking_id", "action", "status"], json!({ "booking_id": uuid(), "action": { "type": "string", "enum": ["created", "cancelled", "promoted", "modified"] }, "status": string(), "seat_numbers": seats(), "created_at": date() })),
        "Notification": object(&["id", "type", "message"], json!({ "id": uuid(), "type": string(), "message": string(), "event_id": uuid(), "booking_id": uuid(), "organization_id": uuid(), "seats": int(), "status": string(), "read": { "type": "boolean" }, "created_at": date() })),
        "LiveSnapshot": object(&["event_id", "total", "taken", "held", "waiting"], json!({ "event_id": uuid(), "status": string(), "total": int(), "taken": seats(), "held": seats(), "available_slots": int(), "waiting": { "type": "array", "items": object(&["booking_id", "seats", "waiting_number"], json!({ "booking_id": uuid(), "seats": int(), "waiting_number": int() })) } })),
    })
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
        let query: &[(&str, &str)] = match (r.method, r.path) {
            ("GET", "/events") => &[("org_id", "uuid"), ("limit", "integer"), ("offset", "integer")],
            ("GET", "/events/{id}/waitlist") | ("GET", "/notifications") | ("GET", "/bookings/user/{userId}") => &[("limit", "integer")],
            ("GET", "/users") => &[("keycloak_id", "string")],
            _ => &[],
        };
        for (name, ty) in query {
            let schema = if *ty == "uuid" { uuid() } else { json!({ "type": ty }) };
            params.push(json!({ "name": name, "in": "query", "required": *name == "keycloak_id", "schema": schema }));
        }
        if r.idempotent {
            params.push(
                json!({ "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string", "maxLength": 200 },
                "description": "A repeat returns the first response and changes nothing; the same key with another request is a 422" }),
            );
        }
        let mut responses = Map::new();
        let ok = match r.ok.1 {
            Some(s) if r.path.ends_with("/stream") => {
                json!({ "description": "text/event-stream of `seats` events", "content": { "text/event-stream": { "schema": schema_ref(s) } } })
            }
            Some(s) => json!({ "description": "OK", "content": { "application/json": { "schema": schema_ref(s) } } }),
            None if r.path == "/metrics" => json!({ "description": "Prometheus text format", "content": { "text/plain": {} } }),
            None => json!({ "description": "OK" }),
        };
        responses.insert(r.ok.0.to_string(), ok);
        if r.body.is_some() {
            responses.insert("400".into(), error_response("Malformed JSON or an invalid field (named in `field`)"));
            responses.insert("413".into(), error_response("Body over the size limit"));
        }
        if r.auth {
            responses.insert("401".into(), error_response("Missing or invalid bearer token"));
            responses.insert("403".into(), error_response("Role too small in the organization"));
            responses.insert("404".into(), error_response("Not found, or of another organization"));
            responses.insert("429".into(), error_response("Per-user rate limit (when configured)"));
        }
        if r.method != "GET" && r.auth {
            responses.insert("409".into(), error_response("Conflict with the current state (seats taken, capacity, cancelled, ...)"));
        }
        if r.idempotent {
            responses.insert("422".into(), error_response("Idempotency-Key reused with another request"));
        }
        let mut op = json!({ "summary": r.summary, "parameters": params, "responses": responses });
        if let Some(b) = r.body {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema_ref(b) } } });
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
