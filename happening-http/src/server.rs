//! Running the server: the background worker (hold expiry, outbox relay), binding, and
//! graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use happening_core::background::{BackgroundConfig, RelayConfig};
use happening_core::domain::Notification;
use happening_core::ports::{ChangeFeed, Notifier, NotifierError};
use hyper::server::accept::Accept;
use hyper::server::conn::AddrStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};
use tracing::Instrument;

use crate::state::State;

/// A Notifier that writes notifications to the log (the in-memory deployment's sink).
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn deliver(&self, batch: &[Notification]) -> Result<(), NotifierError> {
        for n in batch {
            tracing::debug!(target: "happening::notifications", id = %n.id, user = %n.user_id, kind = n.kind.as_str(), message = %n.message(), "notification");
        }
        Ok(())
    }
}

/// Wraps a Notifier to count into the metrics what it was given, and how that went.
struct Counting {
    inner: Arc<dyn Notifier>,
    st: State,
}

#[async_trait]
impl Notifier for Counting {
    async fn deliver(&self, batch: &[Notification]) -> Result<(), NotifierError> {
        self.st.metrics.published(batch);
        match self.inner.deliver(batch).await {
            Ok(()) => self.st.metrics.confirmed(batch),
            Err(e) => {
                self.st.metrics.failed(batch);
                return Err(e);
            }
        }
        Ok(())
    }
}

const RELAY_BATCH: u32 = 1000;

/// Longest pause between relays while the notifier fails (RabbitMQ down).
const RELAY_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How often the latency samples recorded since the last scrape are folded into the
/// histograms (what the exporter's own installer does every 5 s), so that they stay bounded
/// when nothing scrapes `/metrics`.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// After a shutdown, how long the relay may take to finish its round and send what is
/// left; past it the rest waits in the outbox (for the next start, or another replica).
const RELAY_SHUTDOWN_TIMEOUT_MS: u64 = 5_000;

/// Runs the engine's background work ([`happening_core::background`]) until `stop`, then
/// returns once it is done:
///
/// - every `tick`, due holds and offers expire (their seats offered or given to whoever
///   waits) and the events marked dirty by an admission failure are reconciled;
/// - the outbox relay, counted into the metrics, runs in a task of its own, so that a broker
///   that hangs (black-holed, up to the notifier's timeouts per round) holds only the
///   notifications, never the expiry and promotions. It pauses one `tick` once drained,
///   backs off while the notifier fails (doubling up to 5 s, the rows waiting in the outbox
///   meanwhile), and on `stop` relays what is left, for at most `RELAY_SHUTDOWN_TIMEOUT_MS`;
/// - every `METRICS_UPKEEP`, the metrics' upkeep: the latency samples folded into the
///   histograms.
pub async fn background(st: State, notifier: Arc<dyn Notifier>, tick: Duration, mut stop: watch::Receiver<bool>) {
    let notifier = Arc::new(Counting { inner: notifier, st: st.clone() });
    let relay = RelayConfig {
        batch: RELAY_BATCH,
        idle: tick,
        max_backoff: RELAY_MAX_BACKOFF.max(tick),
        shutdown_timeout_ms: RELAY_SHUTDOWN_TIMEOUT_MS,
        ..RelayConfig::default()
    };
    let work = happening_core::background::spawn(st.engine.clone(), notifier, BackgroundConfig { tick, relay });
    let mut upkeep = tokio::time::interval(METRICS_UPKEEP);
    loop {
        tokio::select! {
            _ = upkeep.tick() => st.metrics.upkeep(),
            // A stop, or its sender gone: either way, the server is going down.
            _ = stop.changed() => break,
        }
    }
    work.stop().await;
}

/// How [`run`] serves: where, how often the background work runs, how long shutdown waits,
/// and where notifications go.
pub struct RunOptions {
    /// The address to listen on; port 0 picks a free one (see `run`'s `on_bound`).
    pub addr: SocketAddr,
    /// Background tick (hold expiry, reconciliation; the relay's pause once drained).
    pub tick: Duration,
    /// After a shutdown signal, how long in-flight requests may take.
    pub grace: Duration,
    /// Where the outbox relay sends notifications (RabbitMQ, or the log).
    pub notifier: Arc<dyn Notifier>,
    /// Tells the other servers of the changes made here, and the live streams here of
    /// theirs (`live::relay_changes`); `None` for a server alone on its stores.
    pub feed: Option<Arc<dyn ChangeFeed>>,
}

/// The open connections that have received at least one byte.
///
/// Shutdown waits for these, not for every connection: hyper's graceful shutdown closes an
/// idle keep-alive connection at once, but waits on a connection that was opened and never
/// used (HTTP clients open such spares) until its client sends a request or hangs up, so one
/// pooled spare held the shutdown for the whole grace period.
#[derive(Clone, Default)]
struct UsedConnections(Arc<(AtomicUsize, Notify)>);

impl UsedConnections {
    /// Resolves once no used connection is open.
    async fn closed(&self) {
        loop {
            let notified = self.0 .1.notified();
            if self.0 .0.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// An accepted connection, counted in [`UsedConnections`] from its first byte read until it
/// is dropped.
struct Connection {
    io: AddrStream,
    used: UsedConnections,
    counted: bool,
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if !this.counted && buf.filled().len() > before {
            this.counted = true;
            this.used.0 .0.fetch_add(1, Ordering::SeqCst);
        }
        read
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.counted && self.used.0 .0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.used.0 .1.notify_waiters();
        }
    }
}

/// Serves until `signal` resolves, then stops accepting, lets the requests in flight finish
/// (up to `grace`), drops the connections never used, and flushes the outbox. `on_bound`
/// gets the bound address (port 0 picks a free port).
pub async fn run(
    st: State,
    opts: RunOptions,
    signal: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let routes = warp::service(crate::filters::routes(st.clone()));
    let st_svc = st.clone();
    let make = hyper::service::make_service_fn(move |_| {
        let routes = routes.clone();
        let st = st_svc.clone();
        async move { Ok::<_, Infallible>(hyper::service::service_fn(move |req| with_request_id(routes.clone(), st.clone(), req))) }
    });
    let mut incoming = hyper::server::conn::AddrIncoming::bind(&opts.addr).map_err(|e| format!("cannot listen on {}: {e}", opts.addr))?;
    // Small answers go out at once (as warp's own server does): without it, Nagle's
    // algorithm and delayed ACKs hold keep-alive answers back by tens of milliseconds.
    incoming.set_nodelay(true);
    let addr = incoming.local_addr();
    let used = UsedConnections::default();
    let counting = used.clone();
    let accept = hyper::server::accept::poll_fn(move |cx| {
        Pin::new(&mut incoming).poll_accept(cx).map_ok(|io| Connection { io, used: counting.clone(), counted: false })
    });
    let server = hyper::Server::builder(accept).serve(make);
    on_bound(addr);
    let st_sig = st.clone();
    let server = server.with_graceful_shutdown(async move {
        signal.await;
        tracing::info!("shutdown requested: no new connections, finishing requests in flight");
        st_sig.shutdown.send_replace(true);
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    if let Some(feed) = opts.feed {
        tokio::spawn(crate::live::relay_changes(st.live.clone(), feed, stop_rx.clone()));
    }
    let bg = tokio::spawn(background(st.clone(), opts.notifier, opts.tick, stop_rx));
    let mut server = tokio::spawn(server);
    let mut shutdown = st.shutdown.subscribe();
    let grace = opts.grace;
    let used_closed = async {
        let _ = shutdown.wait_for(|v| *v).await;
        tokio::time::timeout(grace, used.closed()).await.is_ok()
    };
    tokio::select! {
        _ = &mut server => {}
        closed = used_closed => {
            if !closed {
                tracing::warn!(grace_secs = grace.as_secs(), "grace period over; closing with requests in flight");
            }
            // What is left is connections never used, or requests past the grace period.
            server.abort();
        }
    }
    let _ = stop_tx.send(true);
    let _ = bg.await;
    tracing::info!("stopped");
    Ok(())
}

/// The longest `X-Request-Id` taken from a client; a longer or odd one is replaced.
const REQUEST_ID_BYTES_MAX: usize = 64;

/// Runs one request in a `request` span carrying its request id (the client's
/// `X-Request-Id` when it is 1 to 64 of `[A-Za-z0-9._-]`, else a new UUID), so that every log
/// line of the request has it, and answers it in `X-Request-Id`. A panic while answering is a
/// JSON 500 (see [`catch_panic`]), counted in the metrics like any other answer.
async fn with_request_id<S>(mut routes: S, st: State, req: hyper::Request<hyper::Body>) -> Result<warp::reply::Response, Infallible>
where
    S: hyper::service::Service<hyper::Request<hyper::Body>, Response = warp::reply::Response, Error = Infallible>,
{
    let given =
        req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| {
            (1..=REQUEST_ID_BYTES_MAX).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    let id = given.map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_string);
    let span = tracing::info_span!("request", request_id = %id);
    // The request is gone into the routes by the time a panic is caught: keep what the
    // metrics and the log need.
    let (method, path, start) = (req.method().clone(), req.uri().path().to_string(), std::time::Instant::now());
    async move {
        let mut res = match catch_panic(routes.call(req)).await {
            Ok(res) => res?,
            Err(res) => {
                let status = res.status().as_u16();
                st.metrics.observe(method.as_str(), &path, status, start.elapsed());
                tracing::warn!(method = %method, path, status, elapsed_us = start.elapsed().as_micros() as u64, "request failed");
                res
            }
        };
        res.headers_mut().insert("x-request-id", warp::http::HeaderValue::from_str(&id).expect("a request id is visible ASCII"));
        Ok(res)
    }
    .instrument(span)
    .await
}

/// Polls a request's future, turning a panic in it into `Err` with a JSON 500 (the panic's
/// message is logged, never answered). Without it hyper drops the connection, and the client
/// sees neither a status nor `{ "error": ... }`.
///
/// A panic may leave shared state half-changed; the engine's stores keep their own
/// invariants per atomic step, and the request-local state is dropped with the future.
pub async fn catch_panic<F: Future>(fut: F) -> Result<F::Output, warp::reply::Response> {
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(fut).catch_unwind().await.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(not a string)".into());
        tracing::error!(panic = %message, "request handler panicked");
        crate::error::ApiError::Internal.response()
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_while_answering_is_a_json_500_without_internals() {
        let ok = catch_panic(async { 7 }).await;
        assert_eq!(ok.ok(), Some(7));
        let res = catch_panic(async {
            tokio::task::yield_now().await;
            panic!("secret internals: row 42");
        })
        .await
        .unwrap_err();
        assert_eq!(res.status(), warp::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["content-type"], "application/json");
        let body = hyper::body::to_bytes(res.into_body()).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({ "error": "internal server error" }));
    }

    /// Through the service the server runs: a route that panics answers a JSON 500 with its
    /// request id, and the metrics count it.
    #[tokio::test]
    async fn a_panicking_route_answers_500_through_the_server_service() {
        use warp::Filter;
        let verifier = crate::auth::Verifier::new(&crate::auth::AuthConfig { secret: Some("s".into()), ..Default::default() }).unwrap();
        let st = crate::AppState::new(happening_core::Engine::in_memory(), verifier, None, crate::Settings::default());
        let boom = warp::path!("events").map(|| -> warp::reply::Response { panic!("secret internals") });
        let req = hyper::Request::builder().uri("/events").header("x-request-id", "req-1").body(hyper::Body::empty()).unwrap();
        let res = with_request_id(warp::service(boom), st.clone(), req).await.unwrap();
        assert_eq!(res.status(), warp::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["x-request-id"], "req-1");
        let body = hyper::body::to_bytes(res.into_body()).await.unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap(), serde_json::json!({ "error": "internal server error" }));
        assert!(st.metrics.render(None).contains(r#"route="/events",method="GET",status="500""#), "{}", st.metrics.render(None));
    }
}
