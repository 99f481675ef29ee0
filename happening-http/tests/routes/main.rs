//! Route tests: the warp filters over a real in-memory engine, driven with
//! `warp::test::request()` (no socket). The engine runs on a manual clock so that hold
//! expiry is tested by moving time, not by sleeping.

use std::sync::Arc;

use happening_http::auth::{mint, MintRequest};
use happening_http::ratelimit::RateLimiter;
use happening_http::route_table::routes;
use happening_http::Settings;
use serde_json::{json, Value};
use warp::http::StatusCode;

#[path = "../app/mod.rs"]
mod app;

mod access;
mod bookings;
mod document;
mod input;
mod live;
mod operation;

use app::*;

fn is_error(r: &Res) -> bool {
    r.body.get("error").and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}
