//! Prometheus metrics, rendered by hand in the text format: requests by route and status,
//! a latency histogram by route, and booking outcomes (counted from the outbox relay, so
//! that promotions made inside the engine are counted too).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use happening_core::domain::{Notification, NotificationKind};

use crate::route_table::{fits, ROUTES};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<HashMap<(&'static str, &'static str, u16), u64>>,
    latency: Mutex<HashMap<&'static str, Histogram>>,
    pub confirmed: AtomicU64,
    pub waitlisted: AtomicU64,
    pub promoted: AtomicU64,
    pub cancelled: AtomicU64,
    pub holds_expired: AtomicU64,
    /// Offers by outcome: made, accepted, declined, expired.
    pub offers: [AtomicU64; 4],
    /// Notifications handed to the notifier (RabbitMQ: published).
    pub notifications_published: AtomicU64,
    /// Of those, the ones the notifier accepted (RabbitMQ: confirmed by the broker), then
    /// marked sent.
    pub notifications_confirmed: AtomicU64,
    /// Of those, the ones whose delivery failed; they stay in the outbox for the next round.
    pub notifications_failed: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        let route = route_of(method, path);
        let method = static_method(method);
        *self.requests.lock().expect("metrics lock").entry((route, method, status)).or_insert(0) += 1;
        let secs = elapsed.as_secs_f64();
        let mut lat = self.latency.lock().expect("metrics lock");
        let h = lat.entry(route).or_default();
        h.count += 1;
        h.sum += secs;
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            h.counts[i] += 1;
        }
    }

    /// Counts a batch handed to the notifier; then `confirmed` or `failed` says how it went.
    pub fn published(&self, batch: &[Notification]) {
        self.notifications_published.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    pub fn failed(&self, batch: &[Notification]) {
        self.notifications_failed.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    /// Counts delivered notifications, and the booking outcomes they report.
    pub fn confirmed(&self, batch: &[Notification]) {
        for n in batch {
            let c = match n.kind {
                NotificationKind::BookingConfirmed => &self.confirmed,
                NotificationKind::BookingWaitlisted => &self.waitlisted,
                NotificationKind::WaitlistPromoted => &self.promoted,
                NotificationKind::BookingCancelled | NotificationKind::EventCancelled => &self.cancelled,
                NotificationKind::HoldExpired => &self.holds_expired,
                NotificationKind::WaitlistOffer => &self.offers[0],
                NotificationKind::OfferAccepted => &self.offers[1],
                NotificationKind::OfferDeclined => &self.offers[2],
                NotificationKind::OfferExpired => &self.offers[3],
                _ => continue,
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.notifications_confirmed.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    /// The text format; `outbox_depth` is read from the store by the caller (`None` when the
    /// store did not answer: the gauge is left out rather than reported wrong).
    pub fn render(&self, outbox_depth: Option<u64>) -> String {
        let mut out = String::with_capacity(8 * 1024);
        out.push_str("# HELP happening_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE happening_http_requests_total counter\n");
        let mut reqs: Vec<_> = self.requests.lock().expect("metrics lock").iter().map(|(k, v)| (*k, *v)).collect();
        reqs.sort();
        for ((route, method, status), n) in reqs {
            let _ = writeln!(out, "happening_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP happening_http_request_duration_seconds Time to answer a request, by route.\n");
        out.push_str("# TYPE happening_http_request_duration_seconds histogram\n");
        let lat = self.latency.lock().expect("metrics lock");
        let mut routes: Vec<_> = lat.keys().copied().collect();
        routes.sort();
        for route in routes {
            let h = &lat[route];
            let mut cum = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cum += h.counts[i];
                let _ = writeln!(out, "happening_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {cum}");
            }
            let _ = writeln!(out, "happening_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "happening_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "happening_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        drop(lat);
        out.push_str("# HELP happening_bookings_total Booking outcomes (from the notification outbox).\n");
        out.push_str("# TYPE happening_bookings_total counter\n");
        for (outcome, c) in
            [("confirmed", &self.confirmed), ("waitlisted", &self.waitlisted), ("promoted", &self.promoted), ("cancelled", &self.cancelled)]
        {
            let _ = writeln!(out, "happening_bookings_total{{outcome=\"{outcome}\"}} {}", c.load(Ordering::Relaxed));
        }
        out.push_str("# HELP happening_holds_expired_total Holds that ran out.\n# TYPE happening_holds_expired_total counter\n");
        let _ = writeln!(out, "happening_holds_expired_total {}", self.holds_expired.load(Ordering::Relaxed));
        out.push_str("# HELP happening_offers_total Waitlist offers made, and how they ended (from the notification outbox).\n");
        out.push_str("# TYPE happening_offers_total counter\n");
        for (outcome, c) in ["offered", "accepted", "declined", "expired"].iter().zip(&self.offers) {
            let _ = writeln!(out, "happening_offers_total{{outcome=\"{outcome}\"}} {}", c.load(Ordering::Relaxed));
        }
        for (name, help, c) in [
            ("published", "Notifications handed to the notifier (RabbitMQ: published).", &self.notifications_published),
            (
                "confirmed",
                "Notifications the notifier accepted (RabbitMQ: confirmed by the broker), then marked sent.",
                &self.notifications_confirmed,
            ),
            ("failed", "Notifications whose delivery failed; they stay in the outbox and are retried.", &self.notifications_failed),
        ] {
            let _ = writeln!(out, "# HELP happening_notifications_{name}_total {help}");
            let _ = writeln!(out, "# TYPE happening_notifications_{name}_total counter");
            let _ = writeln!(out, "happening_notifications_{name}_total {}", c.load(Ordering::Relaxed));
        }
        if let Some(depth) = outbox_depth {
            out.push_str("# HELP happening_outbox_depth Notifications written but not yet delivered to the notifier.\n");
            out.push_str("# TYPE happening_outbox_depth gauge\n");
            let _ = writeln!(out, "happening_outbox_depth {depth}");
        }
        out
    }
}

fn static_method(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// The route template a path matches (`/events/{id}/seats`), or `unmatched`: labels stay
/// bounded whatever paths clients send.
pub fn route_of(method: &str, path: &str) -> &'static str {
    // The web console's pages and files, one label for all.
    if path == crate::console::BASE || path.starts_with(crate::console::PREFIX) {
        return crate::console::BASE;
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut fallback = None;
    for r in ROUTES {
        if fits(r.path, &segs) {
            if r.method == method {
                return r.path;
            }
            fallback.get_or_insert(r.path);
        }
    }
    fallback.unwrap_or("unmatched")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templated() {
        assert_eq!(route_of("GET", "/events/0b6e4c1e-0000-0000-0000-000000000000/seats"), "/events/{id}/seats");
        assert_eq!(route_of("POST", "/bookings"), "/bookings");
        assert_eq!(route_of("GET", "/bookings/user/abc"), "/bookings/user/{userId}");
        assert_eq!(route_of("GET", "/nope/x/y/z"), "unmatched");
        assert_eq!(route_of("GET", "/app/events/0b6e4c1e-0000-0000-0000-000000000000"), "/app");
        assert_eq!(route_of("GET", "/application"), "unmatched");
        let m = Metrics::default();
        m.observe("POST", "/bookings", 201, Duration::from_micros(300));
        let text = m.render(Some(7));
        assert!(text.contains("happening_http_requests_total{route=\"/bookings\",method=\"POST\",status=\"201\"} 1"), "{text}");
        assert!(text.contains("happening_outbox_depth 7\n"), "{text}");
        assert!(!m.render(None).contains("happening_outbox_depth"), "no gauge when the store did not answer");
        assert!(text.contains("happening_http_request_duration_seconds_bucket{route=\"/bookings\",le=\"0.0005\"} 1"), "{text}");
    }
}
