//! The real `happening` binary on PostgreSQL (`DATABASE_URL`), each test on a fresh database
//! of the test server named by `HAPPENING_TEST_DATABASE_URL` (scripts/test starts one).
//! Without it the tests skip with a message, except under CI, where that is a failure.

mod common;

use std::collections::BTreeSet;

use common::*;
use happening_postgres::testing;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

/// The URL of a fresh, migrated database; `None` when no test server is configured.
async fn fresh_database() -> Option<String> {
    let server = testing::server_url()?;
    Some(testing::fresh_database_url(&server).await)
}

async fn start(db: &str, args: &[&str]) -> Server {
    Server::start(args, &[("HAPPENING_JWT_SECRET", SECRET), ("DATABASE_URL", db)]).await
}

async fn kinds(s: &Server, tok: &str) -> Vec<String> {
    let notes = s.ok(Method::GET, "/notifications", tok, None, StatusCode::OK).await;
    notes.as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn seed_demo_on_postgres() {
    let Some(db) = fresh_database().await else { return };
    let s = start(&db, &["--tick-ms", "20"]).await;
    let Demo { bob, bob_booking, .. } = seed_demo(&s).await;
    assert_eq!(kinds(&s, &bob).await, ["waitlist_promoted", "booking_waitlisted"]);
    let hist = s.ok(Method::GET, &format!("/bookings/{bob_booking}/history"), &bob, None, StatusCode::OK).await;
    let actions: Vec<&str> = hist.as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "promoted"]);

    // The outbox in PostgreSQL is relayed by the background worker.
    s.until("the promotion relayed", || async {
        (metric(&s.metrics().await, r#"happening_bookings_total{outcome="promoted"}"#) == Some(1)).then_some(())
    })
    .await;
    assert_eq!(s.stop().await.code(), Some(0));
}

#[tokio::test]
async fn data_survives_a_restart_and_booking_goes_on() {
    let Some(db) = fresh_database().await else { return };
    let s = start(&db, &[]).await;
    let (admin, _) = s.user("admin").await;
    let (alice, alice_id) = s.user("alice").await;
    let (bob, bob_id) = s.user("bob").await;
    let (carol, carol_id) = s.user("carol").await;
    let org = s.org(&admin, &[&alice_id, &bob_id, &carol_id]).await;
    let ev = s.event(&admin, &org, 3).await;
    let a = s.book(&alice, json!({ "event_id": ev, "seats": 2 })).await;
    let b = s.book(&bob, json!({ "event_id": ev, "seats": 2 })).await;
    assert_eq!((a["status"].as_str(), b["status"].as_str(), b["waiting_number"].as_u64()), (Some("confirmed"), Some("waiting"), Some(1)));
    let (a_id, b_id) = (a["id"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string());
    let event_before = s.ok(Method::GET, &format!("/events/{ev}"), &admin, None, StatusCode::OK).await;
    assert_eq!(s.stop().await.code(), Some(0), "SIGTERM stops the server cleanly");

    // A new process on the same database: everything is there.
    let s = start(&db, &[]).await;
    let orgs = s.ok(Method::GET, "/organizations", &admin, None, StatusCode::OK).await;
    assert_eq!(
        (orgs.as_array().unwrap().len(), orgs[0]["id"].as_str(), orgs[0]["role"].as_str()),
        (1, Some(org.as_str()), Some("orgAdmin"))
    );
    let event_after = s.ok(Method::GET, &format!("/events/{ev}"), &admin, None, StatusCode::OK).await;
    assert_eq!(event_after, event_before);
    assert_eq!(
        (event_after["booked_slots"].as_u64(), event_after["available_slots"].as_u64(), event_after["waiting_count"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    let a_again = s.ok(Method::GET, &format!("/bookings/{a_id}"), &alice, None, StatusCode::OK).await;
    assert_eq!((a_again["status"].as_str(), a_again["seat_numbers"].clone()), (Some("confirmed"), json!([1, 2])));
    let wl = s.ok(Method::GET, &format!("/events/{ev}/waitlist"), &admin, None, StatusCode::OK).await;
    assert_eq!((wl.as_array().unwrap().len(), wl[0]["id"].as_str(), wl[0]["waiting_number"].as_u64()), (1, Some(b_id.as_str()), Some(1)));
    assert_eq!(kinds(&s, &alice).await, ["booking_confirmed"]);
    assert_eq!(kinds(&s, &bob).await, ["booking_waitlisted"]);
    let members = s.ok(Method::GET, &format!("/organizations/{org}/members"), &admin, None, StatusCode::OK).await;
    assert_eq!(members.as_array().unwrap().len(), 4);

    // Booking goes on where it was: Carol queues behind Bob; Alice frees a seat, which is
    // not enough for Bob (FIFO), then another, and Bob gets both.
    let c = s.book(&carol, json!({ "event_id": ev, "seats": 1 })).await;
    assert_eq!(
        (c["status"].as_str(), c["waiting_number"].as_u64()),
        (Some("waiting"), Some(2)),
        "behind the queue kept across the restart"
    );
    s.ok(Method::POST, &format!("/bookings/{a_id}/cancel-seats"), &alice, Some(json!({ "seat_numbers": [1] })), StatusCode::OK).await;
    let b_now = s.ok(Method::GET, &format!("/bookings/{b_id}"), &bob, None, StatusCode::OK).await;
    assert_eq!((b_now["status"].as_str(), b_now["seat_numbers"].clone()), (Some("confirmed"), json!([1, 3])));
    let c_now = s.ok(Method::GET, &format!("/bookings/{}", c["id"].as_str().unwrap()), &carol, None, StatusCode::OK).await;
    assert_eq!((c_now["status"].as_str(), c_now["waiting_number"].as_u64()), (Some("waiting"), Some(1)));
    let map = s.ok(Method::GET, &format!("/events/{ev}/seats"), &admin, None, StatusCode::OK).await;
    assert_eq!(map, json!({ "total": 3, "taken": [1, 2, 3], "held": [], "available_slots": 0 }));
    assert_eq!(kinds(&s, &bob).await, ["waitlist_promoted", "booking_waitlisted"]);
    assert_eq!(s.stop().await.code(), Some(0));

    // And once more, after the changes made by the second process.
    let s = start(&db, &[]).await;
    let c_final = s.ok(Method::GET, &format!("/bookings/{}", c["id"].as_str().unwrap()), &carol, None, StatusCode::OK).await;
    assert_eq!((c_final["status"].as_str(), c_final["waiting_number"].as_u64()), (Some("waiting"), Some(1)));
    let hist = s.ok(Method::GET, &format!("/bookings/{a_id}/history"), &alice, None, StatusCode::OK).await;
    let actions: Vec<&str> = hist.as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "modified"]);
}

#[tokio::test]
async fn readyz_reports_postgres() {
    let Some(db) = fresh_database().await else { return };
    let s = start(&db, &["--db-pool-size", "4"]).await;
    let (st, body) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "status": "ready", "stores": { "seat_store": "postgres", "admission": "postgres", "notifier": "log" } }));
}

#[tokio::test]
async fn migrate_applies_the_schema_once_and_is_idempotent() {
    let Some(server) = testing::server_url() else { return };
    // A database with nothing in it (fresh_database would migrate it already).
    let db = testing::empty_database_url(&server).await;
    let total = happening_postgres::MIGRATOR.iter().count() as i64;

    let first = bin().arg("migrate").env("DATABASE_URL", &db).output().await.unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(
        String::from_utf8_lossy(&first.stdout).contains(&format!("applied {total} migration(s)")),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let mut conn = PgConnection::connect(&db).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&mut conn).await.unwrap();
    assert_eq!(applied, total);
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('events', 'bookings', 'event_seats')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 3);

    for _ in 0..2 {
        let again = bin().args(["migrate", "--database-url", &db]).output().await.unwrap();
        assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
        assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to apply"));
    }
    let applied_again: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&mut conn).await.unwrap();
    assert_eq!(applied_again, total);

    // The server starts on the migrated database (and migrates nothing more).
    let s = start(&db, &[]).await;
    assert_eq!(s.call(Method::GET, "/readyz", None, None).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_database_never_oversell() {
    let Some(db) = fresh_database().await else { return };
    let servers = [start(&db, &["--db-pool-size", "16"]).await, start(&db, &["--db-pool-size", "16"]).await];
    let (admin, _) = servers[0].user("admin").await;
    let mut users = Vec::new();
    for i in 0..40 {
        // Half of the users first seen by each server: both create users in the one database.
        users.push(servers[i % 2].user(&format!("fan-{i}")).await);
    }
    let ids: Vec<&str> = users.iter().map(|(_, id)| id.as_str()).collect();
    let org = servers[1].org(&admin, &ids).await;
    let ev = servers[0].event(&admin, &org, 50).await;

    let mut tasks = Vec::new();
    for i in 0..200 {
        let (tok, _) = users[i % users.len()].clone();
        let s = &servers[i % 2];
        let (http, url, ev) = (s.http.clone(), s.url("/bookings"), ev.clone());
        tasks.push(tokio::spawn(async move {
            let res = http.post(url).bearer_auth(tok).json(&json!({ "event_id": ev, "seats": 1 })).send().await.unwrap();
            let status = res.status();
            let body = res.json::<Value>().await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let confirmed: Vec<&Value> = results.iter().filter(|b| b["status"] == "confirmed").collect();
    let waiting: Vec<&Value> = results.iter().filter(|b| b["status"] == "waiting").collect();
    assert_eq!((confirmed.len(), waiting.len()), (50, 150), "exactly 50 confirmed, the rest waiting");
    let seats: BTreeSet<u64> = confirmed.iter().map(|b| b["seat_numbers"][0].as_u64().unwrap()).collect();
    assert_eq!(seats, (1..=50).collect::<BTreeSet<u64>>(), "50 distinct seats");

    // Both servers see the same state.
    for s in &servers {
        let map = s.ok(Method::GET, &format!("/events/{ev}/seats"), &admin, None, StatusCode::OK).await;
        assert_eq!((map["taken"].as_array().unwrap().len(), map["available_slots"].as_u64()), (50, Some(0)));
        let wl = s.ok(Method::GET, &format!("/events/{ev}/waitlist?limit=500"), &admin, None, StatusCode::OK).await;
        let wl = wl.as_array().unwrap();
        let listed: BTreeSet<&str> = wl.iter().map(|b| b["id"].as_str().unwrap()).collect();
        let answered: BTreeSet<&str> = waiting.iter().map(|b| b["id"].as_str().unwrap()).collect();
        assert_eq!(listed, answered);
        let numbers: Vec<u64> = wl.iter().map(|b| b["waiting_number"].as_u64().unwrap()).collect();
        assert_eq!(numbers, (1..=150).collect::<Vec<u64>>());
        let e = s.ok(Method::GET, &format!("/events/{ev}"), &admin, None, StatusCode::OK).await;
        assert_eq!((e["booked_slots"].as_u64(), e["waiting_count"].as_u64()), (Some(50), Some(150)));
    }

    // A seat freed through one server goes to the head of the queue, seen by the other.
    let freed = confirmed[0];
    let owner = users.iter().find(|(_, id)| freed["user_id"] == id.as_str()).unwrap();
    let head = servers[1].ok(Method::GET, &format!("/events/{ev}/waitlist?limit=1"), &admin, None, StatusCode::OK).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    servers[0].ok(Method::POST, &format!("/bookings/{}/cancel", freed["id"].as_str().unwrap()), &owner.0, None, StatusCode::OK).await;
    let promoted = servers[1].ok(Method::GET, &format!("/bookings/{head}"), &admin, None, StatusCode::OK).await;
    assert_eq!((promoted["status"].as_str(), promoted["seat_numbers"].clone()), (Some("confirmed"), freed["seat_numbers"].clone()));
}
