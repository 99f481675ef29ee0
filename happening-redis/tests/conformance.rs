//! The conformance suite on PostgreSQL (store) + Redis (admission): one fresh database and
//! one key prefix per test, with a replica engine on its own pool and Redis connection.

mod common;

happening_core::conformance_tests!(|| common::harness(1, 8));
