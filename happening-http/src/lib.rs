//! # happening-http
//!
//! Happening's HTTP API on warp, and the `happening` server binary. The routes are warp
//! filters ([`filters::routes`]) over an [`AppState`] holding the engine,
//! so tests drive them with `warp::test::request()` without a socket.
//!
//! Layout (the warp examples' style): [`filters`] (paths, methods, auth, bodies),
//! [`handlers`] (authorization and engine calls), [`models`] (the JSON), [`error`] (the one
//! mapping of every failure to a status and `{ "error": "..." }`).

pub mod auth;
pub mod authcache;
pub mod console;
pub mod error;
pub mod filters;
pub mod handlers;
pub mod idempotency;
pub mod live;
pub mod metrics;
pub mod models;
pub mod oidc;
pub mod openapi;
pub mod ratelimit;
pub mod readiness;
pub mod server;
pub mod state;

pub use filters::routes;
pub use state::{AppState, Settings, State};
