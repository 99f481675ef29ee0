//! A Redis Cluster primary killed (`kill -9`) in the middle of a flash sale over two
//! replicas, whose clients retry a 503 with the same `Idempotency-Key`, as a client of the
//! API should. Redis replicates asynchronously: the replica that takes over may lack the
//! last steps the dead primary acknowledged. PostgreSQL is the source of truth, so
//! afterwards: no oversell, no seat twice, every request booked exactly once, the waiting
//! numbers told exact, and `happening audit` clean once the servers have rebuilt every
//! event (they do when a primary's replication id changes). The killed node is started
//! again at the end (it rejoins as a replica), so the cluster is whole for what follows.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use happening_postgres::testing;
use happening_redis::{redis, RedisTarget};
use reqwest::StatusCode;
use serde_json::{json, Value};

const SEATS: usize = 150;
const REQUESTS: usize = 600;
const CLIENTS: usize = 24;

/// A request's answer: its booking, and whether it was a replay of an earlier attempt.
struct Answer {
    booking: Value,
    replayed: bool,
}

/// Books with `key`, retrying a 503 (and a lost connection) with the same key until a 201.
async fn book_retrying(s: &Server, tok: &str, ev: &str, key: &str, retries: &std::sync::atomic::AtomicUsize) -> Answer {
    let start = Instant::now();
    loop {
        let r = s
            .http
            .post(s.url("/bookings"))
            .bearer_auth(tok)
            .header("Idempotency-Key", key)
            .json(&json!({ "event_id": ev, "seats": 1 }))
            .send()
            .await;
        match r {
            Ok(res) if res.status() == StatusCode::CREATED => {
                let replayed = res.headers().get("idempotent-replayed").is_some();
                return Answer { booking: res.json().await.unwrap(), replayed };
            }
            Ok(res) if res.status() == StatusCode::SERVICE_UNAVAILABLE => {}
            Ok(res) => panic!("booking {key}: {} {}", res.status(), res.text().await.unwrap()),
            Err(e) if e.is_connect() || e.is_request() => {}
            Err(e) => panic!("booking {key}: {e}"),
        }
        retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(start.elapsed() < Duration::from_secs(60), "booking {key} still failing after 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The primary serving `key`'s slot: (its port, its process id).
async fn primary_of(nodes: &[String], key: &str) -> (u16, u32) {
    let mut any = redis::Client::open(nodes[0].as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut any).await.unwrap();
    let slots: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut any).await.unwrap();
    let redis::Value::Array(ranges) = slots else { panic!("CLUSTER SLOTS: {slots:?}") };
    for range in ranges {
        let redis::Value::Array(r) = range else { continue };
        let (lo, hi): (i64, i64) = (redis::from_redis_value(&r[0]).unwrap(), redis::from_redis_value(&r[1]).unwrap());
        if (lo..=hi).contains(&slot) {
            let redis::Value::Array(primary) = &r[2] else { panic!("CLUSTER SLOTS entry: {r:?}") };
            let port: u16 = redis::from_redis_value(&primary[1]).unwrap();
            let mut node =
                redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap().get_multiplexed_async_connection().await.unwrap();
            let info: String = redis::cmd("INFO").arg("server").query_async(&mut node).await.unwrap();
            let pid = info.lines().find_map(|l| l.strip_prefix("process_id:")).unwrap().trim().parse().unwrap();
            return (port, pid);
        }
    }
    panic!("no primary serves slot {slot}");
}

/// Waits until every node that answers says the cluster is whole again.
async fn cluster_whole(nodes: &[String]) {
    let start = Instant::now();
    'wait: loop {
        assert!(start.elapsed() < Duration::from_secs(60), "the cluster did not become whole again");
        tokio::time::sleep(Duration::from_millis(200)).await;
        for n in nodes {
            let Ok(Ok(mut c)) = tokio::time::timeout(Duration::from_secs(1), async {
                redis::Client::open(n.as_str()).unwrap().get_multiplexed_async_connection().await
            })
            .await
            else {
                continue;
            };
            let Ok(info) = redis::cmd("CLUSTER").arg("INFO").query_async::<String>(&mut c).await else { continue 'wait };
            if !info.contains("cluster_state:ok") {
                continue 'wait;
            }
        }
        return;
    }
}

/// Starts the killed node again when the test ends, however it ends.
struct Revive(Option<String>);

impl Drop for Revive {
    fn drop(&mut self) {
        if let Some(ctl) = self.0.take() {
            let _ = std::process::Command::new(&ctl).arg("start").status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_killed_mid_sale_loses_no_booking_and_the_audit_is_clean() {
    let (Some(server), Some(urls), Some(dir)) = (
        test_var("HAPPENING_TEST_DATABASE_URL"),
        test_var("HAPPENING_TEST_REDIS_CLUSTER_URLS"),
        test_var("HAPPENING_TEST_REDIS_CLUSTER_DIR"),
    ) else {
        return;
    };
    let Some(RedisTarget::Cluster(nodes)) = RedisTarget::cluster_from_list(&urls) else { panic!("cluster URLs") };
    cluster_whole(&nodes).await;
    let db = testing::fresh_database_url(&server).await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let env = [
        ("HAPPENING_JWT_SECRET", SECRET),
        ("DATABASE_URL", db.as_str()),
        ("REDIS_CLUSTER_URLS", urls.as_str()),
        ("HAPPENING_REDIS_PREFIX", prefix.as_str()),
    ];
    let args = ["--db-pool-size", "8", "--tick-ms", "50"];
    let replicas = Arc::new([Server::start(&args, &env).await, Server::start(&args, &env).await]);
    let (admin, _) = replicas[0].user("failover-admin").await;
    let org = replicas[0].org(&admin, &[]).await;
    let ev = replicas[0].event(&admin, &org, SEATS as u32).await;
    let (port, pid) = primary_of(&nodes, &happening_redis::EventKeys::new(&prefix, ev.parse().unwrap()).slots).await;

    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let retries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (replicas, admin, ev, done, retries) = (replicas.clone(), admin.clone(), ev.clone(), done.clone(), retries.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in (c..REQUESTS).step_by(CLIENTS) {
                    let key = format!("sale-{i}");
                    answers.push((key.clone(), book_retrying(&replicas[i % 2], &admin, &ev, &key, &retries).await));
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                answers
            })
        })
        .collect();
    // Mid-sale: the primary of the event's slot dies.
    while done.load(std::sync::atomic::Ordering::Relaxed) < REQUESTS / 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _revive = Revive(Some(format!("{dir}/{port}/ctl")));
    let killed = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(killed.success(), "kill -9 {pid}");
    let killed_at = done.load(std::sync::atomic::Ordering::Relaxed);
    let mut answers: Vec<(String, Answer)> = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    let retried = retries.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("primary 127.0.0.1:{port} killed after {killed_at} of {REQUESTS} requests; {retried} retries of a 503 or a lost connection");

    // Every request is one booking, and no booking answers two requests.
    let ids: BTreeSet<&str> = answers.iter().map(|(_, a)| a.booking["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), REQUESTS, "one booking per request");
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE event_id = $1::uuid").bind(&ev).fetch_one(&pool).await.unwrap();
    assert_eq!(stored as usize, REQUESTS, "the store holds one booking per request, none twice");
    // No oversell, no seat twice.
    let r = &replicas[0];
    let map = r.ok(reqwest::Method::GET, &format!("/events/{ev}/seats"), &admin, None, StatusCode::OK).await;
    let taken: Vec<u64> = map["taken"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    assert_eq!(taken, (1..=SEATS as u64).collect::<Vec<_>>(), "every seat taken once");
    let confirmed: BTreeMap<u64, &str> = answers
        .iter()
        .filter(|(_, a)| a.booking["status"] == "confirmed")
        .map(|(_, a)| (a.booking["seat_numbers"][0].as_u64().unwrap(), a.booking["id"].as_str().unwrap()))
        .collect();
    assert_eq!(confirmed.len(), SEATS, "each seat told to one booking");

    // The waiting numbers: the waitlist is 1..N, and each first answer told its place.
    let mut place: BTreeMap<String, u64> = BTreeMap::new();
    for offset in (0..REQUESTS).step_by(500) {
        let page =
            r.ok(reqwest::Method::GET, &format!("/events/{ev}/waitlist?limit=500&offset={offset}"), &admin, None, StatusCode::OK).await;
        for w in page.as_array().unwrap() {
            place.insert(w["id"].as_str().unwrap().to_string(), w["waiting_number"].as_u64().unwrap());
        }
    }
    assert_eq!(place.len(), REQUESTS - SEATS, "everyone else waits");
    let mut numbers: Vec<u64> = place.values().copied().collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=(REQUESTS - SEATS) as u64).collect::<Vec<_>>());
    for (key, a) in answers.iter().filter(|(_, a)| a.booking["status"] == "waiting" && !a.replayed) {
        let id = a.booking["id"].as_str().unwrap();
        assert_eq!(a.booking["waiting_number"].as_u64(), place.get(id).copied(), "{key}: the number told is its place");
    }

    // The audit, through the cluster, is clean once the servers have rebuilt every event.
    let start = Instant::now();
    loop {
        let out = bin()
            .args(["audit", "--recheck-ms", "500"])
            .env("DATABASE_URL", &db)
            .env("REDIS_CLUSTER_URLS", &urls)
            .env("HAPPENING_REDIS_PREFIX", &prefix)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .unwrap();
        if out.status.code() == Some(0) {
            break;
        }
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(start.elapsed() < Duration::from_secs(60), "the audit is not clean: {said}");
        eprintln!("audit not clean yet ({:?}): {said}", out.status.code());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(_revive);
    cluster_whole(&nodes).await;
    for s in Arc::try_unwrap(replicas).ok().expect("the clients are done") {
        assert!(s.stop().await.success());
    }
}
