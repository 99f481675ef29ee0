//! Waitlist offers over HTTP: the event's `offer_ttl_seconds`, a freed seat offered to the
//! next in line, `POST /bookings/:id/accept` and `/decline`, expiry in the background step,
//! and what describes a booking (seat map, history, notifications, metrics).

use std::sync::Arc;

use serde_json::{json, Value};
use warp::http::StatusCode;

mod app;
use app::*;

/// An event of `slots` seats whose promotions are offers of `ttl` seconds.
async fn offer_event(a: &App, admin: &str, org: &str, slots: u32, ttl: u32) -> String {
    let body =
        json!({ "org_id": org, "name": "Show", "event_date": "2030-06-01T19:00:00Z", "total_slots": slots, "offer_ttl_seconds": ttl });
    let ev = a.ok("POST", "/events", admin, Some(body), StatusCode::CREATED).await;
    assert_eq!(ev["offer_ttl_seconds"], ttl);
    ev["id"].as_str().unwrap().to_string()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_setting_is_checked_and_kept() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let org = a.org(&admin, &[]).await;
    let base = json!({ "org_id": org, "name": "Show", "event_date": "2030-06-01T19:00:00Z", "total_slots": 3 });
    for bad in [json!(0), json!(30 * 24 * 3600 + 1), json!(-5), json!("60"), json!(1.5)] {
        let mut body = base.clone();
        body["offer_ttl_seconds"] = bad.clone();
        let r = a.call("POST", "/events", Some(&admin), Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body["error"].as_str().unwrap().contains("offer_ttl_seconds"), "{bad}: {}", r.body);
    }
    let ev = a.ok("POST", "/events", &admin, Some(base.clone()), StatusCode::CREATED).await;
    assert_eq!(ev["offer_ttl_seconds"], Value::Null, "the default: promotions confirm at once");
    let path = format!("/events/{}", id(&ev));
    let r = a.call("PUT", &path, Some(&admin), Some(json!({ "offer_ttl_seconds": 0 }))).await;
    assert_eq!((r.status, r.body["field"].clone()), (StatusCode::BAD_REQUEST, json!("offer_ttl_seconds")));
    let ev = a.ok("PUT", &path, &admin, Some(json!({ "offer_ttl_seconds": 30 * 24 * 3600 })), StatusCode::OK).await;
    assert_eq!(ev["offer_ttl_seconds"], 30 * 24 * 3600);
    let ev = a.ok("PUT", &path, &admin, Some(json!({ "name": "Renamed" })), StatusCode::OK).await;
    assert_eq!(ev["offer_ttl_seconds"], 30 * 24 * 3600, "absent: unchanged");
    let ev = a.ok("PUT", &path, &admin, Some(json!({ "offer_ttl_seconds": null })), StatusCode::OK).await;
    assert_eq!(ev["offer_ttl_seconds"], Value::Null);
}

#[tokio::test]
async fn an_offer_is_accepted_by_its_owner_only() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let (alice, alice_id) = a.user("alice").await;
    let (bob, bob_id) = a.user("bob").await;
    let (carol, carol_id) = a.user("carol").await;
    let org = a.org(&admin, &[(&alice_id, "user"), (&bob_id, "user"), (&carol_id, "user")]).await;
    let ev = offer_event(&a, &admin, &org, 2, 600).await;
    let first = a.book(&alice, json!({ "event_id": ev, "seats": 2 })).await.body;
    let waiting = a.book(&bob, json!({ "event_id": ev, "seats": 2 })).await.body;
    assert_eq!((waiting["status"].clone(), waiting["waiting_number"].clone()), (json!("waiting"), json!(1)));
    let wid = id(&waiting);

    a.ok("POST", &format!("/bookings/{}/cancel", id(&first)), &alice, None, StatusCode::OK).await;
    let offered = a.ok("GET", &format!("/bookings/{wid}"), &bob, None, StatusCode::OK).await;
    assert_eq!((offered["status"].clone(), offered["seat_numbers"].clone()), (json!("offered"), json!([1, 2])));
    let until = chrono::DateTime::parse_from_rfc3339(offered["offer_expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(until.timestamp(), (a.clock_now() + chrono::Duration::seconds(600)).timestamp());
    let map = a.ok("GET", &format!("/events/{ev}/seats"), &carol, None, StatusCode::OK).await;
    assert_eq!((map["taken"].clone(), map["held"].clone(), map["available_slots"].clone()), (json!([]), json!([1, 2]), json!(0)));
    let view = a.ok("GET", &format!("/events/{ev}"), &carol, None, StatusCode::OK).await;
    assert_eq!((view["held_slots"].clone(), view["booked_slots"].clone(), view["waiting_count"].clone()), (json!(2), json!(0), json!(0)));

    // Someone else's booking answers as the other booking routes do; an organizer may see
    // it but only its owner accepts.
    assert_eq!(a.call("POST", &format!("/bookings/{wid}/accept"), Some(&carol), None).await.status, StatusCode::FORBIDDEN);
    let r = a.call("POST", &format!("/bookings/{wid}/accept"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let (stranger, _) = a.user("stranger").await;
    assert_eq!(a.call("POST", &format!("/bookings/{wid}/accept"), Some(&stranger), None).await.status, StatusCode::NOT_FOUND);
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(a.call("POST", &format!("/bookings/{unknown}/accept"), Some(&bob), None).await.status, StatusCode::NOT_FOUND);

    let ok = a.ok("POST", &format!("/bookings/{wid}/accept"), &bob, None, StatusCode::OK).await;
    assert_eq!((ok["status"].clone(), ok["seat_numbers"].clone()), (json!("confirmed"), json!([1, 2])));
    let again = a.ok("POST", &format!("/bookings/{wid}/accept"), &bob, None, StatusCode::OK).await;
    assert_eq!(again, ok, "a repeated accept answers the same");
    let r = a.call("POST", &format!("/bookings/{wid}/decline"), Some(&bob), None).await;
    assert_eq!((r.status, r.body["reason"].clone()), (StatusCode::CONFLICT, json!("not_offered")));
    let history: Vec<Value> =
        a.ok("GET", &format!("/bookings/{wid}/history"), &bob, None, StatusCode::OK).await.as_array().unwrap().clone();
    let actions: Vec<&str> = history.iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "offered", "accepted"]);
    let notes = a.ok("GET", "/notifications", &bob, None, StatusCode::OK).await;
    let offer = notes.as_array().unwrap().iter().find(|n| n["type"] == "waitlist_offer").expect("the offer is notified");
    assert_eq!(offer["expires_at"], offered["offer_expires_at"]);
    assert!(notes.as_array().unwrap().iter().any(|n| n["type"] == "offer_accepted"), "{notes}");
}

#[tokio::test]
async fn declined_and_expired_offers_pass_on() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let (alice, alice_id) = a.user("alice").await;
    let (bob, bob_id) = a.user("bob").await;
    let (carol, carol_id) = a.user("carol").await;
    let (dan, dan_id) = a.user("dan").await;
    let org = a.org(&admin, &[(&alice_id, "user"), (&bob_id, "user"), (&carol_id, "user"), (&dan_id, "user")]).await;
    let ev = offer_event(&a, &admin, &org, 1, 60).await;
    let first = a.book(&alice, json!({ "event_id": ev })).await.body;
    let b = id(&a.book(&bob, json!({ "event_id": ev })).await.body);
    let c = id(&a.book(&carol, json!({ "event_id": ev })).await.body);
    let d = id(&a.book(&dan, json!({ "event_id": ev })).await.body);
    a.ok("POST", &format!("/bookings/{}/cancel", id(&first)), &alice, None, StatusCode::OK).await;

    // An organizer declines bob's offer for him: carol is offered the seat.
    let declined = a.ok("POST", &format!("/bookings/{b}/decline"), &admin, None, StatusCode::OK).await;
    assert_eq!(declined["status"], "declined");
    assert_eq!(a.ok("POST", &format!("/bookings/{b}/decline"), &bob, None, StatusCode::OK).await, declined, "a repeat answers the same");
    let r = a.call("POST", &format!("/bookings/{b}/accept"), Some(&bob), None).await;
    assert_eq!((r.status, r.body["reason"].clone()), (StatusCode::CONFLICT, json!("offer_declined")));
    assert!(r.body["error"].as_str().unwrap().contains("declined"), "{}", r.body);
    assert_eq!(a.ok("GET", &format!("/bookings/{c}"), &carol, None, StatusCode::OK).await["status"], "offered");

    // Carol lets it run out: the background step ends it, and dan is offered the seat.
    a.clock.advance_ms(60_000);
    let r = a.call("POST", &format!("/bookings/{c}/accept"), Some(&carol), None).await;
    assert_eq!((r.status, r.body["reason"].clone()), (StatusCode::CONFLICT, json!("offer_expired")));
    let ended = a.st.engine.expire_due().await.unwrap();
    assert_eq!(ended.offers, 1);
    assert_eq!(a.ok("GET", &format!("/bookings/{c}"), &carol, None, StatusCode::OK).await["status"], "expired");
    assert_eq!(a.ok("GET", &format!("/bookings/{d}"), &dan, None, StatusCode::OK).await["status"], "offered");
    let r = a.call("POST", &format!("/bookings/{c}/accept"), Some(&carol), None).await;
    assert_eq!((r.status, r.body["reason"].clone()), (StatusCode::CONFLICT, json!("offer_expired")));
    let r = a.call("POST", &format!("/bookings/{c}/cancel"), Some(&carol), None).await;
    assert_eq!((r.status, r.body["reason"].clone()), (StatusCode::CONFLICT, json!("offer_expired")));
    a.ok("POST", &format!("/bookings/{d}/accept"), &dan, None, StatusCode::OK).await;

    // The relay counts offers by outcome, as the server's background task does.
    a.background_once(Arc::new(happening_http::server::LogNotifier)).await;
    let text = a.metrics().await;
    for (outcome, n) in [("offered", 3), ("accepted", 1), ("declined", 1), ("expired", 1)] {
        let line = format!("happening_offers_total{{outcome=\"{outcome}\"}} {n}");
        assert!(text.contains(&line), "{line} in {text}");
    }
    let notes = a.ok("GET", "/notifications", &carol, None, StatusCode::OK).await;
    let kinds: Vec<&str> = notes.as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["offer_expired", "waitlist_offer", "booking_waitlisted"], "newest first");
}
