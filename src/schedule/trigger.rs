//! When a schedule fires: cron expressions (5 or 6 fields, via `croner`) in a time zone,
//! and simple intervals (`every 6h`). Pure functions of wall-clock time, so every rule here
//! is unit-tested without waiting.

use std::time::Duration;

use chrono::{DateTime, Local, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed trigger.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A cron expression.
    Cron(Box<Cron>),
    /// Every so often, aligned to the unix epoch (so `every 30s` fires at :00 and :30, and
    /// `every 6h` at 00:00, 06:00, 12:00 and 18:00 UTC).
    Every(Duration),
}

/// The time zone a cron expression is read in.
#[derive(Debug, Clone, Copy)]
pub enum Zone {
    /// The host's local time zone.
    Local,
    /// An IANA zone.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `None` is the host's zone; otherwise an IANA name such as `Europe/Berlin`.
    pub fn parse(name: Option<&str>) -> Result<Zone, String> {
        match name {
            None => Ok(Zone::Local),
            Some(n) => n.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
                format!("{n:?} is not a known IANA time zone; write e.g. \"Europe/Berlin\", \"America/New_York\" or \"UTC\"")
            }),
        }
    }
}

impl Trigger {
    /// Parses a cron expression (5 fields, or 6 with a leading seconds field) or an
    /// interval (`every 30s`, `every 5m`, `every 6h`, `every 1d`, `every 1h30m`). The error
    /// says precisely what is wrong.
    pub fn parse(text: &str) -> Result<Trigger, String> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("every") {
            return parse_interval(rest.trim()).map(Trigger::Every);
        }
        let fields = t.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!(
                "{t:?} has {fields} field(s); a cron expression has 5 (minute hour day-of-month month day-of-week) or 6 (a leading seconds field), or write an interval such as \"every 6h\""
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(t)
            .map_err(|e| format!("{t:?} is not a valid cron expression: {e}"))?;
        // An expression can be well-formed yet never match (e.g. 30 February).
        if cron
            .find_next_occurrence(&Utc::now().with_timezone(&chrono_tz::UTC), false)
            .is_err()
        {
            return Err(format!("{t:?} never matches any date"));
        }
        Ok(Trigger::Cron(Box::new(cron)))
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Zone) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Every(d) => {
                let step = i64::try_from(d.as_millis()).ok()?.max(1);
                let ms = after.timestamp_millis();
                let next = (ms.div_euclid(step) + 1).checked_mul(step)?;
                DateTime::from_timestamp_millis(next)
            }
            Trigger::Cron(c) => match zone {
                Zone::Local => next_in(c, &after.with_timezone(&Local)),
                Zone::Named(tz) => next_in(c, &after.with_timezone(&tz)),
            },
        }
    }

    /// The next `n` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, zone: Zone, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut t = after;
        while out.len() < n {
            match self.next_after(t, zone) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    /// The shortest gap between consecutive fire times, looking at the next few: the
    /// interval itself, or for cron the smallest gap among the next 10 fires.
    pub fn min_gap(&self, from: DateTime<Utc>, zone: Zone) -> Option<Duration> {
        match self {
            Trigger::Every(d) => Some(*d),
            Trigger::Cron(_) => self
                .upcoming(from, zone, 11)
                .windows(2)
                .filter_map(|w| (w[1] - w[0]).to_std().ok())
                .min(),
        }
    }

    /// Fire times in `(last, now]`: how many there were (counting at most `cap`) and the
    /// latest of them. Used to find runs missed while warden was down.
    pub fn missed(
        &self,
        last: DateTime<Utc>,
        now: DateTime<Utc>,
        zone: Zone,
        cap: usize,
    ) -> (usize, Option<DateTime<Utc>>) {
        let mut count = 0;
        let mut latest = None;
        let mut t = last;
        while let Some(next) = self.next_after(t, zone) {
            if next > now {
                break;
            }
            count += 1;
            latest = Some(next);
            if count >= cap {
                // Jump ahead: only the count is capped, the latest time must be exact.
                if let Trigger::Every(_) = self {
                    let mut back = now + chrono::TimeDelta::milliseconds(1);
                    while let Some(prev) = self.prev_every(back) {
                        if prev <= now {
                            latest = Some(prev);
                            break;
                        }
                        back = prev;
                    }
                }
                break;
            }
            t = next;
        }
        (count, latest)
    }

    fn prev_every(&self, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Trigger::Every(d) = self else { return None };
        let step = i64::try_from(d.as_millis()).ok()?.max(1);
        let ms = before.timestamp_millis() - 1;
        DateTime::from_timestamp_millis(ms.div_euclid(step) * step)
    }

    /// A short description for people, e.g. `every 6h` or croner's reading of the cron.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Every(d) => format!("every {}", crate::duration::format(*d)),
            Trigger::Cron(c) => c.describe(),
        }
    }
}

fn next_in<Tz: TimeZone>(cron: &Cron, after: &DateTime<Tz>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(after, false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses the interval of `every …` with the one duration grammar ([`crate::duration`]).
fn parse_interval(text: &str) -> Result<Duration, String> {
    let total = crate::duration::parse(text)
        .map_err(|_| {
            format!(
                "\"every {text}\" is not an interval; write a number and a unit (s, m, h, d), e.g. \"every 30s\", \"every 6h\" or \"every 1h30m\""
            )
        })?
        .as_secs();
    if total == 0 {
        return Err(format!(
            "\"every {text}\" is zero; the shortest interval is 1s"
        ));
    }
    if total > 366 * 86_400 {
        return Err(format!(
            "\"every {text}\" is longer than a year; use a cron expression"
        ));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    #[test]
    fn five_and_six_field_cron() {
        let z = Zone::Named(chrono_tz::UTC);
        let t = Trigger::parse("0 4 * * *").expect("5 fields");
        assert_eq!(
            t.upcoming(at("2026-03-01T05:00:00Z"), z, 2),
            [at("2026-03-02T04:00:00Z"), at("2026-03-03T04:00:00Z")]
        );
        let t = Trigger::parse("*/2 * * * * *").expect("6 fields");
        assert_eq!(
            t.upcoming(at("2026-03-01T05:00:01Z"), z, 3),
            [
                at("2026-03-01T05:00:02Z"),
                at("2026-03-01T05:00:04Z"),
                at("2026-03-01T05:00:06Z")
            ]
        );
        assert_eq!(
            t.min_gap(at("2026-03-01T05:00:01Z"), z),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn time_zones_shift_cron_and_respect_dst() {
        let t = Trigger::parse("0 4 * * *").expect("valid");
        let berlin = Zone::parse(Some("Europe/Berlin")).expect("zone");
        // Winter: 04:00 in Berlin is 03:00 UTC; after the spring change it is 02:00 UTC.
        assert_eq!(
            t.next_after(at("2026-03-01T00:00:00Z"), berlin),
            Some(at("2026-03-01T03:00:00Z"))
        );
        assert_eq!(
            t.next_after(at("2026-04-01T00:00:00Z"), berlin),
            Some(at("2026-04-01T02:00:00Z"))
        );
        assert!(Zone::parse(Some("Nowhere/Special")).is_err());
        assert!(Zone::parse(None).is_ok());
    }

    #[test]
    fn invalid_expressions_get_precise_messages() {
        let e = Trigger::parse("* * *").expect_err("3 fields");
        assert!(e.contains("has 3 field(s)"), "{e}");
        let e = Trigger::parse("0 0 0 1 1 * 2030").expect_err("7 fields");
        assert!(e.contains("has 7 field(s)"), "{e}");
        let e = Trigger::parse("61 * * * *").expect_err("minute 61");
        assert!(e.contains("not a valid cron expression"), "{e}");
        let e = Trigger::parse("0 0 30 2 *").expect_err("30 February");
        assert!(e.contains("never matches"), "{e}");
        let e = Trigger::parse("every 5 parsecs").expect_err("unit");
        assert!(e.contains("not an interval"), "{e}");
        let e = Trigger::parse("every 0s").expect_err("zero");
        assert!(e.contains("zero"), "{e}");
    }

    #[test]
    fn intervals_are_epoch_aligned() {
        let z = Zone::Local;
        let t = Trigger::parse("every 6h").expect("valid");
        assert_eq!(
            t.next_after(at("2026-03-01T05:00:00Z"), z),
            Some(at("2026-03-01T06:00:00Z"))
        );
        let t = Trigger::parse("every 1h30m").expect("valid");
        assert_eq!(
            t.min_gap(at("2026-03-01T05:00:00Z"), z),
            Some(Duration::from_secs(5400))
        );
        let t = Trigger::parse("every 30s").expect("valid");
        assert_eq!(
            t.next_after(at("2026-03-01T05:00:30Z"), z),
            Some(at("2026-03-01T05:01:00Z"))
        );
    }

    #[test]
    fn missed_fires_are_counted_with_the_latest() {
        let z = Zone::Named(chrono_tz::UTC);
        let t = Trigger::parse("0 * * * *").expect("hourly");
        let (n, latest) = t.missed(
            at("2026-03-01T00:00:00Z"),
            at("2026-03-01T05:30:00Z"),
            z,
            1000,
        );
        assert_eq!(n, 5);
        assert_eq!(latest, Some(at("2026-03-01T05:00:00Z")));
        let (n, latest) = t.missed(
            at("2026-03-01T05:00:00Z"),
            at("2026-03-01T05:30:00Z"),
            z,
            1000,
        );
        assert_eq!((n, latest), (0, None));
        let t = Trigger::parse("every 1s").expect("valid");
        let (n, latest) = t.missed(
            at("2026-03-01T00:00:00Z"),
            at("2026-03-02T00:00:00.5Z"),
            z,
            100,
        );
        assert_eq!(n, 100);
        assert_eq!(latest, Some(at("2026-03-02T00:00:00Z")));
    }
}
