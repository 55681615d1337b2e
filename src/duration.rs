//! The one duration grammar and the one duration formatter of warden. Alert conditions
//! (`for 5m`), schedule triggers (`every 1h30m`) and the CLI all read and write durations
//! here, so `1h30m` means the same everywhere and what warden prints it can read back.
//!
//! Grammar: one or more `<whole number><unit>` parts, units `s`, `m`, `h`, `d`
//! (`30s`, `5m`, `2d`, `1h30m`). Hand-written rather than humantime: humantime also takes
//! months, years, nanoseconds and spaces, which a config should refuse rather than
//! silently accept; the grammar is ten lines.

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing, a part without a unit, an unknown unit, or a number out of range.
    #[error(
        "{0:?} is not a duration; write a whole number and a unit (s, m, h, d), e.g. 30s, 5m, 6h or 1h30m"
    )]
    Syntax(String),
}

/// Parses `30s`, `5m`, `6h`, `1d`, `1h30m`. Zero (`0s`) is a valid duration; callers that
/// need a positive one say so in their own words.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError::Syntax(text.to_string());
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// `2d2h`, `27h`, `1m30s`, `30s`, `1.5s`: compact, readable, and (for whole seconds)
/// accepted back by [`parse`].
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return if d.is_zero() {
            "0s".to_string()
        } else {
            format!("{:.1}s", d.as_secs_f64())
        };
    }
    if s < 60 {
        return if d.subsec_millis() == 0 {
            format!("{s}s")
        } else {
            format!("{:.1}s", d.as_secs_f64())
        };
    }
    // Days only from two days on: "27h" reads better than "1d3h".
    let days = if s >= 2 * 86_400 { s / 86_400 } else { 0 };
    let (h, m, sec) = ((s - days * 86_400) / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    for (v, u) in [(days, "d"), (h, "h"), (m, "m"), (sec, "s")] {
        if v > 0 {
            out.push_str(&v.to_string());
            out.push_str(u);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_takes_single_and_combined_units() {
        let secs = |t| parse(t).map(|d| d.as_secs());
        assert_eq!(secs("30s"), Ok(30));
        assert_eq!(secs("5m"), Ok(300));
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("1d"), Ok(86_400));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("0s"), Ok(0));
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "1.5h",
            "1h 30m",
            "-5s",
            "99999999999999999999d",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn durations_read_well_and_read_back() {
        assert_eq!(format(Duration::from_secs(27 * 3600)), "27h");
        assert_eq!(format(Duration::from_secs(50 * 3600)), "2d2h");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::ZERO), "0s");
        for secs in [0, 1, 59, 60, 90, 3600, 5400, 86_400, 200_000, 1_000_000] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse(&format(d)), Ok(d), "{secs}s must read back");
        }
    }
}
