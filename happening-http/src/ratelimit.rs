//! Per-user rate limit: a token bucket per user (`rate` per second, `burst` at most).
//! Off unless configured.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use happening_core::ids::UserId;

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<UserId, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        Self { rate: rate_per_sec, burst: f64::from(burst.max(1)), buckets: Mutex::new(HashMap::new()) }
    }

    /// `Ok` if the user may go on, else the seconds to wait.
    pub fn check(&self, user: UserId) -> Result<(), u64> {
        let now = Instant::now();
        let mut b = self.buckets.lock().expect("rate limiter lock");
        if b.len() > 100_000 {
            // Forget full buckets; they are the default state anyway.
            let (rate, burst) = (self.rate, self.burst);
            b.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(user).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse() {
        let l = RateLimiter::new(0.001, 3);
        let u = UserId::new();
        assert!(l.check(u).is_ok());
        assert!(l.check(u).is_ok());
        assert!(l.check(u).is_ok());
        assert!(l.check(u).is_err());
        assert!(l.check(UserId::new()).is_ok(), "buckets are per user");
    }
}
