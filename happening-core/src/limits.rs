//! Limits on every size and count the engine accepts. Every input is checked against these
//! before anything changes, so a request can never grow memory or work without bound.

/// The engine's limits. `Limits::default()` is what the server runs with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most seats one booking or hold may ask for (50 by default, as the original API).
    pub seats_per_booking_max: u32,
    /// Largest event (seats). One bit per seat in memory, so 1,000,000 seats cost 125 KiB.
    pub capacity_max: u32,
    /// Largest `waitlist_max` an event may have.
    pub waitlist_max_limit: u32,
    /// Shortest hold, in milliseconds (1 s by default).
    pub hold_ttl_ms_min: u64,
    /// Longest hold, in milliseconds (1 hour by default).
    pub hold_ttl_ms_max: u64,
    /// Shortest time an offer stays open (`offer_ttl_seconds`), in seconds (1 by default).
    pub offer_ttl_seconds_min: u32,
    /// Longest time an offer stays open, in seconds (30 days by default).
    pub offer_ttl_seconds_max: u32,
    /// Longest event, organization or user name, in bytes (200 by default).
    pub name_bytes_max: usize,
    /// Longest event description, in bytes (5,000 by default).
    pub description_bytes_max: usize,
    /// Longest event category, in bytes (50 by default).
    pub category_bytes_max: usize,
    /// Longest idempotency key, in bytes.
    pub idempotency_key_bytes_max: usize,
    /// Most rows one list call returns.
    pub page_size_max: u32,
    /// Most waiting bookings promoted by one promotion pass. A pass that reaches it marks
    /// the event for `Engine::reconcile_dirty`, which runs the next one, so this bounds the
    /// latency of one request, not what gets promoted.
    pub promotions_per_pass_max: u32,
}

impl Limits {
    /// Whether `key` is a valid idempotency key: 1 to `idempotency_key_bytes_max` visible
    /// ASCII characters, what an HTTP header carries unchanged. The one rule for every caller.
    pub fn idempotency_key_ok(&self, key: &str) -> bool {
        !key.is_empty() && key.len() <= self.idempotency_key_bytes_max && key.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            seats_per_booking_max: 50,
            capacity_max: 1_000_000,
            waitlist_max_limit: 10_000_000,
            hold_ttl_ms_min: 1_000,
            hold_ttl_ms_max: 3_600_000,
            offer_ttl_seconds_min: 1,
            // 30 days: longer than any ticketing system keeps a waitlist offer open.
            offer_ttl_seconds_max: 30 * 24 * 3600,
            name_bytes_max: 200,
            description_bytes_max: 5_000,
            category_bytes_max: 50,
            idempotency_key_bytes_max: 200,
            page_size_max: 500,
            promotions_per_pass_max: 1_000,
        }
    }
}
