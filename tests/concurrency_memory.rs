//! Concurrency on the in-memory stores: 8,000 tasks on 4 OS threads, through 4 engines
//! sharing the stores, race for 300 seats.

use happening::core::testkit::Harness;

happening::core::race_tests!(|| async { Harness::in_memory(3) }, seats = 300, tasks = 8_000);
