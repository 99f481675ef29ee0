//! `happening-load`: drives a running Happening server with N concurrent clients, each on
//! its own keep-alive HTTP/1.1 connection, booking seats as fast as the server answers.
//!
//! Scenarios: `flash` (every client books the same event: a flash sale) and `events`
//! (clients spread over many events). Prints requests/s and latency p50/p95/p99/max, shows
//! a progress bar while running, and at the end checks the seat maps for oversell (exit 1
//! if any check fails).
//!
//! `mixed` (module [`mixed`]) is for chaos runs: several `--url` replicas, bookings, cancels,
//! holds released or converted, over many events, tolerating failures (each request's outcome
//! is counted, nothing is retried) and checking at the end only what holds even with faults.
//!
//! `--offers N` (module [`offers`], flash only) adds N waitlist offers on another event that
//! run out inside the measured window, and reports their expiry beside the sale's figures.
//!
//! The server must know the HS256 secret given here (`HAPPENING_JWT_SECRET`): the load
//! generator mints a token per client.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use happening_core::testkit::latency::percentile_ms as percentile;
use happening_http::auth::{mint, MintRequest};
use hyper::client::conn::SendRequest;
use hyper::{Body, Method, Request, StatusCode};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Scenario {
    /// Every client books the same event.
    Flash,
    /// Clients book events chosen round-robin among `--events`.
    Events,
    /// Chaos traffic over `--events` events: book (mostly), cancel own bookings, hold seats and
    /// release or convert the holds; requests round-robin over every `--url`; failures are
    /// counted, not fatal.
    Mixed,
}

#[derive(Parser, Debug)]
#[command(name = "happening-load", about = "Load generator for the Happening HTTP server")]
struct Opts {
    /// Base URL of the server (http only). Repeat it (or separate with commas) for several
    /// replicas: `mixed` spreads requests round-robin over them, the other scenarios use the
    /// first.
    #[arg(long, default_value = "http://127.0.0.1:5000", value_delimiter = ',', num_args = 1..)]
    url: Vec<String>,
    /// The server's HS256 secret (HAPPENING_JWT_SECRET), to mint client tokens.
    #[arg(long, env = "HAPPENING_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// Concurrent clients (one connection each).
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// How long to run, in seconds (ignored when --requests is given).
    #[arg(long, short = 'd', default_value_t = 10)]
    duration: u64,
    /// Stop after this many booking requests instead of after --duration.
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    #[arg(long, value_enum, default_value = "flash")]
    scenario: Scenario,
    /// Events in the `events` scenario.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Seats of each event.
    #[arg(long, default_value_t = 1_000_000)]
    capacity: u32,
    /// Seats per booking.
    #[arg(long, default_value_t = 1)]
    seats: u32,
    /// Each event's `waitlist_max`: requests beyond it are turned away (409 `waitlist_full`,
    /// counted apart, not as errors). Default: no cap, every short request waits.
    #[arg(long)]
    waitlist_max: Option<u32>,
    /// Runtime worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds of warm-up traffic before measuring (not counted; not in `mixed`).
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// `mixed`: a request without an answer after this many milliseconds counts as a timeout
    /// (its connection is dropped).
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// `flash`: also make this many waitlist offers on another event, due inside the measured
    /// window (module `offers`); 0: none.
    #[arg(long, default_value_t = 0)]
    offers: u32,
    /// Bookings waiting on the offers' event before its confirmed ones are cancelled
    /// (default: twice `--offers`, so that expiry offers the seats again).
    #[arg(long)]
    offers_waiting: Option<u32>,
    /// The offers' event's `offer_ttl_seconds`: long enough for the cancels, the warm-up and
    /// `--offers-due-at`.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    offer_ttl_seconds: u32,
    /// Seconds into the measured window at which the first offer falls due (default: half
    /// of --duration).
    #[arg(long)]
    offers_due_at: Option<f64>,
}

mod mixed;
mod offers;

type Conn = SendRequest<Body>;

async fn connect(host: &str) -> Result<Conn, String> {
    let stream = tokio::net::TcpStream::connect(host).await.map_err(|e| format!("connect {host}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (send, conn) = hyper::client::conn::Builder::new().handshake(stream).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

async fn call(
    conn: &mut Conn,
    host: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), String> {
    let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body)
        .map_err(|e| e.to_string())?;
    futures_ready(conn).await?;
    let res = conn.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status();
    let bytes = hyper::body::to_bytes(res.into_body()).await.map_err(|e| e.to_string())?;
    let v = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).map_err(|e| format!("{path}: {e}"))? };
    Ok((status, v))
}

async fn futures_ready(conn: &mut Conn) -> Result<(), String> {
    std::future::poll_fn(|cx| conn.poll_ready(cx)).await.map_err(|e| e.to_string())
}

fn expect(what: &str, r: (StatusCode, Value), want: StatusCode) -> Result<Value, String> {
    if r.0 != want {
        return Err(format!("{what}: expected {want}, got {} {}", r.0, r.1));
    }
    Ok(r.1)
}

#[derive(Default)]
struct Counters {
    done: AtomicU64,
    confirmed: AtomicU64,
    waiting: AtomicU64,
    /// 409 `waitlist_full`.
    turned_away: AtomicU64,
    errors: AtomicU64,
}

struct Client {
    token: String,
    events: Vec<String>,
}

fn main() {
    let opts = Opts::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads.max(1))
        .thread_name("happening-load") // apart from the server's threads in a profile
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(run(opts)) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

fn host_of(url: &str) -> Result<String, String> {
    Ok(url.trim_end_matches('/').strip_prefix("http://").ok_or("--url must start with http://")?.to_string())
}

async fn run(o: Opts) -> Result<bool, String> {
    if o.scenario == Scenario::Mixed {
        return mixed::run(o).await;
    }
    if o.offers > 0 {
        let due_at = o.offers_due_at.unwrap_or(0.0);
        if o.scenario != Scenario::Flash || o.requests.is_some() {
            return Err("--offers needs the flash scenario and a --duration (not --requests)".into());
        }
        if o.offers as u64 + o.offers_waiting.unwrap_or(2 * o.offers) as u64 > offers::BOOKINGS_MAX as u64 {
            return Err(format!("--offers and --offers-waiting: {} bookings at most", offers::BOOKINGS_MAX));
        }
        if !(0.0..o.duration as f64).contains(&due_at) {
            return Err("--offers-due-at must fall within --duration".into());
        }
    }
    let host = host_of(&o.url[0])?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let token = |sub: String| mint(&o.secret, &MintRequest { sub, ttl_secs: 86_400, ..Default::default() });

    // ---- setup: an organization, its events, one member per client
    let mut setup = connect(&host).await?;
    let admin = token(format!("load-admin-{run_id}"));
    expect("POST /users", call(&mut setup, &host, Method::POST, "/users", &admin, None).await?, StatusCode::OK)?;
    let org = expect(
        "POST /organizations",
        call(&mut setup, &host, Method::POST, "/organizations", &admin, Some(&json!({ "name": format!("load {run_id}") }))).await?,
        StatusCode::CREATED,
    )?;
    let org_id = org["id"].as_str().ok_or("organization without id")?.to_string();
    let n_events = if o.scenario == Scenario::Flash { 1 } else { o.events.max(1) };
    let mut events = Vec::with_capacity(n_events);
    for i in 0..n_events {
        let body = json!({ "org_id": org_id, "name": format!("load {run_id} #{i}"), "event_date": "2030-01-01T20:00:00Z",
            "total_slots": o.capacity, "waitlist_max": o.waitlist_max });
        let ev = expect("POST /events", call(&mut setup, &host, Method::POST, "/events", &admin, Some(&body)).await?, StatusCode::CREATED)?;
        events.push(ev["id"].as_str().ok_or("event without id")?.to_string());
    }
    let mut clients = Vec::with_capacity(o.connections);
    for i in 0..o.connections {
        let t = token(format!("load-{run_id}-{i}"));
        let user = expect("POST /users", call(&mut setup, &host, Method::POST, "/users", &t, None).await?, StatusCode::OK)?;
        let add = json!({ "user_id": user["id"], "role": "user" });
        expect(
            "POST members",
            call(&mut setup, &host, Method::POST, &format!("/organizations/{org_id}/members"), &admin, Some(&add)).await?,
            StatusCode::CREATED,
        )?;
        // Each client walks the events from its own offset.
        let mut evs = events.clone();
        evs.rotate_left(i % events.len());
        clients.push(Client { token: t, events: evs });
    }
    println!(
        "happening-load: {} clients, scenario {:?}, {} event(s) of {} seats, {} seat(s) per booking, against {}",
        o.connections, o.scenario, n_events, o.capacity, o.seats, o.url[0]
    );
    let wave = if o.offers > 0 {
        let tokens: Vec<String> = clients.iter().map(|c| c.token.clone()).collect();
        let wave = offers::prepare(&o, &host, &admin, &org_id, &tokens).await?;
        tokio::time::sleep_until(wave.clients_start(&o)?.into()).await;
        Some(Arc::new(wave))
    } else {
        None
    };

    // ---- run
    let counters = Arc::new(Counters::default());
    let measuring = Arc::new(AtomicBool::new(o.warmup == 0));
    let stop = Arc::new(AtomicBool::new(false));
    let budget = o.requests;
    let issued = Arc::new(AtomicU64::new(0));
    // Requests' start times are kept in ms from here, for `offers`.
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for c in clients {
        let (host, counters, measuring, stop, issued, seats) =
            (host.clone(), counters.clone(), measuring.clone(), stop.clone(), issued.clone(), o.seats);
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&host).await?;
            let auth = format!("Bearer {}", c.token);
            let bodies: Vec<String> = c.events.iter().map(|e| format!("{{\"event_id\":\"{e}\",\"seats\":{seats}}}")).collect();
            // (start in ms from `epoch`, latency in micros)
            let mut lat: Vec<(u32, u32)> = Vec::with_capacity(1 << 16);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let counted = measuring.load(Ordering::Relaxed);
                if counted && budget.is_some_and(|b| issued.fetch_add(1, Ordering::Relaxed) >= b) {
                    break;
                }
                let req = Request::builder()
                    .method(Method::POST)
                    .uri("/bookings")
                    .header("host", host.as_str())
                    .header("authorization", auth.as_str())
                    .header("content-type", "application/json")
                    .body(Body::from(bodies[i % bodies.len()].clone()))
                    .expect("request");
                i += 1;
                let t0 = Instant::now();
                futures_ready(&mut conn).await?;
                let res = conn.send_request(req).await.map_err(|e| e.to_string())?;
                let status = res.status();
                let body = hyper::body::to_bytes(res.into_body()).await.map_err(|e| e.to_string())?;
                let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                if !counted {
                    continue;
                }
                lat.push(((t0 - epoch).as_millis() as u32, us));
                counters.done.fetch_add(1, Ordering::Relaxed);
                if status == StatusCode::CONFLICT && memchr(&body, b"\"reason\":\"waitlist_full\"") {
                    counters.turned_away.fetch_add(1, Ordering::Relaxed);
                } else if status != StatusCode::CREATED {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                } else if memchr(&body, b"\"status\":\"confirmed\"") {
                    counters.confirmed.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.waiting.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, String>(lat)
        }));
    }

    if o.warmup > 0 {
        tokio::time::sleep(Duration::from_secs(o.warmup)).await;
        measuring.store(true, Ordering::Relaxed);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(o.duration);
    let watcher = wave.clone().map(|w| tokio::spawn(w.watch(host.clone(), admin.clone(), deadline)));
    let bar = match budget {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new(o.duration * 1000),
    };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {msg}").expect("template"));
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = counters.done.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        bar.set_message(format!("{done} bookings, {:.0}/s", done as f64 / secs.max(1e-9)));
        match budget {
            Some(n) => {
                bar.set_position(done.min(n));
                if done >= n || tasks.iter().all(|t| t.is_finished()) {
                    break;
                }
            }
            None => {
                bar.set_position(started.elapsed().as_millis().min(o.duration as u128 * 1000) as u64);
                if Instant::now() >= deadline {
                    break;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut timed = Vec::new();
    for t in tasks {
        timed.extend(t.await.map_err(|e| e.to_string())??);
    }
    let ended = Instant::now();
    let elapsed = (ended - started).as_secs_f64();
    bar.finish_and_clear();
    let mut lat: Vec<u32> = timed.iter().map(|&(_, us)| us).collect();
    lat.sort_unstable();
    let done = lat.len() as f64;
    println!("requests:   {} in {:.2}s = {:.0} bookings/s", lat.len(), elapsed, done / elapsed);
    println!(
        "outcomes:   {} confirmed, {} waiting, {} turned away, {} errors",
        counters.confirmed.load(Ordering::Relaxed),
        counters.waiting.load(Ordering::Relaxed),
        counters.turned_away.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed)
    );
    println!(
        "latency ms: p50 {:.3}  p95 {:.3}  p99 {:.3}  max {:.3}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.95),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );

    let offers_ok = match (&wave, watcher) {
        (Some(wave), Some(watcher)) => {
            let seen = watcher.await.map_err(|e| e.to_string())??;
            wave.report(&host, &admin, &seen, &timed, epoch, (started, ended)).await?
        }
        _ => true,
    };

    // ---- oversell check, from the server's own seat maps and event rows
    let mut ok = counters.errors.load(Ordering::Relaxed) == 0;
    let mut taken_total = 0u64;
    // The offers' event too: its offered seats are held, never taken twice.
    let checked: Vec<String> = events.iter().cloned().chain(wave.as_ref().map(|w| w.event.clone())).collect();
    for e in &checked {
        let map =
            expect("GET seats", call(&mut setup, &host, Method::GET, &format!("/events/{e}/seats"), &admin, None).await?, StatusCode::OK)?;
        let ev = expect("GET event", call(&mut setup, &host, Method::GET, &format!("/events/{e}"), &admin, None).await?, StatusCode::OK)?;
        let taken: Vec<u64> = map["taken"].as_array().ok_or("seat map without taken")?.iter().filter_map(Value::as_u64).collect();
        let held = map["held"].as_array().map(Vec::len).unwrap_or(0) as u64;
        let total = map["total"].as_u64().unwrap_or(0);
        let strictly_ascending = taken.windows(2).all(|w| w[0] < w[1]);
        let in_range = taken.iter().all(|&s| s >= 1 && s <= total);
        let fits = taken.len() as u64 + held <= total;
        let counts_agree = ev["booked_slots"].as_u64() == Some(taken.len() as u64)
            && ev["available_slots"].as_u64() == Some(total - taken.len() as u64 - held);
        if !(strictly_ascending && in_range && fits && counts_agree) {
            println!("OVERSELL CHECK FAILED for event {e}: distinct={strictly_ascending} in_range={in_range} fits={fits} counts_agree={counts_agree}");
            ok = false;
        }
        // The cap is read apart from the push (ARCHITECTURE.md): requests in flight when the
        // queue filled may each still join it, no more.
        let waiting = ev["waiting_count"].as_u64().unwrap_or(0);
        if let Some(max) = o.waitlist_max.filter(|&m| waiting > u64::from(m) + o.connections as u64) {
            println!("WAITLIST CHECK FAILED for event {e}: {waiting} waiting, cap {max} + {} clients", o.connections);
            ok = false;
        }
        taken_total += taken.len() as u64;
    }
    // Warm-up bookings are not in the counters; every confirmed one must hold its seats.
    let confirmed = counters.confirmed.load(Ordering::Relaxed) * o.seats as u64;
    if taken_total < confirmed {
        println!("OVERSELL CHECK FAILED: {taken_total} seats taken but {confirmed} confirmed");
        ok = false;
    }
    println!(
        "oversell:   {} ({} event(s), {} seats taken, none twice, none beyond capacity)",
        if ok { "none" } else { "CHECK FAILED" },
        checked.len(),
        taken_total
    );
    Ok(ok && offers_ok)
}

fn memchr(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_status_in_a_body() {
        assert!(memchr(br#"{"status":"confirmed"}"#, b"\"status\":\"confirmed\""));
        assert!(!memchr(br#"{"status":"waiting"}"#, b"\"status\":\"confirmed\""));
    }
}
