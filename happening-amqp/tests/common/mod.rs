//! Shared by the test binaries: real servers (RabbitMQ and PostgreSQL, from
//! `HAPPENING_TEST_AMQP_URL` and `HAPPENING_TEST_DATABASE_URL`, started by scripts/test),
//! a recording sink, and bounded polling.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use happening_amqp::{NotificationMessage, Sink, SinkError};
use happening_core::domain::{DeliveryStatus, Notification};
use happening_core::ids::{NotificationId, UserId};
use happening_core::ports::{Notifier, NotifierError};
use happening_core::testkit::Harness;
use happening_core::Engine;
use happening_postgres::{testing, PgAdmission, PgStore};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::sync::Semaphore;

/// The RabbitMQ test server. Without one, tests skip, except under CI (`CI` set).
pub fn amqp_url() -> Option<String> {
    match std::env::var("HAPPENING_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("HAPPENING_TEST_AMQP_URL is not set, and CI is: run the tests with scripts/test")
        }
        _ => {
            eprintln!("skipped: HAPPENING_TEST_AMQP_URL is not set (scripts/test starts RabbitMQ)");
            None
        }
    }
}

/// A test's servers: a harness on a fresh PostgreSQL database (`replicas` more engines,
/// each with its own pool, as separate servers), RabbitMQ, and a queue of its own.
pub struct Env {
    pub h: Harness,
    pub amqp: String,
    pub queue: String,
}

pub async fn setup(replicas: usize) -> Option<Env> {
    let amqp = amqp_url()?;
    let url = testing::server_url()?;
    let db_url = testing::fresh_database_url(&url).await;
    let mut pools = Vec::new();
    for _ in 0..=replicas {
        pools.push(happening_postgres::connect(&db_url, happening_postgres::testing::pool(8)).await.expect("engine pool"));
    }
    let mut pools = pools.into_iter();
    let h = Harness::new(replicas, || {
        let pool = pools.next().expect("one pool per engine");
        (Arc::new(PgStore::new(pool.clone())), Arc::new(PgAdmission::new(pool)))
    });
    Some(Env { h, amqp, queue: format!("notifications-{}", uuid::Uuid::new_v4().simple()) })
}

/// How long one step against a server may take before the test fails: a server that accepts
/// and never answers (a publisher blocked by a resource alarm, say) must fail the test, not
/// hang the run. A bound against hanging, not a timing assertion.
pub const STEP_LIMIT: Duration = Duration::from_secs(30);

/// Awaits `step`, panicking if it takes longer than [`STEP_LIMIT`].
pub async fn bounded<T>(what: &str, step: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP_LIMIT, step).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: no answer in {STEP_LIMIT:?}"),
    }
}

/// Polls `cond` until it holds; panics after `limit` (a bound against hanging, not a
/// timing assertion).
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !bounded(what, cond()).await {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain lapin connection to the test server, for looking at queues.
pub async fn connect(url: &str) -> Connection {
    bounded("connect to RabbitMQ", Connection::connect(url, ConnectionProperties::default())).await.expect("connect")
}

/// Relays until the outbox has nothing pending; returns how many were relayed.
pub async fn relay_all(engine: &Engine, notifier: &dyn Notifier) -> usize {
    let mut total = 0;
    loop {
        let n = engine.relay(notifier, 50).await.expect("relay");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// Every notification in the store (the test's database holds only this test's).
pub async fn all_pending(engine: &Engine) -> Vec<Notification> {
    engine.store().pending_notifications(100_000).await.expect("pending")
}

/// The status of each of `ids`, read per user.
pub async fn statuses(engine: &Engine, of: &[Notification]) -> HashMap<NotificationId, DeliveryStatus> {
    let users: HashSet<UserId> = of.iter().map(|n| n.user_id).collect();
    let wanted: HashSet<NotificationId> = of.iter().map(|n| n.id).collect();
    let mut out = HashMap::new();
    for u in users {
        for n in engine.store().notifications(u, 10_000, 0).await.expect("notifications") {
            if wanted.contains(&n.id) {
                out.insert(n.id, n.status);
            }
        }
    }
    out
}

pub async fn all_have_status(engine: &Engine, of: &[Notification], status: DeliveryStatus) -> bool {
    let s = statuses(engine, of).await;
    of.iter().all(|n| s.get(&n.id) == Some(&status))
}

/// Messages ready in `queue` (0 if it does not exist).
pub async fn depth(url: &str, queue: &str) -> u32 {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.expect("channel");
    let n = match ch.queue_declare(queue.into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default()).await {
        Ok(q) => q.message_count(),
        Err(_) => 0,
    };
    let _ = conn.close(200, "done".into()).await;
    n
}

/// Whether `queue` exists (a passive declare succeeds).
pub async fn exists(url: &str, queue: &str) -> bool {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.expect("channel");
    let found =
        ch.queue_declare(queue.into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default()).await.is_ok();
    let _ = conn.close(200, "done".into()).await;
    found
}

/// Publishes a raw body to `queue` (confirmed).
pub async fn publish_raw(url: &str, queue: &str, body: &[u8], message_id: Option<&str>) {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(Default::default()).await.expect("confirm mode");
    let mut props = BasicProperties::default().with_delivery_mode(2);
    if let Some(id) = message_id {
        props = props.with_message_id(id.into());
    }
    let publish = async {
        ch.basic_publish("".into(), queue.into(), BasicPublishOptions { mandatory: true, ..Default::default() }, body, props)
            .await
            .expect("publish")
            .await
            .expect("confirm")
    };
    let confirm = bounded("a confirmed publish", publish).await;
    assert!(matches!(confirm, lapin::Confirmation::Ack(None)), "raw publish confirmed and routed");
    let _ = conn.close(200, "done".into()).await;
}

/// Takes every message from `queue` (acknowledging them): (body, message_id, headers).
pub async fn drain(url: &str, queue: &str) -> Vec<(Vec<u8>, Option<String>, FieldTable)> {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.expect("channel");
    let mut out = Vec::new();
    while let Some(m) = ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.expect("basic.get") {
        let props = &m.delivery.properties;
        out.push((
            m.delivery.data.clone(),
            props.message_id().as_ref().map(|s| s.as_str().to_string()),
            props.headers().clone().unwrap_or_default(),
        ));
    }
    let _ = conn.close(200, "done".into()).await;
    out
}

/// A sink that records every call (failed ones too), fails for chosen ids, and can be
/// told to park every call after the first `park_after` until released.
#[derive(Default)]
pub struct RecordingSink {
    pub calls: Mutex<Vec<NotificationMessage>>,
    pub ok: Mutex<Vec<NotificationMessage>>,
    pub failing: Mutex<HashSet<NotificationId>>,
    park: Mutex<Option<(usize, Arc<Semaphore>)>>,
}

impl RecordingSink {
    pub fn fail(&self, id: NotificationId) {
        self.failing.lock().unwrap().insert(id);
    }

    /// From the `after`-th call on, calls wait until `release`.
    pub fn park_after(&self, after: usize) {
        *self.park.lock().unwrap() = Some((after, Arc::new(Semaphore::new(0))));
    }

    pub fn release(&self) {
        if let Some((_, s)) = self.park.lock().unwrap().as_ref() {
            s.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    pub fn calls_for(&self, id: NotificationId) -> usize {
        self.calls.lock().unwrap().iter().filter(|m| m.id == id).count()
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Ids handled successfully, with how many times each.
    pub fn ok_counts(&self) -> HashMap<NotificationId, usize> {
        let mut out = HashMap::new();
        for m in self.ok.lock().unwrap().iter() {
            *out.entry(m.id).or_insert(0) += 1;
        }
        out
    }
}

#[async_trait]
impl Sink for RecordingSink {
    async fn handle(&self, msg: &NotificationMessage) -> Result<(), SinkError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(msg.clone());
            calls.len()
        };
        let park = self.park.lock().unwrap().clone();
        if let Some((after, gate)) = park {
            if n > after {
                let _permit = gate.acquire().await.expect("gate");
            }
        }
        if self.failing.lock().unwrap().contains(&msg.id) {
            return Err(SinkError::new("this one always fails"));
        }
        self.ok.lock().unwrap().push(msg.clone());
        Ok(())
    }
}

/// A Notifier that records what each delivery of the inner one carried.
pub struct CountingNotifier<N> {
    pub inner: N,
    pub delivered: Mutex<Vec<NotificationId>>,
}

impl<N> CountingNotifier<N> {
    pub fn new(inner: N) -> Self {
        Self { inner, delivered: Mutex::new(Vec::new()) }
    }
}

#[async_trait]
impl<N: Notifier> Notifier for CountingNotifier<N> {
    async fn deliver(&self, batch: &[Notification]) -> Result<(), NotifierError> {
        self.inner.deliver(batch).await?;
        self.delivered.lock().unwrap().extend(batch.iter().map(|n| n.id));
        Ok(())
    }
}

/// A worker on `env`'s queue and store, running in a task until its token is cancelled.
pub struct Running {
    pub worker: Arc<happening_amqp::Worker>,
    pub stop: happening_amqp::CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

pub fn worker_config(env: &Env) -> happening_amqp::WorkerConfig {
    happening_amqp::WorkerConfig {
        queue: env.queue.clone(),
        retry_delay: Duration::from_millis(10),
        reconnect_delay: Duration::from_millis(200),
        ..Default::default()
    }
}

pub fn spawn_worker(env: &Env, config: happening_amqp::WorkerConfig, sink: Arc<RecordingSink>) -> Running {
    let log = Arc::new(happening_amqp::StoreDeliveryLog::new(env.h.engine.store().clone()));
    let worker = Arc::new(happening_amqp::Worker::with_sink(&env.amqp, config, log, sink));
    let stop = happening_amqp::CancellationToken::new();
    let task = tokio::spawn({
        let (w, s) = (worker.clone(), stop.clone());
        async move { w.run(s).await }
    });
    Running { worker, stop, task }
}

impl Running {
    /// Shuts the worker down and waits for it (bounded).
    pub async fn shutdown(self) -> happening_amqp::WorkerStats {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task).await.expect("worker stops in time").expect("worker task");
        self.worker.stats()
    }
}
