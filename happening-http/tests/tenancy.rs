//! Hostile input, part 2: tenant isolation. Two organizations, A and B, each with an
//! orgAdmin, a member, an event with a confirmed booking, a hold and a waiting booking, an
//! invite and a notification. B's orgAdmin and B's plain member then aim every route of
//! [`route_table::routes`] at A's ids (and at mixes of B's ids with A's): each attempt answers 404 with a
//! JSON error, exactly as an id that does not exist, and afterwards A's (and B's) state,
//! read by their own members, is the same JSON as before.
//!
//! The matrix is keyed by the route list (read from the OpenAPI document): a route added to
//! the document without an entry here fails `every_route_is_in_the_matrix`, so a new route
//! gets a tenancy decision.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use happening_core::clock::ManualClock;
use happening_core::Engine;
use happening_http::auth::{mint, AuthConfig, MintRequest, Verifier};
use happening_http::route_table;
use happening_http::{routes, AppState, Settings};
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

const SECRET: &str = "tenancy-test-secret";

struct App {
    engine: Engine,
    api: BoxedFilter<(Response,)>,
}

fn app() -> App {
    let engine = Engine::in_memory().with_clock(Arc::new(ManualClock::new(Utc::now())));
    let verifier = Verifier::new(&AuthConfig { secret: Some(SECRET.into()), ..Default::default() }).unwrap();
    let st = AppState::new(engine.clone(), verifier, None, Settings::default());
    App { api: routes(st), engine }
}

fn token(sub: &str) -> String {
    mint(SECRET, &MintRequest { sub: sub.into(), email: Some(format!("{sub}@example.com")), ttl_secs: 3600, ..Default::default() })
}

impl App {
    async fn call(&self, method: &str, path: &str, tok: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut r = warp::test::request().method(method).path(path).header("authorization", format!("Bearer {tok}"));
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let res = r.reply(&self.api).await;
        (res.status(), serde_json::from_slice(res.body()).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: &str, path: &str, tok: &str, body: Option<Value>, want: StatusCode) -> Value {
        let (status, v) = self.call(method, path, tok, body.as_ref()).await;
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }

    async fn user(&self, sub: &str) -> (String, String) {
        let t = token(sub);
        let u = self.ok("POST", "/users", &t, None, StatusCode::OK).await;
        (t, u["id"].as_str().unwrap().to_string())
    }
}

/// One organization and everything it has.
struct Tenant {
    name: &'static str,
    admin: String,
    admin_id: String,
    member: String,
    member_id: String,
    org: String,
    event: String,
    booking: String,
    waiting: String,
    hold: String,
    invite: String,
    notification: String,
}

async fn tenant(a: &App, name: &'static str) -> Tenant {
    let (admin, admin_id) = a.user(&format!("admin-{name}")).await;
    let (member, member_id) = a.user(&format!("member-{name}")).await;
    let org = a.ok("POST", "/organizations", &admin, Some(json!({ "name": format!("Org {name}") })), StatusCode::CREATED).await;
    let org = org["id"].as_str().unwrap().to_string();
    a.ok(
        "POST",
        &format!("/organizations/{org}/members"),
        &admin,
        Some(json!({ "user_id": member_id, "role": "user" })),
        StatusCode::CREATED,
    )
    .await;
    let ev = a
        .ok(
            "POST",
            "/events",
            &admin,
            Some(json!({ "org_id": org, "name": format!("Show {name}"), "event_date": "2030-06-01T19:00:00Z", "total_slots": 5 })),
            StatusCode::CREATED,
        )
        .await;
    let event = ev["id"].as_str().unwrap().to_string();
    let b = a.ok("POST", "/bookings", &member, Some(json!({ "event_id": event, "seats": 2 })), StatusCode::CREATED).await;
    assert_eq!(b["status"], "confirmed");
    let h = a.ok("POST", &format!("/events/{event}/holds"), &member, Some(json!({ "seats": 1 })), StatusCode::CREATED).await;
    let w = a.ok("POST", "/bookings", &admin, Some(json!({ "event_id": event, "seats": 3 })), StatusCode::CREATED).await;
    assert_eq!(w["status"], "waiting");
    let inv = a
        .ok(
            "POST",
            "/org-invites",
            &admin,
            Some(json!({ "organization_id": org, "email": format!("newcomer-{name}@example.com") })),
            StatusCode::CREATED,
        )
        .await;
    let notes = a.ok("GET", "/notifications", &member, None, StatusCode::OK).await;
    let notification = notes[0]["id"].as_str().expect("the member has a notification").to_string();
    Tenant {
        name,
        admin,
        admin_id,
        member,
        member_id,
        org,
        event,
        booking: b["id"].as_str().unwrap().to_string(),
        waiting: w["id"].as_str().unwrap().to_string(),
        hold: h["id"].as_str().unwrap().to_string(),
        invite: inv["token"].as_str().unwrap().to_string(),
        notification,
    }
}

/// Everything of a tenant, read by its own members, as JSON.
async fn snapshot(a: &App, t: &Tenant) -> Value {
    let (ad, me) = (&t.admin, &t.member);
    let mut s = serde_json::Map::new();
    for (tok, path) in [
        (ad, format!("/organizations/{}", t.org)),
        (ad, format!("/organizations/{}/members", t.org)),
        (ad, "/organizations".to_string()),
        (ad, format!("/events?org_id={}", t.org)),
        (ad, format!("/events/{}", t.event)),
        (ad, format!("/events/{}/seats", t.event)),
        (ad, format!("/events/{}/waitlist", t.event)),
        (ad, format!("/events/{}/bookings", t.event)),
        (ad, format!("/events/{}/holds/{}", t.event, t.hold)),
        (ad, format!("/bookings/{}", t.booking)),
        (ad, format!("/bookings/{}/history", t.booking)),
        (ad, format!("/bookings/{}", t.waiting)),
        (ad, format!("/bookings/user/{}", t.member_id)),
        (ad, format!("/org-invites/{}", t.invite)),
        (ad, "/notifications".to_string()),
        (me, "/notifications".to_string()),
        (me, "/users/me".to_string()),
        (me, "/organizations".to_string()),
    ] {
        let who = if tok == ad { "admin" } else { "member" };
        s.insert(format!("{who} GET {path}"), a.ok("GET", &path, tok, None, StatusCode::OK).await);
    }
    let ev = t.event.parse().unwrap();
    happening_core::testkit::invariants::check(&a.engine, ev).await.unwrap_or_else(|e| panic!("{}: {e}", t.name));
    Value::Object(s)
}

/// Who in B makes the attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Attacker {
    Admin,
    Member,
}

/// One attempt of B on A: a request and the status it must get.
struct Probe {
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// 404 unless the route's decision says otherwise (and then says why).
    want: StatusCode,
    /// Only B's orgAdmin makes it (it mixes B's own ids, where B's member would just be
    /// refused for its role).
    admin_only: bool,
}

fn p(method: &'static str, path: String, body: Option<Value>) -> Probe {
    Probe { method, path, body, want: StatusCode::NOT_FOUND, admin_only: false }
}

/// What the matrix says of a route.
enum Decision {
    /// Tenant-scoped: these attempts of B on A.
    Probes(Vec<Probe>),
    /// Not tenant-scoped, and why.
    NotScoped(&'static str),
}

/// The matrix: for every route of the route list (by method and template), B's attempts on A.
fn matrix(a: &Tenant, b: &Tenant) -> BTreeMap<(&'static str, &'static str), Decision> {
    use Decision::*;
    let admin_only = |mut pr: Probe| {
        pr.admin_only = true;
        pr
    };
    let (ea, eb, ba, wa, ha) = (&a.event, &b.event, &a.booking, &a.waiting, &a.hold);
    let mut m = BTreeMap::new();
    m.insert(
        ("POST", "/bookings"),
        Probes(vec![
            p("POST", "/bookings".into(), Some(json!({ "event_id": ea, "seats": 1 }))),
            p("POST", "/bookings".into(), Some(json!({ "event_id": ea, "seat_numbers": [5] }))),
            p("POST", "/bookings".into(), Some(json!({ "event_id": ea, "hold_id": ha }))),
            // B's own event with A's hold: the hold does not exist to B.
            p("POST", "/bookings".into(), Some(json!({ "event_id": eb, "hold_id": ha }))),
            admin_only(p("POST", "/bookings".into(), Some(json!({ "event_id": ea, "user_id": a.member_id })))),
        ]),
    );
    m.insert(("GET", "/bookings/{id}"), Probes(vec![p("GET", format!("/bookings/{ba}"), None), p("GET", format!("/bookings/{wa}"), None)]));
    m.insert(("GET", "/bookings/{id}/history"), Probes(vec![p("GET", format!("/bookings/{ba}/history"), None)]));
    m.insert(
        ("GET", "/bookings/user/{userId}"),
        Probes(vec![p("GET", format!("/bookings/user/{}", a.member_id), None), p("GET", format!("/bookings/user/{}", a.admin_id), None)]),
    );
    m.insert(
        ("POST", "/bookings/{id}/cancel"),
        Probes(vec![p("POST", format!("/bookings/{ba}/cancel"), None), p("POST", format!("/bookings/{wa}/cancel"), None)]),
    );
    m.insert(
        ("POST", "/bookings/{id}/cancel-seats"),
        Probes(vec![p("POST", format!("/bookings/{ba}/cancel-seats"), Some(json!({ "seat_numbers": [1] })))]),
    );
    m.insert(
        ("POST", "/bookings/{id}/accept"),
        Probes(vec![p("POST", format!("/bookings/{ba}/accept"), None), p("POST", format!("/bookings/{wa}/accept"), None)]),
    );
    m.insert(
        ("POST", "/bookings/{id}/decline"),
        Probes(vec![p("POST", format!("/bookings/{ba}/decline"), None), p("POST", format!("/bookings/{wa}/decline"), None)]),
    );
    m.insert(
        ("POST", "/events"),
        Probes(vec![p(
            "POST",
            "/events".into(),
            Some(json!({ "org_id": a.org, "name": "pwned", "event_date": "2030-01-01T10:00:00Z", "total_slots": 1 })),
        )]),
    );
    m.insert(("GET", "/events"), Probes(vec![p("GET", format!("/events?org_id={}", a.org), None)]));
    m.insert(("GET", "/events/{id}"), Probes(vec![p("GET", format!("/events/{ea}"), None)]));
    m.insert(
        ("PUT", "/events/{id}"),
        Probes(vec![
            p("PUT", format!("/events/{ea}"), Some(json!({ "name": "pwned" }))),
            p("PUT", format!("/events/{ea}"), Some(json!({ "total_slots": 100 }))),
            p("PUT", format!("/events/{ea}"), Some(json!({ "total_slots": 3 }))),
        ]),
    );
    m.insert(("DELETE", "/events/{id}"), Probes(vec![p("DELETE", format!("/events/{ea}"), None)]));
    m.insert(("POST", "/events/{id}/cancel"), Probes(vec![p("POST", format!("/events/{ea}/cancel"), None)]));
    m.insert(("GET", "/events/{id}/seats"), Probes(vec![p("GET", format!("/events/{ea}/seats"), None)]));
    m.insert(("GET", "/events/{id}/waitlist"), Probes(vec![p("GET", format!("/events/{ea}/waitlist"), None)]));
    m.insert(
        ("GET", "/events/{id}/bookings"),
        Probes(vec![p("GET", format!("/events/{ea}/bookings"), None), p("GET", format!("/events/{ea}/bookings?status=confirmed"), None)]),
    );
    m.insert(("GET", "/events/{id}/bookings.csv"), Probes(vec![p("GET", format!("/events/{ea}/bookings.csv"), None)]));
    m.insert(("GET", "/events/{id}/stream"), Probes(vec![p("GET", format!("/events/{ea}/stream"), None)]));
    m.insert(
        ("POST", "/events/{id}/holds"),
        Probes(vec![
            p("POST", format!("/events/{ea}/holds"), Some(json!({ "seats": 1 }))),
            p("POST", format!("/events/{ea}/holds"), Some(json!({ "seat_numbers": [5], "ttl_seconds": 3600 }))),
        ]),
    );
    m.insert(
        ("GET", "/events/{id}/holds/{holdId}"),
        Probes(vec![p("GET", format!("/events/{ea}/holds/{ha}"), None), p("GET", format!("/events/{eb}/holds/{ha}"), None)]),
    );
    m.insert(
        ("DELETE", "/events/{id}/holds/{holdId}"),
        Probes(vec![p("DELETE", format!("/events/{ea}/holds/{ha}"), None), p("DELETE", format!("/events/{eb}/holds/{ha}"), None)]),
    );
    m.insert(("POST", "/users"), NotScoped("creates or refreshes the caller's own user from its token; no id of anyone else's"));
    m.insert(
        ("GET", "/users"),
        Probes(vec![p("GET", "/users?keycloak_id=member-a".into(), None), p("GET", "/users?keycloak_id=admin-a".into(), None)]),
    );
    m.insert(("GET", "/users/me"), NotScoped("the caller's own user"));
    m.insert(("POST", "/organizations"), NotScoped("creates a new organization of the caller's"));
    m.insert(("GET", "/organizations"), NotScoped("the caller's own organizations (A's absence from B's list is asserted in the test)"));
    m.insert(
        ("GET", "/organizations/user/{userId}"),
        Probes(vec![
            p("GET", format!("/organizations/user/{}", a.member_id), None),
            p("GET", format!("/organizations/user/{}", a.admin_id), None),
        ]),
    );
    m.insert(("GET", "/organizations/{id}"), Probes(vec![p("GET", format!("/organizations/{}", a.org), None)]));
    m.insert(("GET", "/organizations/{id}/members"), Probes(vec![p("GET", format!("/organizations/{}/members", a.org), None)]));
    m.insert(
        ("POST", "/organizations/{id}/members"),
        Probes(vec![
            p("POST", format!("/organizations/{}/members", a.org), Some(json!({ "user_id": b.admin_id, "role": "orgAdmin" }))),
            p("POST", format!("/organizations/{}/members", a.org), Some(json!({ "user_id": b.member_id, "role": "user" }))),
        ]),
    );
    m.insert(
        ("PUT", "/organizations/{id}/members/{userId}"),
        Probes(vec![
            p("PUT", format!("/organizations/{}/members/{}", a.org, a.member_id), Some(json!({ "role": "orgAdmin" }))),
            p("PUT", format!("/organizations/{}/members/{}", a.org, a.admin_id), Some(json!({ "role": "user" }))),
            p("PUT", format!("/organizations/{}/members/{}", a.org, b.admin_id), Some(json!({ "role": "orgAdmin" }))),
            // A's member is no member of B.
            admin_only(p("PUT", format!("/organizations/{}/members/{}", b.org, a.member_id), Some(json!({ "role": "organizer" })))),
        ]),
    );
    m.insert(
        ("DELETE", "/organizations/{id}/members/{userId}"),
        Probes(vec![
            p("DELETE", format!("/organizations/{}/members/{}", a.org, a.member_id), None),
            p("DELETE", format!("/organizations/{}/members/{}", a.org, a.admin_id), None),
            // "Leaving" an organization one is not in.
            admin_only(p("DELETE", format!("/organizations/{}/members/{}", a.org, b.admin_id), None)),
            p("DELETE", format!("/organizations/{}/members/{}", a.org, b.member_id), None),
            admin_only(p("DELETE", format!("/organizations/{}/members/{}", b.org, a.member_id), None)),
        ]),
    );
    m.insert(
        ("POST", "/org-invites"),
        Probes(vec![p(
            "POST",
            "/org-invites".into(),
            Some(json!({ "organization_id": a.org, "email": "spy@example.com", "role": "orgAdmin" })),
        )]),
    );
    m.insert(
        ("GET", "/org-invites/{token}"),
        NotScoped("the invite token is a capability (256 random bits, handed to the invitee), readable by whoever holds it; B cannot list or guess it"),
    );
    m.insert(
        ("POST", "/org-invites/{token}/accept"),
        Probes(vec![Probe {
            method: "POST",
            path: format!("/org-invites/{}/accept", a.invite),
            body: None,
            // Even holding A's token, only the invited email may accept: 403, and A's
            // members are unchanged.
            want: StatusCode::FORBIDDEN,
            admin_only: false,
        }]),
    );
    m.insert(("GET", "/notifications"), NotScoped("the caller's own notifications"));
    m.insert(("POST", "/notifications/{id}/read"), Probes(vec![p("POST", format!("/notifications/{}/read", a.notification), None)]));
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        m.insert(("GET", path), NotScoped("open probe or document; no organization's data"));
    }
    m
}

#[tokio::test]
async fn every_route_is_in_the_matrix() {
    let a = app();
    let (ta, tb) = (tenant(&a, "a").await, tenant(&a, "b").await);
    let m = matrix(&ta, &tb);
    let mut missing = Vec::new();
    for r in route_table::routes() {
        match m.get(&(r.method, r.path.as_str())) {
            None => missing.push(format!("{} {}", r.method, r.path)),
            Some(Decision::Probes(probes)) => assert!(!probes.is_empty(), "{} {}: no probe", r.method, r.path),
            Some(Decision::NotScoped(why)) => assert!(!why.is_empty()),
        }
    }
    assert!(missing.is_empty(), "routes without a tenancy decision in tests/tenancy.rs: {missing:?}");
    let stale: Vec<_> = m.keys().filter(|(mt, pt)| !route_table::routes().iter().any(|r| r.method == *mt && r.path == *pt)).collect();
    assert!(stale.is_empty(), "matrix entries for routes that no longer exist: {stale:?}");
}

#[tokio::test]
async fn another_organization_answers_404_on_every_route_and_changes_nothing() {
    let a = app();
    let (ta, tb) = (tenant(&a, "a").await, tenant(&a, "b").await);
    let (before_a, before_b) = (snapshot(&a, &ta).await, snapshot(&a, &tb).await);
    let m = matrix(&ta, &tb);
    let mut tried = 0;
    for r in route_table::routes() {
        let Some(Decision::Probes(probes)) = m.get(&(r.method, r.path.as_str())) else { continue };
        for attacker in [Attacker::Admin, Attacker::Member] {
            let tok = match attacker {
                Attacker::Admin => &tb.admin,
                Attacker::Member => &tb.member,
            };
            for pr in probes.iter().filter(|pr| attacker == Attacker::Admin || !pr.admin_only) {
                let what = format!("{attacker:?} of B: {} {} (route {} {})", pr.method, pr.path, r.method, r.path);
                let (status, body) = a.call(pr.method, &pr.path, tok, pr.body.as_ref()).await;
                assert_eq!(status, pr.want, "{what}: {body}");
                assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {body}");
                if pr.want == StatusCode::NOT_FOUND {
                    // The same answer as for an id that exists nowhere (no existence oracle):
                    // only "not found", never a hint of the other organization.
                    let e = body["error"].as_str().unwrap();
                    assert!(e.ends_with("not found"), "{what}: {body}");
                }
                assert_eq!(snapshot(&a, &ta).await, before_a, "{what} changed A");
                assert_eq!(snapshot(&a, &tb).await, before_b, "{what} changed B");
                tried += 1;
            }
        }
    }
    assert!(tried >= 60, "only {tried} attempts");
    // B's lists do not show A.
    for tok in [&tb.admin, &tb.member] {
        let orgs = a.ok("GET", "/organizations", tok, None, StatusCode::OK).await;
        assert!(orgs.as_array().unwrap().iter().all(|o| o["id"] != ta.org.as_str()), "{orgs}");
        let events = a.ok("GET", "/events", tok, None, StatusCode::OK).await;
        assert!(events.as_array().unwrap().iter().all(|e| e["org_id"] == tb.org.as_str()), "{events}");
        let notes = a.ok("GET", "/notifications", tok, None, StatusCode::OK).await;
        assert!(notes.as_array().unwrap().iter().all(|n| n["id"] != ta.notification.as_str()), "{notes}");
    }
}

#[tokio::test]
async fn a_404_of_another_organization_is_the_404_of_nothing() {
    // B's answers for A's ids and for random ids are the same, status and body.
    let a = app();
    let (ta, tb) = (tenant(&a, "a").await, tenant(&a, "b").await);
    let nobody = uuid::Uuid::new_v4().to_string();
    for (real, fake) in [
        (format!("/events/{}", ta.event), format!("/events/{nobody}")),
        (format!("/events/{}/seats", ta.event), format!("/events/{nobody}/seats")),
        (format!("/bookings/{}", ta.booking), format!("/bookings/{nobody}")),
        (format!("/organizations/{}", ta.org), format!("/organizations/{nobody}")),
        (format!("/organizations/{}/members", ta.org), format!("/organizations/{nobody}/members")),
        (format!("/events/{}/holds/{}", ta.event, ta.hold), format!("/events/{nobody}/holds/{nobody}")),
        (format!("/events/{}/holds/{}", tb.event, ta.hold), format!("/events/{}/holds/{nobody}", tb.event)),
        (format!("/bookings/user/{}", ta.member_id), format!("/bookings/user/{nobody}")),
        (format!("/organizations/user/{}", ta.member_id), format!("/organizations/user/{nobody}")),
    ] {
        for tok in [&tb.admin, &tb.member] {
            let x = a.call("GET", &real, tok, None).await;
            let y = a.call("GET", &fake, tok, None).await;
            assert_eq!(x, y, "{real} vs {fake}");
            assert_eq!(x.0, StatusCode::NOT_FOUND, "{real}: {}", x.1);
        }
    }
}

#[tokio::test]
async fn the_members_of_a_still_reach_everything_of_a() {
    // The matrix is not passing because everything answers 404: A's own people are served.
    let a = app();
    let (ta, _tb) = (tenant(&a, "a").await, tenant(&a, "b").await);
    let snap = snapshot(&a, &ta).await;
    assert_eq!(snap[format!("admin GET /events/{}", ta.event)]["booked_slots"], 2);
    assert_eq!(snap[format!("admin GET /events/{}/waitlist", ta.event)][0]["id"], ta.waiting.as_str());
    assert_eq!(snap[format!("admin GET /organizations/{}/members", ta.org)].as_array().unwrap().len(), 2);
    let r = a
        .ok("POST", &format!("/bookings/{}/cancel-seats", ta.booking), &ta.member, Some(json!({ "seat_numbers": [1] })), StatusCode::OK)
        .await;
    assert_eq!(r["seat_numbers"], json!([2]));
    // B's orgAdmin, once invited into A, sees A (and so the 404s above were about membership).
    let inv = a
        .ok(
            "POST",
            "/org-invites",
            &ta.admin,
            Some(json!({ "organization_id": ta.org, "email": "admin-b@example.com" })),
            StatusCode::CREATED,
        )
        .await;
    let tb_admin = token("admin-b");
    a.ok("POST", &format!("/org-invites/{}/accept", inv["token"].as_str().unwrap()), &tb_admin, None, StatusCode::OK).await;
    a.ok("GET", &format!("/events/{}", ta.event), &tb_admin, None, StatusCode::OK).await;
}

#[tokio::test]
async fn repeated_or_smuggled_ids_do_not_reach_another_organization() {
    let a = app();
    let (ta, tb) = (tenant(&a, "a").await, tenant(&a, "b").await);
    let before = snapshot(&a, &ta).await;
    // A repeated query parameter: whichever the server reads, B never sees A's events.
    for q in [format!("org_id={}&org_id={}", tb.org, ta.org), format!("org_id={}&org_id={}", ta.org, tb.org)] {
        let (status, body) = a.call("GET", &format!("/events?{q}"), &tb.admin, None).await;
        assert!(status == StatusCode::OK || status == StatusCode::NOT_FOUND, "{q}: {status} {body}");
        if status == StatusCode::OK {
            assert!(body.as_array().unwrap().iter().all(|e| e["org_id"] == tb.org.as_str()), "{q}: {body}");
        }
    }
    // A body naming B's event and then A's (or A's then B's): refused, nothing booked anywhere.
    for (first, second) in [(&tb.event, &ta.event), (&ta.event, &tb.event)] {
        let raw = format!(r#"{{"event_id":"{first}","event_id":"{second}","seats":1}}"#);
        let res = warp::test::request()
            .method("POST")
            .path("/bookings")
            .header("authorization", format!("Bearer {}", tb.admin))
            .body(raw)
            .reply(&a.api)
            .await;
        assert!(res.status() == StatusCode::BAD_REQUEST || res.status() == StatusCode::NOT_FOUND, "{:?}", res);
    }
    // Ids in odd spellings (upper case, braces, URN) are either the same id, and so still
    // another organization's (404), or no id (404 as an unknown route).
    for id in [ta.event.to_uppercase(), ta.event.replace('-', ""), format!("urn:uuid:{}", ta.event), format!("{{{}}}", ta.event)] {
        let (status, body) = a.call("GET", &format!("/events/{id}"), &tb.admin, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
        let (status, body) = a.call("PUT", &format!("/events/{id}"), &tb.admin, Some(&json!({ "name": "pwned" }))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
    }
    assert_eq!(snapshot(&a, &ta).await, before);
    let seats = a.ok("GET", &format!("/events/{}/seats", tb.event), &tb.admin, None, StatusCode::OK).await;
    assert_eq!(seats["taken"], json!([1, 2]), "nothing booked in B either");
}
