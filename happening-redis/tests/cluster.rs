//! A real Redis Cluster (six nodes: three primaries, three replicas, started by
//! scripts/services) as the admission, PostgreSQL as the store: the conformance suite, the
//! reference model, several engines racing, and the waiting numbers of a burst. Every key
//! of an event carries its hash tag, so each script runs on the one primary that owns the
//! event's slot; events spread over the primaries.

mod common;

mod conformance {
    happening_core::conformance_tests!(|| crate::common::cluster_harness(1, 8));
}

use happening_core::domain::WaitlistPolicy;
use happening_core::testkit::{concurrency, model};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[test]
fn engine_on_a_cluster_agrees_with_model() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let Some(harness) = rt.block_on(common::cluster_harness(0, 4)) else {
        return;
    };
    let cases: u32 = std::env::var("HAPPENING_REDIS_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let mut runner = TestRunner::new(Config { cases, max_shrink_iters: 2_000, ..Config::default() });
    let result = runner.run(&model::cases(40), |case| rt.block_on(model::run(&harness, &case)).map_err(TestCaseError::fail));
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_engines_race_on_a_cluster() {
    let Some(h) = common::cluster_harness(3, 16).await else {
        return;
    };
    let report = concurrency::race(&h, 150, 2_000, WaitlistPolicy::Fifo).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.confirmed > 0 && report.waiting > 0 && report.promoted_in_drain > 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_engines_tell_exact_waiting_numbers_on_a_cluster() {
    let Some(h) = common::cluster_harness(3, 16).await else {
        return;
    };
    let waiting = concurrency::race_numbers(&h, 150, 2_000).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(waiting > 1_000, "the burst must queue: {waiting}");
}

/// Events land on every primary: their slots spread, and each event's keys stay in its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_spread_over_the_primaries() {
    use happening_redis::redis;
    let Some((h, b)) = common::setup_on(
        match common::cluster() {
            Some(c) => c,
            None => return,
        },
        0,
        2,
    )
    .await
    else {
        return;
    };
    let mut conn = b.redis();
    let mut owners = std::collections::BTreeSet::new();
    for _ in 0..24 {
        let e = h.event(3, WaitlistPolicy::Fifo).await;
        h.book(e, happening_core::ids::UserId::new(), 1).await.unwrap();
        assert_eq!(h.engine.admission().free(e).await.unwrap(), 2);
        let keys = b.admissions[0].keys(e);
        let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(&keys.slots).query_async(&mut conn).await.unwrap();
        for k in keys.all() {
            let s: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(k).query_async(&mut conn).await.unwrap();
            assert_eq!(s, slot, "{k}");
        }
        owners.insert(slot * 3 / 16384);
    }
    assert_eq!(owners.len(), 3, "24 events over three thirds of the slot space");
}
