//! Prometheus metrics on the `metrics` crate, rendered by `metrics-exporter-prometheus` from
//! `GET /metrics` (no listener of its own): requests by route and status, a latency histogram
//! by route, and booking outcomes (counted from the outbox relay, so that promotions made
//! inside the engine are counted too).
//!
//! Each server has a recorder of its own (the `metrics` macros run under
//! [`metrics::with_local_recorder`]), not the process-wide one: servers built side by side in
//! one process, as the tests build them, count apart.

use std::time::Duration;

use happening_core::domain::{Notification, NotificationKind};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use crate::route_table::{fits, routes};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const REQUESTS: &str = "happening_http_requests_total";
const LATENCY: &str = "happening_http_request_duration_seconds";
const OUTBOX_DEPTH: &str = "happening_outbox_depth";

pub struct Metrics {
    recorder: PrometheusRecorder,
    outcomes: Outcomes,
}

/// The counters of fixed labels, registered when the server starts (so that they are
/// rendered at 0 before anything happened) and counted through their handles.
struct Outcomes {
    /// Booking outcomes: confirmed, waitlisted, promoted, cancelled.
    bookings: [Counter; 4],
    holds_expired: Counter,
    /// Offers by outcome: made, accepted, declined, expired.
    offers: [Counter; 4],
    /// Notifications handed to the notifier (RabbitMQ: published).
    notifications_published: Counter,
    /// Of those, the ones the notifier accepted (RabbitMQ: confirmed by the broker), then
    /// marked sent.
    notifications_confirmed: Counter,
    /// Of those, the ones whose delivery failed; they stay in the outbox for the next round.
    notifications_failed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENCY.into()), &BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let outcomes = metrics::with_local_recorder(&recorder, || {
            describe_counter!(REQUESTS, "HTTP requests by route, method and status.");
            describe_histogram!(LATENCY, Unit::Seconds, "Time to answer a request, by route.");
            describe_counter!("happening_bookings_total", "Booking outcomes (from the notification outbox).");
            describe_counter!("happening_holds_expired_total", "Holds that ran out.");
            describe_counter!("happening_offers_total", "Waitlist offers made, and how they ended (from the notification outbox).");
            describe_counter!("happening_notifications_published_total", "Notifications handed to the notifier (RabbitMQ: published).");
            describe_counter!(
                "happening_notifications_confirmed_total",
                "Notifications the notifier accepted (RabbitMQ: confirmed by the broker), then marked sent."
            );
            describe_counter!(
                "happening_notifications_failed_total",
                "Notifications whose delivery failed; they stay in the outbox and are retried."
            );
            Outcomes {
                bookings: ["confirmed", "waitlisted", "promoted", "cancelled"]
                    .map(|o| counter!("happening_bookings_total", "outcome" => o)),
                holds_expired: counter!("happening_holds_expired_total"),
                offers: ["offered", "accepted", "declined", "expired"].map(|o| counter!("happening_offers_total", "outcome" => o)),
                notifications_published: counter!("happening_notifications_published_total"),
                notifications_confirmed: counter!("happening_notifications_confirmed_total"),
                notifications_failed: counter!("happening_notifications_failed_total"),
            }
        });
        Self { recorder, outcomes }
    }
}

impl Metrics {
    pub fn observe(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        let route = route_of(method, path);
        let method = static_method(method);
        metrics::with_local_recorder(&self.recorder, || {
            counter!(REQUESTS, "route" => route, "method" => method, "status" => status.to_string()).increment(1);
            histogram!(LATENCY, "route" => route).record(elapsed.as_secs_f64());
        });
    }

    /// Folds the latency samples recorded since the last upkeep or scrape into the histograms:
    /// the recorder keeps every sample until then, so the server runs this periodically.
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// Counts a batch handed to the notifier; then `confirmed` or `failed` says how it went.
    pub fn published(&self, batch: &[Notification]) {
        self.outcomes.notifications_published.increment(batch.len() as u64);
    }

    pub fn failed(&self, batch: &[Notification]) {
        self.outcomes.notifications_failed.increment(batch.len() as u64);
    }

    /// Counts delivered notifications, and the booking outcomes they report.
    pub fn confirmed(&self, batch: &[Notification]) {
        for n in batch {
            let c = match n.kind {
                NotificationKind::BookingConfirmed => &self.outcomes.bookings[0],
                NotificationKind::BookingWaitlisted => &self.outcomes.bookings[1],
                NotificationKind::WaitlistPromoted => &self.outcomes.bookings[2],
                NotificationKind::BookingCancelled | NotificationKind::EventCancelled => &self.outcomes.bookings[3],
                NotificationKind::HoldExpired => &self.outcomes.holds_expired,
                NotificationKind::WaitlistOffer => &self.outcomes.offers[0],
                NotificationKind::OfferAccepted => &self.outcomes.offers[1],
                NotificationKind::OfferDeclined => &self.outcomes.offers[2],
                NotificationKind::OfferExpired => &self.outcomes.offers[3],
                _ => continue,
            };
            c.increment(1);
        }
        self.outcomes.notifications_confirmed.increment(batch.len() as u64);
    }

    /// The text format; `outbox_depth` is read from the store by the caller (`None` when the
    /// store did not answer: the gauge is left out rather than reported wrong). The depth is a
    /// reading of this scrape, not a recorded value, so it is rendered by a recorder of its
    /// own made for the scrape.
    pub fn render(&self, outbox_depth: Option<u64>) -> String {
        let mut out = self.recorder.handle().render();
        if let Some(depth) = outbox_depth {
            let reading = PrometheusBuilder::new().build_recorder();
            metrics::with_local_recorder(&reading, || {
                describe_gauge!(OUTBOX_DEPTH, "Notifications written but not yet delivered to the notifier.");
                gauge!(OUTBOX_DEPTH).set(depth as f64);
            });
            out.push_str(&reading.handle().render());
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
    for r in routes() {
        if fits(&r.path, &segs) {
            if r.method == method {
                return &r.path;
            }
            fallback.get_or_insert(r.path.as_str());
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
        assert!(text.contains("# TYPE happening_http_request_duration_seconds histogram"), "{text}");
        assert!(text.contains("happening_bookings_total{outcome=\"promoted\"} 0"), "registered at 0: {text}");
    }

    #[test]
    fn servers_count_apart() {
        let (a, b) = (Metrics::default(), Metrics::default());
        a.observe("GET", "/events", 200, Duration::from_millis(1));
        a.published(&[]);
        // The upkeep folds the sample into the histogram: nothing lost, nothing twice.
        a.upkeep();
        a.upkeep();
        assert!(a.render(None).contains("happening_http_request_duration_seconds_count{route=\"/events\"} 1"), "{}", a.render(None));
        assert!(a.render(None).contains("happening_http_requests_total{route=\"/events\",method=\"GET\",status=\"200\"} 1"));
        assert!(!b.render(None).contains("happening_http_requests_total{"), "{}", b.render(None));
    }
}
