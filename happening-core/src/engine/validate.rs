//! Input checks, done before anything changes. Each failure names the field and says why.

use crate::error::{Error, Result};
use crate::ids::SeatNo;
use crate::limits::Limits;

/// Resolves `seats` and `seat_numbers` into (count, wanted seats), checking both.
pub(super) fn seats(seats: Option<u32>, numbers: Option<&[SeatNo]>, capacity: u32, limits: &Limits) -> Result<(u32, Vec<SeatNo>)> {
    let max = limits.seats_per_booking_max;
    let numbers = match numbers {
        Some([]) if seats.is_none() => return Err(Error::invalid("seat_numbers", "must not be empty")),
        Some([]) | None => Vec::new(),
        Some(list) => {
            if list.len() > max as usize {
                return Err(Error::invalid("seat_numbers", format!("at most {max} seats per booking")));
            }
            if let Some(bad) = list.iter().find(|&&s| s < 1 || s > capacity) {
                return Err(Error::invalid("seat_numbers", format!("seat {bad} is not in 1..={capacity}")));
            }
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return Err(Error::invalid("seat_numbers", format!("seat {} appears twice", w[0])));
            }
            sorted
        }
    };
    let count = match (seats, numbers.len() as u32) {
        (Some(n), k) if k > 0 && n != k => {
            return Err(Error::invalid("seats", format!("is {n} but {k} seat_numbers were given")));
        }
        (Some(n), _) => n,
        (None, 0) => 1,
        (None, k) => k,
    };
    if count < 1 || count > max {
        return Err(Error::invalid("seats", format!("must be between 1 and {max}")));
    }
    if count > capacity {
        return Err(Error::invalid("seats", format!("exceeds the event's capacity of {capacity}")));
    }
    Ok((count, numbers))
}

/// Seats to cancel: not empty, distinct, bounded.
pub(super) fn seats_to_cancel(list: &[SeatNo], limits: &Limits) -> Result<Vec<SeatNo>> {
    if list.is_empty() {
        return Err(Error::invalid("seat_numbers", "must not be empty"));
    }
    if list.len() > limits.seats_per_booking_max as usize {
        return Err(Error::invalid("seat_numbers", format!("at most {} seats", limits.seats_per_booking_max)));
    }
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid("seat_numbers", format!("seat {} appears twice", w[0])));
    }
    Ok(sorted)
}

/// A required, trimmed, bounded, printable text.
pub(super) fn text(field: &'static str, value: &str, max_bytes: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    optional_text(field, Some(v), max_bytes).map(|v| v.expect("not empty"))
}

/// An optional bounded, printable text; blank means none.
pub(super) fn optional_text(field: &'static str, value: Option<&str>, max_bytes: usize) -> Result<Option<String>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if v.len() > max_bytes {
        return Err(Error::invalid(field, format!("longer than {max_bytes} bytes")));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(Some(v.to_string()))
}

pub(super) fn capacity(capacity: u32, limits: &Limits) -> Result<u32> {
    if capacity < 1 || capacity > limits.capacity_max {
        return Err(Error::invalid("total_slots", format!("must be between 1 and {}", limits.capacity_max)));
    }
    Ok(capacity)
}

pub(super) fn waitlist_max(max: Option<u32>, limits: &Limits) -> Result<Option<u32>> {
    match max {
        Some(m) if m > limits.waitlist_max_limit => {
            Err(Error::invalid("waitlist_max", format!("must be between 0 and {}", limits.waitlist_max_limit)))
        }
        m => Ok(m),
    }
}

pub(super) fn offer_ttl_seconds(ttl: Option<u32>, limits: &Limits) -> Result<Option<u32>> {
    let (min, max) = (limits.offer_ttl_seconds_min, limits.offer_ttl_seconds_max);
    match ttl {
        Some(t) if t < min || t > max => Err(Error::invalid("offer_ttl_seconds", format!("must be between {min} and {max}, or null"))),
        t => Ok(t),
    }
}

pub(super) fn idempotency_key(key: &str, limits: &Limits) -> Result<()> {
    if !limits.idempotency_key_ok(key) {
        let max = limits.idempotency_key_bytes_max;
        return Err(Error::invalid("idempotency_key", format!("must be 1 to {max} visible ASCII characters")));
    }
    Ok(())
}

/// A stable fingerprint of a request (FNV-1a over its fields), to tell a replay from a reuse
/// of the same idempotency key for another request. Stable across releases, since stored.
#[derive(Default)]
pub(super) struct Fingerprint(u64);

impl Fingerprint {
    pub(super) fn new(op: &str) -> Self {
        let mut f = Self(0xcbf2_9ce4_8422_2325);
        f.bytes(op.as_bytes());
        f
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes.iter().chain(&[0xff]) {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    pub(super) fn u32(&mut self, n: u32) -> &mut Self {
        self.bytes(&n.to_le_bytes())
    }

    pub(super) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_rules() {
        let l = Limits::default();
        assert_eq!(seats(None, None, 10, &l).unwrap(), (1, vec![]));
        assert_eq!(seats(None, Some(&[3, 1]), 10, &l).unwrap(), (2, vec![1, 3]));
        assert!(matches!(seats(Some(3), Some(&[1, 2]), 10, &l), Err(Error::Invalid { field: "seats", .. })));
        assert!(matches!(seats(None, Some(&[1, 1]), 10, &l), Err(Error::Invalid { field: "seat_numbers", .. })));
        assert!(matches!(seats(None, Some(&[0]), 10, &l), Err(Error::Invalid { field: "seat_numbers", .. })));
        assert!(matches!(seats(None, Some(&[11]), 10, &l), Err(Error::Invalid { field: "seat_numbers", .. })));
        assert!(matches!(seats(Some(0), None, 10, &l), Err(Error::Invalid { field: "seats", .. })));
        assert!(matches!(seats(Some(51), None, 100, &l), Err(Error::Invalid { field: "seats", .. })));
        assert!(matches!(seats(Some(11), None, 10, &l), Err(Error::Invalid { field: "seats", .. })));
        assert!(matches!(seats(None, Some(&[]), 10, &l), Err(Error::Invalid { field: "seat_numbers", .. })));
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(text("name", "  a ", 5).unwrap(), "a");
        assert!(text("name", "   ", 5).is_err());
        assert!(text("name", "abcdef", 5).is_err());
        assert!(text("name", "a\u{0}b", 5).is_err());
        assert_eq!(optional_text("d", Some(" "), 5).unwrap(), None);
    }

    #[test]
    fn fingerprints_differ_by_field_boundaries() {
        let a = Fingerprint::new("book").bytes(b"ab").bytes(b"c").finish();
        let b = Fingerprint::new("book").bytes(b"a").bytes(b"bc").finish();
        assert_ne!(a, b);
    }
}
