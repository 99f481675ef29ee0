//! Who may call what: tokens, users from tokens, organizations invisible to others, roles, invites, CORS.

use super::*;

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
