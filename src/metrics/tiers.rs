//! Which storage tier answers a chart query, and with which bucket size: pure functions,
//! so the choice is unit-tested without a database or a clock.

use crate::store::metrics::{HOUR_MS, MINUTE_MS, TEN_MINUTES_MS, Tier};

/// How long each tier keeps data, in ms, and the raw sample interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiers {
    /// Interval between raw samples.
    pub sample_ms: i64,
    /// Raw retention.
    pub raw_keep_ms: i64,
    /// 1-minute rollup retention (the 10-minute rollups are kept as long).
    pub minute_keep_ms: i64,
    /// 1-hour rollup retention.
    pub hour_keep_ms: i64,
}

/// The tier and bucket size answering a query for `[from, to)` with at most `points`
/// buckets at time `now`.
///
/// Among the tiers that still hold data as old as `from`, the coarsest one whose
/// resolution is fine enough for the wanted bucket (`(to - from) / points`) is chosen: it
/// reads the fewest rows. "Fine enough" allows a resolution up to 1.5 times the wanted
/// bucket (at least two thirds of the points asked for): 30 days at 1000 points read 720
/// hours rather than 4,320 ten-minute rows, for a chart that looks the same. When none
/// is fine enough, the finest one holding the period is used; when none holds it, the
/// hourly one. The bucket is never finer than the tier's resolution, so at most `points`
/// come back.
pub fn choose(t: &Tiers, now: i64, from: i64, to: i64, points: u32) -> (Tier, i64) {
    let span = (to - from).max(1);
    let points = i64::from(points.max(1));
    let want = (span + points - 1) / points;
    let all = [
        (Tier::Raw, t.sample_ms.max(1), t.raw_keep_ms),
        (Tier::Minute, MINUTE_MS, t.minute_keep_ms),
        (Tier::TenMinutes, TEN_MINUTES_MS, t.minute_keep_ms),
        (Tier::Hour, HOUR_MS, t.hour_keep_ms),
    ];
    let holding: Vec<_> = all
        .iter()
        .filter(|(_, _, keep)| from >= now - keep)
        .collect();
    let pick = holding
        .iter()
        .rev()
        .find(|(_, res, _)| *res * 2 <= want * 3)
        .or_else(|| holding.first())
        .copied()
        .unwrap_or(&all[all.len() - 1]);
    let (tier, res, _) = *pick;
    let step = if tier == Tier::Raw {
        want
    } else {
        want.max(res)
    };
    (tier, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const T: Tiers = Tiers {
        sample_ms: 1000,
        raw_keep_ms: 2 * DAY,
        minute_keep_ms: 30 * DAY,
        hour_keep_ms: 365 * DAY,
    };
    const NOW: i64 = 1_000 * DAY;

    #[test]
    fn short_recent_ranges_read_raw() {
        let (tier, step) = choose(&T, NOW, NOW - 3_600_000, NOW, 1000);
        assert_eq!(tier, Tier::Raw);
        assert_eq!(step, 3600);
    }

    #[test]
    fn a_day_at_1000_points_reads_minutes() {
        let (tier, step) = choose(&T, NOW, NOW - DAY, NOW, 1000);
        assert_eq!(tier, Tier::Minute);
        assert_eq!(step, 86_400);
    }

    #[test]
    fn a_week_reads_ten_minutes_a_month_and_a_year_read_hours() {
        let (tier, step) = choose(&T, NOW, NOW - 7 * DAY, NOW, 1000);
        assert_eq!((tier, step), (Tier::TenMinutes, 604_800));
        let (tier, step) = choose(&T, NOW, NOW - 30 * DAY, NOW, 1000);
        assert_eq!(
            (tier, step),
            (Tier::Hour, HOUR_MS),
            "720 points, not 4,320 rows"
        );
        let (tier, step) = choose(&T, NOW, NOW - 365 * DAY, NOW, 1000);
        assert_eq!(tier, Tier::Hour);
        assert_eq!(step, 31_536_000);
    }

    #[test]
    fn old_short_ranges_fall_back_to_the_tier_that_still_holds_them() {
        // One hour, 10 days ago: raw is gone, minutes remain.
        let (tier, step) = choose(&T, NOW, NOW - 10 * DAY, NOW - 10 * DAY + 3_600_000, 1000);
        assert_eq!(tier, Tier::Minute);
        assert_eq!(
            step, MINUTE_MS,
            "never finer than the tier: at most 60 points here"
        );
        // Two months ago: only hours.
        assert_eq!(
            choose(&T, NOW, NOW - 60 * DAY, NOW - 59 * DAY, 1000).0,
            Tier::Hour
        );
        // Beyond every retention: hours (empty, but well-defined).
        assert_eq!(
            choose(&T, NOW, NOW - 900 * DAY, NOW - 899 * DAY, 10).0,
            Tier::Hour
        );
    }

    #[test]
    fn never_more_buckets_than_points() {
        for (span, points) in [(1, 1), (999, 1000), (3_600_001, 7), (DAY * 31, 999), (5, 3)] {
            let (_, step) = choose(&T, NOW, NOW - span, NOW, points);
            let buckets = (span + step - 1) / step;
            assert!(
                buckets <= i64::from(points),
                "span {span} points {points} step {step}"
            );
        }
    }
}
