//! Amounts of bytes, the one way warden reads and writes them: `ByteSize` (a limit as
//! people write it, `6GiB`, and as messages show it, `6 GiB`), `parse_bytes` and the
//! unit names it shares with conditions (`unit_size`), and `show_bytes` for measured
//! values (`6.2 GiB`: alert conditions, the CLI's tables).
//! A floor module: it imports nothing of warden.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// An amount of memory: a number of bytes, or text with a unit (`6GiB`, `512M`, `2 GB`).
/// Serialised as bytes, so a spec read back compares equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(value_type = u64)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => parse_bytes(&s).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{s:?} is not an amount of memory; write e.g. 6GiB, 512MiB, 2G or a number of bytes"
                ))
            }),
        }
    }
}

impl fmt::Display for ByteSize {
    /// `6 GiB`, `512 MiB`, `1.5 GiB`: how limits are shown in messages (a whole number
    /// of its unit without decimals, since people wrote it that way).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (x, unit) = scaled(self.0 as f64);
        if x.fract() == 0.0 {
            write!(f, "{x:.0} {unit}")
        } else {
            write!(f, "{x:.1} {unit}")
        }
    }
}

/// Parses `6GiB`, `6G` (binary, as Java's `-Xmx`), `6GB` (decimal), `512 MiB`, `1024`.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.trim().parse().ok()?;
    let mult = match unit.trim() {
        "K" | "k" => unit_size("KiB")?,
        "M" => unit_size("MiB")?,
        "G" => unit_size("GiB")?,
        "T" => unit_size("TiB")?,
        unit => unit_size(unit)?,
    };
    let v = n * mult;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

/// Bytes in one of the unit names every amount accepts: `B` (or none), `KiB`…`TiB`
/// (binary), `KB`/`kB`…`TB` (decimal).
pub fn unit_size(unit: &str) -> Option<f64> {
    let k = 1024f64;
    Some(match unit {
        "" | "B" => 1.0,
        "KiB" => k,
        "MiB" => k * k,
        "GiB" => k * k * k,
        "TiB" => k * k * k * k,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    })
}

/// A measured amount as people read it: `512 B`, `6.0 GiB`, `1.4 MiB` (one decimal above
/// bytes, so a column of readings lines up).
pub fn show_bytes(v: f64) -> String {
    let (x, unit) = scaled(v);
    if unit == "B" {
        format!("{x:.0} B")
    } else {
        format!("{x:.1} {unit}")
    }
}

/// `v` bytes in the largest binary unit (up to TiB) it reaches, and that unit.
fn scaled(v: f64) -> (f64, &'static str) {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v;
    let mut i = 0;
    while x.abs() >= 1024.0 && i < UNITS.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    (x, UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_parse_with_units() {
        assert_eq!(parse_bytes("6GiB"), Some(6 << 30));
        assert_eq!(parse_bytes("6G"), Some(6 << 30));
        assert_eq!(parse_bytes("512 MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("2GB"), Some(2_000_000_000));
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("5 parsecs"), None);
        assert_eq!(ByteSize(6 << 30).to_string(), "6 GiB");
        assert_eq!(ByteSize(1536 << 20).to_string(), "1.5 GiB");
    }

    #[test]
    fn measured_bytes_keep_one_decimal_above_bytes() {
        assert_eq!(show_bytes(0.0), "0 B");
        assert_eq!(show_bytes(1023.0), "1023 B");
        assert_eq!(show_bytes(1024.0), "1.0 KiB");
        assert_eq!(show_bytes(6.0 * 1024.0 * 1024.0 * 1024.0), "6.0 GiB");
        assert_eq!(show_bytes(1536.0 * 1024.0 * 1024.0), "1.5 GiB");
        assert_eq!(show_bytes(5000.0 * 1024f64.powi(4)), "5000.0 TiB");
    }
}
