//! Where the worker hands each message: a log line by default, a webhook for real
//! gateways (email, SMS, push).

use std::time::Duration;

use async_trait::async_trait;

use crate::message::NotificationMessage;

/// A failed handling; the worker retries the message, then dead-letters it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl SinkError {
    /// A failure described for the log and the retry's record.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Handles one notification. Called at least once per notification (the worker
/// de-duplicates, but a crash between handling and recording can repeat a call), so a sink
/// should be idempotent by `msg.id` where it can.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Hands `msg` on (sends the email, calls the webhook, ...). `Ok` only once it is done:
    /// the worker then records it delivered and acknowledges it; `Err` is retried.
    async fn handle(&self, msg: &NotificationMessage) -> Result<(), SinkError>;
}

/// Logs each notification through `tracing` (target `happening_amqp::sink`). The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

#[async_trait]
impl Sink for LogSink {
    async fn handle(&self, msg: &NotificationMessage) -> Result<(), SinkError> {
        tracing::info!(
            target: "happening_amqp::sink",
            id = %msg.id,
            r#type = msg.kind.as_str(),
            user = %msg.user_id,
            event = ?msg.event_id,
            booking = ?msg.booking_id,
            seats = msg.seats,
            "{}",
            msg.message
        );
        Ok(())
    }
}

/// POSTs each notification's JSON to a URL, with an `Idempotency-Key` header (the
/// notification id) so that the receiver can de-duplicate too.
///
/// A 2xx answer is success. A network error, a timeout, 408, 429 or a 5xx is retried up to
/// `retries` times with exponential backoff (`backoff`, doubled each time, at most 30 s);
/// any other answer fails at once (retrying a 400 will not help).
#[derive(Debug, Clone)]
pub struct WebhookSink {
    client: reqwest::Client,
    url: String,
    retries: u32,
    backoff: Duration,
}

impl WebhookSink {
    /// 3 retries from 200 ms, 10 s per request.
    pub fn new(url: impl Into<String>) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client");
        Self { client, url: url.into(), retries: 3, backoff: Duration::from_millis(200) }
    }

    /// Retries a retryable failure `retries` times, waiting `first_backoff` before the first
    /// retry and twice as long before each next one (at most 30 s).
    pub fn with_retries(mut self, retries: u32, first_backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = first_backoff;
        self
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn handle(&self, msg: &NotificationMessage) -> Result<(), SinkError> {
        let mut backoff = self.backoff;
        let mut attempt = 0;
        loop {
            let sent = self.client.post(&self.url).header("Idempotency-Key", msg.id.to_string()).json(msg).send().await;
            let error = match sent {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    let s = r.status();
                    if !(s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429) {
                        return Err(SinkError(format!("webhook answered {s}")));
                    }
                    format!("webhook answered {s}")
                }
                Err(e) => format!("webhook: {e}"),
            };
            if attempt >= self.retries {
                return Err(SinkError(format!("{error} (after {} attempts)", attempt + 1)));
            }
            attempt += 1;
            tracing::debug!(id = %msg.id, attempt, "{error}; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}
