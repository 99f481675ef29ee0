//! Per-user rate limit: governor's keyed GCRA limiter, one cell per user (`rate` per second,
//! `burst` at most at once). Off unless configured.
//!
//! Memory stays bounded: every 1,024 checks the limiter looks at how many users it tracks,
//! and past 100,000 it forgets the ones back at a full burst (the state a user it never saw
//! has anyway) and gives the memory back.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::Quota;
use happening_core::ids::UserId;

/// Users tracked before the ones at a full burst are forgotten.
const USERS_MAX: usize = 100_000;
/// Checks between two looks at the number of users tracked.
const SIZE_CHECK_EVERY: u32 = 1024;
/// The longest time one request's allowance takes to come back (a rate below one request a
/// year is one a year).
const PERIOD_MAX: Duration = Duration::from_secs(365 * 24 * 3600);

type Keyed = governor::RateLimiter<UserId, DefaultKeyedStateStore<UserId>, DefaultClock>;

/// Requests each user may make: on average `rate_per_sec` a second, `burst` at once
/// (`--rate-limit`, `--rate-limit-burst`). A request over it answers 429 with `Retry-After`.
pub struct RateLimiter {
    cells: Keyed,
    checks: AtomicU32,
}

impl RateLimiter {
    /// `rate_per_sec` requests a second on average (more than 0), `burst` at once (at least 1).
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        let period = Duration::try_from_secs_f64(1.0 / rate_per_sec).unwrap_or(PERIOD_MAX).clamp(Duration::from_nanos(1), PERIOD_MAX);
        let quota =
            Quota::with_period(period).expect("a period of at least 1 ns").allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"));
        Self { cells: governor::RateLimiter::keyed(quota), checks: AtomicU32::new(0) }
    }

    /// `Ok` if the user may go on, else the seconds to wait (at least 1).
    pub fn check(&self, user: UserId) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(SIZE_CHECK_EVERY) && self.cells.len() > USERS_MAX {
            self.cells.retain_recent();
            self.cells.shrink_to_fit();
        }
        self.cells.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.cells.clock().now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }

    /// Users tracked now.
    #[cfg(test)]
    fn users(&self) -> usize {
        self.cells.len()
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
        // The next token comes back after 1,000 s.
        let wait = l.check(u).unwrap_err();
        assert!((999..=1000).contains(&wait), "{wait}");
        assert!(l.check(UserId::new()).is_ok(), "buckets are per user");
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        let l = RateLimiter::new(1000.0, 1);
        let u = UserId::new();
        assert!(l.check(u).is_ok());
        assert_eq!(l.check(u), Err(1));
    }

    #[test]
    fn rates_out_of_range_are_clamped() {
        for rate in [1e-300, 1e300, f64::INFINITY] {
            let l = RateLimiter::new(rate, 1);
            assert!(l.check(UserId::new()).is_ok(), "{rate}");
        }
    }

    #[test]
    fn users_at_a_full_burst_are_forgotten() {
        // A fast rate: every user is back at a full burst at once.
        let l = RateLimiter::new(1e9, 1);
        for _ in 0..USERS_MAX + 1 {
            l.check(UserId::new()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
        // The next look at the size (every SIZE_CHECK_EVERY checks) forgets them.
        for _ in 0..SIZE_CHECK_EVERY {
            l.check(UserId::new()).unwrap();
        }
        assert!(l.users() < USERS_MAX, "{}", l.users());
    }
}
