//! Which backups a retention policy keeps: a pure function of the backups' times and the
//! policy (grandfather-father-son), so it is tested with fixed dates and no clock.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, TimeZone};

use super::settings::RetentionPolicy;

/// A calendar period (day, ISO week or month) as a comparable key.
type Period = (i32, u32, u32);

/// The ids of the backups to keep. `backups` are `(id, time)` of finished backups in any
/// order; times are in the zone whose calendar defines days, weeks and months.
///
/// - `keep_last` N: the N newest.
/// - `keep_daily` N: for each of the N most recent days that have a backup, its newest.
/// - `keep_weekly` N: the same per ISO week; `keep_monthly` N: per calendar month.
///
/// A backup kept by any rule is kept. With no rule set everything is kept.
pub fn keep<Tz: TimeZone>(
    backups: &[(i64, DateTime<Tz>)],
    policy: &RetentionPolicy,
) -> BTreeSet<i64> {
    if policy.keeps_all() {
        return backups.iter().map(|(id, _)| *id).collect();
    }
    let mut newest_first: Vec<&(i64, DateTime<Tz>)> = backups.iter().collect();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let mut kept = BTreeSet::new();
    if let Some(n) = policy.keep_last {
        kept.extend(newest_first.iter().take(n as usize).map(|(id, _)| *id));
    }
    let mut by_period = |n: Option<u32>, period: &dyn Fn(&DateTime<Tz>) -> Period| {
        let Some(n) = n else { return };
        let mut last = None;
        let mut count = 0;
        for (id, at) in &newest_first {
            let p = period(at);
            if last != Some(p) {
                if count == n {
                    break;
                }
                last = Some(p);
                count += 1;
                kept.insert(*id);
            }
        }
    };
    by_period(policy.keep_daily, &|t| (t.year(), t.month(), t.day()));
    by_period(policy.keep_weekly, &|t| {
        let w = t.iso_week();
        (w.year(), w.week(), 0)
    });
    by_period(policy.keep_monthly, &|t| (t.year(), t.month(), 0));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    /// Backups every 12 hours from 2026-01-01 00:00 to 2026-03-10 12:00 (ids ascending).
    fn twice_daily() -> Vec<(i64, DateTime<Utc>)> {
        let start = at("2026-01-01T00:00:00Z");
        (0..138)
            .map(|i| (i + 1, start + chrono::Duration::hours(12 * i)))
            .collect()
    }

    fn policy(
        last: Option<u32>,
        daily: Option<u32>,
        weekly: Option<u32>,
        monthly: Option<u32>,
    ) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: last,
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
        }
    }

    #[test]
    fn no_rule_keeps_everything() {
        let b = twice_daily();
        assert_eq!(keep(&b, &policy(None, None, None, None)).len(), b.len());
    }

    #[test]
    fn keep_last_keeps_the_newest() {
        let b = twice_daily();
        let k: Vec<i64> = keep(&b, &policy(Some(3), None, None, None))
            .into_iter()
            .collect();
        assert_eq!(k, vec![136, 137, 138]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_recent_day() {
        let b = twice_daily();
        // Last backup: id 138 at 2026-03-10 12:00; 136 is 2026-03-09 12:00; 134 is 03-08 12:00.
        let k: Vec<i64> = keep(&b, &policy(None, Some(3), None, None))
            .into_iter()
            .collect();
        assert_eq!(k, vec![134, 136, 138]);
    }

    #[test]
    fn gfs_combines_rules_exactly() {
        let b = twice_daily();
        let k: Vec<i64> = keep(&b, &policy(Some(2), Some(2), Some(2), Some(3)))
            .into_iter()
            .collect();
        // last 2: 137, 138. daily 2: 138 (03-10), 136 (03-09).
        // weekly 2: ISO week 11 of 2026 starts Monday 03-09 → 138; week 10 (03-02..03-08)
        // → newest is 03-08 12:00 = id 134.
        // monthly 3: March → 138; February → 02-28 12:00 = id 118; January → 01-31 12:00 = id 62.
        assert_eq!(k, vec![62, 118, 134, 136, 137, 138]);
    }

    #[test]
    fn days_follow_the_given_time_zone() {
        // 23:30 UTC on 03-01 is already 03-02 in UTC+2: two backups on the same local day.
        let tz = chrono::FixedOffset::east_opt(2 * 3600).expect("tz");
        let b = vec![
            (1, at("2026-03-01T23:30:00Z").with_timezone(&tz)),
            (2, at("2026-03-02T08:00:00Z").with_timezone(&tz)),
            (3, at("2026-03-01T12:00:00Z").with_timezone(&tz)),
        ];
        let k: Vec<i64> = keep(&b, &policy(None, Some(5), None, None))
            .into_iter()
            .collect();
        assert_eq!(k, vec![2, 3]);
    }
}
