//! Two `happening` servers on shared stores, as replicas behind a load balancer: what people
//! are told is exact on each. Waiting numbers of a burst spread over both replicas are 1..N
//! in queue order; a live stream on one replica hears the bookings made on the other, also
//! in a burst (coalesced), and after its pub/sub connection is killed (a fresh snapshot,
//! then changes again). Each on PostgreSQL alone (LISTEN/NOTIFY), PostgreSQL + Redis
//! (PUBLISH/SUBSCRIBE), and PostgreSQL + a Redis Cluster (SPUBLISH/SSUBSCRIBE).

mod common;

use std::time::Instant;

use common::*;
use happening_postgres::testing;
use happening_redis::{redis, RedisTarget};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Stores {
    Postgres,
    Redis,
    Cluster,
}

/// The stores two replicas share: a fresh database, and Redis with a key prefix of this
/// test alone.
struct Shared {
    db: String,
    redis: Option<RedisTarget>,
    env: Vec<(&'static str, String)>,
}

impl Shared {
    async fn new(stores: Stores) -> Option<Shared> {
        let server = test_var("HAPPENING_TEST_DATABASE_URL")?;
        let redis = match stores {
            Stores::Postgres => None,
            Stores::Redis => Some(RedisTarget::Single(test_var("HAPPENING_TEST_REDIS_URL")?)),
            Stores::Cluster => RedisTarget::cluster_from_list(&test_var("HAPPENING_TEST_REDIS_CLUSTER_URLS")?),
        };
        let db = testing::fresh_database_url(&server).await;
        let mut env = vec![
            ("HAPPENING_JWT_SECRET", SECRET.to_string()),
            ("DATABASE_URL", db.clone()),
            ("HAPPENING_REDIS_PREFIX", format!("test-{}", uuid::Uuid::new_v4().simple())),
        ];
        match &redis {
            Some(RedisTarget::Single(url)) => env.push(("REDIS_URL", url.clone())),
            Some(RedisTarget::Cluster(nodes)) => env.push(("REDIS_CLUSTER_URLS", nodes.join(","))),
            None => {}
        }
        Some(Shared { db, redis, env })
    }

    async fn replica(&self) -> Server {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start(&["--db-pool-size", "8", "--tick-ms", "50"], &env).await
    }

    /// Ends the connections the replicas listen for each other's changes on: PostgreSQL's
    /// listening sessions of this database (`pg_terminate_backend`), or every subscriber
    /// connection of every Redis node (`CLIENT KILL TYPE pubsub`). Returns how many.
    async fn kill_subscriptions(&self) -> usize {
        match &self.redis {
            None => {
                let pool = sqlx::PgPool::connect(&self.db).await.unwrap();
                let killed: Vec<bool> = sqlx::query_scalar(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
                )
                .bind(happening_postgres::CHANGES_APPLICATION_NAME)
                .fetch_all(&pool)
                .await
                .unwrap();
                pool.close().await;
                killed.len()
            }
            Some(target) => {
                let nodes = match target {
                    RedisTarget::Single(url) => vec![url.clone()],
                    RedisTarget::Cluster(nodes) => nodes.clone(),
                };
                let mut killed = 0;
                for node in nodes {
                    let mut c = redis::Client::open(node.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
                    killed += redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async::<usize>(&mut c).await.unwrap();
                }
                killed
            }
        }
    }
}

/// An organization with an orgAdmin and `members` users, and an event of `seats`, made on
/// `s`: (admin token, member tokens, event id).
async fn setup_event(s: &Server, members: usize, seats: u32) -> (String, Vec<String>, String) {
    let (admin, _) = s.user(&format!("admin-{}", uuid::Uuid::new_v4().simple())).await;
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..members {
        let (t, id) = s.user(&format!("u-{}", uuid::Uuid::new_v4().simple())).await;
        tokens.push(t);
        ids.push(id);
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let org = s.org(&admin, &ids).await;
    let ev = s.event(&admin, &org, seats).await;
    (admin, tokens, ev)
}

async fn open_stream(s: &Server, tok: &str, ev: &str) -> reqwest::Response {
    let res = s.http.get(s.url(&format!("/events/{ev}/stream"))).bearer_auth(tok).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res
}

fn taken(v: &Value) -> usize {
    v["taken"].as_array().map_or(0, Vec::len)
}

/// A watcher on replica A, bookings on replica B: each reaches the stream; with the pub/sub
/// connections killed mid-stream, the stream gets a fresh snapshot, and hears B again.
async fn a_stream_hears_the_other_replica(stores: Stores) {
    let Some(shared) = Shared::new(stores).await else { return };
    let (a, b) = (shared.replica().await, shared.replica().await);
    let (admin, users, ev) = setup_event(&a, 1, 10).await;
    let mut res = open_stream(&a, &users[0], &ev).await;
    let mut buf = String::new();
    let first = next_event(&mut res, &mut buf, "seats", |_| true).await;
    assert_eq!(taken(&first), 0);

    b.book(&admin, json!({ "event_id": ev, "seats": 2 })).await;
    next_event(&mut res, &mut buf, "seats", |v| v["taken"] == json!([1, 2])).await;

    assert!(shared.kill_subscriptions().await >= 1, "{stores:?}: a subscription to kill");
    // Nothing changed, yet a snapshot comes: the replica subscribed again and read afresh.
    let fresh = next_event(&mut res, &mut buf, "seats", |_| true).await;
    assert_eq!(fresh["taken"], json!([1, 2]), "{stores:?}");
    b.book(&admin, json!({ "event_id": ev, "seats": 1 })).await;
    next_event(&mut res, &mut buf, "seats", |v| v["taken"] == json!([1, 2, 3])).await;
    // And B's own watchers hear A.
    let mut res_b = open_stream(&b, &users[0], &ev).await;
    let mut buf_b = String::new();
    next_event(&mut res_b, &mut buf_b, "seats", |_| true).await;
    a.book(&admin, json!({ "event_id": ev, "seats": 1 })).await;
    next_event(&mut res_b, &mut buf_b, "seats", |v| taken(v) == 4).await;
}

/// 1,000 bookings on replica B from 50 clients at once: the watcher on A sees the final seat
/// map, and in far fewer messages than bookings (bursts are coalesced). Prints how long
/// after the last booking the stream showed it.
async fn a_burst_on_one_replica_reaches_the_other_coalesced(stores: Stores) {
    const BOOKINGS: usize = 1_000;
    const CLIENTS: usize = 50;
    let Some(shared) = Shared::new(stores).await else { return };
    let (a, b) = (shared.replica().await, shared.replica().await);
    let (admin, users, ev) = setup_event(&a, 1, BOOKINGS as u32).await;
    let mut res = open_stream(&a, &users[0], &ev).await;
    let mut buf = String::new();
    next_event(&mut res, &mut buf, "seats", |_| true).await;

    let b = std::sync::Arc::new(b);
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (b, admin, ev) = (b.clone(), admin.clone(), ev.clone());
            tokio::spawn(async move {
                for _ in 0..BOOKINGS / CLIENTS {
                    b.book(&admin, json!({ "event_id": ev, "seats": 1 })).await;
                }
            })
        })
        .collect();
    let watching = async {
        let mut messages = 0;
        loop {
            let v = next_event(&mut res, &mut buf, "seats", |_| true).await;
            messages += 1;
            if taken(&v) == BOOKINGS {
                return (messages, Instant::now());
            }
        }
    };
    let booking = async {
        for c in clients {
            c.await.unwrap();
        }
        Instant::now()
    };
    let ((messages, seen), booked) = tokio::join!(watching, booking);
    let rate = BOOKINGS as f64 / booked.duration_since(started).as_secs_f64();
    let lag_ms = seen.saturating_duration_since(booked).as_millis();
    eprintln!("{stores:?}: {BOOKINGS} bookings on B at {rate:.0}/s, the stream on A showed all {lag_ms} ms after the last, in {messages} messages");
    assert!(messages * 4 <= BOOKINGS, "{stores:?}: {messages} messages for {BOOKINGS} bookings: not coalesced");
}

/// 300 one-seat bookings at once for 100 seats, spread over both replicas: the 200 that
/// wait are told 1..200, each once, in queue order, and the waitlist and each booking say
/// the same on either replica.
async fn waiting_numbers_across_replicas(stores: Stores) {
    const SEATS: usize = 100;
    const BOOKINGS: usize = 300;
    let Some(shared) = Shared::new(stores).await else { return };
    let replicas = std::sync::Arc::new([shared.replica().await, shared.replica().await]);
    let (admin, _, ev) = setup_event(&replicas[0], 0, SEATS as u32).await;
    let tasks: Vec<_> = (0..BOOKINGS)
        .map(|i| {
            let (replicas, admin, ev) = (replicas.clone(), admin.clone(), ev.clone());
            tokio::spawn(async move { replicas[i % 2].book(&admin, json!({ "event_id": ev, "seats": 1 })).await })
        })
        .collect();
    let mut told: Vec<(u64, String)> = Vec::new();
    for t in tasks {
        let b = t.await.unwrap();
        if b["status"] == "waiting" {
            told.push((b["waiting_number"].as_u64().expect("a waiting booking has its number"), b["id"].as_str().unwrap().into()));
        }
    }
    told.sort();
    let numbers: Vec<u64> = told.iter().map(|t| t.0).collect();
    assert_eq!(numbers, (1..=(BOOKINGS - SEATS) as u64).collect::<Vec<_>>(), "{stores:?}: numbers told");
    for r in replicas.iter() {
        let mut listed = Vec::new();
        for offset in (0..BOOKINGS - SEATS).step_by(100) {
            let page = r.ok(Method::GET, &format!("/events/{ev}/waitlist?limit=100&offset={offset}"), &admin, None, StatusCode::OK).await;
            for w in page.as_array().unwrap() {
                listed.push((w["waiting_number"].as_u64().unwrap(), w["id"].as_str().unwrap().to_string()));
            }
        }
        assert_eq!(listed, told, "{stores:?}: the waitlist lists the bookings as told");
        for (n, id) in told.iter().step_by(13) {
            let b = r.ok(Method::GET, &format!("/bookings/{id}"), &admin, None, StatusCode::OK).await;
            assert_eq!(b["waiting_number"].as_u64(), Some(*n), "{stores:?}: booking {id}");
        }
    }
}

macro_rules! on_every_deployment {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(super::Stores::Postgres).await } )*
        }
        mod one_redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(super::Stores::Redis).await } )*
        }
        mod redis_cluster {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(super::Stores::Cluster).await } )*
        }
    };
}

on_every_deployment!(a_stream_hears_the_other_replica, a_burst_on_one_replica_reaches_the_other_coalesced, waiting_numbers_across_replicas);
