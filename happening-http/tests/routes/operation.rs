//! What an operator watches: the rate limit, the metrics, readiness through shutdown.

use super::*;

#[tokio::test]
async fn rate_limit_answers_429_per_user() {
    let a = app_with(Some(RateLimiter::new(0.001, 2)), Settings::default());
    let alice = token("alice");
    assert_eq!(a.call("GET", "/users/me", Some(&alice), None).await.status, StatusCode::OK);
    assert_eq!(a.call("GET", "/users/me", Some(&alice), None).await.status, StatusCode::OK);
    let r = a.call("GET", "/users/me", Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(is_error(&r));
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(a.call("GET", "/users/me", Some(&token("bob")), None).await.status, StatusCode::OK, "per user");
    assert_eq!(a.call("GET", "/healthz", None, None).await.status, StatusCode::OK, "probes are not limited");
}

#[tokio::test]
async fn metrics_count_requests_and_bookings() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let org = a.org(&admin, &[]).await;
    let ev = a.event(&admin, &org, 1).await;
    a.book(&admin, json!({ "event_id": ev })).await;
    let w = a.book(&admin, json!({ "event_id": ev })).await.body;
    assert_eq!(w["status"], "waiting");
    // The relay counts outcomes; run one pass as the server's background task would.
    a.background_once(Arc::new(happening_http::server::LogNotifier)).await;
    let text = a.metrics().await;
    assert!(text.contains(r#"happening_http_requests_total{route="/bookings",method="POST",status="201"} 2"#), "{text}");
    assert!(text.contains(r#"happening_http_request_duration_seconds_count{route="/bookings"} 2"#), "{text}");
    assert!(text.contains(r#"happening_bookings_total{outcome="confirmed"} 1"#), "{text}");
    assert!(text.contains(r#"happening_bookings_total{outcome="waitlisted"} 1"#), "{text}");
    assert!(text.contains(r#"happening_bookings_total{outcome="promoted"} 0"#), "{text}");
    assert!(text.contains("happening_outbox_depth 0\n"), "the relay drained the outbox: {text}");
    let published = metric(&text, "happening_notifications_published_total");
    assert!(published >= 2.0, "{text}");
    assert_eq!(metric(&text, "happening_notifications_confirmed_total"), published, "{text}");
    assert_eq!(metric(&text, "happening_notifications_failed_total"), 0.0, "{text}");
}

/// The value of an unlabelled metric in the text format.
fn metric(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A notifier that is down: the relay counts each batch published and failed, and the rows
/// stay in the outbox (its depth says how many wait).
#[tokio::test]
async fn metrics_count_failed_deliveries_and_the_outbox_backlog() {
    struct Down;
    #[async_trait::async_trait]
    impl happening_core::ports::Notifier for Down {
        async fn deliver(&self, _: &[happening_core::domain::Notification]) -> Result<(), happening_core::ports::NotifierError> {
            Err(happening_core::ports::NotifierError::Rejected("broker down".into()))
        }
    }
    let a = app();
    let (admin, _) = a.user("admin").await;
    let org = a.org(&admin, &[]).await;
    let ev = a.event(&admin, &org, 10).await;
    for _ in 0..3 {
        a.book(&admin, json!({ "event_id": ev })).await;
    }
    let before = a.metrics().await;
    let depth = metric(&before, "happening_outbox_depth");
    assert!(depth >= 3.0, "one notification per booking at least: {before}");
    a.background_once(Arc::new(Down)).await;
    let text = a.metrics().await;
    assert_eq!(metric(&text, "happening_outbox_depth"), depth, "nothing lost, nothing sent: {text}");
    let failed = metric(&text, "happening_notifications_failed_total");
    assert!(failed >= depth, "{text}");
    assert_eq!(metric(&text, "happening_notifications_published_total"), failed, "{text}");
    assert_eq!(metric(&text, "happening_notifications_confirmed_total"), 0.0, "{text}");
    assert!(text.contains(r#"happening_bookings_total{outcome="confirmed"} 0"#), "outcomes count delivered rows only: {text}");
}

#[tokio::test]
async fn readiness_follows_shutdown() {
    let a = app();
    let r = a.call("GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["stores"]["seat_store"], "memory");
    a.st.shutdown.send_replace(true);
    assert_eq!(a.call("GET", "/readyz", None, None).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.call("GET", "/healthz", None, None).await.status, StatusCode::OK);
}
