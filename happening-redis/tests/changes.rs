//! `RedisChanges`: changes told across engines with Redis publish and subscribe, on one
//! Redis (PUBLISH/SUBSCRIBE) and on a Redis Cluster (sharded: SPUBLISH/SSUBSCRIBE). Two feeds
//! stand for two servers; killing the subscriber's connection (`CLIENT KILL`) must end in a
//! `Resync` once it is subscribed again, and changes heard after it.

mod common;

use std::time::Duration;

use happening_core::ids::EventId;
use happening_core::ports::{ChangeFeed, Heard};
use happening_redis::{redis, RedisChanges, RedisTarget};

const WAIT: Duration = Duration::from_secs(20);

async fn next(feed: &RedisChanges) -> Heard {
    tokio::time::timeout(WAIT, feed.next()).await.expect("nothing heard")
}

/// Kills every subscriber connection of every node of `target` (`CLIENT KILL TYPE pubsub`);
/// returns how many.
async fn kill_subscribers(target: &RedisTarget) -> usize {
    let nodes = match target {
        RedisTarget::Single(url) => vec![url.clone()],
        RedisTarget::Cluster(nodes) => nodes.clone(),
    };
    let mut killed = 0;
    for node in nodes {
        let mut c = redis::Client::open(node.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let n: usize = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut c).await.unwrap();
        killed += n;
    }
    killed
}

async fn heard_and_resynced(target: RedisTarget) {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let a = RedisChanges::connect(&target, &prefix).await.unwrap();
    let b = RedisChanges::connect(&target, &prefix).await.unwrap();
    let (watched, other) = (EventId::new(), EventId::new());
    b.watch(watched).await;
    // Of the events b watches only; never a's own.
    a.publish(&[other, watched]).await.unwrap();
    assert_eq!(next(&b).await, Heard::Changed(vec![watched]));
    b.publish(&[watched]).await.unwrap();
    a.publish(&[watched]).await.unwrap();
    assert_eq!(next(&b).await, Heard::Changed(vec![watched]));

    // b's connection killed: subscribed again, then Resync, then changes again. (The
    // publisher may lose its connection too: its first publish after may fail.)
    assert!(kill_subscribers(&target).await >= 1);
    assert_eq!(next(&b).await, Heard::Resync);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let _ = a.publish(&[watched]).await;
        match tokio::time::timeout(Duration::from_millis(200), b.next()).await {
            Ok(Heard::Changed(ids)) => {
                assert_eq!(ids, vec![watched]);
                break;
            }
            Ok(Heard::Resync) => {}
            Err(_) => assert!(tokio::time::Instant::now() < deadline, "nothing heard after the resync"),
        }
    }
    // Unwatched: no longer heard.
    b.unwatch(watched).await;
    let later = EventId::new();
    b.watch(later).await;
    a.publish(&[watched, later]).await.unwrap();
    assert_eq!(next(&b).await, Heard::Changed(vec![later]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_redis_tells_changes_and_resyncs_after_a_lost_subscription() {
    let Some(url) = common::redis_url() else { return };
    heard_and_resynced(RedisTarget::Single(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_tells_changes_by_shard_and_resyncs_after_a_lost_subscription() {
    let Some(cluster) = common::cluster() else { return };
    heard_and_resynced(cluster).await;
}
