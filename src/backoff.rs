//! The one backoff of warden: program restarts, job step retries and alert deliveries all
//! wait `initial × 2^(n−1)` capped at a maximum, and spread by jitter so that things that
//! failed together do not retry together.

use std::time::Duration;

/// `initial × 2^(n−1)` capped at `max`, for retry number `n` (1 = the first retry; 0 is
/// treated as 1). Never overflows: the doubling stops at 2^30.
pub fn exponential(initial: Duration, max: Duration, n: u32) -> Duration {
    let exp = n.saturating_sub(1).min(30);
    initial.saturating_mul(1u32 << exp).min(max)
}

/// `d` lowered by up to `spread` (a fraction of `d`, 0 to 1); `jitter` (0 to 1, usually
/// random) picks how much of that spread is taken.
pub fn jitter_down(d: Duration, spread: f64, jitter: f64) -> Duration {
    d.mul_f64(1.0 - spread.clamp(0.0, 1.0) * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_retry_and_stops_at_the_cap() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(1));
        let ms = |n| exponential(i, m, n).as_millis();
        assert_eq!(
            [ms(0), ms(1), ms(2), ms(3), ms(4)],
            [100, 100, 200, 400, 800]
        );
        assert_eq!(ms(5), 1000);
        assert_eq!(ms(u32::MAX), 1000);
        assert_eq!(exponential(Duration::MAX, Duration::MAX, 40), Duration::MAX);
    }

    #[test]
    fn jitter_lowers_by_at_most_the_spread() {
        let d = Duration::from_secs(4);
        assert_eq!(jitter_down(d, 0.25, 0.0), d);
        assert_eq!(jitter_down(d, 0.25, 1.0), Duration::from_secs(3));
        assert_eq!(jitter_down(d, 0.5, 1.0), Duration::from_secs(2));
        assert_eq!(jitter_down(d, 2.0, 7.0), Duration::ZERO);
    }
}
