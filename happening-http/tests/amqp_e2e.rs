//! The real `happening` server and `happening worker` on PostgreSQL + RabbitMQ
//! (`DATABASE_URL` + `RABBITMQ_URL`), each test on a fresh database and its own queue. Needs
//! `HAPPENING_TEST_DATABASE_URL` and `HAPPENING_TEST_AMQP_URL` (scripts/services starts
//! both); without them the tests skip with a message, except under CI, where that is a
//! failure.

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use happening_postgres::testing;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn worker_delivers_what_the_server_relays() {
    relay_and_deliver(false).await;
}

/// As above, through `--webhook-url`: every notification is POSTed once, keyed by its id.
#[tokio::test]
async fn worker_posts_to_the_webhook() {
    relay_and_deliver(true).await;
}

/// A webhook receiver on the loopback: its URL, and the `Idempotency-Key`s it got.
async fn webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    use warp::Filter;
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let route = warp::post().and(warp::header::<String>("idempotency-key")).and(warp::body::json::<serde_json::Value>()).map(
        move |key: String, body: serde_json::Value| {
            assert_eq!(body["id"].as_str(), Some(key.as_str()), "the key is the notification id");
            keep.lock().unwrap().push(key);
            warp::reply()
        },
    );
    let (addr, server) = warp::serve(route).bind_ephemeral(([127, 0, 0, 1], 0));
    tokio::spawn(server);
    (format!("http://{addr}/hook"), got)
}

async fn relay_and_deliver(with_webhook: bool) {
    let Some(amqp) = test_var("HAPPENING_TEST_AMQP_URL") else { return };
    let Some(server) = test_var("HAPPENING_TEST_DATABASE_URL") else { return };
    let db = testing::fresh_database_url(&server).await;
    let queue = format!("notifications-test-{}", uuid::Uuid::new_v4().simple());

    let s = Server::start(
        &["--tick-ms", "20"],
        &[("HAPPENING_JWT_SECRET", SECRET), ("DATABASE_URL", &db), ("RABBITMQ_URL", &amqp), ("NOTIFICATIONS_QUEUE", &queue)],
    )
    .await;
    let (st, body) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["stores"]["notifier"], "rabbitmq", "{body}");

    let hook = if with_webhook { Some(webhook().await) } else { None };
    let mut args = vec!["worker".to_string(), "--log-level".into(), "warn".into()];
    if let Some((url, _)) = &hook {
        args.extend(["--webhook-url".to_string(), url.clone()]);
    }
    let mut worker = bin()
        .args(&args)
        .env("DATABASE_URL", &db)
        .env("AMQP_URL", &amqp)
        .env("NOTIFICATIONS_QUEUE", &queue)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the worker");
    let mut lines = BufReader::new(worker.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line()).await.expect("worker started").unwrap().expect("a line");
    assert!(line.contains(&queue), "{line}");

    let (admin, _) = s.user("admin").await;
    let (alice, alice_id) = s.user("alice").await;
    let (bob, bob_id) = s.user("bob").await;
    let org = s.org(&admin, &[&alice_id, &bob_id]).await;
    let ev = s.event(&admin, &org, 2).await;
    assert_eq!(s.book(&alice, json!({ "event_id": ev, "seats": 2 })).await["status"], "confirmed");
    assert_eq!(s.book(&bob, json!({ "event_id": ev, "seats": 1 })).await["status"], "waiting");

    // Bounded: the relay publishes, the worker handles and records `delivered`.
    let start = Instant::now();
    loop {
        let a = s.ok(Method::GET, "/notifications", &alice, None, StatusCode::OK).await;
        let b = s.ok(Method::GET, "/notifications", &bob, None, StatusCode::OK).await;
        let all: Vec<_> = a.as_array().unwrap().iter().chain(b.as_array().unwrap()).cloned().collect();
        assert!(all.len() >= 2, "{all:?}");
        if all.iter().all(|n| n["status"] == "delivered") {
            if let Some((_, got)) = &hook {
                let mut ids: Vec<String> = all.iter().map(|n| n["id"].as_str().unwrap().to_string()).collect();
                let mut keys = got.lock().unwrap().clone();
                ids.sort();
                keys.sort();
                keys.dedup();
                assert_eq!(keys, ids, "each notification POSTed to the webhook");
            }
            break;
        }
        assert!(start.elapsed() < DEADLINE, "notifications not delivered in time: {all:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM: the worker stops cleanly.
    assert_eq!(stop(&mut worker, "the worker").await.code(), Some(0));
    assert_eq!(s.stop().await.code(), Some(0));
}

/// A black-holed broker (it accepts TCP connections and never answers) holds only the
/// outbox relay, which runs in a task of its own: a hold still expires and promotes the
/// waitlist on time while the relay waits on the broker, `/readyz` answers (degraded), and
/// the server still stops promptly (the last relay is bounded). Needs no service.
#[tokio::test]
async fn a_black_holed_broker_holds_neither_hold_expiry_nor_shutdown() {
    let (hole, _hole) = silent_peer().await;
    let url = format!("amqp://guest:guest@{hole}/%2f");
    // A connect timeout longer than the wait below: only a relay of its own lets the hold
    // expire meanwhile.
    let s = Server::start(
        &["--tick-ms", "20", "--rabbitmq-connect-timeout-ms", "20000"],
        &[("HAPPENING_JWT_SECRET", SECRET), ("RABBITMQ_URL", &url)],
    )
    .await;
    let (admin, _) = s.user("admin").await;
    let (bob, bob_id) = s.user("bob").await;
    let org = s.org(&admin, &[&bob_id]).await;
    let ev = s.event(&admin, &org, 2).await;
    let held_at = Instant::now();
    s.ok(Method::POST, &format!("/events/{ev}/holds"), &admin, Some(json!({ "seats": 2, "ttl_seconds": 1 })), StatusCode::CREATED).await;
    // Its notification gives the relay something to send: it is now stuck connecting.
    let w = s.book(&bob, json!({ "event_id": ev, "seats": 2 })).await;
    assert_eq!(w["status"], "waiting", "held seats are not free");
    let wid = w["id"].as_str().unwrap();
    s.until("the hold to expire and bob to be promoted", || async {
        let b = s.ok(Method::GET, &format!("/bookings/{wid}"), &bob, None, StatusCode::OK).await;
        (b["status"] == "confirmed").then_some(())
    })
    .await;
    let promoted_after = held_at.elapsed();
    assert!(promoted_after < Duration::from_secs(10), "promoted {promoted_after:?} after the hold: the relay held hold expiry back");

    let asked = Instant::now();
    let (st, body) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((st, body["status"].as_str()), (StatusCode::OK, Some("degraded")), "{body}");
    assert!(asked.elapsed() < Duration::from_secs(5), "the probe is bounded: {:?}", asked.elapsed());
    let metrics = s.metrics().await;
    assert_eq!(metric(&metrics, "happening_notifications_confirmed_total"), Some(0), "{metrics}");

    let stopping = Instant::now();
    assert_eq!(s.stop().await.code(), Some(0));
    assert!(stopping.elapsed() < Duration::from_secs(15), "the last relay is bounded: stopped after {:?}", stopping.elapsed());
}

/// A server on a fresh database and a queue of its own, with six notifications of `alice`
/// relayed to RabbitMQ and nothing consuming them yet.
struct Queued {
    server: Server,
    alice: String,
    /// Alice's event, of 100 seats.
    ev: String,
    db: String,
    amqp: String,
    queue: String,
}

impl Queued {
    /// `None` (the test skips) without the test servers, except under CI.
    async fn six(name: &str) -> Option<Self> {
        let amqp = test_var("HAPPENING_TEST_AMQP_URL")?;
        let db = testing::fresh_database_url(&test_var("HAPPENING_TEST_DATABASE_URL")?).await;
        let queue = format!("notifications-{name}-{}", uuid::Uuid::new_v4().simple());
        let s = Server::start(
            &["--tick-ms", "20"],
            &[("HAPPENING_JWT_SECRET", SECRET), ("DATABASE_URL", &db), ("RABBITMQ_URL", &amqp), ("NOTIFICATIONS_QUEUE", &queue)],
        )
        .await;
        let (admin, _) = s.user("admin").await;
        let (alice, alice_id) = s.user("alice").await;
        let org = s.org(&admin, &[&alice_id]).await;
        let ev = s.event(&admin, &org, 100).await;
        for _ in 0..6 {
            assert_eq!(s.book(&alice, json!({ "event_id": ev })).await["status"], "confirmed");
        }
        s.until("six notifications in the queue", || async {
            (metric(&s.metrics().await, "happening_notifications_confirmed_total") == Some(6)).then_some(())
        })
        .await;
        Some(Self { server: s, alice, ev, db, amqp, queue })
    }

    /// `happening worker` on this queue and database (`AMQP_URL`), with `args`.
    fn worker(&self, args: &[&str]) -> tokio::process::Child {
        bin()
            .args(["worker", "--log-level", "warn"])
            .args(args)
            .env("DATABASE_URL", &self.db)
            .env("AMQP_URL", &self.amqp)
            .env("NOTIFICATIONS_QUEUE", &self.queue)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the worker")
    }
}

/// A webhook receiver whose answers the test controls: it can hold every request until
/// released (to count how many the worker sends at once) or refuse them (400, which the
/// webhook sink does not retry by itself).
struct Hook {
    refuse: std::sync::atomic::AtomicBool,
    in_flight: std::sync::atomic::AtomicUsize,
    most_in_flight: std::sync::atomic::AtomicUsize,
    gate: tokio::sync::Semaphore,
    /// (Idempotency-Key, when it arrived), in order.
    calls: Mutex<Vec<(String, Instant)>>,
}

impl Hook {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            refuse: Default::default(),
            in_flight: Default::default(),
            most_in_flight: Default::default(),
            gate: tokio::sync::Semaphore::new(0),
            calls: Default::default(),
        })
    }

    async fn serve(self: &Arc<Self>) -> String {
        use std::sync::atomic::Ordering::SeqCst;
        use warp::Filter;
        let hook = self.clone();
        let route = warp::post().and(warp::header::<String>("idempotency-key")).then(move |key: String| {
            let hook = hook.clone();
            async move {
                hook.calls.lock().unwrap().push((key, Instant::now()));
                if hook.refuse.load(SeqCst) {
                    return warp::http::StatusCode::BAD_REQUEST;
                }
                let now = hook.in_flight.fetch_add(1, SeqCst) + 1;
                hook.most_in_flight.fetch_max(now, SeqCst);
                hook.gate.acquire().await.expect("gate").forget();
                hook.in_flight.fetch_sub(1, SeqCst);
                warp::http::StatusCode::OK
            }
        });
        let (addr, server) = warp::serve(route).bind_ephemeral(([127, 0, 0, 1], 0));
        tokio::spawn(server);
        format!("http://{addr}/hook")
    }
}

/// `happening worker --prefetch 2 --max-attempts 3 --retry-delay-ms 300`: at most two
/// notifications in the sink at once; a notification the webhook refuses is tried three
/// times, the pause before each retry growing by 300 ms per failure, then dead-lettered and
/// marked `failed`. Out-of-range values are refused (exit 2).
#[tokio::test]
async fn worker_flags_set_prefetch_attempts_and_retry_delay() {
    for bad in [["--prefetch", "0"], ["--max-attempts", "0"], ["--retry-delay-ms", "60001"]] {
        let out = bin().arg("worker").args(bad).output().await.unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?} is refused");
        assert!(String::from_utf8_lossy(&out.stderr).contains(bad[0]), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let Some(q) = Queued::six("flags").await else { return };
    let (s, alice, ev) = (&q.server, &q.alice, &q.ev);
    use std::sync::atomic::Ordering::SeqCst;
    let hook = Hook::new();
    let url = hook.serve().await;
    let mut worker = q.worker(&["--webhook-url", &url, "--prefetch", "2", "--max-attempts", "3", "--retry-delay-ms", "300"]);

    // Prefetch: two held in the sink, and no third while they are.
    s.until("two requests in flight", || async { (hook.in_flight.load(SeqCst) == 2).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.most_in_flight.load(SeqCst), 2, "no more than the prefetch at once");
    hook.gate.add_permits(1_000);
    let notes = |tok: &str| {
        let (s, tok) = (&s, tok.to_string());
        async move { s.ok(Method::GET, "/notifications", &tok, None, StatusCode::OK).await.as_array().unwrap().clone() }
    };
    s.until("six delivered", || async { notes(alice).await.iter().all(|n| n["status"] == "delivered").then_some(()) }).await;
    assert_eq!(hook.calls.lock().unwrap().len(), 6, "each once");
    assert_eq!(hook.most_in_flight.load(SeqCst), 2);

    // Attempts and retry delay: every request refused from now on.
    hook.refuse.store(true, SeqCst);
    assert_eq!(s.book(alice, json!({ "event_id": ev })).await["status"], "confirmed");
    let failed = s
        .until("the refused one marked failed", || async {
            let all = notes(alice).await;
            all.iter().find(|n| n["status"] == "failed").map(|n| n["id"].as_str().unwrap().to_string())
        })
        .await;
    let tries: Vec<Instant> = hook.calls.lock().unwrap().iter().filter(|(k, _)| *k == failed).map(|(_, at)| *at).collect();
    assert_eq!(tries.len(), 3, "tried --max-attempts times");
    for (i, pair) in tries.windows(2).enumerate() {
        let pause = pair[1] - pair[0];
        let least = Duration::from_millis(300 * (i as u64 + 1));
        assert!(pause >= least, "retry {} came after {pause:?}, before {least:?}", i + 1);
    }

    assert_eq!(stop(&mut worker, "the worker").await.code(), Some(0));
    assert_eq!(q.server.stop().await.code(), Some(0));
}

/// SIGTERM while the sink holds messages: `happening worker` takes no new message, waits for
/// the ones in flight, records them `delivered`, and exits 0; a worker started after it
/// delivers the rest, each notification handled once.
#[tokio::test]
async fn worker_sigterm_finishes_the_messages_in_flight() {
    let Some(q) = Queued::six("sigterm").await else { return };
    let (s, alice) = (&q.server, &q.alice);
    use std::sync::atomic::Ordering::SeqCst;
    let worker = |url: &str| q.worker(&["--webhook-url", url, "--prefetch", "2"]);
    let notes = || async { s.ok(Method::GET, "/notifications", alice, None, StatusCode::OK).await.as_array().unwrap().clone() };
    let delivered = |all: &[serde_json::Value]| all.iter().filter(|n| n["status"] == "delivered").count();

    let hook = Hook::new();
    let url = hook.serve().await;
    let mut first = worker(&url);
    s.until("two requests held in the webhook", || async { (hook.in_flight.load(SeqCst) == 2).then_some(()) }).await;
    sigterm(&first).await;
    // It cannot finish while its two requests are held (the sink waits up to 10 s for an
    // answer): still running after half a second, whatever the machine's speed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(first.try_wait().unwrap().is_none(), "the worker exited with messages in flight");
    hook.gate.add_permits(1_000);
    let status = tokio::time::timeout(DEADLINE, first.wait()).await.expect("worker did not exit").unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(hook.calls.lock().unwrap().len(), 2, "no new message taken after SIGTERM");
    assert_eq!(delivered(&notes().await), 2, "the two in flight finished and were recorded");

    let mut second = worker(&url);
    s.until("six delivered", || async { (delivered(&notes().await) == 6).then_some(()) }).await;
    let mut keys: Vec<String> = hook.calls.lock().unwrap().iter().map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((keys.len(), hook.calls.lock().unwrap().len()), (6, 6), "each handled once");
    assert_eq!(stop(&mut second, "the second worker").await.code(), Some(0));
    assert_eq!(q.server.stop().await.code(), Some(0));
}
