//! # happening
//!
//! One dependency for the whole of Happening: the engine ([`core`]) always, the adapters
//! behind features (`postgres`, `redis`, `amqp`, `http`; `full` for all).

#![warn(missing_docs)]

pub use happening_core as core;

#[cfg(feature = "postgres")]
pub use happening_postgres as postgres;

#[cfg(feature = "redis")]
pub use happening_redis as redis;

#[cfg(feature = "amqp")]
pub use happening_amqp as amqp;

#[cfg(feature = "http")]
pub use happening_http as http;

/// The README's Rust examples, compiled and run as doc tests (`cargo test --doc -p happening`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
