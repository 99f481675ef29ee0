//! Model-based property tests against PostgreSQL: the same reference model as in memory.
//! All cases share one database (each case has its own organization, event and users, and
//! cases run one after another).

mod common;

use happening_core::testkit::model;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[test]
fn engine_on_postgres_agrees_with_model() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let Some(harness) = rt.block_on(common::harness(0, 4)) else {
        return;
    };
    let cases: u32 = std::env::var("HAPPENING_PG_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let mut runner = TestRunner::new(Config { cases, max_shrink_iters: 2_000, ..Config::default() });
    let result = runner.run(&model::cases(40), |case| rt.block_on(model::run(&harness, &case)).map_err(TestCaseError::fail));
    if let Err(e) = result {
        panic!("{e}");
    }
}
