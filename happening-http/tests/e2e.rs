//! End-to-end tests: the real `happening` binary on a free port of the loopback, driven
//! over HTTP (harness in `common`).

mod common;

use happening_http::auth::{mint, MintRequest};
use std::collections::BTreeSet;

use common::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tokio::process::Command;

#[tokio::test]
async fn seed_demo_capacity_five_with_promotion() {
    let s = Server::with_secret(&["--tick-ms", "20"]).await;
    let Demo { bob, bob_id, .. } = seed_demo(&s).await;
    let notes = s.ok(Method::GET, "/notifications", &bob, None, StatusCode::OK).await;
    let kinds: Vec<&str> = notes.as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["waitlist_promoted", "booking_waitlisted"]);
    let mine = s.ok(Method::GET, &format!("/bookings/user/{bob_id}"), &bob, None, StatusCode::OK).await;
    assert_eq!(mine[0]["event_name"], "Show");

    // The background relay counts the outcomes into the metrics.
    let m = s
        .until("booking metrics", || async {
            let m = s.metrics().await;
            (metric(&m, r#"happening_bookings_total{outcome="promoted"}"#) == Some(1)).then_some(m)
        })
        .await;
    assert_eq!(metric(&m, r#"happening_bookings_total{outcome="confirmed"}"#), Some(1));
    assert_eq!(metric(&m, r#"happening_bookings_total{outcome="waitlisted"}"#), Some(1));
    assert!(m.contains(r#"happening_http_requests_total{route="/bookings",method="POST",status="201"} 2"#), "{m}");
    assert!(m.contains(r#"happening_http_request_duration_seconds_bucket{route="/bookings/{id}/cancel-seats",le="+Inf"} 1"#), "{m}");
}

#[tokio::test]
async fn seed_walkthrough_capacity_ten() {
    let s = Server::with_secret(&[]).await;
    let (org_tok, _) = s.user("organizer").await;
    let (a, a_id) = s.user("user-a").await;
    let (b, b_id) = s.user("user-b").await;
    let org = s.org(&org_tok, &[&a_id, &b_id]).await;
    let ev = s.event(&org_tok, &org, 10).await;
    let ba = s.book(&a, json!({ "event_id": ev, "seat_numbers": [1, 2] })).await;
    assert_eq!((ba["status"].as_str(), ba["seat_numbers"].clone()), (Some("confirmed"), json!([1, 2])));
    let bb = s.book(&b, json!({ "event_id": ev, "seats": 9 })).await;
    assert_eq!((bb["status"].as_str(), bb["waiting_number"].as_u64()), (Some("waiting"), Some(1)), "only 8 left");
    s.ok(
        Method::POST,
        &format!("/bookings/{}/cancel-seats", ba["id"].as_str().unwrap()),
        &a,
        Some(json!({ "seat_numbers": [1] })),
        StatusCode::OK,
    )
    .await;
    let bb = s.ok(Method::GET, &format!("/bookings/{}", bb["id"].as_str().unwrap()), &b, None, StatusCode::OK).await;
    assert_eq!(bb["status"], "confirmed");
    assert_eq!(bb["seat_numbers"], json!([1, 3, 4, 5, 6, 7, 8, 9, 10]));
    let e = s.ok(Method::GET, &format!("/events/{ev}"), &a, None, StatusCode::OK).await;
    assert_eq!((e["available_slots"].as_u64(), e["booked_slots"].as_u64()), (Some(0), Some(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_bookings_for_one_hundred_seats() {
    let s = Server::with_secret(&[]).await;
    let (admin, _) = s.user("admin").await;
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(s.user(&format!("fan-{i}")).await);
    }
    let ids: Vec<&str> = users.iter().map(|(_, id)| id.as_str()).collect();
    let org = s.org(&admin, &ids).await;
    let ev = s.event(&admin, &org, 100).await;

    let mut tasks = Vec::new();
    for i in 0..500 {
        let (tok, _) = users[i % users.len()].clone();
        let (http, url, ev) = (s.http.clone(), s.url("/bookings"), ev.clone());
        tasks.push(tokio::spawn(async move {
            let res = http.post(url).bearer_auth(tok).json(&json!({ "event_id": ev, "seats": 1 })).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let confirmed: Vec<&Value> = results.iter().filter(|b| b["status"] == "confirmed").collect();
    let waiting: Vec<&Value> = results.iter().filter(|b| b["status"] == "waiting").collect();
    assert_eq!(confirmed.len(), 100, "exactly 100 confirmed");
    assert_eq!(waiting.len(), 400);
    let seats: BTreeSet<u64> = confirmed.iter().map(|b| b["seat_numbers"][0].as_u64().unwrap()).collect();
    assert_eq!(seats, (1..=100).collect::<BTreeSet<u64>>(), "distinct seats 1..=100");

    // The waitlist is exactly those 400, numbered 1..=400 in order.
    let wl = s.ok(Method::GET, &format!("/events/{ev}/waitlist?limit=500"), &admin, None, StatusCode::OK).await;
    let wl = wl.as_array().unwrap();
    assert_eq!(wl.len(), 400);
    let listed: BTreeSet<&str> = wl.iter().map(|b| b["id"].as_str().unwrap()).collect();
    let answered: BTreeSet<&str> = waiting.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(listed, answered);
    for (i, b) in wl.iter().enumerate() {
        assert_eq!(b["waiting_number"].as_u64(), Some(i as u64 + 1));
        // The number answered is the place at that moment; a concurrent request that the
        // store ordered earlier may still have been entering the queue, never a later one,
        // and nobody left: so the place can only have grown since.
        let at_answer = waiting.iter().find(|w| w["id"] == b["id"]).unwrap()["waiting_number"].as_u64().unwrap();
        assert!(at_answer >= 1 && at_answer <= i as u64 + 1, "answered {at_answer}, now {}", i + 1);
    }
    let map = s.ok(Method::GET, &format!("/events/{ev}/seats"), &admin, None, StatusCode::OK).await;
    assert_eq!(map["taken"].as_array().unwrap().len(), 100);
    assert_eq!(map["available_slots"], 0);

    // FIFO: a freed seat goes to the head of the queue.
    let freed = confirmed[0];
    let owner = users.iter().find(|(_, id)| freed["user_id"] == id.as_str()).unwrap();
    s.ok(Method::POST, &format!("/bookings/{}/cancel", freed["id"].as_str().unwrap()), &owner.0, None, StatusCode::OK).await;
    let head = s.ok(Method::GET, &format!("/bookings/{}", wl[0]["id"].as_str().unwrap()), &admin, None, StatusCode::OK).await;
    assert_eq!(head["status"], "confirmed");
    assert_eq!(head["seat_numbers"], freed["seat_numbers"]);
    let wl2 = s.ok(Method::GET, &format!("/events/{ev}/waitlist?limit=500"), &admin, None, StatusCode::OK).await;
    assert_eq!(wl2.as_array().unwrap().len(), 399);
    assert_eq!(wl2[0]["id"], wl[1]["id"]);
    assert_eq!(wl2[0]["waiting_number"], 1);
}

#[tokio::test]
async fn tenants_and_roles_over_http() {
    let s = Server::with_secret(&[]).await;
    let (admin, _) = s.user("admin").await;
    let (alice, alice_id) = s.user("alice").await;
    let (eve, _) = s.user("eve").await;
    let org = s.org(&admin, &[&alice_id]).await;
    let ev = s.event(&admin, &org, 3).await;
    let b = s.book(&alice, json!({ "event_id": ev })).await;
    let bid = b["id"].as_str().unwrap();

    // Eve is in no organization of theirs: everything of it is 404, and nothing changes.
    for (m, p) in [
        (Method::GET, format!("/events/{ev}")),
        (Method::GET, format!("/events/{ev}/seats")),
        (Method::GET, format!("/bookings/{bid}")),
        (Method::POST, format!("/bookings/{bid}/cancel")),
        (Method::GET, format!("/organizations/{org}/members")),
    ] {
        let (st, v) = s.call(m.clone(), &p, Some(&eve), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m} {p}");
        assert!(v["error"].is_string());
    }
    let (st, _) = s.call(Method::POST, "/bookings", Some(&eve), Some(json!({ "event_id": ev }))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Alice is a user there: she books, but does not manage.
    let (st, _) = s.call(Method::PUT, &format!("/events/{ev}"), Some(&alice), Some(json!({ "total_slots": 100 }))).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s.call(Method::DELETE, &format!("/events/{ev}"), Some(&alice), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let e = s.ok(Method::GET, &format!("/events/{ev}"), &admin, None, StatusCode::OK).await;
    assert_eq!((e["total_slots"].as_u64(), e["booked_slots"].as_u64()), (Some(3), Some(1)));
    let b = s.ok(Method::GET, &format!("/bookings/{bid}"), &alice, None, StatusCode::OK).await;
    assert_eq!(b["status"], "confirmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_of_one_idempotency_key_book_once() {
    let s = Server::with_secret(&[]).await;
    let (admin, admin_id) = s.user("admin").await;
    let org = s.org(&admin, &[]).await;
    let ev = s.event(&admin, &org, 10).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (http, url, tok, ev) = (s.http.clone(), s.url("/bookings"), admin.clone(), ev.clone());
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(tok)
                .header("Idempotency-Key", "order-42")
                .json(&json!({ "event_id": ev, "seats": 2 }))
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        let (st, v) = t.await.unwrap();
        assert_eq!(st, StatusCode::CREATED, "{v}");
        ids.insert(v["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "every repeat answers the same booking");
    let mine = s.ok(Method::GET, &format!("/bookings/user/{admin_id}"), &admin, None, StatusCode::OK).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let map = s.ok(Method::GET, &format!("/events/{ev}/seats"), &admin, None, StatusCode::OK).await;
    assert_eq!(map["taken"], json!([1, 2]));
    let res = s
        .http
        .post(s.url("/bookings"))
        .bearer_auth(&admin)
        .header("Idempotency-Key", "order-42")
        .json(&json!({ "event_id": ev, "seats": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
}

#[tokio::test]
async fn holds_expire_and_promote_the_waitlist() {
    let s = Server::with_secret(&["--tick-ms", "20"]).await;
    let (admin, _) = s.user("admin").await;
    let (bob, bob_id) = s.user("bob").await;
    let org = s.org(&admin, &[&bob_id]).await;
    let ev = s.event(&admin, &org, 2).await;
    let h = s
        .ok(Method::POST, &format!("/events/{ev}/holds"), &admin, Some(json!({ "seats": 2, "ttl_seconds": 1 })), StatusCode::CREATED)
        .await;
    assert_eq!(h["seat_numbers"], json!([1, 2]));
    let hid = h["id"].as_str().unwrap();
    let w = s.book(&bob, json!({ "event_id": ev, "seats": 2 })).await;
    assert_eq!(w["status"], "waiting", "held seats are not free");
    let wid = w["id"].as_str().unwrap();
    let b = s
        .until("the hold to expire and bob to be promoted", || async {
            let b = s.ok(Method::GET, &format!("/bookings/{wid}"), &bob, None, StatusCode::OK).await;
            (b["status"] == "confirmed").then_some(b)
        })
        .await;
    assert_eq!(b["seat_numbers"], json!([1, 2]));
    let (st, _) = s.call(Method::GET, &format!("/events/{ev}/holds/{hid}"), Some(&admin), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let map = s.ok(Method::GET, &format!("/events/{ev}/seats"), &admin, None, StatusCode::OK).await;
    assert_eq!((map["taken"].clone(), map["held"].clone()), (json!([1, 2]), json!([])));
    let notes = s.ok(Method::GET, "/notifications", &admin, None, StatusCode::OK).await;
    assert_eq!(notes[0]["type"], "hold_expired");
}

#[tokio::test]
async fn live_stream_sends_seat_and_waitlist_changes() {
    let s = Server::with_secret(&[]).await;
    let (admin, _) = s.user("admin").await;
    let (bob, bob_id) = s.user("bob").await;
    let org = s.org(&admin, &[&bob_id]).await;
    let ev = s.event(&admin, &org, 2).await;
    let mut res = s.http.get(s.url(&format!("/events/{ev}/stream"))).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut buf = String::new();
    let first = next_event(&mut res, &mut buf, "seats", |_| true).await;
    assert_eq!((first["total"].as_u64(), first["taken"].clone()), (Some(2), json!([])));

    s.book(&admin, json!({ "event_id": ev, "seats": 2 })).await;
    let full = next_event(&mut res, &mut buf, "seats", |v| v["taken"] == json!([1, 2])).await;
    assert_eq!(full["available_slots"], 0);
    let w = s.book(&bob, json!({ "event_id": ev, "seats": 1 })).await;
    let queued = next_event(&mut res, &mut buf, "seats", |v| !v["waiting"].as_array().unwrap().is_empty()).await;
    assert_eq!(queued["waiting"], json!([{ "booking_id": w["id"], "seats": 1, "waiting_number": 1 }]));
    s.ok(Method::DELETE, &format!("/events/{ev}"), &admin, None, StatusCode::NO_CONTENT).await;
    let gone = next_event(&mut res, &mut buf, "deleted", |_| true).await;
    assert_eq!(gone["event_id"], ev.as_str());
    assert!(res.chunk().await.unwrap().is_none(), "the stream ends with the event");
}

#[tokio::test]
async fn bad_requests_over_http_change_nothing() {
    let s = Server::with_secret(&["--body-limit", "4096"]).await;
    let (admin, _) = s.user("admin").await;
    let org = s.org(&admin, &[]).await;
    let ev = s.event(&admin, &org, 5).await;
    s.book(&admin, json!({ "event_id": ev, "seats": 2 })).await;
    let before = s.ok(Method::GET, &format!("/events/{ev}"), &admin, None, StatusCode::OK).await;

    let post = |body: Vec<u8>, tok: Option<String>| {
        let mut r = s.http.post(s.url("/bookings")).header("content-type", "application/json").body(body);
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let cases: Vec<(Vec<u8>, Option<String>, StatusCode)> = vec![
        (format!(r#"{{"event_id":"{ev}","seats":1}}"#).into_bytes(), None, StatusCode::UNAUTHORIZED),
        (format!(r#"{{"event_id":"{ev}","seats":1}}"#).into_bytes(), Some("x.y.z".into()), StatusCode::UNAUTHORIZED),
        (b"{\"event_id\":".to_vec(), Some(admin.clone()), StatusCode::BAD_REQUEST),
        (format!(r#"{{"event_id":"{ev}","seats":"1"}}"#).into_bytes(), Some(admin.clone()), StatusCode::BAD_REQUEST),
        (format!(r#"{{"event_id":"{ev}","seats":9}}"#).into_bytes(), Some(admin.clone()), StatusCode::BAD_REQUEST),
        (
            format!(r#"{{"event_id":"{ev}","seat_numbers":[1],"strict_seats":true}}"#).into_bytes(),
            Some(admin.clone()),
            StatusCode::CONFLICT,
        ),
        (vec![b' '; 5000], Some(admin.clone()), StatusCode::PAYLOAD_TOO_LARGE),
    ];
    for (body, tok, want) in cases {
        let res = post(body, tok).await.unwrap();
        assert_eq!(res.status(), want);
        if want == StatusCode::PAYLOAD_TOO_LARGE {
            assert_eq!(res.headers()["connection"], "close", "the unread body ends the connection");
        }
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].is_string(), "{v}");
    }
    // A body sent without Content-Length (chunked) is limited too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..10).map(|_| Ok(vec![b' '; 1000])).collect();
    let res = s
        .http
        .post(s.url("/bookings"))
        .bearer_auth(&admin)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await;
    if let Ok(res) = res {
        // The server may answer before reading the rest, or close: either way, no booking.
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let (st, v) = s.call(Method::PATCH, "/bookings", Some(&admin), None).await;
    assert_eq!((st, v["error"].is_string()), (StatusCode::METHOD_NOT_ALLOWED, true));
    let (st, v) = s.call(Method::GET, "/nowhere", Some(&admin), None).await;
    assert_eq!((st, v["error"].is_string()), (StatusCode::NOT_FOUND, true));
    let after = s.ok(Method::GET, &format!("/events/{ev}"), &admin, None, StatusCode::OK).await;
    assert_eq!(after, before, "nothing changed");
}

#[tokio::test]
async fn without_auth_config_a_secret_is_generated_and_a_token_printed() {
    let s = Server::start(&["--dev-sub", "operator"], &[]).await;
    let (st, _) = s.call(Method::GET, "/users/me", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "never open");
    let forged = mint("guess", &MintRequest { sub: "operator".into(), ttl_secs: 60, ..Default::default() });
    let (st, _) = s.call(Method::GET, "/users/me", Some(&forged), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let tok = s.banner.iter().find_map(|l| l.strip_prefix("TOKEN=")).expect("a printed token").to_string();
    let me = s.ok(Method::GET, "/users/me", &tok, None, StatusCode::OK).await;
    assert_eq!(me["keycloak_id"], "operator");
}

#[tokio::test]
async fn redis_without_postgres_and_bad_usage_are_refused() {
    // Redis is rebuilt from PostgreSQL: without it, refused.
    let out = bin().args(["--port", "0"]).env("REDIS_URL", "redis://localhost").env("HAPPENING_JWT_SECRET", SECRET).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REDIS_URL") && err.contains("DATABASE_URL"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    // reconcile needs the database; worker needs RabbitMQ and the database; a bad event id
    // is bad usage.
    for args in [&["reconcile"][..], &["worker"], &["reconcile", "--event", "not-an-id"]] {
        let out = bin().args(args).output().await.unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = bin().args(["worker"]).env("RABBITMQ_URL", "amqp://localhost").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}

/// RabbitMQ down (nobody listens): the server starts, bookings work, and `/readyz` answers
/// 200 with RabbitMQ as degraded.
#[tokio::test]
async fn rabbitmq_down_is_degraded_not_unready() {
    for var in ["RABBITMQ_URL", "AMQP_URL"] {
        let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port().await);
        let s = Server::start(&["--tick-ms", "50"], &[("HAPPENING_JWT_SECRET", SECRET), (var, &url)]).await;
        let (st, body) = s.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(st, StatusCode::OK, "{var}: {body}");
        assert_eq!(body["status"], "degraded", "{body}");
        assert_eq!(body["degraded"], json!(["rabbitmq"]), "{body}");
        assert_eq!(body["stores"]["notifier"], "rabbitmq", "{body}");
        let (admin, _) = s.user("admin").await;
        let (alice, alice_id) = s.user("alice").await;
        let org = s.org(&admin, &[&alice_id]).await;
        let ev = s.event(&admin, &org, 5).await;
        let b = s.book(&alice, json!({ "event_id": ev, "seats": 2 })).await;
        assert_eq!(b["status"], "confirmed");
        assert_eq!(s.stop().await.code(), Some(0));
    }
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_with_a_clear_error() {
    let url = format!("postgres://happening:secret-password@127.0.0.1:{}/happening", closed_port().await);
    for args in [&["--port", "0"][..], &["serve", "--port", "0", "--db-pool-size", "4"][..]] {
        let out = tokio::time::timeout(DEADLINE, bin().args(args).env("DATABASE_URL", &url).env("HAPPENING_JWT_SECRET", SECRET).output())
            .await
            .expect("exits")
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot connect to PostgreSQL (DATABASE_URL)"), "{err}");
        assert!(!err.contains("secret-password"), "the URL's password is never printed: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    }
    // A pool size of 0 is refused by the parser.
    let out = bin().args(["--port", "0", "--db-pool-size", "0"]).env("DATABASE_URL", &url).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn migrate_needs_a_reachable_database() {
    let out = bin().arg("migrate").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
    let url = format!("postgres://happening@127.0.0.1:{}/happening", closed_port().await);
    for cmd in [bin().arg("migrate").env("DATABASE_URL", &url), bin().args(["migrate", "--database-url", &url])] {
        let out = tokio::time::timeout(DEADLINE, cmd.output()).await.expect("exits").unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to PostgreSQL"), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test]
async fn token_subcommand_mints_a_token_the_server_accepts() {
    let out = bin().args(["token", "--sub", "cli-user", "--secret", SECRET, "--email", "cli@example.com"]).output().await.unwrap();
    assert!(out.status.success());
    let tok = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let s = Server::with_secret(&[]).await;
    let me = s.ok(Method::GET, "/users/me", &tok, None, StatusCode::OK).await;
    assert_eq!((me["keycloak_id"].as_str(), me["email"].as_str()), (Some("cli-user"), Some("cli@example.com")));
}

#[tokio::test]
async fn rs256_tokens_verify_against_a_jwks_file_with_issuer_and_audience() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let s = Server::start(
        &[],
        &[
            ("HAPPENING_JWKS_FILE", &format!("{dir}/jwks.json")),
            ("HAPPENING_JWT_ISSUER", "https://kc.example/realms/h"),
            ("HAPPENING_JWT_AUDIENCE", "happening"),
        ],
    )
    .await;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(format!("{dir}/rs256-test-key.pem")).unwrap()).unwrap();
    let sign = |iss: &str, aud: &str, kid: &str| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some(kid.into());
        let now = happening_http::auth::now_secs();
        let claims = json!({ "sub": "kc-user", "exp": now + 600, "iat": now, "iss": iss, "aud": aud, "preferred_username": "kc" });
        jsonwebtoken::encode(&h, &claims, &key).unwrap()
    };
    let me = s.ok(Method::GET, "/users/me", &sign("https://kc.example/realms/h", "happening", "test-key-1"), None, StatusCode::OK).await;
    assert_eq!((me["keycloak_id"].as_str(), me["name"].as_str()), (Some("kc-user"), Some("kc")));
    for (iss, aud, kid) in [
        ("https://evil.example", "happening", "test-key-1"),
        ("https://kc.example/realms/h", "other", "test-key-1"),
        ("https://kc.example/realms/h", "happening", "unknown-kid"),
    ] {
        let (st, v) = s.call(Method::GET, "/users/me", Some(&sign(iss, aud, kid)), None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{iss} {aud} {kid}");
        assert!(v["error"].is_string());
    }
    // HS256 is not accepted when only a JWKS is configured.
    let (st, _) = s.call(Method::GET, "/users/me", Some(&token("kc-user")), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sigterm_stops_gracefully_and_ends_live_streams() {
    let mut s = Server::with_secret(&[]).await;
    let (admin, _) = s.user("admin").await;
    let org = s.org(&admin, &[]).await;
    let ev = s.event(&admin, &org, 2).await;
    let mut res = s.http.get(s.url(&format!("/events/{ev}/stream"))).bearer_auth(&admin).send().await.unwrap();
    let mut buf = String::new();
    next_event(&mut res, &mut buf, "seats", |_| true).await;
    let pid = s.child.id().unwrap();
    let kill = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.unwrap();
    assert!(kill.success());
    let ended = tokio::time::timeout(DEADLINE, async {
        loop {
            match res.chunk().await {
                Ok(Some(_)) => continue,
                _ => return true,
            }
        }
    })
    .await
    .expect("the stream did not end");
    assert!(ended);
    let status = tokio::time::timeout(DEADLINE, s.child.wait()).await.expect("server did not exit").unwrap();
    assert!(status.success(), "{status:?}");
    assert!(reqwest::get(s.url("/healthz")).await.is_err(), "no longer listening");
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    let mut s = Server::with_secret(&[]).await;
    let (admin, _) = s.user("admin").await;
    let org = s.org(&admin, &[]).await;
    let ev = s.event(&admin, &org, 2).await;
    // A booking whose body arrives after the shutdown began. It asks `100-continue`: the
    // server answers that once the handler reads the body, so when the client has it, the
    // request is surely in flight (not bytes still in a socket buffer, which the shutdown
    // may rightly drop with an idle connection).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let json = format!(r#"{{"event_id":"{ev}","seats":2}}"#);
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /bookings HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {admin}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nexpect: 100-continue\r\n\r\n",
        json.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while !got.ends_with(b"\r\n\r\n") {
            got.push(conn.read_u8().await.expect("the interim answer"));
        }
    })
    .await
    .expect("no 100 Continue");
    assert!(got.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&got));
    sigterm(&s.child).await;
    // Shutdown has begun once new connections are refused.
    s.until("the listener to close", || async { Client::new().get(s.url("/healthz")).send().await.is_err().then_some(()) }).await;
    conn.write_all(json.as_bytes()).await.unwrap();
    // The answer, then the end of the connection (the server is going away).
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, conn.read_to_end(&mut answer)).await.expect("the request in flight is answered").unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let b: Value = serde_json::from_str(answer.split_once("\r\n\r\n").expect("head and body").1).unwrap();
    assert_eq!((b["status"].as_str(), b["seat_numbers"].clone()), (Some("confirmed"), json!([1, 2])));
    let status = tokio::time::timeout(DEADLINE, s.child.wait()).await.expect("server did not exit").unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn sigterm_does_not_wait_for_a_connection_never_used() {
    // A grace period far past the test's deadline: waiting on the idle connections below
    // would fail the test.
    let mut s = Server::with_secret(&["--shutdown-grace", "600"]).await;
    let (admin, _) = s.user("admin").await; // leaves a used keep-alive connection idle
    let addr = s.url("").trim_start_matches("http://").to_string();
    // What an HTTP client's pool keeps as a spare: connected, and never a byte sent.
    let spare = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let org = s.org(&admin, &[]).await;
    assert!(!org.is_empty());
    sigterm(&s.child).await;
    let status = tokio::time::timeout(DEADLINE, s.child.wait()).await.expect("the server waited on an unused connection").unwrap();
    assert!(status.success(), "{status:?}");
    drop(spare);
}

/// `--auth-cache-ms`: a removal through this server drops its cached grant, so it takes
/// effect at the next request whatever the TTL (a grant kept for its TTL after a change
/// through another server: `authcache`'s unit tests); a refusal is never cached (a new
/// member books at once). With a long TTL, the default, and none.
#[tokio::test]
async fn auth_cache_drops_a_removal_through_its_server_and_never_keeps_refusals() {
    for args in [&["--auth-cache-ms", "60000"][..], &[][..], &["--auth-cache-ms", "0"][..]] {
        let after_removal = StatusCode::NOT_FOUND;
        let s = Server::with_secret(args).await;
        let (admin, _) = s.user("admin").await;
        let (bob, bob_id) = s.user("bob").await;
        let (eve, eve_id) = s.user("eve").await;
        let org = s.org(&admin, &[&bob_id]).await;
        let event = s.event(&admin, &org, 10).await;
        let one = json!({ "event_id": event, "seats": 1 });
        s.book(&bob, one.clone()).await;
        s.ok(Method::DELETE, &format!("/organizations/{org}/members/{bob_id}"), &admin, None, StatusCode::NO_CONTENT).await;
        let (status, body) = s.call(Method::POST, "/bookings", Some(&bob), Some(one.clone())).await;
        assert_eq!(status, after_removal, "removed member, server args {args:?}: {body}");
        let (status, _) = s.call(Method::POST, "/bookings", Some(&eve), Some(one.clone())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "an outsider");
        let add = json!({ "user_id": eve_id, "role": "user" });
        s.ok(Method::POST, &format!("/organizations/{org}/members"), &admin, Some(add), StatusCode::CREATED).await;
        s.book(&eve, one).await;
        s.stop().await;
    }
}
