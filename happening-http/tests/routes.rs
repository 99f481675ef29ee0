//! Route tests: the warp filters over a real in-memory engine, driven with
//! `warp::test::request()` (no socket). The engine runs on a manual clock so that hold
//! expiry is tested by moving time, not by sleeping.

use std::sync::Arc;

use happening_http::auth::{mint, MintRequest};
use happening_http::ratelimit::RateLimiter;
use happening_http::route_table::routes;
use happening_http::Settings;
use serde_json::{json, Value};
use warp::http::StatusCode;

mod app;
use app::*;

fn is_error(r: &Res) -> bool {
    r.body.get("error").and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

#[tokio::test]
async fn every_documented_route_exists_and_requires_auth_where_it_says() {
    let a = app();
    let id = uuid::Uuid::new_v4().to_string();
    for r in routes() {
        let path = r
            .path
            .replace("{token}", "sometoken")
            .split('/')
            .map(|s| if s.starts_with('{') { id.as_str() } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let res = a.call(r.method, &path, None, None).await;
        if r.auth {
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{} {path}", r.method);
            assert!(is_error(&res));
            assert_eq!(res.headers.get("www-authenticate").unwrap(), "Bearer");
        } else {
            assert_eq!(res.status, StatusCode::OK, "{} {path}", r.method);
        }
    }
    // The document lists exactly these routes.
    let doc = a.call("GET", "/openapi.json", None, None).await.body;
    let n: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(n, routes().len());
    assert!(doc["paths"]["/bookings"]["post"]["parameters"][0]["name"] == "Idempotency-Key");
    assert!(doc["paths"]["/events"]["get"]["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "org_id"));
}

/// What clients and schemathesis rely on in the derived document: which routes need a token
/// and take an `Idempotency-Key`, request bodies that refuse unknown fields, the text
/// patterns, limits and nullability of the request fields, and the shared error answers.
#[tokio::test]
async fn the_document_states_auth_idempotency_and_strict_bodies() {
    let a = app();
    let doc = a.call("GET", "/openapi.json", None, None).await.body;
    let anonymous = ["GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json"];
    let idempotent = ["POST /bookings", "POST /bookings/{id}/cancel", "POST /bookings/{id}/cancel-seats"];
    let mut bodies = 0;
    for r in routes() {
        let key = format!("{} {}", r.method, r.path);
        let op = &doc["paths"][&r.path][r.method.to_ascii_lowercase()];
        assert_eq!(r.auth, !anonymous.contains(&key.as_str()), "{key}");
        assert_eq!(r.idempotent, idempotent.contains(&key.as_str()), "{key}");
        assert!(!r.summary.is_empty(), "{key}");
        assert!(op["operationId"].as_str().is_some_and(|id| !id.is_empty()), "{key}");
        let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert!(statuses.iter().any(|s| s.starts_with('2')), "{key}: {statuses:?}");
        if r.auth {
            for s in ["401", "403", "404", "429", "503"] {
                assert_eq!(op["responses"][s]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error", "{key} {s}");
            }
        }
        if r.idempotent {
            assert!(op["responses"]["422"].is_object(), "{key}");
        }
        if let Some(body) = &r.body {
            bodies += 1;
            let schema = &doc["components"]["schemas"][body];
            assert_eq!(schema["additionalProperties"], false, "{key}: {body} refuses unknown fields");
            // `POST /users` takes an empty body as `{}`.
            assert_eq!(op["requestBody"]["required"].as_bool().unwrap_or(false), r.path != "/users", "{key}");
            assert!(op["responses"]["400"].is_object() && op["responses"]["413"].is_object(), "{key}");
        }
    }
    assert_eq!(bodies, 10, "routes with a JSON body");
    let schemas = &doc["components"]["schemas"];
    // The engine's text rules: a pattern on every text a request may send.
    for (schema, field) in [
        ("CreateEvent", "name"),
        ("CreateEvent", "description"),
        ("CreateEvent", "category"),
        ("UpdateEvent", "name"),
        ("CreateOrganization", "name"),
        ("CreateInvite", "email"),
        ("UpsertUser", "email"),
        ("UpsertUser", "name"),
    ] {
        let pattern = schemas[schema]["properties"][field]["pattern"].as_str().unwrap_or_default();
        // Anchored, white space around allowed, control characters refused.
        assert!(
            pattern.starts_with("^[\\t\\n") && pattern.ends_with('$') && pattern.contains("[^\\u0000-\\u0008"),
            "{schema}.{field}: {pattern:?}"
        );
    }
    assert_eq!(schemas["CreateEvent"]["properties"]["total_slots"]["maximum"], 1_000_000);
    assert_eq!(schemas["CreateBooking"]["properties"]["seat_numbers"]["maxItems"], 50);
    assert_eq!(schemas["CreateBooking"]["properties"]["seat_numbers"]["uniqueItems"], true);
    assert_eq!(schemas["CreateHold"]["properties"]["ttl_seconds"]["maximum"], 3600);
    let required = |s: &str| -> Vec<String> {
        let mut v: Vec<String> =
            schemas[s]["required"].as_array().map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect()).unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(required("CreateEvent"), ["event_date", "name", "org_id", "total_slots"]);
    assert_eq!(required("CreateBooking"), ["event_id"]);
    assert!(required("UpdateEvent").is_empty() && required("UpsertUser").is_empty());
    // Response rows: every property always there, null where it may be.
    assert!(required("Booking").contains(&"waiting_number".to_string()), "{}", schemas["Booking"]);
    assert!(!required("Booking").contains(&"event".to_string()), "only with GET /bookings/user/{{userId}}");
    assert_eq!(schemas["Booking"]["properties"]["hold_id"], json!({ "type": "string", "format": "uuid", "nullable": true }));
    assert_eq!(schemas["Event"]["properties"]["status"]["enum"], json!(["upcoming", "cancelled"]));
    // The live stream and the CSV.
    assert!(doc["paths"]["/events/{id}/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]["oneOf"].is_array());
    assert!(doc["paths"]["/events/{id}/bookings.csv"]["get"]["responses"]["200"]["content"]["text/csv"].is_object());
}

#[tokio::test]
async fn tokens_are_checked() {
    let a = app();
    for (tok, why) in [
        (mint("wrong", &MintRequest { sub: "x".into(), ttl_secs: 60, ..Default::default() }), "signature"),
        (mint(SECRET, &MintRequest { sub: "x".into(), ttl_secs: -300, ..Default::default() }), "expired"),
        ("not.a.jwt".to_string(), "malformed"),
    ] {
        let r = a.call("GET", "/users/me", Some(&tok), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body["error"].as_str().unwrap().contains(why), "{}", r.body);
    }
    let r = a.raw("GET", "/users/me", None, None, &[("authorization", "Basic Zm9vOmJhcg==")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = a.call("GET", "/users/me", Some(&token("alice")), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["keycloak_id"], "alice");
    assert_eq!(r.body["email"], "alice@example.com");
}

#[tokio::test]
async fn users_are_upserted_from_the_token() {
    let a = app();
    let t = token("kc-123");
    let u1 = a.ok("POST", "/users", &t, Some(json!({ "keycloak_id": "kc-123", "name": "Kim" })), StatusCode::OK).await;
    assert_eq!((u1["name"].as_str(), u1["email"].as_str()), (Some("Kim"), Some("kc-123@example.com")));
    // The token's own email, as the original API's client sends it (case aside), is taken.
    let u2 = a.ok("POST", "/users", &t, Some(json!({ "email": "KC-123@example.com", "name": "Kim L" })), StatusCode::OK).await;
    assert_eq!(u1["id"], u2["id"], "same subject, same user");
    assert_eq!((u2["name"].as_str(), u2["email"].as_str()), (Some("Kim L"), Some("kc-123@example.com")));
    let r = a.call("POST", "/users", Some(&t), Some(json!({ "keycloak_id": "someone-else" }))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = a.call("POST", "/users", Some(&t), Some(json!({ "email": "not-an-email", "name": "Changed" }))).await;
    assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("email")), "{}", r.body);
    let r = a.call("POST", "/users", Some(&t), Some(json!({ "email": "kim@new.example", "name": "Changed" }))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let me = a.ok("GET", "/users/me", &t, None, StatusCode::OK).await;
    assert_eq!(
        (me["name"].as_str(), me["email"].as_str()),
        (Some("Kim L"), Some("kc-123@example.com")),
        "the refused updates changed nothing"
    );
}

/// An invite token in the wrong hands: its holder cannot make the invited email theirs and
/// then accept, with or without an email claim of their own.
#[tokio::test]
async fn an_invite_cannot_be_taken_by_posting_the_victims_email() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let org = a.org(&admin, &[]).await;
    let inv = a
        .ok("POST", "/org-invites", &admin, Some(json!({ "organization_id": org, "email": "victim@example.com" })), StatusCode::CREATED)
        .await;
    let tok = inv["token"].as_str().unwrap();
    let mallory = token("mallory");
    let no_email = mint(SECRET, &MintRequest { sub: "noemail".into(), ttl_secs: 3600, ..Default::default() });
    for attacker in [&mallory, &no_email] {
        let r = a.call("POST", "/users", Some(attacker), Some(json!({ "email": "victim@example.com" }))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(is_error(&r) && r.body["error"].as_str().unwrap().contains("email"), "{}", r.body);
        let me = a.ok("GET", "/users/me", attacker, None, StatusCode::OK).await;
        assert_ne!(me["email"], "victim@example.com");
        let r = a.call("POST", &format!("/org-invites/{tok}/accept"), Some(attacker), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(is_error(&r));
        assert_eq!(a.call("GET", &format!("/organizations/{org}"), Some(attacker), None).await.status, StatusCode::NOT_FOUND);
    }
    // Nothing changed: still pending, still one member, and the victim can accept it.
    assert_eq!(a.ok("GET", &format!("/org-invites/{tok}"), &admin, None, StatusCode::OK).await["status"], "pending");
    assert_eq!(a.ok("GET", &format!("/organizations/{org}/members"), &admin, None, StatusCode::OK).await.as_array().unwrap().len(), 1);
    a.ok("POST", &format!("/org-invites/{tok}/accept"), &token("victim"), None, StatusCode::OK).await;
}

#[tokio::test]
async fn seed_demo_capacity_five() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let (alice, alice_id) = a.user("alice").await;
    let (bob, bob_id) = a.user("bob").await;
    let org = a.org(&admin, &[(&alice_id, "user"), (&bob_id, "user")]).await;
    let ev = a.event(&admin, &org, 5).await;

    let b1 = a.book(&alice, json!({ "event_id": ev, "seats": 3 })).await;
    assert_eq!(b1.status, StatusCode::CREATED);
    assert_eq!(b1.body["status"], "confirmed");
    assert_eq!(b1.body["seat_numbers"], json!([1, 2, 3]));
    let b2 = a.book(&bob, json!({ "event_id": ev, "seats": 3 })).await;
    assert_eq!(b2.body["status"], "waiting");
    assert_eq!(b2.body["waiting_number"], 1);
    assert_eq!(b2.body["user_id"], bob_id.as_str());

    let wl = a.ok("GET", &format!("/events/{ev}/waitlist"), &alice, None, StatusCode::OK).await;
    assert_eq!(wl.as_array().unwrap().len(), 1);
    let bobs = a.ok("GET", &format!("/bookings/user/{bob_id}"), &bob, None, StatusCode::OK).await;
    assert_eq!((bobs[0]["status"].as_str(), bobs[0]["waiting_number"].as_u64()), (Some("waiting"), Some(1)));
    assert_eq!(wl[0]["id"], b2.body["id"]);

    let b1_id = b1.body["id"].as_str().unwrap();
    let after =
        a.ok("POST", &format!("/bookings/{b1_id}/cancel-seats"), &alice, Some(json!({ "seat_numbers": [1, 2] })), StatusCode::OK).await;
    assert_eq!(after["seat_numbers"], json!([3]));
    let b2_now = a.ok("GET", &format!("/bookings/{}", b2.body["id"].as_str().unwrap()), &bob, None, StatusCode::OK).await;
    assert_eq!(b2_now["status"], "confirmed");
    assert_eq!(b2_now["seat_numbers"], json!([1, 2, 4]));
    let map = a.ok("GET", &format!("/events/{ev}/seats"), &bob, None, StatusCode::OK).await;
    assert_eq!(map, json!({ "total": 5, "taken": [1, 2, 3, 4], "held": [], "available_slots": 1 }));
    let hist = a.ok("GET", &format!("/bookings/{}/history", b2.body["id"].as_str().unwrap()), &bob, None, StatusCode::OK).await;
    let actions: Vec<&str> = hist.as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "promoted"]);
    let notes = a.ok("GET", "/notifications", &bob, None, StatusCode::OK).await;
    assert_eq!(notes[0]["type"], "waitlist_promoted", "newest first");
    let nid = notes[0]["id"].as_str().unwrap();
    let r = a.call("POST", &format!("/notifications/{nid}/read"), Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let notes = a.ok("GET", "/notifications", &bob, None, StatusCode::OK).await;
    assert_eq!(notes[0]["read"], true);
    let r = a.call("POST", &format!("/notifications/{nid}/read"), Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not alice's notification");

    let mine = a.ok("GET", &format!("/bookings/user/{bob_id}"), &bob, None, StatusCode::OK).await;
    assert_eq!(mine[0]["event_name"], "Show");
    assert_eq!(mine[0]["event"]["id"], ev.as_str());
}

#[tokio::test]
async fn another_organization_is_invisible() {
    let a = app();
    let (admin_a, _) = a.user("admin-a").await;
    let (alice, alice_id) = a.user("alice").await;
    let (mallory, _) = a.user("mallory").await; // orgAdmin of her own organization
    let org_a = a.org(&admin_a, &[(&alice_id, "user")]).await;
    let _org_m = a.org(&mallory, &[]).await;
    let ev = a.event(&admin_a, &org_a, 10).await;
    let b = a.book(&alice, json!({ "event_id": ev, "seats": 2 })).await.body;
    let bid = b["id"].as_str().unwrap();
    let hold = a.ok("POST", &format!("/events/{ev}/holds"), &alice, Some(json!({ "seats": 1 })), StatusCode::CREATED).await;
    let hid = hold["id"].as_str().unwrap();

    for (m, p, body) in [
        ("GET", format!("/events/{ev}"), None),
        ("GET", format!("/events/{ev}/seats"), None),
        ("GET", format!("/events/{ev}/waitlist"), None),
        ("GET", format!("/events/{ev}/stream"), None),
        ("PUT", format!("/events/{ev}"), Some(json!({ "name": "pwned" }))),
        ("DELETE", format!("/events/{ev}"), None),
        ("POST", format!("/events/{ev}/cancel"), None),
        ("POST", format!("/events/{ev}/holds"), Some(json!({ "seats": 1 }))),
        ("GET", format!("/events/{ev}/holds/{hid}"), None),
        ("DELETE", format!("/events/{ev}/holds/{hid}"), None),
        ("POST", "/bookings".to_string(), Some(json!({ "event_id": ev, "seats": 1 }))),
        ("GET", format!("/bookings/{bid}"), None),
        ("GET", format!("/bookings/{bid}/history"), None),
        ("POST", format!("/bookings/{bid}/cancel"), None),
        ("POST", format!("/bookings/{bid}/cancel-seats"), Some(json!({ "seat_numbers": [1] }))),
        ("GET", format!("/organizations/{org_a}"), None),
        ("GET", format!("/organizations/{org_a}/members"), None),
        ("POST", format!("/organizations/{org_a}/members"), Some(json!({ "user_id": alice_id, "role": "orgAdmin" }))),
        ("POST", "/org-invites".to_string(), Some(json!({ "organization_id": org_a, "email": "m@example.com" }))),
        ("POST", "/events".to_string(), Some(json!({ "org_id": org_a, "name": "x", "event_date": "2030-01-01", "total_slots": 1 }))),
        ("GET", format!("/events?org_id={org_a}"), None),
    ] {
        let r = a.call(m, &p, Some(&mallory), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {p}: {}", r.body);
        assert!(is_error(&r));
    }
    // Nothing of org A changed, and mallory's list does not show it.
    let list = a.ok("GET", "/events", &mallory, None, StatusCode::OK).await;
    assert_eq!(list, json!([]));
    let e = a.ok("GET", &format!("/events/{ev}"), &alice, None, StatusCode::OK).await;
    assert_eq!(
        (e["name"].as_str(), e["booked_slots"].as_u64(), e["held_slots"].as_u64(), e["status"].as_str()),
        (Some("Show"), Some(2), Some(1), Some("upcoming"))
    );
    let b_now = a.ok("GET", &format!("/bookings/{bid}"), &alice, None, StatusCode::OK).await;
    assert_eq!(b_now["status"], "confirmed");
    let members = a.ok("GET", &format!("/organizations/{org_a}/members"), &alice, None, StatusCode::OK).await;
    assert_eq!(members.as_array().unwrap().len(), 2);
    // And org A's list shows its event.
    let list = a.ok("GET", &format!("/events?org_id={org_a}"), &alice, None, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn roles_are_enforced() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let (orgz, orgz_id) = a.user("organizer").await;
    let (alice, alice_id) = a.user("alice").await;
    let (bob, bob_id) = a.user("bob").await;
    let org = a.org(&admin, &[(&orgz_id, "organizer"), (&alice_id, "user"), (&bob_id, "user")]).await;
    let new_event = json!({ "org_id": org, "name": "x", "event_date": "2030-01-01T10:00:00Z", "total_slots": 4 });

    // A user books and cancels their own bookings, nothing more.
    let r = a.call("POST", "/events", Some(&alice), Some(new_event.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ev = a.event(&orgz, &org, 4).await;
    for (m, p, body) in [
        ("PUT", format!("/events/{ev}"), Some(json!({ "total_slots": 10 }))),
        ("DELETE", format!("/events/{ev}"), None),
        ("POST", format!("/events/{ev}/cancel"), None),
        ("POST", format!("/organizations/{org}/members"), Some(json!({ "user_id": bob_id, "role": "organizer" }))),
        ("PUT", format!("/organizations/{org}/members/{bob_id}"), Some(json!({ "role": "orgAdmin" }))),
        ("DELETE", format!("/organizations/{org}/members/{bob_id}"), None),
        ("POST", "/org-invites".to_string(), Some(json!({ "organization_id": org, "email": "x@example.com" }))),
        ("POST", "/bookings".to_string(), Some(json!({ "event_id": ev, "user_id": bob_id }))),
    ] {
        let r = a.call(m, &p, Some(&alice), body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {p}: {}", r.body);
        assert!(is_error(&r));
    }
    let bob_booking = a.book(&bob, json!({ "event_id": ev, "seats": 1 })).await.body;
    let bb = bob_booking["id"].as_str().unwrap();
    assert_eq!(a.call("GET", &format!("/bookings/{bb}"), Some(&alice), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(a.call("POST", &format!("/bookings/{bb}/cancel"), Some(&alice), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(a.call("GET", &format!("/bookings/user/{bob_id}"), Some(&alice), None).await.status, StatusCode::FORBIDDEN);
    let e = a.ok("GET", &format!("/events/{ev}"), &alice, None, StatusCode::OK).await;
    assert_eq!((e["total_slots"].as_u64(), e["booked_slots"].as_u64()), (Some(4), Some(1)), "nothing changed");

    // An organizer manages events, books for others and cancels their bookings...
    let for_alice = a.book(&orgz, json!({ "event_id": ev, "seats": 2, "user_id": alice_id })).await;
    assert_eq!(for_alice.status, StatusCode::CREATED);
    assert_eq!(for_alice.body["user_id"], alice_id.as_str());
    a.ok("POST", &format!("/bookings/{bb}/cancel"), &orgz, None, StatusCode::OK).await;
    let bobs = a.ok("GET", &format!("/bookings/user/{bob_id}"), &orgz, None, StatusCode::OK).await;
    assert_eq!(bobs[0]["status"], "cancelled");
    a.ok("PUT", &format!("/events/{ev}"), &orgz, Some(json!({ "total_slots": 6 })), StatusCode::OK).await;
    // ...but not the organization.
    let r =
        a.call("POST", &format!("/organizations/{org}/members"), Some(&orgz), Some(json!({ "user_id": bob_id, "role": "orgAdmin" }))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The orgAdmin manages members and invites.
    let m =
        a.ok("PUT", &format!("/organizations/{org}/members/{bob_id}"), &admin, Some(json!({ "role": "organizer" })), StatusCode::OK).await;
    assert_eq!(m["role"], "organizer");
    a.ok("POST", "/events", &bob, Some(new_event), StatusCode::CREATED).await;
    let r = a.call("DELETE", &format!("/organizations/{org}/members/{bob_id}"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(a.call("GET", &format!("/events/{ev}"), Some(&bob), None).await.status, StatusCode::NOT_FOUND, "bob left");

    // Invites: created by the orgAdmin, accepted by the invited email only.
    let inv = a
        .ok(
            "POST",
            "/org-invites",
            &admin,
            Some(json!({ "organization_id": org, "email": "carol@example.com", "role": "organizer" })),
            StatusCode::CREATED,
        )
        .await;
    let tok = inv["token"].as_str().unwrap();
    let (carol, _) = a.user("carol").await;
    let seen = a.ok("GET", &format!("/org-invites/{tok}"), &carol, None, StatusCode::OK).await;
    assert_eq!(seen["status"], "pending");
    assert_eq!(a.call("POST", &format!("/org-invites/{tok}/accept"), Some(&alice), None).await.status, StatusCode::FORBIDDEN);
    let m = a.ok("POST", &format!("/org-invites/{tok}/accept"), &carol, None, StatusCode::OK).await;
    assert_eq!(m["role"], "organizer");
    assert_eq!(a.call("POST", &format!("/org-invites/{tok}/accept"), Some(&carol), None).await.status, StatusCode::CONFLICT);
    let orgs = a.ok("GET", "/organizations", &carol, None, StatusCode::OK).await;
    assert_eq!(orgs[0]["role"], "organizer");
    assert_eq!(a.call("GET", "/org-invites/nope", Some(&carol), None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let a = app_with(None, Settings { body_limit: 1024, ..Settings::default() });
    let (admin, _) = a.user("admin").await;
    let (alice, alice_id) = a.user("alice").await;
    let org = a.org(&admin, &[(&alice_id, "user")]).await;
    let ev = a.event(&admin, &org, 10).await;
    let b = a.book(&alice, json!({ "event_id": ev, "seat_numbers": [4, 5] })).await.body;
    let bid = b["id"].as_str().unwrap().to_string();

    async fn snapshot(a: &App, tok: &str, ev: &str, user: &str) -> Value {
        json!({
            "event": a.ok("GET", &format!("/events/{ev}"), tok, None, StatusCode::OK).await,
            "seats": a.ok("GET", &format!("/events/{ev}/seats"), tok, None, StatusCode::OK).await,
            "waitlist": a.ok("GET", &format!("/events/{ev}/waitlist"), tok, None, StatusCode::OK).await,
            "bookings": a.ok("GET", &format!("/bookings/user/{user}"), tok, None, StatusCode::OK).await,
            "events": a.ok("GET", "/events", tok, None, StatusCode::OK).await,
        })
    }
    let before = snapshot(&a, &alice, &ev, &alice_id).await;

    let big = format!("{{\"event_id\":\"{ev}\",\"seats\":1,\"pad\":\"{}\"}}", "x".repeat(2000));
    type Case<'a> = (&'a str, String, Option<Vec<u8>>, StatusCode, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("POST", "/bookings".into(), Some(b"{not json".to_vec()), StatusCode::BAD_REQUEST, None),
        ("POST", "/bookings".into(), Some(b"".to_vec()), StatusCode::BAD_REQUEST, None),
        ("POST", "/bookings".into(), Some(b"[1,2]".to_vec()), StatusCode::BAD_REQUEST, None),
        ("POST", "/bookings".into(), Some(br#"{"seats":1}"#.to_vec()), StatusCode::BAD_REQUEST, Some("event_id")),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seats":"two"}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seats"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seats":-1}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seats"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seats":0}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seats"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seats":51}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seats"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seats":11}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seats"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seat_numbers":[0]}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seat_numbers"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seat_numbers":[11]}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seat_numbers"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seat_numbers":[1,1]}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seat_numbers"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seats":3,"seat_numbers":[1,2]}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seats"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seat":1}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("seat"),
        ),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{ev}","seat_numbers":[4],"strict_seats":true}}"#).into_bytes()),
            StatusCode::CONFLICT,
            None,
        ),
        ("POST", "/bookings".into(), Some(big.into_bytes()), StatusCode::PAYLOAD_TOO_LARGE, None),
        (
            "POST",
            "/bookings".into(),
            Some(format!(r#"{{"event_id":"{}","seats":1}}"#, uuid::Uuid::new_v4()).into_bytes()),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "POST",
            format!("/bookings/{bid}/cancel-seats"),
            Some(br#"{"seat_numbers":[]}"#.to_vec()),
            StatusCode::BAD_REQUEST,
            Some("seat_numbers"),
        ),
        ("POST", format!("/bookings/{bid}/cancel-seats"), Some(br#"{"seat_numbers":[9]}"#.to_vec()), StatusCode::CONFLICT, None),
        ("POST", format!("/bookings/{bid}/cancel-seats"), Some(br#"{}"#.to_vec()), StatusCode::BAD_REQUEST, Some("seat_numbers")),
        (
            "POST",
            format!("/events/{ev}/holds"),
            Some(br#"{"seats":1,"ttl_seconds":0}"#.to_vec()),
            StatusCode::BAD_REQUEST,
            Some("ttl_seconds"),
        ),
        ("POST", format!("/events/{ev}/holds"), Some(br#"{"seat_numbers":[5]}"#.to_vec()), StatusCode::CONFLICT, None),
        ("POST", format!("/events/{ev}/holds"), Some(br#"{"seats":20}"#.to_vec()), StatusCode::BAD_REQUEST, Some("seats")),
        ("PUT", format!("/events/{ev}"), Some(br#"{"total_slots":0}"#.to_vec()), StatusCode::BAD_REQUEST, Some("total_slots")),
        ("PUT", format!("/events/{ev}"), Some(br#"{"name":"   "}"#.to_vec()), StatusCode::BAD_REQUEST, Some("name")),
        ("PUT", format!("/events/{ev}"), Some(br#"{"event_date":"someday"}"#.to_vec()), StatusCode::BAD_REQUEST, Some("event_date")),
        (
            "PUT",
            format!("/events/{ev}"),
            Some(br#"{"waitlist_policy":"lottery"}"#.to_vec()),
            StatusCode::BAD_REQUEST,
            Some("waitlist_policy"),
        ),
        (
            "POST",
            "/events".into(),
            Some(format!(r#"{{"org_id":"{org}","name":"x","event_date":"2030-01-01","total_slots":0}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("total_slots"),
        ),
        (
            "POST",
            "/events".into(),
            Some(format!(r#"{{"org_id":"{org}","name":"x","total_slots":3}}"#).into_bytes()),
            StatusCode::BAD_REQUEST,
            Some("event_date"),
        ),
        ("GET", "/events?limit=lots".into(), None, StatusCode::BAD_REQUEST, Some("limit")),
        ("GET", "/events?org_id=nope".into(), None, StatusCode::BAD_REQUEST, Some("org_id")),
        ("GET", "/events/not-a-uuid".into(), None, StatusCode::NOT_FOUND, None),
        ("GET", "/no/such/route".into(), None, StatusCode::NOT_FOUND, None),
        ("PATCH", format!("/events/{ev}"), None, StatusCode::METHOD_NOT_ALLOWED, None),
        ("DELETE", "/bookings".into(), None, StatusCode::METHOD_NOT_ALLOWED, None),
    ];
    for (m, p, body, want, field) in cases {
        // Event management is the organizer's: send those as the admin, to reach validation.
        let who = if m == "PUT" || (m == "POST" && p == "/events") { &admin } else { &alice };
        let r = a.raw(m, &p, Some(who), body, &[]).await;
        assert_eq!(r.status, want, "{m} {p}: {}", r.body);
        assert!(is_error(&r), "{m} {p}: {}", r.body);
        if let Some(f) = field {
            assert_eq!(r.body["field"], f, "{m} {p}: {}", r.body);
        }
    }
    // The admin's refused resizes and conflicts change nothing either.
    let r = a.call("PUT", &format!("/events/{ev}"), Some(&admin), Some(json!({ "total_slots": 4 }))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "below the highest taken seat: {}", r.body);
    let r = a.call("PUT", &format!("/events/{ev}"), Some(&admin), Some(json!({ "total_slots": 1 }))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = a.call("POST", "/bookings", Some(&alice), Some(json!({ "event_id": ev, "seat_numbers": [4, 6], "strict_seats": true }))).await;
    assert_eq!(r.body["seats"], json!([4]), "the taken seat is named");
    assert_eq!(snapshot(&a, &alice, &ev, &alice_id).await, before, "nothing changed");

    // Idempotency-Key reused with another body.
    let r = a
        .raw(
            "POST",
            "/bookings",
            Some(&alice),
            Some(format!(r#"{{"event_id":"{ev}","seats":1}}"#).into_bytes()),
            &[("idempotency-key", "k1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let after_first = snapshot(&a, &alice, &ev, &alice_id).await;
    let r = a
        .raw(
            "POST",
            "/bookings",
            Some(&alice),
            Some(format!(r#"{{"event_id":"{ev}","seats":2}}"#).into_bytes()),
            &[("idempotency-key", "k1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(is_error(&r));
    let r = a
        .raw(
            "POST",
            "/bookings",
            Some(&alice),
            Some(format!(r#"{{"event_id":"{ev}","seats":1}}"#).into_bytes()),
            &[("idempotency-key", "bad key")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "Idempotency-Key");
    assert_eq!(snapshot(&a, &alice, &ev, &alice_id).await, after_first, "nothing changed after the 422 and the 400");
}

#[tokio::test]
async fn idempotency_key_replays_the_first_response() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let (alice, alice_id) = a.user("alice").await;
    let org = a.org(&admin, &[(&alice_id, "user")]).await;
    let ev = a.event(&admin, &org, 1).await;
    let body = format!(r#"{{"event_id":"{ev}","seats":1}}"#);
    let first = a.raw("POST", "/bookings", Some(&alice), Some(body.clone().into_bytes()), &[("idempotency-key", "abc")]).await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Same request, other key order and spacing: still the same request.
    let again = format!(r#"{{ "seats": 1, "event_id": "{ev}" }}"#);
    let second = a.raw("POST", "/bookings", Some(&alice), Some(again.into_bytes()), &[("idempotency-key", "abc")]).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.body, first.body);
    assert_eq!(second.headers.get("idempotent-replayed").unwrap(), "true");
    let mine = a.ok("GET", &format!("/bookings/user/{alice_id}"), &alice, None, StatusCode::OK).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "booked once");
    // The key is the caller's: another user's same key is another request.
    let (bob, bob_id) = a.user("bob").await;
    a.ok("POST", &format!("/organizations/{org}/members"), &admin, Some(json!({ "user_id": bob_id, "role": "user" })), StatusCode::CREATED)
        .await;
    let bobs = a.raw("POST", "/bookings", Some(&bob), Some(body.clone().into_bytes()), &[("idempotency-key", "abc")]).await;
    assert_eq!(bobs.status, StatusCode::CREATED);
    assert_eq!(bobs.body["status"], "waiting");
    // Cancels too: the repeat answers the first result instead of "already cancelled".
    let bid = first.body["id"].as_str().unwrap();
    let c1 = a.raw("POST", &format!("/bookings/{bid}/cancel"), Some(&alice), None, &[("idempotency-key", "cancel-1")]).await;
    assert_eq!(c1.status, StatusCode::OK);
    let c2 = a.raw("POST", &format!("/bookings/{bid}/cancel"), Some(&alice), None, &[("idempotency-key", "cancel-1")]).await;
    assert_eq!(c2.status, StatusCode::OK);
    assert_eq!(c1.body, c2.body);
    let c3 = a.call("POST", &format!("/bookings/{bid}/cancel"), Some(&alice), None).await;
    assert_eq!(c3.status, StatusCode::CONFLICT, "without a key, a second cancel is a conflict");
}

#[tokio::test]
async fn holds_expire_by_the_clock_and_promote() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let (alice, alice_id) = a.user("alice").await;
    let (bob, bob_id) = a.user("bob").await;
    let org = a.org(&admin, &[(&alice_id, "user"), (&bob_id, "user")]).await;
    let ev = a.event(&admin, &org, 3).await;

    let h = a
        .ok("POST", &format!("/events/{ev}/holds"), &alice, Some(json!({ "seat_numbers": [2, 3], "ttl_seconds": 60 })), StatusCode::CREATED)
        .await;
    assert_eq!(h["seat_numbers"], json!([2, 3]));
    let hid = h["id"].as_str().unwrap().to_string();
    let map = a.ok("GET", &format!("/events/{ev}/seats"), &bob, None, StatusCode::OK).await;
    assert_eq!((map["taken"].clone(), map["held"].clone()), (json!([]), json!([2, 3])));
    let r = a.book(&bob, json!({ "event_id": ev, "seat_numbers": [2], "strict_seats": true })).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["seats"], json!([2]));
    let r = a.call("DELETE", &format!("/events/{ev}/holds/{hid}"), Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not bob's hold");
    let waiting = a.book(&bob, json!({ "event_id": ev, "seats": 2 })).await.body;
    assert_eq!(waiting["status"], "waiting");

    // Time passes (no sleeping): the hold expires and bob is promoted onto its seats.
    a.clock.advance_ms(60_001);
    assert_eq!(a.st.engine.expire_holds().await.unwrap(), 1);
    let map = a.ok("GET", &format!("/events/{ev}/seats"), &bob, None, StatusCode::OK).await;
    assert_eq!(map["held"], json!([]));
    let b = a.ok("GET", &format!("/bookings/{}", waiting["id"].as_str().unwrap()), &bob, None, StatusCode::OK).await;
    assert_eq!(b["status"], "confirmed");
    assert_eq!(b["seat_numbers"], json!([1, 2]));
    assert_eq!(a.call("GET", &format!("/events/{ev}/holds/{hid}"), Some(&alice), None).await.status, StatusCode::NOT_FOUND);

    // A hold becomes a booking of exactly its seats.
    let h = a.ok("POST", &format!("/events/{ev}/holds"), &alice, Some(json!({ "seats": 1 })), StatusCode::CREATED).await;
    assert_eq!(h["seat_numbers"], json!([3]));
    let r = a.book(&bob, json!({ "event_id": ev, "hold_id": h["id"] })).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only the hold's owner");
    let b = a.book(&alice, json!({ "event_id": ev, "hold_id": h["id"] })).await;
    assert_eq!(b.status, StatusCode::CREATED);
    assert_eq!((b.body["status"].as_str(), b.body["seat_numbers"].clone()), (Some("confirmed"), json!([3])));
    // And a released hold frees its seats.
    a.ok("POST", &format!("/bookings/{}/cancel", b.body["id"].as_str().unwrap()), &alice, None, StatusCode::OK).await;
    let h = a.ok("POST", &format!("/events/{ev}/holds"), &alice, Some(json!({ "seats": 1 })), StatusCode::CREATED).await;
    let released = a.ok("DELETE", &format!("/events/{ev}/holds/{}", h["id"].as_str().unwrap()), &alice, None, StatusCode::OK).await;
    assert_eq!(released["seat_numbers"], json!([3]));
    let map = a.ok("GET", &format!("/events/{ev}/seats"), &alice, None, StatusCode::OK).await;
    assert_eq!(map, json!({ "total": 3, "taken": [1, 2], "held": [], "available_slots": 1 }));
}

#[tokio::test]
async fn events_list_update_cancel_delete() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let (alice, alice_id) = a.user("alice").await;
    let org = a.org(&admin, &[(&alice_id, "user")]).await;
    for (name, date) in [("early", "2030-01-01T10:00:00Z"), ("late", "2031-01-01T10:00:00Z"), ("mid", "2030-06-01T10:00:00Z")] {
        a.ok(
            "POST",
            "/events",
            &admin,
            Some(json!({ "org_id": org, "name": name, "event_date": date, "total_slots": 2, "category": "concert" })),
            StatusCode::CREATED,
        )
        .await;
    }
    let list = a.ok("GET", "/events", &alice, None, StatusCode::OK).await;
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["late", "mid", "early"], "event_date descending");
    let page = a.ok("GET", "/events?limit=1&offset=1", &alice, None, StatusCode::OK).await;
    assert_eq!(page[0]["name"], "mid");

    let ev = list[0]["id"].as_str().unwrap().to_string();
    a.book(&alice, json!({ "event_id": ev, "seats": 2 })).await;
    let w = a.book(&alice, json!({ "event_id": ev, "seats": 1 })).await.body;
    assert_eq!(w["status"], "waiting");
    let up =
        a.ok("PUT", &format!("/events/{ev}"), &admin, Some(json!({ "total_slots": 3, "description": "bigger" })), StatusCode::OK).await;
    assert_eq!(
        (up["total_slots"].as_u64(), up["available_slots"].as_u64(), up["waiting_count"].as_u64()),
        (Some(3), Some(0), Some(0)),
        "growth promotes"
    );
    assert_eq!(up["description"], "bigger");
    let up = a.ok("PUT", &format!("/events/{ev}"), &admin, Some(json!({ "description": null })), StatusCode::OK).await;
    assert_eq!(up["description"], Value::Null);

    let c = a.ok("POST", &format!("/events/{ev}/cancel"), &admin, None, StatusCode::OK).await;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["booked_slots"], 0);
    let r = a.book(&alice, json!({ "event_id": ev, "seats": 1 })).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let mine = a.ok("GET", &format!("/bookings/user/{alice_id}"), &alice, None, StatusCode::OK).await;
    assert!(mine.as_array().unwrap().iter().all(|b| b["status"] == "cancelled"));

    let r = a.call("DELETE", &format!("/events/{ev}"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(a.call("GET", &format!("/events/{ev}"), Some(&admin), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(a.ok("GET", "/events", &alice, None, StatusCode::OK).await.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_full_waitlist_answers_409_and_writes_nothing() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let (alice, alice_id) = a.user("alice").await;
    let org = a.org(&admin, &[(&alice_id, "user")]).await;
    let body = json!({ "org_id": org, "name": "Flash", "event_date": "2030-01-01T10:00:00Z", "total_slots": 1, "waitlist_max": 1 });
    let ev = a.ok("POST", "/events", &admin, Some(body), StatusCode::CREATED).await;
    assert_eq!(ev["waitlist_max"], 1);
    let ev = ev["id"].as_str().unwrap().to_string();
    assert_eq!(a.book(&alice, json!({ "event_id": ev })).await.body["status"], "confirmed");
    assert_eq!(a.book(&alice, json!({ "event_id": ev })).await.body["waiting_number"], 1);
    let before = a.ok("GET", &format!("/events/{ev}"), &admin, None, StatusCode::OK).await;
    let r = a.book(&alice, json!({ "event_id": ev })).await;
    assert_eq!((r.status, r.body["reason"].as_str()), (StatusCode::CONFLICT, Some("waitlist_full")), "{:?}", r.body);
    assert_eq!(r.body["error"], "sold out and the waitlist is full");
    assert_eq!(a.ok("GET", &format!("/events/{ev}"), &admin, None, StatusCode::OK).await, before, "nothing written");
    assert_eq!(a.ok("GET", &format!("/bookings/user/{alice_id}"), &alice, None, StatusCode::OK).await.as_array().unwrap().len(), 2);
    // Bad caps are refused; null removes the cap.
    for bad in [json!(-1), json!(10_000_001), json!("3")] {
        let r = a.call("PUT", &format!("/events/{ev}"), Some(&admin), Some(json!({ "waitlist_max": bad }))).await;
        assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("waitlist_max")), "{bad}: {:?}", r.body);
    }
    let up = a.ok("PUT", &format!("/events/{ev}"), &admin, Some(json!({ "waitlist_max": null })), StatusCode::OK).await;
    assert_eq!(up["waitlist_max"], Value::Null);
    assert_eq!(a.book(&alice, json!({ "event_id": ev })).await.body["waiting_number"], 2);
}

#[tokio::test]
async fn rate_limit_answers_429_per_user() {
    let a = app_with(Some(RateLimiter::new(0.001, 2)), Settings::default());
    let alice = token("alice");
    assert_eq!(a.call("GET", "/users/me", Some(&alice), None).await.status, StatusCode::OK);
    assert_eq!(a.call("GET", "/users/me", Some(&alice), None).await.status, StatusCode::OK);
    let r = a.call("GET", "/users/me", Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(is_error(&r));
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(a.call("GET", "/users/me", Some(&token("bob")), None).await.status, StatusCode::OK, "per user");
    assert_eq!(a.call("GET", "/healthz", None, None).await.status, StatusCode::OK, "probes are not limited");
}

#[tokio::test]
async fn metrics_count_requests_and_bookings() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let org = a.org(&admin, &[]).await;
    let ev = a.event(&admin, &org, 1).await;
    a.book(&admin, json!({ "event_id": ev })).await;
    let w = a.book(&admin, json!({ "event_id": ev })).await.body;
    assert_eq!(w["status"], "waiting");
    // The relay counts outcomes; run one pass as the server's background task would.
    a.background_once(Arc::new(happening_http::server::LogNotifier)).await;
    let text = a.metrics().await;
    assert!(text.contains(r#"happening_http_requests_total{route="/bookings",method="POST",status="201"} 2"#), "{text}");
    assert!(text.contains(r#"happening_http_request_duration_seconds_count{route="/bookings"} 2"#), "{text}");
    assert!(text.contains(r#"happening_bookings_total{outcome="confirmed"} 1"#), "{text}");
    assert!(text.contains(r#"happening_bookings_total{outcome="waitlisted"} 1"#), "{text}");
    assert!(text.contains(r#"happening_bookings_total{outcome="promoted"} 0"#), "{text}");
    assert!(text.contains("happening_outbox_depth 0\n"), "the relay drained the outbox: {text}");
    let published = metric(&text, "happening_notifications_published_total");
    assert!(published >= 2.0, "{text}");
    assert_eq!(metric(&text, "happening_notifications_confirmed_total"), published, "{text}");
    assert_eq!(metric(&text, "happening_notifications_failed_total"), 0.0, "{text}");
}

/// The value of an unlabelled metric in the text format.
fn metric(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A notifier that is down: the relay counts each batch published and failed, and the rows
/// stay in the outbox (its depth says how many wait).
#[tokio::test]
async fn metrics_count_failed_deliveries_and_the_outbox_backlog() {
    struct Down;
    #[async_trait::async_trait]
    impl happening_core::ports::Notifier for Down {
        async fn deliver(&self, _: &[happening_core::domain::Notification]) -> Result<(), happening_core::ports::NotifierError> {
            Err(happening_core::ports::NotifierError::Rejected("broker down".into()))
        }
    }
    let a = app();
    let (admin, _) = a.user("admin").await;
    let org = a.org(&admin, &[]).await;
    let ev = a.event(&admin, &org, 10).await;
    for _ in 0..3 {
        a.book(&admin, json!({ "event_id": ev })).await;
    }
    let before = a.metrics().await;
    let depth = metric(&before, "happening_outbox_depth");
    assert!(depth >= 3.0, "one notification per booking at least: {before}");
    a.background_once(Arc::new(Down)).await;
    let text = a.metrics().await;
    assert_eq!(metric(&text, "happening_outbox_depth"), depth, "nothing lost, nothing sent: {text}");
    let failed = metric(&text, "happening_notifications_failed_total");
    assert!(failed >= depth, "{text}");
    assert_eq!(metric(&text, "happening_notifications_published_total"), failed, "{text}");
    assert_eq!(metric(&text, "happening_notifications_confirmed_total"), 0.0, "{text}");
    assert!(text.contains(r#"happening_bookings_total{outcome="confirmed"} 0"#), "outcomes count delivered rows only: {text}");
}

#[tokio::test]
async fn readiness_follows_shutdown() {
    let a = app();
    let r = a.call("GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["stores"]["seat_store"], "memory");
    a.st.shutdown.send_replace(true);
    assert_eq!(a.call("GET", "/readyz", None, None).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.call("GET", "/healthz", None, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn seed_lookups_and_booking_for_members_only() {
    let a = app();
    let (admin, admin_id) = a.user("admin").await;
    let (alice, alice_id) = a.user("alice").await;
    let (_outsider, outsider_id) = a.user("outsider").await;
    let org = a.org(&admin, &[(&alice_id, "user")]).await;
    let me = a.ok("GET", "/users?keycloak_id=alice", &alice, None, StatusCode::OK).await;
    assert_eq!(me["id"], alice_id.as_str());
    assert_eq!(a.call("GET", "/users?keycloak_id=admin", Some(&alice), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(a.call("GET", "/users", Some(&alice), None).await.body["field"], "keycloak_id");
    let orgs = a.ok("GET", &format!("/organizations/user/{alice_id}"), &alice, None, StatusCode::OK).await;
    assert_eq!(orgs[0]["id"], org.as_str());
    assert_eq!(a.call("GET", &format!("/organizations/user/{admin_id}"), Some(&alice), None).await.status, StatusCode::FORBIDDEN);

    let ev = a.event(&admin, &org, 5).await;
    let r = a.book(&admin, json!({ "event_id": ev, "user_id": outsider_id })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "user_id");
    let r = a.book(&admin, json!({ "event_id": ev, "user_id": uuid::Uuid::new_v4() })).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let seats = a.ok("GET", &format!("/events/{ev}/seats"), &admin, None, StatusCode::OK).await;
    assert_eq!(seats["taken"], json!([]), "nothing booked");
}

#[tokio::test]
async fn cors_when_configured() {
    let a = app_with(None, Settings { cors_origins: vec!["http://localhost:3000".into()], ..Settings::default() });
    let pre = warp::test::request()
        .method("OPTIONS")
        .path("/bookings")
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .reply(&a.api)
        .await;
    assert_eq!(pre.status(), StatusCode::OK);
    assert_eq!(pre.headers()["access-control-allow-origin"], "http://localhost:3000");
    // Errors carry the headers too, so the browser can read them.
    let r = a.raw("GET", "/users/me", None, None, &[("origin", "http://localhost:3000")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["access-control-allow-origin"], "http://localhost:3000");
    let r = a.raw("GET", "/users/me", Some(&token("alice")), None, &[("origin", "http://localhost:3000")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["access-control-allow-origin"], "http://localhost:3000");
    let r = a.raw("GET", "/users/me", Some(&token("alice")), None, &[("origin", "https://evil.example")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(is_error(&r));
    // Without configuration: no CORS headers.
    let plain = app();
    let r = plain.raw("GET", "/users/me", Some(&token("alice")), None, &[("origin", "http://localhost:3000")]).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

/// Every list pages with `limit` and `offset`: consecutive pages are the whole list, and an
/// organizer's pages of another user's bookings count only their organizations' bookings.
#[tokio::test]
async fn lists_page_with_limit_and_offset() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let (admin_b, _) = a.user("admin-b").await;
    let (bob, bob_id) = a.user("bob").await;
    let org = a.org(&admin, &[(&bob_id, "user")]).await;
    let org_b = a.org(&admin_b, &[(&bob_id, "user")]).await;
    let ev = a.event(&admin, &org, 1).await;
    let ev_b = a.event(&admin_b, &org_b, 10).await;
    // Four bookings in org's event (one confirmed, three waiting), then three newer in org_b's.
    let mut of_org = Vec::new();
    for _ in 0..4 {
        of_org.push(a.book(&bob, json!({ "event_id": ev, "seats": 1 })).await.body["id"].clone());
        a.clock.advance_ms(1);
    }
    let mut all = of_org.clone();
    for _ in 0..3 {
        all.push(a.book(&bob, json!({ "event_id": ev_b, "seats": 1 })).await.body["id"].clone());
        a.clock.advance_ms(1);
    }
    all.reverse();
    of_org.reverse();

    async fn pages(a: &App, path: &str, tok: &str, size: usize) -> Vec<Value> {
        let mut out = Vec::new();
        // Bounded: a server that ignores `offset` answers the same page forever.
        for offset in (0..).step_by(size).take(100) {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page = a.ok("GET", &format!("{path}{sep}limit={size}&offset={offset}"), tok, None, StatusCode::OK).await;
            let page = page.as_array().unwrap().clone();
            assert!(page.len() <= size);
            let last = page.len() < size;
            out.extend(page);
            if last {
                return out;
            }
        }
        panic!("{path}: more than 100 pages")
    }
    let ids = |v: Vec<Value>| v.into_iter().map(|b| b["id"].clone()).collect::<Vec<_>>();
    let path = format!("/bookings/user/{bob_id}");
    assert_eq!(ids(pages(&a, &path, &bob, 2).await), all, "the user's own, newest first");
    // The organizer's first page is full although bob's newest bookings are of org_b.
    let first = a.ok("GET", &format!("{path}?limit=2"), &admin, None, StatusCode::OK).await;
    assert_eq!(ids(first.as_array().unwrap().clone()), of_org[..2]);
    assert_eq!(ids(pages(&a, &path, &admin, 2).await), of_org, "an organizer sees their organization's, paged after the filter");
    assert_eq!(ids(pages(&a, &path, &admin, 3).await), of_org);

    let waiting = pages(&a, &format!("/events/{ev}/waitlist"), &bob, 2).await;
    assert_eq!(ids(waiting.clone()), of_org[..3].iter().rev().cloned().collect::<Vec<_>>(), "queue order");
    assert_eq!(waiting.iter().map(|b| b["waiting_number"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    let second = a.ok("GET", &format!("/events/{ev}/waitlist?limit=1&offset=1"), &bob, None, StatusCode::OK).await;
    assert_eq!((second[0]["id"].clone(), second[0]["waiting_number"].as_u64()), (waiting[1]["id"].clone(), Some(2)));

    let every = a.ok("GET", "/notifications?limit=500", &bob, None, StatusCode::OK).await;
    assert!(every.as_array().unwrap().len() >= 7);
    assert_eq!(ids(pages(&a, "/notifications", &bob, 3).await), ids(every.as_array().unwrap().clone()));

    for path in [format!("/events/{ev}/waitlist"), "/notifications".into(), format!("/bookings/user/{bob_id}")] {
        let r = a.call("GET", &format!("{path}?offset=-1"), Some(&bob), None).await;
        assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("offset")), "{path}");
    }
}

/// A live stream in the background: the task ends with the status and the whole body once
/// the stream ends.
fn open_stream(a: &App, ev: &str, tok: &str) -> tokio::task::JoinHandle<(StatusCode, String)> {
    let (api, path, auth) = (a.api.clone(), format!("/events/{ev}/stream"), format!("Bearer {tok}"));
    tokio::spawn(async move {
        let res = warp::test::request().path(&path).header("authorization", auth).reply(&api).await;
        (res.status(), String::from_utf8_lossy(res.body()).into_owned())
    })
}

/// Waits until `n` live streams are open on the server.
async fn streams_open(a: &App, n: usize) {
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while a.st.live.subscriber_count() != n {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} streams open, not {n}", a.st.live.subscriber_count()));
}

async fn ended(task: tokio::task::JoinHandle<(StatusCode, String)>) -> (StatusCode, String) {
    tokio::time::timeout(std::time::Duration::from_secs(10), task).await.expect("the stream did not end").unwrap()
}

#[tokio::test]
async fn live_stream_ends_when_the_member_is_removed_or_the_token_expires() {
    let a = app_with(None, Settings { stream_recheck_ms: 50, ..Settings::default() });
    let (admin, _) = a.user("admin").await;
    let (bob, bob_id) = a.user("bob").await;
    let org = a.org(&admin, &[(&bob_id, "user")]).await;
    let ev = a.event(&admin, &org, 5).await;
    let bobs = open_stream(&a, &ev, &bob);
    let admins = open_stream(&a, &ev, &admin);
    streams_open(&a, 2).await;
    a.ok("DELETE", &format!("/organizations/{org}/members/{bob_id}"), &admin, None, StatusCode::NO_CONTENT).await;
    let (status, body) = ended(bobs).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("event:seats\n"), "{body}");
    assert!(body.trim_end().ends_with("event:error\ndata:{\"error\":\"event not found\"}"), "{body}");
    // The member's stream is gone, the orgAdmin's is not (several rechecks later).
    streams_open(&a, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!admins.is_finished(), "a member's stream stays open");
    a.ok("DELETE", &format!("/events/{ev}"), &admin, None, StatusCode::NO_CONTENT).await;
    let (_, body) = ended(admins).await;
    assert!(!body.contains("event:error"), "{body}");
    assert!(body.trim_end().ends_with(&format!("event:deleted\ndata:{{\"event_id\":\"{ev}\"}}")), "{body}");

    // A token that expires ends its stream then, although the user is still a member.
    let ev = a.event(&admin, &org, 5).await;
    let short =
        mint(SECRET, &MintRequest { sub: "admin".into(), email: Some("admin@example.com".into()), ttl_secs: 1, ..Default::default() });
    let (_, body) = ended(open_stream(&a, &ev, &short)).await;
    assert!(body.trim_end().ends_with("event:error\ndata:{\"error\":\"token expired\"}"), "{body}");
    streams_open(&a, 0).await;
}

/// A browser's EventSource cannot send headers: the stream takes the token in the query.
#[tokio::test]
async fn live_stream_takes_the_token_in_the_query() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let org = a.org(&admin, &[]).await;
    let ev = a.event(&admin, &org, 5).await;
    let (api, path) = (a.api.clone(), format!("/events/{ev}/stream?access_token={admin}"));
    let task = tokio::spawn(async move {
        let res = warp::test::request().path(&path).reply(&api).await;
        (res.status(), String::from_utf8_lossy(res.body()).into_owned())
    });
    streams_open(&a, 1).await;
    a.ok("DELETE", &format!("/events/{ev}"), &admin, None, StatusCode::NO_CONTENT).await;
    let (status, body) = ended(task).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("event:seats\n"), "{body}");
    // A bad token there is refused like a bad header; other routes ignore the parameter.
    let ev = a.event(&admin, &org, 5).await;
    let res = warp::test::request().path(&format!("/events/{ev}/stream?access_token=nope")).reply(&a.api).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = warp::test::request().path(&format!("/events/{ev}?access_token={admin}")).reply(&a.api).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn live_streams_are_capped_per_user() {
    let a = app_with(None, Settings { max_streams: 3, max_streams_per_user: 2, ..Settings::default() });
    let (admin, _) = a.user("admin").await;
    let (bob, bob_id) = a.user("bob").await;
    let org = a.org(&admin, &[(&bob_id, "user")]).await;
    let ev = a.event(&admin, &org, 5).await;
    let first = open_stream(&a, &ev, &bob);
    let _second = open_stream(&a, &ev, &bob);
    streams_open(&a, 2).await;
    let r = a.call("GET", &format!("/events/{ev}/stream"), Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("at most 2"), "{}", r.body);
    // Another user still gets one; past --max-streams everyone gets 503.
    let _admins = open_stream(&a, &ev, &admin);
    streams_open(&a, 3).await;
    let r = a.call("GET", &format!("/events/{ev}/stream"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(is_error(&r));
    // A closed stream frees its user's slot.
    first.abort();
    streams_open(&a, 2).await;
    let _again = open_stream(&a, &ev, &bob);
    streams_open(&a, 3).await;
    a.st.shutdown.send_replace(true);
}
