//! Hostile input, part 3: property-based fuzzing of raw requests. Each case seeds a fresh
//! in-memory server (an organization, two events with bookings, a hold, a waiting booking,
//! an invite) and sends 1 to 4 generated requests: methods from a set (not only the
//! route's), paths from the real route templates with their ids replaced by real ids,
//! random UUIDs, numbers, huge numbers, unicode, empty or very long strings, random query
//! strings, lying `Content-Length`, odd `Content-Type`, odd `Idempotency-Key`, valid,
//! missing and garbage tokens, and bodies of arbitrary bytes, truncated JSON, JSON of the
//! right field names with wrong types, huge and negative numbers, deep nesting, very long
//! strings and duplicate keys.
//!
//! Properties, for every request: no panic, never a 5xx, every non-2xx answer is
//! `application/json` with a non-empty string `error` and changed nothing (events,
//! bookings, seats, waitlists, members, invite, users, notifications compared in the
//! store); and after each request the engine's invariants
//! (`happening_core::testkit::invariants::check`) hold for both seeded events.
//!
//! `FUZZ_CASES` overrides the number of cases (default 2,000, a few seconds at the test
//! profile's opt-level).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use happening_core::clock::ManualClock;
use happening_core::ids::{EventId, OrgId, UserId};
use happening_core::Engine;
use happening_http::auth::{mint, AuthConfig, MintRequest, Verifier};
use happening_http::route_table;
use happening_http::{routes, AppState, Settings};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

const SECRET: &str = "fuzz-test-secret";
/// Body limit of the fuzzed server: small, so that long strings cross it often.
const BODY_LIMIT: u64 = 16 * 1024;

fn token(sub: &str) -> String {
    mint(SECRET, &MintRequest { sub: sub.into(), email: Some(format!("{sub}@example.com")), ttl_secs: 3600, ..Default::default() })
}

/// A seeded server and the ids of what it holds.
struct Seeded {
    engine: Engine,
    api: BoxedFilter<(Response,)>,
    events: Vec<EventId>,
    /// Real ids and tokens to put in paths and bodies: org, event 1, event 2, booking,
    /// waiting booking, hold, admin's id, member's id, invite token, notification id.
    real: Vec<String>,
}

const REAL: usize = 10;

async fn call(api: &BoxedFilter<(Response,)>, method: &str, path: &str, tok: &str, body: Value) -> Value {
    let res = warp::test::request()
        .method(method)
        .path(path)
        .header("authorization", format!("Bearer {tok}"))
        .body(body.to_string())
        .reply(api)
        .await;
    assert!(res.status().is_success(), "seed {method} {path}: {} {:?}", res.status(), res.body());
    serde_json::from_slice(res.body()).unwrap_or(Value::Null)
}

async fn seed() -> Seeded {
    let engine = Engine::in_memory().with_clock(Arc::new(ManualClock::new(Utc::now())));
    let verifier = Verifier::new(&AuthConfig { secret: Some(SECRET.into()), ..Default::default() }).unwrap();
    let st = AppState::new(engine.clone(), verifier, None, Settings { body_limit: BODY_LIMIT, ..Settings::default() });
    let api = routes(st);
    let (admin, member) = (token("admin"), token("member"));
    let admin_id = call(&api, "POST", "/users", &admin, json!({})).await["id"].as_str().unwrap().to_string();
    let member_id = call(&api, "POST", "/users", &member, json!({})).await["id"].as_str().unwrap().to_string();
    call(&api, "POST", "/users", &token("outsider"), json!({})).await;
    let org = call(&api, "POST", "/organizations", &admin, json!({ "name": "Org" })).await["id"].as_str().unwrap().to_string();
    call(&api, "POST", &format!("/organizations/{org}/members"), &admin, json!({ "user_id": member_id, "role": "user" })).await;
    let mut events = Vec::new();
    for (slots, policy) in [(5, "fifo"), (3, "first_fit")] {
        let body =
            json!({ "org_id": org, "name": "Show", "event_date": "2030-06-01T19:00:00Z", "total_slots": slots, "waitlist_policy": policy });
        events.push(call(&api, "POST", "/events", &admin, body).await["id"].as_str().unwrap().to_string());
    }
    let (e1, e2) = (&events[0], &events[1]);
    let booking = call(&api, "POST", "/bookings", &member, json!({ "event_id": e1, "seats": 2 })).await;
    let hold = call(&api, "POST", &format!("/events/{e1}/holds"), &member, json!({ "seats": 1 })).await;
    let waiting = call(&api, "POST", "/bookings", &admin, json!({ "event_id": e1, "seats": 3 })).await;
    assert_eq!(waiting["status"], "waiting");
    call(&api, "POST", "/bookings", &admin, json!({ "event_id": e2, "seat_numbers": [2] })).await;
    let invite = call(&api, "POST", "/org-invites", &admin, json!({ "organization_id": org, "email": "new@example.com" })).await;
    let notes = warp::test::request().path("/notifications").header("authorization", format!("Bearer {member}")).reply(&api).await;
    let notes: Value = serde_json::from_slice(notes.body()).unwrap();
    let id = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
    let real = vec![
        org.clone(),
        e1.clone(),
        e2.clone(),
        id(&booking, "id"),
        id(&waiting, "id"),
        id(&hold, "id"),
        admin_id,
        member_id,
        id(&invite, "token"),
        id(&notes[0], "id"),
    ];
    assert_eq!(real.len(), REAL);
    Seeded { engine, api, events: events.iter().map(|e| e.parse().unwrap()).collect(), real }
}

/// What replaces a `{param}` of a route template.
#[derive(Debug, Clone)]
enum Id {
    /// A real id of the kind the path segment expects (an event id after `events/`, ...).
    Fit(usize),
    /// Any real id, maybe of another kind.
    Real(usize),
    Nil,
    Uuid(u128),
    Num(i64),
    Huge,
    Text(String),
    Empty,
    Dots,
    Long(usize),
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        14 => (0..2usize).prop_map(Id::Fit),
        3 => (0..REAL).prop_map(Id::Real),
        1 => Just(Id::Nil),
        1 => any::<u128>().prop_map(Id::Uuid),
        1 => any::<i64>().prop_map(Id::Num),
        1 => Just(Id::Huge),
        2 => "\\PC{0,16}".prop_map(Id::Text),
        1 => Just(Id::Empty),
        1 => Just(Id::Dots),
        1 => (100usize..3000).prop_map(Id::Long),
    ]
}

impl Id {
    /// `after`: the path segment before this one (`events`, `holds`, ...).
    fn resolve(&self, real: &[String], after: &str) -> String {
        match self {
            Id::Fit(i) => {
                let kinds: [usize; 2] = match after {
                    "events" => [1, 2],
                    "bookings" => [3, 4],
                    "holds" => [5, 5],
                    "organizations" => [0, 0],
                    "user" | "members" => [6, 7],
                    "org-invites" => [8, 8],
                    "notifications" => [9, 9],
                    _ => [1, 0],
                };
                real[kinds[*i % 2]].clone()
            }
            Id::Real(i) => real[*i].clone(),
            Id::Nil => uuid::Uuid::nil().to_string(),
            Id::Uuid(u) => uuid::Uuid::from_u128(*u).to_string(),
            Id::Num(n) => n.to_string(),
            Id::Huge => "9".repeat(60),
            Id::Text(s) => s.clone(),
            Id::Empty => String::new(),
            Id::Dots => "..".into(),
            Id::Long(n) => "a".repeat(*n),
        }
    }
}

/// Percent-encodes everything but unreserved characters, so any string makes a valid URI.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

const FIELDS: &[&str] = &[
    "event_id",
    "seats",
    "seat_numbers",
    "hold_id",
    "accept_partial",
    "strict_seats",
    "user_id",
    "org_id",
    "name",
    "description",
    "category",
    "event_date",
    "total_slots",
    "waitlist_policy",
    "ttl_seconds",
    "role",
    "email",
    "organization_id",
    "ttl_hours",
    "keycloak_id",
    "unknown_field",
];

/// A placeholder for a real id inside generated JSON, replaced when the case runs.
fn real_ref(i: usize) -> String {
    format!("@@real{i}@@")
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        3 => (-3i64..60).prop_map(Value::from),
        1 => any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        1 => Just(json!(1.5)),
        1 => Just(json!(1e308)),
        1 => "\\PC{0,24}".prop_map(Value::from),
        4 => (0..REAL).prop_map(|i| Value::String(real_ref(i))),
        2 => prop::collection::vec(-2i64..60, 0..8).prop_map(|v| json!(v)),
        1 => Just(json!([1, 1, 1])),
        1 => Just(json!([4294967296u64, 1])),
        1 => prop_oneof![
            Just("2030-05-01T19:00:00Z"),
            Just("2030-05-01T19:00"),
            Just("2030-05-01"),
            Just("0000-00-00"),
            Just("+275760-09-13T00:00:00Z"),
            Just("user"),
            Just("organizer"),
            Just("orgAdmin"),
            Just("superuser"),
            Just("fifo"),
            Just("first_fit"),
            Just("partial"),
            Just("a@b"),
            Just(""),
        ]
        .prop_map(Value::from),
        1 => (200usize..20_000).prop_map(|n| Value::String("x".repeat(n))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Bytes(Vec<u8>),
    /// An object written by hand, so that keys may repeat.
    Fields(Vec<(&'static str, Value)>),
    Json(Value),
    /// `Fields` cut short after this fraction (per mille) of its text.
    Truncated(Vec<(&'static str, Value)>, u16),
    /// Arrays or objects nested this deep.
    Deep(usize, bool),
    /// A valid body of the route (by its schema), with these fields set to generated
    /// values (wrong types, huge, negative...) and these removed.
    Valid(Vec<(&'static str, Value)>, Vec<&'static str>),
}

/// A valid body of each request schema, ids as placeholders.
fn valid_body(schema: Option<&str>) -> Value {
    let (org, e1, hold, member) = (real_ref(0), real_ref(1), real_ref(5), real_ref(7));
    match schema {
        Some("CreateBooking") => json!({ "event_id": e1, "seats": 1 }),
        Some("CancelSeats") => json!({ "seat_numbers": [1] }),
        Some("CreateEvent") => json!({ "org_id": org, "name": "New", "event_date": "2031-01-01T10:00:00Z", "total_slots": 4 }),
        Some("UpdateEvent") => json!({ "name": "Renamed", "total_slots": 6 }),
        Some("CreateHold") => json!({ "seats": 1, "ttl_seconds": 60 }),
        Some("UpsertUser") => json!({ "name": "Someone" }),
        Some("CreateOrganization") => json!({ "name": "Another" }),
        Some("AddMember") => json!({ "user_id": member, "role": "organizer" }),
        Some("SetRole") => json!({ "role": "organizer" }),
        Some("CreateInvite") => json!({ "organization_id": org, "email": "x@example.com", "ttl_hours": 1 }),
        _ => json!({ "hold_id": hold }),
    }
}

fn body() -> impl Strategy<Value = Body> {
    let fields = || prop::collection::vec((prop::sample::select(FIELDS), value()), 0..7);
    prop_oneof![
        2 => Just(Body::None),
        2 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Body::Bytes),
        8 => fields().prop_map(Body::Fields),
        2 => value().prop_map(Body::Json),
        2 => (fields(), 0u16..1000).prop_map(|(f, cut)| Body::Truncated(f, cut)),
        1 => (1usize..3000, any::<bool>()).prop_map(|(d, a)| Body::Deep(d, a)),
        8 => (
            prop::collection::vec((prop::sample::select(FIELDS), value()), 0..3),
            prop::collection::vec(prop::sample::select(FIELDS), 0..2),
        )
            .prop_map(|(set, remove)| Body::Valid(set, remove)),
    ]
}

fn object_text(fields: &[(&str, Value)]) -> String {
    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{}", json!(k), v)).collect();
    format!("{{{}}}", parts.join(","))
}

impl Body {
    fn bytes(&self, real: &[String], schema: Option<&str>) -> Option<Vec<u8>> {
        let fill = |mut s: String| {
            for (i, r) in real.iter().enumerate() {
                s = s.replace(&real_ref(i), r);
            }
            s.into_bytes()
        };
        match self {
            Body::None => None,
            Body::Bytes(b) => Some(b.clone()),
            Body::Fields(f) => Some(fill(object_text(f))),
            Body::Json(v) => Some(fill(v.to_string())),
            Body::Truncated(f, cut) => {
                let t = fill(object_text(f));
                let n = t.len() * usize::from(*cut) / 1000;
                Some(t[..n].to_vec())
            }
            Body::Valid(set, remove) => {
                let mut v = valid_body(schema);
                let o = v.as_object_mut().unwrap();
                for (k, x) in set {
                    o.insert(k.to_string(), x.clone());
                }
                for k in remove {
                    o.remove(*k);
                }
                Some(fill(v.to_string()))
            }
            Body::Deep(d, arrays) => Some(if *arrays {
                format!("{}{}", "[".repeat(*d), "]".repeat(*d)).into_bytes()
            } else {
                format!("{}1{}", r#"{"seats":"#.repeat(*d), "}".repeat(*d)).into_bytes()
            }),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Auth {
    Admin,
    Member,
    Outsider,
    Missing,
    Garbage,
}

#[derive(Debug, Clone)]
enum Length {
    Honest,
    Value(u64),
    Text(&'static str),
}

#[derive(Debug, Clone)]
struct Req {
    /// Index into the route list.
    route: usize,
    /// `None`: the route's own method.
    method: Option<&'static str>,
    ids: Vec<Id>,
    trailing: Option<&'static str>,
    query: Vec<(&'static str, Id)>,
    auth: Auth,
    content_type: Option<&'static str>,
    length: Length,
    idempotency: Option<Vec<u8>>,
    body: Body,
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

fn req() -> impl Strategy<Value = Req> {
    let head = (
        0..route_table::routes().len(),
        prop_oneof![3 => Just(None), 1 => prop::sample::select(METHODS).prop_map(Some)],
        prop::collection::vec(id(), 2),
        prop_oneof![8 => Just(None), 1 => Just(Some("/")), 1 => Just(Some("/x")), 1 => Just(Some("/%00"))],
        prop::collection::vec((prop::sample::select(&["limit", "offset", "org_id", "keycloak_id", "x", ""][..]), id()), 0..3),
    );
    let tail = (
        prop_oneof![4 => Just(Auth::Admin), 3 => Just(Auth::Member), 1 => Just(Auth::Outsider), 1 => Just(Auth::Missing), 1 => Just(Auth::Garbage)],
        prop::option::of(prop::sample::select(
            &["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "\u{1}"][..],
        )),
        prop_oneof![
            6 => Just(Length::Honest),
            1 => prop_oneof![Just(0u64), 1u64..100, Just(BODY_LIMIT + 1), Just(u64::MAX)].prop_map(Length::Value),
            1 => prop::sample::select(&["-1", "abc", "99999999999999999999999", "1, 2", ""][..]).prop_map(Length::Text),
        ],
        prop::option::of(prop_oneof![
            "[ -~]{0,40}".prop_map(String::into_bytes),
            Just(vec![b'k'; 300]),
            prop::collection::vec(any::<u8>(), 0..20),
        ]),
        body(),
    );
    (head, tail).prop_map(|((route, method, ids, trailing, query), (auth, content_type, length, idempotency, body))| Req {
        route,
        method,
        ids,
        trailing,
        query,
        auth,
        content_type: content_type.filter(|c| c.bytes().all(|b| b >= 32)),
        length,
        idempotency,
        body,
    })
}

impl Req {
    fn method(&self) -> &'static str {
        self.method.unwrap_or(route_table::routes()[self.route].method)
    }

    fn path(&self, real: &[String]) -> String {
        let template = route_table::routes()[self.route].path.as_str();
        let is_stream = template.ends_with("/stream") && self.method() == "GET";
        let mut ids = self.ids.iter();
        let mut prev = "";
        let mut path: String = template
            .split('/')
            .map(|seg| {
                let out = if seg.starts_with('{') {
                    let id = ids.next().unwrap();
                    // A stream of a real event would never end: aim it at ids that do not exist.
                    let id = if is_stream && matches!(id, Id::Real(_) | Id::Fit(_)) { &Id::Nil } else { id };
                    enc(&id.resolve(real, prev))
                } else {
                    seg.to_string()
                };
                prev = seg;
                out
            })
            .collect::<Vec<_>>()
            .join("/");
        if let Some(t) = self.trailing {
            if !is_stream {
                path.push_str(t);
            }
        }
        if !self.query.is_empty() {
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{k}={}", enc(&v.resolve(real, if *k == "org_id" { "organizations" } else { k }))))
                .collect();
            path = format!("{path}?{}", q.join("&"));
        }
        path
    }
}

/// Everything the seeded server holds that a request could change: both events (row,
/// bookings, seat map, waitlist), the organization's members, the invite, the users'
/// organizations and notifications, the user list by subject.
async fn state(s: &Seeded) -> String {
    let store = s.engine.store();
    let mut out = String::new();
    for ev in &s.events {
        out += &format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n",
            store.event_view(*ev).await,
            store.event_bookings(*ev).await,
            store.seat_map(*ev).await,
            s.engine.waitlist(*ev, 0, 0).await,
        );
    }
    let org: OrgId = s.real[0].parse().unwrap();
    out += &format!("{:?}\n{:?}\n", store.members(org).await, store.invite(&s.real[8]).await);
    for user in [&s.real[6], &s.real[7]] {
        let u: UserId = user.parse().unwrap();
        out += &format!("{:?}\n{:?}\n{:?}\n", store.user(u).await, store.user_orgs(u).await, store.notifications(u, 500, 0).await);
    }
    for sub in ["admin", "member", "outsider"] {
        out += &format!("{:?}\n", store.user_by_subject(sub).await);
    }
    out
}

/// Sends one request and checks what it answered.
async fn send(s: &Seeded, r: &Req) -> Result<(), TestCaseError> {
    let before = state(s).await;
    let method = r.method();
    let path = r.path(&s.real);
    let mut b = warp::test::request().method(method).path(&path);
    match r.auth {
        Auth::Admin => b = b.header("authorization", format!("Bearer {}", token("admin"))),
        Auth::Member => b = b.header("authorization", format!("Bearer {}", token("member"))),
        Auth::Outsider => b = b.header("authorization", format!("Bearer {}", token("outsider"))),
        Auth::Missing => {}
        Auth::Garbage => b = b.header("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"),
    }
    if let Some(ct) = r.content_type {
        b = b.header("content-type", ct);
    }
    if let Some(k) = r.idempotency.as_ref().and_then(|k| HeaderValue::from_bytes(k).ok()) {
        b = b.header("idempotency-key", k);
    }
    if let Some(body) = r.body.bytes(&s.real, route_table::routes()[r.route].body.as_deref()) {
        b = b.body(body);
    }
    match &r.length {
        Length::Honest => {}
        Length::Value(n) => b = b.header("content-length", n.to_string()),
        Length::Text(t) => b = b.header("content-length", *t),
    }
    let what = format!("{method} {}", if path.len() > 200 { &path[..200] } else { &path });
    let res = tokio::time::timeout(Duration::from_secs(10), b.reply(&s.api))
        .await
        .map_err(|_| TestCaseError::fail(format!("{what}: no answer in 10 s")))?;
    let status = res.status();
    prop_assert!(!status.is_server_error(), "{}: {} {}", what, status, String::from_utf8_lossy(res.body()));
    if !status.is_success() {
        let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        prop_assert!(ct.starts_with("application/json"), "{}: {} with content-type {:?}", what, status, ct);
        let v: Value = serde_json::from_slice(res.body())
            .map_err(|e| TestCaseError::fail(format!("{what}: {status} body is not JSON ({e}): {:?}", res.body())))?;
        prop_assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{}: {} without an error string: {}", what, status, v);
    }
    if !status.is_success() {
        // A refused request changes nothing.
        let after = state(s).await;
        prop_assert!(after == before, "{}: {} changed the state:\nbefore {}\nafter {}", what, status, before, after);
    }
    if status == StatusCode::UNAUTHORIZED {
        prop_assert!(matches!(r.auth, Auth::Missing | Auth::Garbage), "{}: 401 with a valid token", what);
    }
    for ev in &s.events {
        if s.engine.store().event(*ev).await.is_ok() {
            happening_core::testkit::invariants::check(&s.engine, *ev)
                .await
                .map_err(|e| TestCaseError::fail(format!("after {what}: invariant broken: {e}")))?;
        }
    }
    Ok(())
}

#[test]
fn hostile_requests_never_break_the_server() {
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&prop::collection::vec(req(), 1..5), |reqs| {
        rt.block_on(async {
            let s = seed().await;
            for r in &reqs {
                send(&s, r).await?;
            }
            Ok::<(), TestCaseError>(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn the_generators_reach_the_handlers() {
    // The fuzzing is only worth something if its requests get past routing and
    // authentication often: count the statuses of a sample.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    let counts = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&req(), |r| {
            rt.block_on(async {
                let s = seed().await;
                let path = r.path(&s.real);
                let mut b = warp::test::request().method(r.method()).path(&path);
                if !matches!(r.auth, Auth::Missing | Auth::Garbage) {
                    b = b.header("authorization", format!("Bearer {}", token("admin")));
                }
                if let Some(body) = r.body.bytes(&s.real, route_table::routes()[r.route].body.as_deref()) {
                    b = b.body(body);
                }
                let res = b.reply(&s.api).await;
                *counts.borrow_mut().entry(res.status().as_u16()).or_default() += 1;
            });
            Ok(())
        })
        .unwrap();
    let counts = counts.into_inner();
    eprintln!("statuses of 300 generated requests: {counts:?}");
    let n = |lo: u16, hi: u16| counts.range(lo..hi).map(|(_, c)| *c).sum::<u32>();
    assert!(n(200, 300) >= 15, "too few successes: {counts:?}");
    assert!(n(400, 401) >= 15, "too few 400s (bodies never reach validation): {counts:?}");
    assert!(n(404, 405) >= 15, "{counts:?}");
    assert!(counts.len() >= 6, "too few distinct statuses: {counts:?}");
}
