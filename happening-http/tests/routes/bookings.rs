//! Bookings, holds and events through the routes: the demo sale, idempotency keys, hold expiry by the clock, the waitlist cap, the lists and their pages.

use super::*;

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
