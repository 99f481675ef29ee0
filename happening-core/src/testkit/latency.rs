//! Latency figures for the benchmarks and load runs: one percentile rule for all of them,
//! so that a p99 printed by one tool means what it means in another.

/// The `q` quantile (0.0 to 1.0) of samples sorted ascending, by the nearest rank:
/// the sample at index `round((n - 1) * q)`. `None` when there are no samples.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    debug_assert!((0.0..=1.0).contains(&q), "a quantile is between 0 and 1: {q}");
    let last = sorted.len().checked_sub(1)?;
    let i = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
    Some(sorted[i.min(last)])
}

/// The `q` quantile of latencies in microseconds, sorted ascending, in milliseconds (0.0
/// when there are none).
pub fn percentile_ms<T: Copy + Into<u64>>(sorted_us: &[T], q: f64) -> f64 {
    percentile(sorted_us, q).map_or(0.0, |us| us.into() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_of_sorted_samples() {
        let v: Vec<u32> = (1..=101).collect();
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&v, 0.5), Some(51));
        assert_eq!(percentile(&v, 0.99), Some(100));
        assert_eq!(percentile(&v, 1.0), Some(101));
        assert_eq!(percentile::<u32>(&[], 0.5), None);
        assert_eq!(percentile(&[7u64], 0.99), Some(7));
        assert_eq!(percentile(&[1u64, 2], 0.5), Some(2), "rounds half away from zero");
    }

    #[test]
    fn milliseconds_of_microseconds() {
        assert_eq!(percentile_ms(&[1_500u32, 2_500], 1.0), 2.5);
        assert_eq!(percentile_ms::<u64>(&[], 0.99), 0.0);
    }
}
