//! Concurrency on PostgreSQL + Redis: four engines, each with its own pool and its own Redis
//! connection (as four servers), race thousands of tasks for one event's seats.

mod common;

use happening_core::domain::WaitlistPolicy;
use happening_core::testkit::concurrency;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_engines_race_on_redis_and_postgres() {
    let Some(h) = common::harness(3, 16).await else {
        return;
    };
    let report = concurrency::race(&h, 150, 2_000, WaitlistPolicy::Fifo).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.confirmed > 0 && report.waiting > 0, "{report:?}");
    assert!(report.promoted_in_drain > 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_engines_race_under_first_fit_and_partial() {
    for policy in [WaitlistPolicy::FirstFit, WaitlistPolicy::Partial] {
        let Some(h) = common::harness(3, 16).await else {
            return;
        };
        let report = concurrency::race(&h, 100, 1_000, policy).await.unwrap_or_else(|e| panic!("{policy:?}: {e}"));
        assert!(report.confirmed > 0, "{policy:?}: {report:?}");
    }
}
