//! The conformance suite against PostgreSQL (store and derived admission), one fresh
//! database per test, with a replica engine on its own pool.

mod common;

happening_core::conformance_tests!(|| common::harness(1, 8));
