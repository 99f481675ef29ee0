//! Model-based property tests against PostgreSQL: the same reference model as in memory.
//! All cases share one database (each case has its own organization, event and users, and
//! cases run one after another).

mod common;

happening_core::model_tests!(|| common::harness(0, 4), ops_max = 40, cases = 1_000, cases_env = "HAPPENING_PG_MODEL_CASES");
