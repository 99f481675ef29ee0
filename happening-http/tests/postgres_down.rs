//! The routes on a PostgreSQL that does not answer (a lazy pool on a closed port of the
//! loopback, so no server is needed): requests answer 503 with no internals, `/readyz`
//! answers 503 naming the store.

use std::sync::Arc;
use std::time::Duration;

use happening_core::ports::{Admission, Store};
use happening_core::Engine;
use happening_http::auth::{mint, AuthConfig, MintRequest, Verifier};
use happening_http::readiness::{PostgresCheck, ReadyCheck};
use happening_http::{routes, AppState, Settings};
use happening_postgres::{PgAdmission, PgStore};
use serde_json::{json, Value};
use warp::http::StatusCode;

const SECRET: &str = "down-secret";

async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

async fn call(
    api: &warp::filters::BoxedFilter<(warp::reply::Response,)>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let tok = mint(SECRET, &MintRequest { sub: "someone".into(), ttl_secs: 600, ..Default::default() });
    let mut r = warp::test::request().method(method).path(path).header("authorization", format!("Bearer {tok}"));
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let res = r.reply(api).await;
    (res.status(), String::from_utf8_lossy(res.body()).to_string())
}

#[tokio::test]
async fn a_database_that_does_not_answer_is_a_503_without_internals() {
    let port = closed_port().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy(&format!("postgres://happening:hunter2@127.0.0.1:{port}/happening"))
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(PgStore::new(pool.clone()));
    let admission: Arc<dyn Admission> = Arc::new(PgAdmission::new(pool.clone()));
    let verifier = Verifier::new(&AuthConfig { secret: Some(SECRET.into()), ..Default::default() }).unwrap();
    let settings =
        Settings { backends: vec![("seat_store", "postgres"), ("admission", "postgres"), ("notifier", "log")], ..Settings::default() };
    let checks: Vec<Arc<dyn ReadyCheck>> = vec![Arc::new(PostgresCheck::new(pool))];
    let api = routes(AppState::with_checks(Engine::new(store, admission), verifier, None, settings, checks));

    for (method, path, body) in [
        ("GET", "/users/me", None),
        ("POST", "/organizations", Some(json!({ "name": "Acme" }))),
        ("POST", "/bookings", Some(json!({ "event_id": uuid::Uuid::new_v4(), "seats": 1 }))),
    ] {
        let (status, text) = call(&api, method, path, body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}: {text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({ "error": "service unavailable, try again" }), "{method} {path}");
    }

    let (status, text) = call(&api, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], "postgres unavailable");
    assert_eq!(body["failing"], json!(["postgres"]));
    assert_eq!(body["stores"]["seat_store"], "postgres");
    for secret in ["hunter2", "127.0.0.1", &port.to_string(), "timed out", "refused"] {
        assert!(!text.contains(secret), "no internals in {text}");
    }
}
