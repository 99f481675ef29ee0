//! A real Redis Cluster (six nodes: three primaries, three replicas, started by
//! scripts/services) as the admission, PostgreSQL as the store: the conformance suite, the
//! reference model, several engines racing, and the waiting numbers of a burst. Every key
//! of an event carries its hash tag, so each script runs on the one primary that owns the
//! event's slot; events spread over the primaries.

mod common;

mod conformance {
    happening_core::conformance_tests!(|| crate::common::cluster_harness(1, 8));
}

mod race {
    happening_core::race_tests!(|| crate::common::cluster_harness(3, 16), seats = 150, tasks = 2_000);
}

happening_core::model_tests!(|| common::cluster_harness(0, 4), ops_max = 40, cases = 150, cases_env = "HAPPENING_REDIS_MODEL_CASES");

use happening_core::domain::WaitlistPolicy;

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
