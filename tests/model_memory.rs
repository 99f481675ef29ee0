//! Model-based property tests on the in-memory stores: random sequences of operations on
//! the engine and on the reference model must agree at every step.

use happening::core::testkit::Harness;

// Raise the cases with PROPTEST_CASES for a longer soak.
happening::core::model_tests!(|| async { Harness::in_memory(0) }, ops_max = 60, cases = 5_000, cases_env = "PROPTEST_CASES");
