//! The in-process app the route tests drive: the warp filters over a real in-memory engine
//! on a manual clock, called with `warp::test::request()` (no socket).

#![allow(dead_code)]

use std::sync::Arc;

use chrono::Utc;
use happening_core::clock::ManualClock;
use happening_core::Engine;
use happening_http::auth::{mint, AuthConfig, MintRequest, Verifier};
use happening_http::ratelimit::RateLimiter;
use happening_http::{routes, AppState, Settings, State};
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

pub const SECRET: &str = "route-test-secret";

pub struct App {
    pub st: State,
    pub api: BoxedFilter<(Response,)>,
    pub clock: Arc<ManualClock>,
}

pub fn app_with(limiter: Option<RateLimiter>, settings: Settings) -> App {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let engine = Engine::in_memory().with_clock(clock.clone());
    let verifier = Verifier::new(&AuthConfig { secret: Some(SECRET.into()), ..Default::default() }).unwrap();
    let st = AppState::new(engine, verifier, limiter, settings);
    App { api: routes(st.clone()), st, clock }
}

pub fn app() -> App {
    app_with(None, Settings::default())
}

pub fn token(sub: &str) -> String {
    mint(SECRET, &MintRequest { sub: sub.into(), email: Some(format!("{sub}@example.com")), ttl_secs: 3600, ..Default::default() })
}

pub struct Res {
    pub status: StatusCode,
    pub body: Value,
    pub headers: warp::http::HeaderMap,
}

impl App {
    pub async fn call(&self, method: &str, path: &str, tok: Option<&str>, body: Option<Value>) -> Res {
        self.raw(method, path, tok, body.map(|b| b.to_string().into_bytes()), &[]).await
    }

    pub async fn raw(&self, method: &str, path: &str, tok: Option<&str>, body: Option<Vec<u8>>, headers: &[(&str, &str)]) -> Res {
        let mut r = warp::test::request().method(method).path(path);
        if let Some(t) = tok {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.body(b);
        }
        let res = r.reply(&self.api).await;
        let status = res.status();
        let headers = res.headers().clone();
        let body = if res.body().is_empty() { Value::Null } else { serde_json::from_slice(res.body()).unwrap_or(Value::Null) };
        Res { status, body, headers }
    }

    pub async fn ok(&self, method: &str, path: &str, tok: &str, body: Option<Value>, want: StatusCode) -> Value {
        let r = self.call(method, path, Some(tok), body).await;
        assert_eq!(r.status, want, "{method} {path}: {}", r.body);
        r.body
    }

    /// A user (created through the API) and their id.
    pub async fn user(&self, sub: &str) -> (String, String) {
        let t = token(sub);
        let u = self.ok("POST", "/users", &t, None, StatusCode::OK).await;
        (t, u["id"].as_str().unwrap().to_string())
    }

    /// An organization of `admin`, with `members` added at the given roles.
    pub async fn org(&self, admin: &str, members: &[(&str, &str)]) -> String {
        let org = self.ok("POST", "/organizations", admin, Some(json!({ "name": "Org" })), StatusCode::CREATED).await;
        let id = org["id"].as_str().unwrap().to_string();
        for (user, role) in members {
            self.ok(
                "POST",
                &format!("/organizations/{id}/members"),
                admin,
                Some(json!({ "user_id": user, "role": role })),
                StatusCode::CREATED,
            )
            .await;
        }
        id
    }

    pub async fn event(&self, tok: &str, org: &str, slots: u32) -> String {
        let body = json!({ "org_id": org, "name": "Show", "event_date": "2030-06-01T19:00:00Z", "total_slots": slots });
        let ev = self.ok("POST", "/events", tok, Some(body), StatusCode::CREATED).await;
        assert_eq!(ev["total_slots"], slots);
        assert_eq!(ev["available_slots"], slots);
        ev["id"].as_str().unwrap().to_string()
    }

    pub async fn book(&self, tok: &str, body: Value) -> Res {
        self.call("POST", "/bookings", Some(tok), Some(body)).await
    }
}

impl App {
    /// Runs the server's background work through `notifier` and stops it at once, as the
    /// server's task would: its last relay drains the outbox (counted into the metrics).
    pub async fn background_once(&self, notifier: Arc<dyn happening_core::ports::Notifier>) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let bg = tokio::spawn(happening_http::server::background(self.st.clone(), notifier, std::time::Duration::from_millis(1), rx));
        tx.send(true).unwrap();
        bg.await.unwrap();
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        String::from_utf8(warp::test::request().path("/metrics").reply(&self.api).await.body().to_vec()).unwrap()
    }

    /// The engine's clock.
    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use happening_core::clock::Clock;
        self.clock.now()
    }
}
