//! Live streams: when they end, how they take the token, how many one user may keep open.

use super::*;

/// A live stream in the background: the task ends with the status and the whole body once
/// the stream ends.
fn open_stream(a: &App, ev: &str, tok: &str) -> tokio::task::JoinHandle<(StatusCode, String)> {
    let (api, path, auth) = (a.api.clone(), format!("/events/{ev}/stream"), format!("Bearer {tok}"));
    tokio::spawn(async move {
        let res = warp::test::request().path(&path).header("authorization", auth).reply(&api).await;
        (res.status(), String::from_utf8_lossy(res.body()).into_owned())
    })
}

/// Waits until `n` live streams are open on the server.
async fn streams_open(a: &App, n: usize) {
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while a.st.live.subscriber_count() != n {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} streams open, not {n}", a.st.live.subscriber_count()));
}

async fn ended(task: tokio::task::JoinHandle<(StatusCode, String)>) -> (StatusCode, String) {
    tokio::time::timeout(std::time::Duration::from_secs(10), task).await.expect("the stream did not end").unwrap()
}

#[tokio::test]
async fn live_stream_ends_when_the_member_is_removed_or_the_token_expires() {
    let a = app_with(None, Settings { stream_recheck_ms: 50, ..Settings::default() });
    let (admin, _) = a.user("admin").await;
    let (bob, bob_id) = a.user("bob").await;
    let org = a.org(&admin, &[(&bob_id, "user")]).await;
    let ev = a.event(&admin, &org, 5).await;
    let bobs = open_stream(&a, &ev, &bob);
    let admins = open_stream(&a, &ev, &admin);
    streams_open(&a, 2).await;
    a.ok("DELETE", &format!("/organizations/{org}/members/{bob_id}"), &admin, None, StatusCode::NO_CONTENT).await;
    let (status, body) = ended(bobs).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("event:seats\n"), "{body}");
    assert!(body.trim_end().ends_with("event:error\ndata:{\"error\":\"event not found\"}"), "{body}");
    // The member's stream is gone, the orgAdmin's is not (several rechecks later).
    streams_open(&a, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!admins.is_finished(), "a member's stream stays open");
    a.ok("DELETE", &format!("/events/{ev}"), &admin, None, StatusCode::NO_CONTENT).await;
    let (_, body) = ended(admins).await;
    assert!(!body.contains("event:error"), "{body}");
    assert!(body.trim_end().ends_with(&format!("event:deleted\ndata:{{\"event_id\":\"{ev}\"}}")), "{body}");

    // A token that expires ends its stream then, although the user is still a member.
    let ev = a.event(&admin, &org, 5).await;
    let short =
        mint(SECRET, &MintRequest { sub: "admin".into(), email: Some("admin@example.com".into()), ttl_secs: 1, ..Default::default() });
    let (_, body) = ended(open_stream(&a, &ev, &short)).await;
    assert!(body.trim_end().ends_with("event:error\ndata:{\"error\":\"token expired\"}"), "{body}");
    streams_open(&a, 0).await;
}

/// A browser's EventSource cannot send headers: the stream takes the token in the query.
#[tokio::test]
async fn live_stream_takes_the_token_in_the_query() {
    let a = app();
    let (admin, _) = a.user("admin").await;
    let org = a.org(&admin, &[]).await;
    let ev = a.event(&admin, &org, 5).await;
    let (api, path) = (a.api.clone(), format!("/events/{ev}/stream?access_token={admin}"));
    let task = tokio::spawn(async move {
        let res = warp::test::request().path(&path).reply(&api).await;
        (res.status(), String::from_utf8_lossy(res.body()).into_owned())
    });
    streams_open(&a, 1).await;
    a.ok("DELETE", &format!("/events/{ev}"), &admin, None, StatusCode::NO_CONTENT).await;
    let (status, body) = ended(task).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("event:seats\n"), "{body}");
    // A bad token there is refused like a bad header; other routes ignore the parameter.
    let ev = a.event(&admin, &org, 5).await;
    let res = warp::test::request().path(&format!("/events/{ev}/stream?access_token=nope")).reply(&a.api).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = warp::test::request().path(&format!("/events/{ev}?access_token={admin}")).reply(&a.api).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn live_streams_are_capped_per_user() {
    let a = app_with(None, Settings { max_streams: 3, max_streams_per_user: 2, ..Settings::default() });
    let (admin, _) = a.user("admin").await;
    let (bob, bob_id) = a.user("bob").await;
    let org = a.org(&admin, &[(&bob_id, "user")]).await;
    let ev = a.event(&admin, &org, 5).await;
    let first = open_stream(&a, &ev, &bob);
    let _second = open_stream(&a, &ev, &bob);
    streams_open(&a, 2).await;
    let r = a.call("GET", &format!("/events/{ev}/stream"), Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("at most 2"), "{}", r.body);
    // Another user still gets one; past --max-streams everyone gets 503.
    let _admins = open_stream(&a, &ev, &admin);
    streams_open(&a, 3).await;
    let r = a.call("GET", &format!("/events/{ev}/stream"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(is_error(&r));
    // A closed stream frees its user's slot.
    first.abort();
    streams_open(&a, 2).await;
    let _again = open_stream(&a, &ev, &bob);
    streams_open(&a, 3).await;
    a.st.shutdown.send_replace(true);
}
