//! Model-based property tests on the in-memory stores: random sequences of operations on
//! the engine and on the reference model must agree at every step.

use happening::core::testkit::{model, Harness};
use proptest::prelude::*;

/// Cases per run; raise with PROPTEST_CASES for a longer soak.
const CASES: u32 = 5_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, max_shrink_iters: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_model(case in model::cases(60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let harness = Harness::in_memory(0);
        if let Err(why) = rt.block_on(model::run(&harness, &case)) {
            return Err(TestCaseError::fail(why));
        }
    }
}
