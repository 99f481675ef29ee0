//! The notification pipeline end to end against a real RabbitMQ and PostgreSQL: outbox ->
//! relay (`AmqpNotifier`, publisher confirms) -> queue -> `Worker` -> sink -> store.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use happening_amqp::{AmqpNotifier, NotificationMessage, WorkerConfig, ATTEMPTS_HEADER};
use happening_core::domain::{BookingStatus, DeliveryStatus, EventPatch, NotificationKind, Role, WaitlistPolicy};
use happening_core::ids::UserId;
use happening_core::ports::{Notifier, NotifierError};
use happening_core::HoldRequest;
use lapin::types::AMQPValue;

const LIMIT: Duration = Duration::from_secs(60);

/// (a) Every kind of notification the engine writes (book, waitlist, cancel, promote; an
/// event updated, then cancelled; an invitation; a hold that ran out) goes through RabbitMQ,
/// reaches the sink exactly once (even when the relay sends the batch twice) and ends
/// `delivered`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_notification_arrives_exactly_once_and_ends_delivered() {
    let Some(env) = setup(0).await else { return };
    let h = &env.h;
    let e = h.event(2, WaitlistPolicy::Fifo).await;
    let (a, b, c) = (UserId::new(), UserId::new(), UserId::new());
    let ba = h.book(e, a, 2).await.unwrap();
    let bb = h.book(e, b, 1).await.unwrap();
    let bc = h.book(e, c, 1).await.unwrap();
    assert_eq!((ba.status, bb.status, bc.status), (BookingStatus::Confirmed, BookingStatus::Waiting, BookingStatus::Waiting));
    h.engine.cancel(ba.id, a, None).await.unwrap();
    assert_eq!(h.engine.booking(bb.id).await.unwrap().status, BookingStatus::Confirmed, "b promoted");
    assert_eq!(h.engine.booking(bc.id).await.unwrap().status, BookingStatus::Confirmed, "c promoted");
    // The event changes, then is called off: b and c hear of both.
    h.engine.update_event(e, EventPatch { name: Some("Moved to the big hall".into()), ..Default::default() }).await.unwrap();
    assert_eq!(h.engine.cancel_event(e).await.unwrap().len(), 2);
    // A hold on another event runs out.
    let (d, other) = (UserId::new(), h.event(5, WaitlistPolicy::Fifo).await);
    h.engine.hold(HoldRequest { event_id: other, user_id: d, seats: Some(2), seat_numbers: None, ttl_ms: 1_000 }).await.unwrap();
    h.clock.advance_ms(1_001);
    assert_eq!(h.engine.expire_holds().await.unwrap(), 1);
    // Someone with an account is invited to an organization.
    let admin = h.engine.upsert_user("pipeline-admin", None, None).await.unwrap();
    let invitee = h.engine.upsert_user("pipeline-invitee", Some("invitee@example.org"), None).await.unwrap();
    let org = h.engine.create_org(admin.id, "Pipeline").await.unwrap();
    h.engine.invite(admin.id, org.id, "invitee@example.org", Role::User, 24).await.unwrap();

    let all = all_pending(&h.engine).await;
    let mut kinds: Vec<(&str, UserId)> = all.iter().map(|n| (n.kind.as_str(), n.user_id)).collect();
    kinds.sort();
    let mut want = vec![
        ("booking_cancelled", a),
        ("booking_confirmed", a),
        ("booking_waitlisted", b),
        ("booking_waitlisted", c),
        ("event_cancelled", b),
        ("event_cancelled", c),
        ("event_updated", b),
        ("event_updated", c),
        ("hold_expired", d),
        ("invitation_received", invitee.id),
        ("waitlist_promoted", b),
        ("waitlist_promoted", c),
    ];
    want.sort();
    assert_eq!(kinds, want);

    let notifier = AmqpNotifier::connect(&env.amqp, &env.queue).await.expect("connect");
    assert!(notifier.is_connected());
    assert_eq!(relay_all(&h.engine, &notifier).await, all.len());
    assert!(all_have_status(&h.engine, &all, DeliveryStatus::Sent).await, "relayed rows are sent");
    // At least once: the same batch again, as from a relay that died before marking it sent.
    notifier.deliver(&all).await.expect("deliver again");
    assert_eq!(depth(&env.amqp, &env.queue).await, 2 * all.len() as u32, "both copies are queued, confirmed");

    let sink = Arc::new(RecordingSink::default());
    let w = spawn_worker(&env, worker_config(&env), sink.clone());
    wait_until("every notification delivered", LIMIT, || all_have_status(&h.engine, &all, DeliveryStatus::Delivered)).await;
    wait_until("the duplicates acknowledged", LIMIT, || {
        let done = w.worker.stats().duplicates == all.len() as u64;
        async move { done }
    })
    .await;
    let stats = w.shutdown().await;
    assert_eq!((stats.handled, stats.duplicates, stats.retried, stats.dead_lettered), (all.len() as u64, all.len() as u64, 0, 0));

    let got = sink.ok.lock().unwrap().clone();
    assert_eq!(got.len(), all.len(), "each once: {got:?}");
    for n in &all {
        let m: Vec<&NotificationMessage> = got.iter().filter(|m| m.id == n.id).collect();
        assert_eq!(m.len(), 1, "{:?} exactly once", n.id);
        assert_eq!(*m[0], NotificationMessage::from(n), "the message carries the notification");
    }
    assert_eq!(depth(&env.amqp, &env.queue).await, 0);
    assert_eq!(depth(&env.amqp, &format!("{}.dead", env.queue)).await, 0);
}

/// (c) Poison: a body that is not JSON goes straight to the dead-letter queue (and its
/// notification, when its message id names one, is marked `failed`); a message whose sink
/// always fails is tried `max_attempts` times, then dead-lettered and `failed`. An operator
/// who moves a dead letter back to the queue once the sink works gets it `delivered`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_end_in_the_dead_letter_queue() {
    let Some(env) = setup(0).await else { return };
    let h = &env.h;
    let e = h.event(10, WaitlistPolicy::Fifo).await;
    for _ in 0..3 {
        h.book(e, UserId::new(), 1).await.unwrap();
    }
    let all = all_pending(&h.engine).await;
    assert_eq!(all.len(), 3);
    let (good, bad, mangled) = (&all[0], &all[1], &all[2]);

    let notifier = AmqpNotifier::connect(&env.amqp, &env.queue).await.expect("connect");
    // The third is published mangled: not JSON, under its own message id.
    h.engine.store().set_delivery(&[mangled.id], DeliveryStatus::Sent).await.unwrap();
    publish_raw(&env.amqp, &env.queue, b"{\"id\": not json", Some(&mangled.id.to_string())).await;
    publish_raw(&env.amqp, &env.queue, b"{\"id\": not json", Some("not-a-uuid")).await;
    relay_all(&h.engine, &notifier).await;

    let sink = Arc::new(RecordingSink::default());
    sink.fail(bad.id);
    let w = spawn_worker(&env, WorkerConfig { max_attempts: 3, ..worker_config(&env) }, sink.clone());
    let dead = format!("{}.dead", env.queue);
    wait_until("three dead letters", LIMIT, || async { depth(&env.amqp, &dead).await == 3 }).await;
    wait_until("the failing ones marked failed", LIMIT, || async {
        let s = statuses(&h.engine, &all).await;
        s.get(&bad.id) == Some(&DeliveryStatus::Failed)
            && s.get(&mangled.id) == Some(&DeliveryStatus::Failed)
            && s.get(&good.id) == Some(&DeliveryStatus::Delivered)
    })
    .await;
    let stats = w.shutdown().await;
    assert_eq!((stats.handled, stats.retried, stats.dead_lettered), (1, 2, 3));
    assert_eq!(sink.calls_for(bad.id), 3, "tried max_attempts times");
    assert_eq!(sink.calls_for(good.id), 1);
    assert_eq!(sink.calls_for(mangled.id), 0, "a body that is not a notification never reaches the sink");
    assert_eq!(depth(&env.amqp, &env.queue).await, 0, "nothing left in the main queue");

    let letters = drain(&env.amqp, &dead).await;
    assert_eq!(letters.len(), 3);
    let junk = letters.iter().find(|l| l.1.as_deref() == Some("not-a-uuid")).expect("the junk is dead-lettered");
    assert_eq!(junk.0, b"{\"id\": not json");
    assert!(letters.iter().any(|l| l.1 == Some(mangled.id.to_string())), "the mangled one is dead-lettered");
    let failed = letters.iter().find(|l| l.1 == Some(bad.id.to_string())).expect("the failing one is dead-lettered");
    assert_eq!(NotificationMessage::from_json(&failed.0).unwrap().id, bad.id);
    assert_eq!(failed.2.inner().get(ATTEMPTS_HEADER), Some(&AMQPValue::LongLongInt(2)), "two failures before the last try");
    assert!(failed.2.inner().contains_key("x-death"), "dead-lettered by the broker");

    // The sink is mended; the operator moves the dead letter back to the queue.
    sink.failing.lock().unwrap().remove(&bad.id);
    publish_raw(&env.amqp, &env.queue, &failed.0, Some(&bad.id.to_string())).await;
    let w = spawn_worker(&env, worker_config(&env), sink.clone());
    wait_until("the moved-back letter delivered", LIMIT, || async {
        statuses(&h.engine, &all).await.get(&bad.id) == Some(&DeliveryStatus::Delivered)
    })
    .await;
    let stats = w.shutdown().await;
    assert_eq!(stats.handled, 1);
    assert_eq!(sink.ok_counts().get(&bad.id), Some(&1), "handled once it came back");
}

/// (d) A worker shut down while messages flow finishes what it had in flight; a new worker
/// takes the rest: nothing lost, nothing handled twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_restarted_mid_stream_loses_and_duplicates_nothing() {
    let Some(env) = setup(0).await else { return };
    let h = &env.h;
    let e = h.event(500, WaitlistPolicy::Fifo).await;
    for _ in 0..200 {
        h.book(e, UserId::new(), 1).await.unwrap();
    }
    let all = all_pending(&h.engine).await;
    assert_eq!(all.len(), 200);
    let notifier = Arc::new(AmqpNotifier::connect(&env.amqp, &env.queue).await.expect("connect"));
    // The relay runs while the workers consume, in small batches.
    let relay = tokio::spawn({
        let (engine, notifier) = (h.engine.clone(), notifier.clone());
        async move {
            let mut n = 0;
            while n < 200 {
                n += engine.relay(&*notifier, 10).await.expect("relay");
                tokio::task::yield_now().await;
            }
        }
    });

    // The first worker handles 50, then its sink stalls with a whole prefetch (10) in
    // flight: shut it down then, and let the stalled calls go on.
    const PREFETCH: usize = 10;
    let sink = Arc::new(RecordingSink::default());
    sink.park_after(50);
    let config = WorkerConfig { prefetch: PREFETCH as u16, ..worker_config(&env) };
    let first = spawn_worker(&env, config.clone(), sink.clone());
    wait_until("the first worker stalled with a prefetch in flight", LIMIT, || {
        let n = sink.call_count();
        async move { n >= 50 + PREFETCH }
    })
    .await;
    first.stop.cancel();
    sink.release();
    let stats1 = first.shutdown().await;
    let handled_first = sink.ok.lock().unwrap().len();
    assert_eq!(stats1.handled as usize, handled_first);
    assert_eq!(handled_first, 50 + PREFETCH, "every message in flight at the shutdown finished, and no new one began");
    assert_eq!(sink.call_count(), handled_first, "no handling was cut off");
    let done_first: HashSet<_> = sink.ok.lock().unwrap().iter().map(|m| m.id).collect();
    let done_first: Vec<_> = all.iter().filter(|n| done_first.contains(&n.id)).cloned().collect();
    assert!(all_have_status(&h.engine, &done_first, DeliveryStatus::Delivered).await, "what it handled is recorded");

    let second = spawn_worker(&env, config, sink.clone());
    relay.await.expect("relay task");
    wait_until("everything delivered", LIMIT, || all_have_status(&h.engine, &all, DeliveryStatus::Delivered)).await;
    let stats2 = second.shutdown().await;
    let counts = sink.ok_counts();
    assert_eq!(counts.len(), 200, "nothing lost");
    assert!(counts.values().all(|&c| c == 1), "nothing handled twice");
    assert_eq!(stats1.handled + stats2.handled, 200);
    assert_eq!(depth(&env.amqp, &env.queue).await, 0);

    // A third worker (an empty in-memory LRU) gets copies of delivered ones: the store
    // de-duplicates them.
    notifier.deliver(&all[..20]).await.expect("deliver copies");
    let third = spawn_worker(&env, worker_config(&env), sink.clone());
    wait_until("the copies acknowledged", LIMIT, || {
        let done = third.worker.stats().duplicates == 20;
        async move { done }
    })
    .await;
    let stats3 = third.shutdown().await;
    assert_eq!(stats3.handled, 0, "already delivered: not handled again");
    assert_eq!(sink.ok.lock().unwrap().len(), 200);
    assert_eq!(depth(&env.amqp, &env.queue).await, 0);
}

/// A relay's notifier for [`two_relays_send_each_notification_once`]: counts what it
/// delivered; the first relay's holds its deliveries until the second's first one is done.
struct GatedNotifier {
    inner: CountingNotifier<AmqpNotifier>,
    wait_for: Option<tokio::sync::watch::Receiver<bool>>,
    open: Option<tokio::sync::watch::Sender<bool>>,
}

#[async_trait::async_trait]
impl Notifier for GatedNotifier {
    async fn deliver(&self, batch: &[happening_core::domain::Notification]) -> Result<(), NotifierError> {
        if let Some(rx) = &self.wait_for {
            bounded("the other relay's first delivery", rx.clone().wait_for(|open| *open)).await.expect("gate");
        }
        self.inner.deliver(batch).await?;
        if let Some(tx) = &self.open {
            tx.send_replace(true);
        }
        Ok(())
    }
}

/// (e) Two relays (two engines on one database, as two servers, each running the server's
/// loop: batches of 100, two in flight) relaying at once send each notification once. The
/// first relay holds the batches it claimed until the second has delivered one, so both
/// surely relay (and the second surely meets batches the first has claimed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_send_each_notification_once() {
    const BOOKINGS: usize = 1_000;
    let Some(env) = setup(1).await else { return };
    let h = &env.h;
    let e = h.event(BOOKINGS as u32, WaitlistPolicy::Fifo).await;
    for _ in 0..BOOKINGS {
        h.book(e, UserId::new(), 1).await.unwrap();
    }
    let all = all_pending(&h.engine).await;
    assert_eq!(all.len(), BOOKINGS);
    let (open, wait_for) = tokio::sync::watch::channel(false);
    let gates = [(Some(wait_for), None), (None, Some(open))];
    let stop = happening_amqp::CancellationToken::new();
    let relays: Vec<_> = h
        .engines()
        .into_iter()
        .zip(gates)
        .map(|(engine, (wait_for, open))| {
            let (amqp, queue, stop) = (env.amqp.clone(), env.queue.clone(), stop.clone());
            tokio::spawn(async move {
                let inner = CountingNotifier::new(bounded("connect", AmqpNotifier::connect(&amqp, &queue)).await.expect("connect"));
                let notifier = GatedNotifier { inner, wait_for, open };
                let config = happening_core::background::RelayConfig { batch: 100, idle: Duration::from_millis(10), ..Default::default() };
                let relayed = happening_core::background::run_relay(&engine, &notifier, config, stop).await;
                let delivered = notifier.inner.delivered.into_inner().unwrap();
                assert_eq!(relayed as usize, delivered.len(), "run_relay counts what it delivered");
                delivered
            })
        })
        .collect();
    let engine = h.engine.clone();
    wait_until("the outbox relayed", LIMIT, || async { engine.outbox_depth().await.unwrap() == 0 }).await;
    stop.cancel();
    let mut sent = Vec::new();
    for r in relays {
        let mine = bounded("a relay to stop", r).await.expect("relay task");
        assert!(!mine.is_empty(), "each relay sent some");
        sent.extend(mine);
    }
    let unique: HashSet<_> = sent.iter().copied().collect();
    assert_eq!(sent.len(), BOOKINGS, "each notification sent once");
    assert_eq!(unique, all.iter().map(|n| n.id).collect::<HashSet<_>>());
    assert_eq!(depth(&env.amqp, &env.queue).await, BOOKINGS as u32, "and queued once");
    assert!(all_have_status(&h.engine, &all, DeliveryStatus::Sent).await);
}

/// Batches in flight at once on one notifier (as the relay's loops deliver them): the next
/// batch is published while the broker confirms the one before, over the same channel, and
/// every message of every batch is confirmed and queued once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_flight_on_one_notifier_are_each_confirmed_and_queued_once() {
    let Some(amqp) = amqp_url() else { return };
    let queue = format!("notifications-{}", uuid::Uuid::new_v4().simple());
    let h = happening_core::testkit::Harness::in_memory(0);
    let e = h.event(1_000, WaitlistPolicy::Fifo).await;
    for _ in 0..200 {
        h.book(e, UserId::new(), 1).await.unwrap();
    }
    let all = all_pending(&h.engine).await;
    assert_eq!(all.len(), 200);
    let notifier = bounded("connect", AmqpNotifier::connect(&amqp, &queue)).await.expect("connect");
    let results = bounded("eight batches at once", futures_util::future::join_all(all.chunks(25).map(|b| notifier.deliver(b)))).await;
    assert_eq!(results.len(), 8);
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert!(notifier.is_connected());
    assert_eq!(depth(&amqp, &queue).await, 200, "all confirmed and queued");
    let ids: Vec<String> = drain(&amqp, &queue).await.into_iter().map(|m| m.1.expect("message id")).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (200, 200), "each once");
    assert_eq!(unique, all.iter().map(|n| n.id.to_string()).collect::<Vec<_>>().iter().collect::<HashSet<_>>());
}

/// A TCP proxy to RabbitMQ whose broker-to-client direction can be held (bytes kept back,
/// not lost): a broker that stops confirming, then answers again. Counts connections.
struct HeldProxy {
    url: String,
    hold: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

async fn held_proxy(amqp: &str) -> HeldProxy {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = amqp.split('@').nth(1).and_then(|r| r.split('/').next()).expect("host:port in the AMQP URL").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = amqp.replace(&broker, &listener.local_addr().unwrap().to_string());
    let (hold, connections) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let (h, c) = (hold.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let upstream = tokio::net::TcpStream::connect(&broker).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut ur, mut uw) = upstream.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut cr, &mut uw).await });
            let h = h.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match ur.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    while h.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    HeldProxy { url, hold, connections }
}

/// A broker that stops confirming: the batch fails after the confirm timeout, and since
/// the confirms are awaited outside the link's lock, that batch marks its link broken
/// rather than dropping it; the next batch connects anew instead of publishing on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_without_confirms_fails_and_the_next_one_reconnects() {
    use std::sync::atomic::Ordering;
    let Some(amqp) = amqp_url() else { return };
    let queue = format!("notifications-{}", uuid::Uuid::new_v4().simple());
    let proxy = held_proxy(&amqp).await;
    let h = happening_core::testkit::Harness::in_memory(0);
    let e = h.event(10, WaitlistPolicy::Fifo).await;
    for _ in 0..3 {
        h.book(e, UserId::new(), 1).await.unwrap();
    }
    let all = all_pending(&h.engine).await;
    let notifier = AmqpNotifier::lazy(&proxy.url, &queue).with_timeouts_ms(10_000, 1_000);
    bounded("first batch", notifier.deliver(&all[..1])).await.expect("confirmed");
    assert_eq!(proxy.connections.load(Ordering::SeqCst), 1);

    proxy.hold.store(true, Ordering::SeqCst);
    match bounded("second batch", notifier.deliver(&all[1..2])).await {
        Err(NotifierError::Backend(e)) => assert!(e.to_string().contains("no publisher confirm"), "{e}"),
        other => panic!("expected no confirm, got {other:?}"),
    }
    proxy.hold.store(false, Ordering::SeqCst);
    bounded("third batch", notifier.deliver(&all[2..])).await.expect("confirmed on a new connection");
    assert_eq!(proxy.connections.load(Ordering::SeqCst), 2, "the link without confirms was not used again");
    // At least once: the unconfirmed batch may or may not have reached the queue.
    let depth = depth(&amqp, &queue).await;
    assert!((2..=3).contains(&depth), "{depth} queued");
}

/// The queue deleted under the notifier: publishing is an error (mandatory), not a silent
/// loss; the notifier declares the topology again before its next batch, so the next relay
/// sends the notification to the new queue, and the worker delivers it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_queue_is_declared_again_and_the_notification_delivered() {
    let Some(env) = setup(0).await else { return };
    let h = &env.h;
    let e = h.event(10, WaitlistPolicy::Fifo).await;
    let notifier = AmqpNotifier::connect(&env.amqp, &env.queue).await.expect("connect");
    // Someone deletes the queue under the notifier.
    {
        let conn = connect(&env.amqp).await;
        let ch = conn.create_channel().await.unwrap();
        ch.queue_delete(env.queue.clone().into(), Default::default()).await.unwrap();
        let _ = conn.close(200, "done".into()).await;
    }
    assert!(!exists(&env.amqp, &env.queue).await, "the queue is gone");
    h.book(e, UserId::new(), 1).await.unwrap();
    let batch = all_pending(&h.engine).await;
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].kind, NotificationKind::BookingConfirmed);
    match notifier.deliver(&batch).await {
        Err(NotifierError::Rejected(why)) => assert!(why.contains("NO_ROUTE"), "{why}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(notifier.is_connected(), "a rejection keeps the connection");
    assert_eq!(all_pending(&h.engine).await.len(), 1, "the row stays pending");

    // The next relay declares the queue again first, and sends the notification there.
    assert_eq!(h.engine.relay(&notifier, 10).await.expect("relay after the rejection"), 1);
    assert!(exists(&env.amqp, &env.queue).await, "declared again");
    assert_eq!(depth(&env.amqp, &env.queue).await, 1, "the notification waits in the new queue");
    assert!(all_have_status(&h.engine, &batch, DeliveryStatus::Sent).await);

    let sink = Arc::new(RecordingSink::default());
    let w = spawn_worker(&env, worker_config(&env), sink.clone());
    wait_until("delivered", LIMIT, || all_have_status(&h.engine, &batch, DeliveryStatus::Delivered)).await;
    let stats = w.shutdown().await;
    assert_eq!(stats.handled, 1);
    assert_eq!(sink.ok_counts().get(&batch[0].id), Some(&1), "delivered once");
    assert_eq!(depth(&env.amqp, &env.queue).await, 0);
}

/// The in-memory engine (no PostgreSQL) with the background relay loop: notifications,
/// including ones written while the loop runs, reach the sink once and end `delivered` in
/// the in-memory store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_engine_with_the_relay_loop() {
    let Some(amqp) = amqp_url() else { return };
    let queue = format!("notifications-{}", uuid::Uuid::new_v4().simple());
    let h = happening_core::testkit::Harness::in_memory(0);
    let e = h.event(3, WaitlistPolicy::Fifo).await;
    let users: Vec<UserId> = (0..5).map(|_| UserId::new()).collect();
    let mut first = None;
    for u in &users {
        let b = h.book(e, *u, 1).await.unwrap();
        first.get_or_insert(b);
    }
    let first = first.unwrap();
    h.engine.cancel(first.id, first.user_id, None).await.unwrap();
    assert_eq!(all_pending(&h.engine).await.len(), 7, "5 bookings, a cancel, a promotion");

    let stop = happening_amqp::CancellationToken::new();
    let relay = tokio::spawn({
        let (engine, stop, amqp, queue) = (h.engine.clone(), stop.clone(), amqp.clone(), queue.clone());
        async move {
            let notifier = AmqpNotifier::lazy(&amqp, &queue);
            let config = happening_core::background::RelayConfig { batch: 4, idle: Duration::from_millis(10), ..Default::default() };
            happening_core::background::run_relay(&engine, &notifier, config, stop).await
        }
    });
    let sink = Arc::new(RecordingSink::default());
    let log = Arc::new(happening_amqp::StoreDeliveryLog::new(h.engine.store().clone()));
    let worker =
        Arc::new(happening_amqp::Worker::with_sink(&amqp, WorkerConfig { queue: queue.clone(), ..Default::default() }, log, sink.clone()));
    let worker_task = tokio::spawn({
        let (w, s) = (worker.clone(), stop.clone());
        async move { w.run(s).await }
    });

    let mut all: Vec<_> = Vec::new();
    for u in &users {
        all.extend(h.engine.notifications(*u, 100, 0).await.unwrap());
    }
    wait_until("delivered", LIMIT, || all_have_status(&h.engine, &all, DeliveryStatus::Delivered)).await;
    // Written while the loop runs: picked up too.
    let late = UserId::new();
    h.book(e, late, 1).await.unwrap();
    all.extend(h.engine.notifications(late, 100, 0).await.unwrap());
    assert_eq!(all.len(), 8);
    wait_until("the late one delivered", LIMIT, || all_have_status(&h.engine, &all, DeliveryStatus::Delivered)).await;

    stop.cancel();
    assert_eq!(relay.await.unwrap(), 8, "relayed each once");
    worker_task.await.unwrap();
    let counts = sink.ok_counts();
    assert_eq!(counts.len(), 8);
    assert!(counts.values().all(|&c| c == 1));
    assert_eq!(worker.stats().handled, 8);
}

/// The queue is a classic queue of version 2. One declared by an earlier build (the same
/// dead-letter arguments, no version) is refused loudly rather than used as it is.
#[tokio::test]
async fn the_queue_is_version_2_and_an_older_one_is_refused() {
    use happening_amqp::Topology;
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{FieldTable, LongString};
    let Some(url) = amqp_url() else { return };
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let declare = |queue: String, version: Option<i32>| {
        let url = url.clone();
        async move {
            let conn = connect(&url).await;
            let ch = conn.create_channel().await.expect("channel");
            let names = Topology::new(queue.clone());
            let mut args = FieldTable::default();
            args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(LongString::from(names.dead_letter_exchange())));
            args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(LongString::from(names.dead_letter_queue())));
            if let Some(v) = version {
                args.insert("x-queue-version".into(), AMQPValue::LongInt(v));
            }
            let out = bounded("declare", ch.queue_declare(queue.into(), durable, args)).await.map(|_| ()).map_err(|e| e.to_string());
            let _ = conn.close(200, "done".into()).await;
            out
        }
    };

    // Declared by the notifier: version 2 (declaring it as version 1 is inequivalent).
    let fresh = format!("notifications-{}", uuid::Uuid::new_v4().simple());
    let notifier = bounded("connect", AmqpNotifier::connect(&url, &fresh)).await.expect("connect");
    assert!(notifier.is_connected());
    declare(fresh.clone(), Some(happening_amqp::QUEUE_VERSION)).await.expect("the same arguments are equivalent");
    let err = declare(fresh.clone(), None).await.expect_err("a queue of version 2 is not the default version");
    assert!(err.contains("x-queue-version"), "{err}");

    // An older queue of the same name: the notifier does not connect, and says why.
    let older = format!("notifications-{}", uuid::Uuid::new_v4().simple());
    declare(older.clone(), None).await.expect("declared the old way");
    let err = bounded("connect", AmqpNotifier::connect(&url, &older)).await.err().expect("an older queue is refused");
    assert!(err.to_string().contains("x-queue-version"), "{err}");
}
