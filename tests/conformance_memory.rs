//! The conformance suite on the in-memory stores (with one replica engine sharing them).

use happening::core::testkit::Harness;

happening::core::conformance_tests!(|| async { Harness::in_memory(1) });
