//! The `mixed` scenario, for chaos runs: replicas may be killed, Redis, RabbitMQ or
//! PostgreSQL connections may go away while it runs.
//!
//! Each client walks the `--url` replicas round-robin, one keep-alive connection per replica
//! (reopened after an error), and picks an operation at random: book (mostly, sometimes
//! named seats), cancel one of its bookings, hold seats, release or convert one of its holds.
//! Nothing is retried: every request's outcome is counted (`201`, `409`, `503`, `connection
//! error`, `timeout` ...) and the client moves on.
//!
//! At the end (with retries, the replicas may still be restarting) it reads every event's
//! seat map and row and checks what holds whatever the faults were:
//! - seats distinct and within `1..=total`, `taken + held <= total`, `booked_slots` of the
//!   event row equal to the seats taken;
//! - every booking the load generator saw confirmed, and never tried to cancel, still holds
//!   its seats (they are in `taken`), and no seat belongs to two of them.
//!
//! A request whose outcome is unknown (connection error, timeout, 5xx) is not trusted either
//! way: a booking it may have created is not tracked, a booking it tried to cancel is dropped
//! from the checks. Exit status 1 only on a breach of these checks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Body, Method, Request, StatusCode};
use serde_json::{json, Value};

use super::{call, connect, expect, futures_ready, host_of, mint, Conn, MintRequest, Opts};

/// The kinds of request, in the order they are printed.
const OPS: [&str; 5] = ["book", "cancel", "hold", "release", "convert"];

/// An outcome: an HTTP status, or no answer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum Outcome {
    Status(u16),
    ConnectionError,
    Timeout,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Status(s) => write!(f, "{s}"),
            Outcome::ConnectionError => f.write_str("connection error"),
            Outcome::Timeout => f.write_str("timeout"),
        }
    }
}

impl Outcome {
    fn ok(self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(&s))
    }
}

/// xorshift64*: enough randomness for picking operations, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What one client knows at the end.
#[derive(Default)]
struct ClientReport {
    counts: BTreeMap<(&'static str, Outcome), u64>,
    /// Bookings seen confirmed (201 or promoted is not seen), never sent to cancel:
    /// (event index, booking id, seats).
    live: Vec<(usize, String, Vec<u64>)>,
}

struct Client {
    token: String,
    hosts: Arc<Vec<String>>,
    events: Arc<Vec<String>>,
    capacity: u32,
    max_seats: u32,
    timeout: Duration,
    conns: Vec<Option<Conn>>,
    next_replica: usize,
    rng: Rng,
    /// Own bookings not cancelled (as far as known): id -> (event index, confirmed seats or
    /// none while waiting).
    bookings: HashMap<String, (usize, Option<Vec<u64>>)>,
    /// Own holds: (event index, hold id).
    holds: Vec<(usize, String)>,
    report: ClientReport,
    sent: Arc<AtomicU64>,
    succeeded: Arc<AtomicU64>,
}

impl Client {
    /// Sends one request to the next replica; never retries.
    async fn send(&mut self, method: Method, path: &str, body: Option<Value>) -> (Outcome, Value) {
        let r = self.next_replica % self.hosts.len();
        self.next_replica = self.next_replica.wrapping_add(1);
        let host = self.hosts[r].clone();
        self.sent.fetch_add(1, Ordering::Relaxed);
        let fut = async {
            if self.conns[r].is_none() {
                self.conns[r] = Some(connect(&host).await.map_err(|_| Outcome::ConnectionError)?);
            }
            let conn = self.conns[r].as_mut().expect("connection");
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("host", host.as_str())
                .header("authorization", format!("Bearer {}", self.token))
                .header("content-type", "application/json")
                .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
                .expect("request");
            futures_ready(conn).await.map_err(|_| Outcome::ConnectionError)?;
            let res = conn.send_request(req).await.map_err(|_| Outcome::ConnectionError)?;
            let status = res.status();
            let bytes = hyper::body::to_bytes(res.into_body()).await.map_err(|_| Outcome::ConnectionError)?;
            Ok::<_, Outcome>((Outcome::Status(status.as_u16()), serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
        };
        let res = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Outcome::Timeout),
        };
        match res {
            Ok((o, v)) => {
                if o.ok() {
                    self.succeeded.fetch_add(1, Ordering::Relaxed);
                }
                (o, v)
            }
            Err(o) => {
                // The connection is not to be trusted any more; a refused connection is
                // followed by a short pause so that a dead replica does not spin the client.
                self.conns[r] = None;
                if o == Outcome::ConnectionError {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (o, Value::Null)
            }
        }
    }

    fn count(&mut self, op: &'static str, o: Outcome) {
        *self.report.counts.entry((op, o)).or_default() += 1;
    }

    async fn step(&mut self) {
        let roll = self.rng.below(100);
        // Keep the state bounded: many bookings make cancels likelier.
        let want_cancel = !self.bookings.is_empty() && (roll < 20 || self.bookings.len() > 6);
        if want_cancel {
            self.cancel().await
        } else if roll < 35 {
            self.hold().await
        } else if roll < 50 && !self.holds.is_empty() {
            self.finish_hold().await
        } else {
            self.book().await
        }
    }

    fn seats_of(v: &Value) -> Vec<u64> {
        v["seat_numbers"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default()
    }

    fn track_booking(&mut self, e: usize, v: &Value) {
        let Some(id) = v["id"].as_str() else { return };
        let seats = (v["status"] == "confirmed").then(|| Self::seats_of(v));
        self.bookings.insert(id.to_string(), (e, seats));
    }

    async fn book(&mut self) {
        let e = self.rng.below(self.events.len() as u64) as usize;
        let body = if self.rng.below(4) == 0 {
            let n = 1 + self.rng.below(self.max_seats as u64);
            let seats: Vec<u64> = (0..n).map(|_| 1 + self.rng.below(self.capacity as u64)).collect::<HashSet<_>>().into_iter().collect();
            json!({ "event_id": self.events[e], "seat_numbers": seats })
        } else {
            json!({ "event_id": self.events[e], "seats": 1 + self.rng.below(self.max_seats as u64) })
        };
        let (o, v) = self.send(Method::POST, "/bookings", Some(body)).await;
        self.count("book", o);
        if o == Outcome::Status(201) {
            self.track_booking(e, &v);
        }
    }

    async fn cancel(&mut self) {
        let i = self.rng.below(self.bookings.len() as u64) as usize;
        let id = self.bookings.keys().nth(i).expect("booking").clone();
        // Whatever the answer, this booking leaves the checks: cancelled, or unknown.
        self.bookings.remove(&id);
        let (o, _) = self.send(Method::POST, &format!("/bookings/{id}/cancel"), None).await;
        self.count("cancel", o);
    }

    async fn hold(&mut self) {
        let e = self.rng.below(self.events.len() as u64) as usize;
        let body = json!({ "seats": 1 + self.rng.below(self.max_seats as u64), "ttl_seconds": 10 + self.rng.below(20) });
        let (o, v) = self.send(Method::POST, &format!("/events/{}/holds", self.events[e]), Some(body)).await;
        self.count("hold", o);
        if o == Outcome::Status(201) {
            if let Some(id) = v["id"].as_str() {
                self.holds.push((e, id.to_string()));
            }
        }
    }

    async fn finish_hold(&mut self) {
        let i = self.rng.below(self.holds.len() as u64) as usize;
        let (e, id) = self.holds.swap_remove(i);
        if self.rng.below(2) == 0 {
            let (o, _) = self.send(Method::DELETE, &format!("/events/{}/holds/{id}", self.events[e]), None).await;
            self.count("release", o);
        } else {
            let body = json!({ "event_id": self.events[e], "hold_id": id });
            let (o, v) = self.send(Method::POST, "/bookings", Some(body)).await;
            self.count("convert", o);
            if o == Outcome::Status(201) {
                self.track_booking(e, &v);
            }
        }
    }

    fn finish(mut self) -> ClientReport {
        for (id, (e, seats)) in self.bookings.drain() {
            if let Some(seats) = seats {
                self.report.live.push((e, id, seats));
            }
        }
        self.report
    }
}

/// A GET that must eventually answer 200: tries every replica in turn for up to `patience`.
async fn get_retrying(hosts: &[String], path: &str, token: &str, patience: Duration) -> Result<Value, String> {
    let deadline = Instant::now() + patience;
    let mut last = String::new();
    for i in 0.. {
        let host = &hosts[i % hosts.len()];
        match connect(host).await {
            Ok(mut c) => match tokio::time::timeout(Duration::from_secs(5), call(&mut c, host, Method::GET, path, token, None)).await {
                Ok(Ok((StatusCode::OK, v))) => return Ok(v),
                Ok(Ok((s, v))) => last = format!("{s} {v}"),
                Ok(Err(e)) => last = e,
                Err(_) => last = "timeout".into(),
            },
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("GET {path}: no replica answered 200 within {patience:?} (last: {last})"))
}

/// The checks of one event's seat map and row, and of the confirmed bookings followed to the
/// end (event index, id, seats): the problems found, and how many seats are taken.
fn check_event(map: &Value, ev: &Value, live: &[&(usize, String, Vec<u64>)]) -> Result<(Vec<String>, u64), String> {
    let taken: Vec<u64> = map["taken"].as_array().ok_or("seat map without taken")?.iter().filter_map(Value::as_u64).collect();
    let held = map["held"].as_array().map(Vec::len).unwrap_or(0) as u64;
    let total = map["total"].as_u64().unwrap_or(0);
    let mut problems = Vec::new();
    if !taken.windows(2).all(|w| w[0] < w[1]) {
        problems.push("a seat taken twice in the seat map".to_string());
    }
    if !taken.iter().all(|&s| s >= 1 && s <= total) {
        problems.push("a seat beyond capacity".to_string());
    }
    if taken.len() as u64 + held > total {
        problems.push(format!("taken {} + held {held} > total {total}", taken.len()));
    }
    if ev["booked_slots"].as_u64() != Some(taken.len() as u64) {
        problems.push(format!("event row booked_slots {} but {} seats taken", ev["booked_slots"], taken.len()));
    }
    let taken_set: HashSet<u64> = taken.iter().copied().collect();
    let mut owner: HashMap<u64, &str> = HashMap::new();
    for (_, id, seats) in live {
        for s in seats {
            if !taken_set.contains(s) {
                problems.push(format!("seat {s} of confirmed booking {id} (never cancelled) not taken"));
            }
            if let Some(other) = owner.insert(*s, id) {
                problems.push(format!("seat {s} confirmed to bookings {other} and {id}"));
            }
        }
    }
    Ok((problems, taken.len() as u64))
}

pub(super) async fn run(o: Opts) -> Result<bool, String> {
    let hosts: Vec<String> = o.url.iter().map(|u| host_of(u)).collect::<Result<_, _>>()?;
    let hosts = Arc::new(hosts);
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let token = |sub: String| mint(&o.secret, &MintRequest { sub, ttl_secs: 86_400, ..Default::default() });
    if o.capacity < 1 || o.seats < 1 || o.seats > 50 {
        return Err("mixed: --capacity and --seats (1 to 50) must be positive".into());
    }

    // ---- setup, on the first replica (the chaos starts after the line printed below)
    let host = &hosts[0];
    let mut setup = connect(host).await?;
    let admin = token(format!("load-admin-{run_id}"));
    expect("POST /users", call(&mut setup, host, Method::POST, "/users", &admin, None).await?, StatusCode::OK)?;
    let org = expect(
        "POST /organizations",
        call(&mut setup, host, Method::POST, "/organizations", &admin, Some(&json!({ "name": format!("chaos {run_id}") }))).await?,
        StatusCode::CREATED,
    )?;
    let org_id = org["id"].as_str().ok_or("organization without id")?.to_string();
    let n_events = o.events.max(1);
    let mut events = Vec::with_capacity(n_events);
    for i in 0..n_events {
        let policy = ["fifo", "first_fit", "partial"][i % 3];
        let body = json!({ "org_id": org_id, "name": format!("chaos {run_id} #{i}"), "event_date": "2030-01-01T20:00:00Z",
            "total_slots": o.capacity, "waitlist_policy": policy });
        let ev = expect("POST /events", call(&mut setup, host, Method::POST, "/events", &admin, Some(&body)).await?, StatusCode::CREATED)?;
        events.push(ev["id"].as_str().ok_or("event without id")?.to_string());
    }
    let mut tokens = Vec::with_capacity(o.connections);
    for i in 0..o.connections {
        let t = token(format!("load-{run_id}-{i}"));
        let user = expect("POST /users", call(&mut setup, host, Method::POST, "/users", &t, None).await?, StatusCode::OK)?;
        let add = json!({ "user_id": user["id"], "role": "user" });
        expect(
            "POST members",
            call(&mut setup, host, Method::POST, &format!("/organizations/{org_id}/members"), &admin, Some(&add)).await?,
            StatusCode::CREATED,
        )?;
        tokens.push(t);
    }
    drop(setup);
    let events = Arc::new(events);
    println!(
        "happening-load: {} clients, scenario Mixed, {} event(s) of {} seats, up to {} seat(s) per request, {}s, against {}",
        o.connections,
        n_events,
        o.capacity,
        o.seats,
        o.duration,
        o.url.join(" ")
    );

    // ---- run
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let succeeded = Arc::new(AtomicU64::new(0));
    let seed = u64::from_str_radix(&run_id, 16).unwrap_or(1) | 1;
    let mut tasks = Vec::new();
    for (idx, t) in tokens.into_iter().enumerate() {
        let mut c = Client {
            token: t,
            hosts: hosts.clone(),
            events: events.clone(),
            capacity: o.capacity,
            max_seats: o.seats,
            timeout: Duration::from_millis(o.timeout_ms.max(1)),
            conns: (0..hosts.len()).map(|_| None).collect(),
            next_replica: idx,
            rng: Rng(seed.wrapping_mul(idx as u64 * 2 + 1) | 1),
            bookings: HashMap::new(),
            holds: Vec::new(),
            report: ClientReport::default(),
            sent: sent.clone(),
            succeeded: succeeded.clone(),
        };
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                c.step().await;
            }
            c.finish()
        }));
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(o.duration);
    let mut next_print = started + Duration::from_secs(5);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if Instant::now() >= next_print {
            next_print += Duration::from_secs(5);
            let (s, ok) = (sent.load(Ordering::Relaxed), succeeded.load(Ordering::Relaxed));
            println!("  {:>4.0}s: {s} sent, {ok} succeeded, {} failed", started.elapsed().as_secs_f64(), s - ok);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut counts: BTreeMap<(&'static str, Outcome), u64> = BTreeMap::new();
    let mut live = Vec::new();
    for t in tasks {
        let r = t.await.map_err(|e| e.to_string())?;
        for (k, n) in r.counts {
            *counts.entry(k).or_default() += n;
        }
        live.extend(r.live);
    }
    let elapsed = started.elapsed().as_secs_f64();

    // ---- report
    let total: u64 = counts.values().sum();
    let ok: u64 = counts.iter().filter(|(k, _)| k.1.ok()).map(|(_, n)| n).sum();
    let mut failed: BTreeMap<Outcome, u64> = BTreeMap::new();
    for ((_, out), n) in &counts {
        if !out.ok() {
            *failed.entry(*out).or_default() += n;
        }
    }
    println!("requests:   {total} sent in {elapsed:.1}s ({:.0}/s), {ok} succeeded, {} failed", total as f64 / elapsed, total - ok);
    let fmt = |m: &mut dyn Iterator<Item = (Outcome, u64)>| m.map(|(o, n)| format!("{o}: {n}")).collect::<Vec<_>>().join(", ");
    println!("failed:     {}", if failed.is_empty() { "none".into() } else { fmt(&mut failed.iter().map(|(o, n)| (*o, *n))) });
    for op in OPS {
        let mut it = counts.iter().filter(|(k, _)| k.0 == op).map(|(k, n)| (k.1, *n));
        let line = fmt(&mut it);
        if !line.is_empty() {
            println!("  {op:<8}  {line}");
        }
    }
    let server_errors: u64 = failed.iter().filter(|(o, _)| matches!(o, Outcome::Status(s) if *s >= 500 && *s != 503)).map(|(_, n)| n).sum();
    if server_errors > 0 {
        println!("note:       {server_errors} answer(s) 5xx other than 503 (see the servers' logs)");
    }

    // ---- consistency checks, on the state at rest (replicas may still be coming back)
    let patience = Duration::from_secs(60);
    let mut breaches = 0u64;
    let mut taken_total = 0u64;
    let mut live_by_event: Vec<Vec<&(usize, String, Vec<u64>)>> = vec![Vec::new(); events.len()];
    for b in &live {
        live_by_event[b.0].push(b);
    }
    for (i, e) in events.iter().enumerate() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let map = get_retrying(&hosts, &format!("/events/{e}/seats"), &admin, patience).await?;
            let ev = get_retrying(&hosts, &format!("/events/{e}"), &admin, patience).await?;
            let (problems, taken) = check_event(&map, &ev, &live_by_event[i])?;
            // The two reads are not one snapshot (a hold may expire between them): read again
            // before calling it a breach.
            if problems.is_empty() || attempt >= 3 {
                for p in &problems {
                    println!("BREACH event {e}: {p}");
                }
                breaches += problems.len() as u64;
                taken_total += taken;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!(
        "checks:     {} breach(es) ({} event(s), {} seats taken, {} confirmed booking(s) followed to the end)",
        breaches,
        events.len(),
        taken_total,
        live.len()
    );
    Ok(breaches == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_classify_and_print() {
        assert!(Outcome::Status(201).ok());
        assert!(!Outcome::Status(503).ok());
        assert!(!Outcome::Timeout.ok() && !Outcome::ConnectionError.ok());
        assert_eq!(Outcome::ConnectionError.to_string(), "connection error");
        assert_eq!(Outcome::Status(503).to_string(), "503");
        let mut r = Rng(7);
        assert!((0..1000).all(|_| r.below(3) < 3));
    }

    #[test]
    fn checks_find_each_breach() {
        let ev = json!({ "booked_slots": 3 });
        let ok = json!({ "total": 5, "taken": [1, 2, 4], "held": [5] });
        let a = (0, "a".to_string(), vec![1, 2]);
        let b = (0, "b".to_string(), vec![4]);
        assert_eq!(check_event(&ok, &ev, &[&a, &b]).unwrap(), (vec![], 3));
        let twice = json!({ "total": 5, "taken": [1, 1, 4], "held": [] });
        assert!(check_event(&twice, &ev, &[]).unwrap().0.iter().any(|p| p.contains("twice")));
        let beyond = json!({ "total": 3, "taken": [1, 2, 4], "held": [] });
        assert!(check_event(&beyond, &ev, &[]).unwrap().0.iter().any(|p| p.contains("beyond")));
        let over = json!({ "total": 4, "taken": [1, 2, 4], "held": [3, 5] });
        assert!(check_event(&over, &ev, &[]).unwrap().0.iter().any(|p| p.contains("> total")));
        let rows = json!({ "booked_slots": 2 });
        assert!(check_event(&ok, &rows, &[]).unwrap().0.iter().any(|p| p.contains("booked_slots")));
        let lost = (0, "c".to_string(), vec![3]);
        assert!(check_event(&ok, &ev, &[&lost]).unwrap().0.iter().any(|p| p.contains("not taken")));
        let shared = (0, "d".to_string(), vec![2]);
        assert!(check_event(&ok, &ev, &[&a, &shared]).unwrap().0.iter().any(|p| p.contains("confirmed to bookings")));
    }
}
