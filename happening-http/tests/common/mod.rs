//! The end-to-end harness: the real `happening` binary on a free port of the loopback,
//! driven over HTTP. No sleeps as synchronization: tests wait for what they need (the
//! listening line, a state reached) with generous deadlines that only bound a hang.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use happening_http::auth::{mint, MintRequest};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const SECRET: &str = "e2e-secret";
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Server {
    pub child: Child,
    pub base: String,
    pub http: Client,
    /// Lines the server printed before and including "listening on".
    pub banner: Vec<String>,
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_happening"));
    for v in [
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_CLUSTER_URLS",
        "RABBITMQ_URL",
        "AMQP_URL",
        "HAPPENING_JWT_SECRET",
        "HAPPENING_JWKS_FILE",
        "HAPPENING_JWT_ISSUER",
        "HAPPENING_JWT_AUDIENCE",
        "PORT",
        "HAPPENING_RATE_LIMIT",
    ] {
        c.env_remove(v);
    }
    c.kill_on_drop(true);
    c
}

impl Server {
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = bin();
        cmd.args(["serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "warn"]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start happening");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        let base = tokio::time::timeout(DEADLINE, async {
            loop {
                let line = lines.next_line().await.unwrap().expect("server exited before listening");
                banner.push(line.clone());
                if let Some(i) = line.find("listening on ") {
                    return line[i + "listening on ".len()..].trim().to_string();
                }
            }
        })
        .await
        .expect("server did not start");
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { child, base, http: Client::new(), banner }
    }

    pub async fn with_secret(args: &[&str]) -> Server {
        Server::start(args, &[("HAPPENING_JWT_SECRET", SECRET)]).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(&self, method: Method, path: &str, tok: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.http.request(method, self.url(path));
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    pub async fn ok(&self, method: Method, path: &str, tok: &str, body: Option<Value>, want: StatusCode) -> Value {
        let (s, v) = self.call(method.clone(), path, Some(tok), body).await;
        assert_eq!(s, want, "{method} {path}: {v}");
        v
    }

    pub async fn user(&self, sub: &str) -> (String, String) {
        let t = token(sub);
        let u = self.ok(Method::POST, "/users", &t, None, StatusCode::OK).await;
        (t, u["id"].as_str().unwrap().to_string())
    }

    pub async fn org(&self, admin: &str, members: &[&str]) -> String {
        let org = self.ok(Method::POST, "/organizations", admin, Some(json!({ "name": "Org" })), StatusCode::CREATED).await;
        let id = org["id"].as_str().unwrap().to_string();
        for m in members {
            self.ok(
                Method::POST,
                &format!("/organizations/{id}/members"),
                admin,
                Some(json!({ "user_id": m, "role": "user" })),
                StatusCode::CREATED,
            )
            .await;
        }
        id
    }

    pub async fn event(&self, tok: &str, org: &str, slots: u32) -> String {
        let body = json!({ "org_id": org, "name": "Show", "event_date": "2030-06-01T19:00:00Z", "total_slots": slots });
        self.ok(Method::POST, "/events", tok, Some(body), StatusCode::CREATED).await["id"].as_str().unwrap().to_string()
    }

    pub async fn book(&self, tok: &str, body: Value) -> Value {
        self.ok(Method::POST, "/bookings", tok, Some(body), StatusCode::CREATED).await
    }

    /// Polls `check` until it returns `Some`, failing after the deadline.
    pub async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then the exit status (a hang fails after the deadline).
    pub async fn stop(mut self) -> std::process::ExitStatus {
        stop(&mut self.child, "the server").await
    }

    pub async fn metrics(&self) -> String {
        self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }
}

/// A port of the loopback nobody listens on: bound, then released.
pub async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// A peer on the loopback that accepts every connection and never writes a byte (a
/// black-holed server), for as long as the returned task runs.
pub async fn silent_peer() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            held.push(c);
        }
    });
    (addr, task)
}

/// Sends SIGTERM to a running child process.
pub async fn sigterm(child: &Child) {
    let pid = child.id().expect("the process is running");
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.unwrap().success());
}

/// SIGTERM, then the exit status; `what` did not exit within the deadline fails the test.
pub async fn stop(child: &mut Child, what: &str) -> std::process::ExitStatus {
    sigterm(child).await;
    tokio::time::timeout(DEADLINE, child.wait()).await.unwrap_or_else(|_| panic!("{what} did not exit")).unwrap()
}

/// A `HAPPENING_TEST_*` variable (scripts/services sets them); `None` (the test skips) when
/// unset, a panic under CI.
pub fn test_var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => panic!("{name} is not set, and CI is: start the services (scripts/services)"),
        _ => {
            eprintln!("skipped: {name} is not set (scripts/services starts it)");
            None
        }
    }
}

/// Runs a service's control script (`HAPPENING_TEST_*_CTL`) with `start` or `stop`.
pub fn ctl(ctl: &str, action: &str) {
    let status = std::process::Command::new(ctl).arg(action).status().expect("run the service's control script");
    assert!(status.success(), "{ctl} {action}");
}

/// Starts a service again (its control script, `start`) if the test fails while it holds
/// the service stopped, so that the tests that follow find it running.
pub struct RestartOnPanic(pub String);

impl Drop for RestartOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new(&self.0).arg("start").status();
        }
    }
}

pub fn token(sub: &str) -> String {
    mint(SECRET, &MintRequest { sub: sub.into(), email: Some(format!("{sub}@example.com")), ttl_secs: 3600, ..Default::default() })
}

pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
}

/// What the demo leaves for a test to check further.
pub struct Demo {
    pub event: String,
    /// Bob's token and user id, and his booking (waitlisted, then promoted).
    pub bob: String,
    pub bob_id: String,
    pub bob_booking: String,
}

/// The demo, on whatever stores `s` runs: capacity 5, Alice books 3 and Bob 3 (he
/// waits), Alice cancels seats 1 and 2, Bob is promoted to seats 1, 2 and 4.
pub async fn seed_demo(s: &Server) -> Demo {
    let (admin, _) = s.user("admin").await;
    let (alice, alice_id) = s.user("alice").await;
    let (bob, bob_id) = s.user("bob").await;
    let org = s.org(&admin, &[&alice_id, &bob_id]).await;
    let ev = s.event(&admin, &org, 5).await;

    let a = s.book(&alice, json!({ "event_id": ev, "seats": 3 })).await;
    assert_eq!((a["status"].as_str(), a["seat_numbers"].clone()), (Some("confirmed"), json!([1, 2, 3])));
    let b = s.book(&bob, json!({ "event_id": ev, "seats": 3 })).await;
    assert_eq!((b["status"].as_str(), b["waiting_number"].as_u64()), (Some("waiting"), Some(1)), "one waitlisted");
    let e = s.ok(Method::GET, &format!("/events/{ev}"), &bob, None, StatusCode::OK).await;
    assert_eq!((e["available_slots"].as_u64(), e["waiting_count"].as_u64()), (Some(2), Some(1)));

    let a_id = a["id"].as_str().unwrap();
    let a2 = s
        .ok(Method::POST, &format!("/bookings/{a_id}/cancel-seats"), &alice, Some(json!({ "seat_numbers": [1, 2] })), StatusCode::OK)
        .await;
    assert_eq!(a2["seat_numbers"], json!([3]));
    let bob_booking = b["id"].as_str().unwrap().to_string();
    let b2 = s.ok(Method::GET, &format!("/bookings/{bob_booking}"), &bob, None, StatusCode::OK).await;
    assert_eq!(
        (b2["status"].as_str(), b2["seat_numbers"].clone(), b2["waiting_number"].clone()),
        (Some("confirmed"), json!([1, 2, 4]), Value::Null)
    );
    let map = s.ok(Method::GET, &format!("/events/{ev}/seats"), &alice, None, StatusCode::OK).await;
    assert_eq!(map, json!({ "total": 5, "taken": [1, 2, 3, 4], "held": [], "available_slots": 1 }));
    assert_eq!(s.ok(Method::GET, &format!("/events/{ev}/waitlist"), &alice, None, StatusCode::OK).await, json!([]));
    Demo { event: ev, bob, bob_id, bob_booking }
}

/// Reads SSE frames from a response until one of type `kind` satisfies `pred`.
pub async fn next_event(res: &mut reqwest::Response, buf: &mut String, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(DEADLINE, async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let mut ev_kind = "";
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        ev_kind = k.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim());
                    }
                }
                if ev_kind == kind {
                    let v: Value = serde_json::from_str(&data).unwrap();
                    if pred(&v) {
                        return v;
                    }
                }
            }
            let chunk = res.chunk().await.unwrap().expect("stream ended");
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .expect("no such event on the stream")
}
