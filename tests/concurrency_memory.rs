//! Concurrency on the in-memory stores: 8,000 tasks on 4 OS threads, through 4 engines
//! sharing the stores, race for 300 seats.

use happening::core::domain::WaitlistPolicy;
use happening::core::testkit::{concurrency, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_tasks_keep_every_invariant_and_fifo() {
    let h = Harness::in_memory(3);
    let report = concurrency::race(&h, 300, 8_000, WaitlistPolicy::Fifo).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.waiting > 0 && report.confirmed > 0, "the race must fill the event and queue: {report:?}");
    assert!(report.promoted_in_drain > 0, "the drain must promote: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_over_four_engines_tells_exact_waiting_numbers() {
    let h = Harness::in_memory(3);
    let waiting = concurrency::race_numbers(&h, 300, 8_000).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(waiting > 1_000, "the burst must queue: {waiting}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_tasks_under_first_fit_and_partial() {
    for policy in [WaitlistPolicy::FirstFit, WaitlistPolicy::Partial] {
        let h = Harness::in_memory(3);
        let report = concurrency::race(&h, 200, 4_000, policy).await.unwrap_or_else(|e| panic!("{policy:?}: {e}"));
        assert!(report.confirmed > 0, "{policy:?}: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_tasks_for_a_capped_waitlist() {
    let h = Harness::in_memory(3);
    let report = concurrency::race_capped(&h, 100, 200, 40, 50).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.turned_away > 0, "the race must fill the queue: {report:?}");
}
