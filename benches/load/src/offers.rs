//! `--offers N` (flash scenario): a wave of waitlist offers that run out inside the measured
//! window of the sale, on another event of the same server, to see what their expiry costs
//! the sale's bookings.
//!
//! Before the sale: a second event of N seats with `offer_ttl_seconds` (`--offer-ttl-seconds`),
//! N one-seat bookings confirmed, `--offers-waiting` more waiting (2N by default, so that
//! expiry offers the freed seats to the next N), then the N confirmed cancelled in a burst:
//! each cancel offers its seat to the next in line, so the N offers fall due within the
//! burst's time. The event's TTL is then set to an hour, for the offers expiry makes. The sale's clients start so that the first offer falls due
//! `--offers-due-at` seconds into the measured window.
//!
//! While the sale runs, a watcher polls the first and the last offer to fall due and the
//! event every 50 ms: when each was seen expired, and when the next in line had all been
//! offered. After the sale, the event's bookings are listed: the N offers must be `expired`
//! and the next ones `offered`, each changed within the measured window, none waiting that
//! could have been offered.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::{call, connect, expect, percentile, Opts};

/// Bookings of the wave at most (`--offers` plus `--offers-waiting`).
pub const BOOKINGS_MAX: u32 = 20_000;
/// Connections the wave's bookings and cancels are sent on at once, at most.
const CONNECTIONS_MAX: usize = 128;
/// How often the watcher polls.
const POLL_MS: u64 = 50;
/// How long after the sale the watcher keeps polling for an expiry not yet seen.
const WATCH_AFTER_SALE_SECS: u64 = 30;
/// The TTL of the offers made by expiry.
const REOFFER_TTL_SECS: u32 = 3600;
/// The largest page of a list (docs/http.md).
const PAGE: usize = 500;

/// The wave as set up: its event and the offers the burst made.
pub struct Wave {
    pub event: String,
    offers: usize,
    waiting: usize,
    /// The offers made by the burst.
    offered: HashSet<String>,
    /// The offers first and last to fall due.
    first: String,
    last: String,
    due_from: DateTime<Utc>,
    due_to: DateTime<Utc>,
    burst_secs: f64,
}

/// When the watcher saw things happen.
#[derive(Default)]
pub struct Seen {
    first_expired: Option<Instant>,
    last_expired: Option<Instant>,
    /// Every booking that could be offered after the expiry was.
    reoffered: Option<Instant>,
}

/// A request of the wave: token, method, path, body.
type Item = (String, Method, String, Option<Value>);

/// Sends `(method, path, body)` for each item, on up to [`CONNECTIONS_MAX`] connections at
/// once, each item with the token it names; answers in the items' order.
async fn fan_out(host: &str, items: Vec<Item>) -> Result<Vec<(StatusCode, Value)>, String> {
    let n = items.len();
    let lanes = CONNECTIONS_MAX.min(n.max(1));
    let mut per_lane: Vec<Vec<(usize, Item)>> = (0..lanes).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        per_lane[i % lanes].push((i, item));
    }
    let mut tasks = Vec::new();
    for lane in per_lane {
        let host = host.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&host).await?;
            let mut out = Vec::with_capacity(lane.len());
            for (i, (token, method, path, body)) in lane {
                out.push((i, call(&mut conn, &host, method, &path, &token, body.as_ref()).await?));
            }
            Ok::<_, String>(out)
        }));
    }
    let mut answers: Vec<Option<(StatusCode, Value)>> = vec![None; n];
    for t in tasks {
        for (i, a) in t.await.map_err(|e| e.to_string())?? {
            answers[i] = Some(a);
        }
    }
    Ok(answers.into_iter().map(|a| a.expect("every item answered")).collect())
}

/// Books `n` single seats of `event`, each with the next of `tokens`; every answer must be a
/// 201 of `status`. Returns the bookings' ids and tokens.
async fn book(host: &str, event: &str, n: usize, tokens: &[String], status: &str) -> Result<Vec<(String, String)>, String> {
    let body = json!({ "event_id": event, "seats": 1 });
    let items = (0..n).map(|i| (tokens[i % tokens.len()].clone(), Method::POST, "/bookings".to_string(), Some(body.clone()))).collect();
    let mut out = Vec::with_capacity(n);
    for (i, r) in fan_out(host, items).await?.into_iter().enumerate() {
        let b = expect("POST /bookings (offers' event)", r, StatusCode::CREATED)?;
        if b["status"] != status {
            return Err(format!("offers' event: booking {i} is {} where {status} was expected", b["status"]));
        }
        out.push((b["id"].as_str().ok_or("booking without id")?.to_string(), tokens[i % tokens.len()].clone()));
    }
    Ok(out)
}

/// Every booking of `event` with `status`, oldest first, page by page.
async fn list(host: &str, admin: &str, event: &str, status: &str) -> Result<Vec<Value>, String> {
    let mut conn = connect(host).await?;
    let mut all = Vec::new();
    loop {
        let path = format!("/events/{event}/bookings?status={status}&limit={PAGE}&offset={}", all.len());
        let page = expect("GET bookings", call(&mut conn, host, Method::GET, &path, admin, None).await?, StatusCode::OK)?;
        let page = page.as_array().ok_or("bookings list not an array")?.clone();
        let last = page.len() < PAGE;
        all.extend(page);
        if last {
            return Ok(all);
        }
    }
}

fn time_of(v: &Value, field: &str) -> Result<DateTime<Utc>, String> {
    let s = v[field].as_str().ok_or_else(|| format!("booking without {field}"))?;
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("{field}: {e}"))
}

/// Sets the wave up (see the module's doc): ready for the sale once this returns.
pub async fn prepare(o: &Opts, host: &str, admin: &str, org_id: &str, tokens: &[String]) -> Result<Wave, String> {
    let offers = o.offers as usize;
    let waiting = o.offers_waiting.unwrap_or(2 * o.offers) as usize;
    let mut conn = connect(host).await?;
    let body = json!({ "org_id": org_id, "name": "offers", "event_date": "2030-01-01T20:00:00Z", "total_slots": o.offers,
        "offer_ttl_seconds": o.offer_ttl_seconds });
    let ev =
        expect("POST /events (offers)", call(&mut conn, host, Method::POST, "/events", admin, Some(&body)).await?, StatusCode::CREATED)?;
    let event = ev["id"].as_str().ok_or("event without id")?.to_string();
    let confirmed = book(host, &event, offers, tokens, "confirmed").await?;
    book(host, &event, waiting, tokens, "waiting").await?;

    let cancels = confirmed.into_iter().map(|(id, token)| (token, Method::POST, format!("/bookings/{id}/cancel"), None)).collect();
    let t0 = Instant::now();
    for r in fan_out(host, cancels).await? {
        expect("POST /bookings/:id/cancel (offers' event)", r, StatusCode::OK)?;
    }
    let burst_secs = t0.elapsed().as_secs_f64();
    // The offers expiry makes next get an hour: they stay open through the window, so what
    // runs out in it is the burst's offers alone (open offers keep their expiry).
    let ttl = json!({ "offer_ttl_seconds": REOFFER_TTL_SECS });
    let path = format!("/events/{event}");
    expect("PUT /events/:id (offers)", call(&mut conn, host, Method::PUT, &path, admin, Some(&ttl)).await?, StatusCode::OK)?;

    let mut made = list(host, admin, &event, "offered").await?;
    if made.len() != offers.min(waiting) {
        return Err(format!("the burst of {offers} cancels made {} offers, not {}", made.len(), offers.min(waiting)));
    }
    if made.is_empty() {
        return Err("--offers-waiting 0 makes no offers".into());
    }
    let mut keyed = Vec::with_capacity(made.len());
    for b in made.drain(..) {
        keyed.push((time_of(&b, "offer_expires_at")?, b["id"].as_str().ok_or("booking without id")?.to_string()));
    }
    // The store's order of expiry: by due time, then id.
    keyed.sort();
    let (due_from, first) = keyed[0].clone();
    let (due_to, last) = keyed[keyed.len() - 1].clone();
    Ok(Wave { event, offers, waiting, offered: keyed.into_iter().map(|(_, id)| id).collect(), first, last, due_from, due_to, burst_secs })
}

impl Wave {
    /// When the sale's clients are to start (warm-up included) for the first offer to fall
    /// due `o.offers_due_at` seconds into the measured window.
    pub fn clients_start(&self, o: &Opts) -> Result<Instant, String> {
        let due_at = o.offers_due_at.unwrap_or(o.duration as f64 / 2.0);
        let lead_ms = (self.due_from - Utc::now()).num_milliseconds() - ((due_at + o.warmup as f64) * 1000.0) as i64;
        if lead_ms < 0 {
            return Err(format!(
                "the offers fall due {:.2} s too early for the window (the burst took {:.2} s): raise --offer-ttl-seconds",
                -lead_ms as f64 / 1000.0,
                self.burst_secs
            ));
        }
        Ok(Instant::now() + Duration::from_millis(lead_ms as u64))
    }

    /// How many waiting bookings expiry is to offer the freed seats to, and how many are to
    /// wait on after that.
    fn after_expiry(&self) -> (usize, usize) {
        let left = self.waiting - self.offers.min(self.waiting);
        let reoffers = left.min(self.offers);
        (reoffers, left - reoffers)
    }

    /// Polls until the offers have expired and the next are offered, or until
    /// [`WATCH_AFTER_SALE_SECS`] after `sale_end`.
    pub async fn watch(self: std::sync::Arc<Self>, host: String, admin: String, sale_end: Instant) -> Result<Seen, String> {
        let mut conn = connect(&host).await?;
        let mut seen = Seen::default();
        let (_, waiting_after) = self.after_expiry();
        let deadline = sale_end + Duration::from_secs(WATCH_AFTER_SALE_SECS);
        let mut tick = tokio::time::interval(Duration::from_millis(POLL_MS));
        while Instant::now() < deadline {
            tick.tick().await;
            let now = Instant::now();
            for (id, at) in [(&self.first, &mut seen.first_expired), (&self.last, &mut seen.last_expired)] {
                if at.is_none() {
                    let b = expect(
                        "GET booking",
                        call(&mut conn, &host, Method::GET, &format!("/bookings/{id}"), &admin, None).await?,
                        StatusCode::OK,
                    )?;
                    if b["status"] != "offered" {
                        *at = Some(now);
                    }
                }
            }
            if seen.last_expired.is_some() {
                let path = format!("/events/{}", self.event);
                let ev = expect("GET event", call(&mut conn, &host, Method::GET, &path, &admin, None).await?, StatusCode::OK)?;
                if ev["waiting_count"].as_u64() == Some(waiting_after as u64) {
                    seen.reoffered = Some(now);
                    break;
                }
            }
        }
        Ok(seen)
    }

    /// Checks the event's bookings after the sale and prints what was seen, with the
    /// latencies `lat` (request start, micros; `epoch`-relative ms) of the requests sent
    /// while the offers ran out and of the others. The window is `[started, ended]`.
    pub async fn report(
        &self,
        host: &str,
        admin: &str,
        seen: &Seen,
        lat: &[(u32, u32)],
        epoch: Instant,
        window: (Instant, Instant),
    ) -> Result<bool, String> {
        let (started, ended) = window;
        // Seconds from the window's start (negative before it).
        let at = |t: Instant| t.saturating_duration_since(started).as_secs_f64() - started.saturating_duration_since(t).as_secs_f64();
        // Wall clock of the window's ends, from the same offset as now.
        let (now_i, now_w) = (Instant::now(), Utc::now());
        let wall = |t: Instant| now_w - chrono::Duration::from_std(now_i - t).unwrap_or_default();
        let rel = |t: DateTime<Utc>| (t - wall(started)).num_milliseconds() as f64 / 1000.0;
        println!(
            "offers:     {} made by a burst of {} cancels in {:.2} s, due {:.2}-{:.2} s into the window of {:.2} s",
            self.offered.len(),
            self.offers,
            self.burst_secs,
            rel(self.due_from),
            rel(self.due_to),
            at(ended)
        );
        let (reoffers, waiting_after) = self.after_expiry();
        let show = |t: Option<Instant>| t.map(|t| format!("{:.2} s", at(t))).unwrap_or_else(|| "not seen".into());
        let span = match (seen.first_expired, seen.last_expired) {
            (Some(a), Some(b)) => format!("{:.2} s", (b - a).as_secs_f64()),
            _ => "-".into(),
        };
        println!(
            "expiry:     first expired seen at {}, last at {} (expiry of the {} took {span}), the next {reoffers} offered by {} (polled every {POLL_MS} ms)",
            show(seen.first_expired),
            show(seen.last_expired),
            self.offered.len(),
            show(seen.reoffered)
        );

        // From the server's rows: every offer of the burst expired, the next ones offered,
        // each changed (`updated_at`) within the window.
        let expired = list(host, admin, &self.event, "expired").await?;
        let offered = list(host, admin, &self.event, "offered").await?;
        let waiting = list(host, admin, &self.event, "waiting").await?;
        let (w0, w1) = (wall(started), wall(ended));
        let mut in_window = 0;
        let mut spans = Vec::new();
        for rows in [&expired, &offered] {
            let mut span: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
            for b in rows {
                let t = time_of(b, "updated_at")?;
                in_window += usize::from(t >= w0 && t <= w1);
                span = Some(span.map_or((t, t), |(a, z)| (a.min(t), z.max(t))));
            }
            spans.push(span.map(|(a, z)| format!("{:.2}-{:.2} s", rel(a), rel(z))).unwrap_or_else(|| "-".into()));
        }
        let ids = |rows: &[Value]| rows.iter().filter_map(|b| b["id"].as_str().map(str::to_string)).collect::<HashSet<_>>();
        let (expired_ids, offered_ids) = (ids(&expired), ids(&offered));
        let ok = expired_ids == self.offered
            && offered_ids.len() == reoffers
            && offered_ids.is_disjoint(&self.offered)
            && waiting.len() == waiting_after
            && in_window == expired.len() + offered.len()
            && seen.reoffered.is_some_and(|t| t <= ended);
        // `updated_at` is the server's clock as the step read it: expiry reads it once per
        // page of due offers, so it says when a page began, not when each row was written.
        println!(
            "checked:    {} expired (updated {}), {} offered (updated {}), {} waiting; {} changed within the window: {}",
            expired.len(),
            spans[0],
            offered.len(),
            spans[1],
            waiting.len(),
            in_window,
            if ok { "ok" } else { "CHECK FAILED" }
        );

        // The sale's latency while the offers ran out (from the first due to the last
        // offered) and outside that time.
        let lo = (self.due_from - wall(epoch)).num_milliseconds().max(0) as u32;
        let hi = seen.reoffered.or(seen.last_expired).map(|t| (t - epoch).as_millis() as u32).unwrap_or(u32::MAX);
        let (mut during, mut rest): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for &(t, us) in lat {
            if t >= lo && t <= hi {
                during.push(us);
            } else {
                rest.push(us);
            }
        }
        during.sort_unstable();
        rest.sort_unstable();
        println!(
            "latency ms while the offers ran out ({} requests): p50 {:.3}  p99 {:.3}; at other times ({} requests): p50 {:.3}  p99 {:.3}",
            during.len(),
            percentile(&during, 0.50),
            percentile(&during, 0.99),
            rest.len(),
            percentile(&rest, 0.50),
            percentile(&rest, 0.99)
        );
        Ok(ok)
    }
}
