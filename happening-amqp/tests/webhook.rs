//! `WebhookSink` against a tiny local HTTP server: the JSON body and the idempotency key,
//! retries on 5xx, 408, 429 and network errors with a doubling pause, no retry on other
//! 4xx. No external server needed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use happening_amqp::{NotificationMessage, Sink, WebhookSink};
use happening_core::domain::NotificationKind;
use happening_core::ids::{EventId, NotificationId, UserId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Request {
    head: String,
    body: Vec<u8>,
    /// When its head had arrived.
    at: Instant,
}

/// Serves `statuses` in turn (the last one repeats), recording each request.
async fn server(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        let mut i = 0;
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, mut body) = loop {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "request cut short");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&buf[..p]).to_string(), buf[p + 4..].to_vec());
                }
            };
            let at = Instant::now();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while body.len() < len {
                let n = sock.read(&mut chunk).await.unwrap();
                body.extend_from_slice(&chunk[..n]);
            }
            log.lock().unwrap().push(Request { head, body, at });
            let status = statuses[i.min(statuses.len() - 1)];
            i += 1;
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            sock.write_all(reply.as_bytes()).await.unwrap();
            let _ = sock.shutdown().await;
        }
    });
    (url, seen)
}

fn message() -> NotificationMessage {
    NotificationMessage {
        id: NotificationId::new(),
        kind: NotificationKind::BookingConfirmed,
        user_id: UserId::new(),
        event_id: Some(EventId::new()),
        booking_id: None,
        org_id: None,
        seats: 3,
        expires_at: None,
        message: "Your booking of 3 seat(s) is confirmed".into(),
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn posts_json_with_idempotency_key_and_retries_server_errors() {
    let (url, seen) = server(vec![500, 503, 200]).await;
    let sink = WebhookSink::new(url).with_retries(3, Duration::from_millis(1));
    let m = message();
    sink.handle(&m).await.expect("delivered on the third try");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two retries");
    for r in &seen {
        assert!(r.head.starts_with("POST /hook "), "{}", r.head);
        let head = r.head.to_ascii_lowercase();
        assert!(head.contains(&format!("idempotency-key: {}", m.id)), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(NotificationMessage::from_json(&r.body).unwrap(), m);
    }
}

#[tokio::test]
async fn gives_up_after_the_retries_and_at_once_on_client_errors() {
    let (url, seen) = server(vec![500]).await;
    let sink = WebhookSink::new(url).with_retries(2, Duration::from_millis(1));
    assert!(sink.handle(&message()).await.is_err());
    assert_eq!(seen.lock().unwrap().len(), 3, "one try and two retries");

    let (url, seen) = server(vec![400]).await;
    let sink = WebhookSink::new(url).with_retries(5, Duration::from_millis(1));
    let err = sink.handle(&message()).await.unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn retries_408_and_429_like_server_errors() {
    let (url, seen) = server(vec![408, 429, 200]).await;
    let sink = WebhookSink::new(url).with_retries(3, Duration::from_millis(1));
    sink.handle(&message()).await.expect("delivered on the third try");
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn retries_network_errors_then_gives_up() {
    // A port with nothing listening: every try is refused.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let sink = WebhookSink::new(format!("http://127.0.0.1:{port}/hook")).with_retries(2, Duration::from_millis(1));
    let err = sink.handle(&message()).await.unwrap_err().to_string();
    assert!(err.contains("after 3 attempts"), "{err}");
}

/// The pause before each retry doubles. Only lower bounds are checked (a sleep lasts at
/// least its length), so a slow machine cannot fail this; a pause that did not grow would.
#[tokio::test]
async fn the_pause_between_retries_doubles() {
    const FIRST_MS: u64 = 100;
    let (url, seen) = server(vec![503, 503, 503, 200]).await;
    let sink = WebhookSink::new(url).with_retries(3, Duration::from_millis(FIRST_MS));
    sink.handle(&message()).await.expect("delivered on the fourth try");
    let at: Vec<Instant> = seen.lock().unwrap().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 4);
    for (i, pair) in at.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let pause = Duration::from_millis(FIRST_MS << i);
        assert!(gap >= pause, "retry {}: {gap:?} after the try before, less than the pause of {pause:?}", i + 1);
    }
}
