//! Bad input on every route: a clear error with the right status, and nothing changed.

use super::*;

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
