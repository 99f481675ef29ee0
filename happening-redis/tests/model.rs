//! Model-based property tests on PostgreSQL + Redis: the same reference model as in memory.
//! All cases share one database and one key prefix (each case has its own organization,
//! event and users, and cases run one after another).

mod common;

happening_core::model_tests!(|| common::harness(0, 4), ops_max = 40, cases = 300, cases_env = "HAPPENING_REDIS_MODEL_CASES");
