//! # happening-http
//!
//! Happening's HTTP API on warp, and the `happening` server binary. The routes are warp
//! filters ([`routes`]) over an [`AppState`] holding the engine,
//! so tests drive them with `warp::test::request()` without a socket.
//!
//! Layout (the warp examples' style): `filters` (paths, methods, auth, bodies),
//! `handlers` (authorization and engine calls), `models` (the JSON), `error` (the one
//! mapping of every failure to a status and `{ "error": "..." }`).
//!
//! The public surface is what the `happening` binary and the tests outside the crate
//! build a server from: [`routes`] over an [`AppState`] with its [`Settings`], run by
//! [`server`]; the [`auth`] configuration and token minting; the [`ratelimit`]er and the
//! [`readiness`] checks it is given; the [`oidc`] issuer and the [`console`]'s links it
//! prints on start; and the [`route_table`] the route, tenancy and fuzz tests walk, read
//! from the OpenAPI document (derived with utoipa in `openapi/`, the one declaration of the
//! routes). The rest is private to the crate.

#![warn(missing_docs)]

pub mod auth;
pub mod console;
mod error;
mod filters;
mod handlers;
mod idempotency;
mod live;
mod metrics;
mod models;
pub mod oidc;
mod openapi;
pub mod ratelimit;
pub mod readiness;
pub mod route_table;
pub mod server;
mod state;

pub use filters::routes;
pub use state::{AppState, Settings, State, AUTH_CACHE_MS_DEFAULT};
