//! The condition grammar shared by alert rules and programs' `restart_when`: a threshold
//! over a measured quantity held for a while (`cpu_percent > 90 for 5m`) or a count of an
//! event kind within a window (`crashed >= 3 in 10m`). Parsing, the canonical text, the
//! plain words events use, and the `restart_when` check. Evaluation against samples and
//! events is the alert rules' job (`alerts::rules`); this floor module imports only
//! `duration` and `units`, so `program` validates with it without reaching into alerts.

use std::fmt;
use std::time::Duration;

use crate::duration;
use crate::units::{ByteSize, show_bytes, unit_size};

/// True for an event-kind slug: lowercase letters, digits and `_`, 1–64 chars.
pub fn valid_event(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A measured quantity of a program (a numeric field of its resource samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Percent of one core.
    CpuPercent,
    /// Resident memory.
    MemoryBytes,
    /// Virtual memory.
    VirtualBytes,
    /// Threads in the process tree.
    Threads,
    /// Open files/handles.
    OpenFiles,
    /// Disk reads per second.
    DiskReadBps,
    /// Disk writes per second.
    DiskWriteBps,
    /// Players online (when a game query is configured).
    Players,
}

const METRICS: &[(&str, Metric)] = &[
    ("cpu_percent", Metric::CpuPercent),
    ("memory_bytes", Metric::MemoryBytes),
    ("virtual_bytes", Metric::VirtualBytes),
    ("threads", Metric::Threads),
    ("open_files", Metric::OpenFiles),
    ("disk_read_bps", Metric::DiskReadBps),
    ("disk_write_bps", Metric::DiskWriteBps),
    ("players", Metric::Players),
];

impl Metric {
    fn parse(s: &str) -> Option<Metric> {
        METRICS.iter().find(|(n, _)| *n == s).map(|(_, m)| *m)
    }

    /// The metric's name in conditions.
    pub fn name(self) -> &'static str {
        METRICS
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    fn is_bytes(self) -> bool {
        matches!(
            self,
            Metric::MemoryBytes | Metric::VirtualBytes | Metric::DiskReadBps | Metric::DiskWriteBps
        )
    }

    /// A value as people read it: `6.2 GiB`, `97.5 %`, `12`.
    pub fn show(self, v: f64) -> String {
        if self.is_bytes() {
            let suffix = if matches!(self, Metric::DiskReadBps | Metric::DiskWriteBps) {
                "/s"
            } else {
                ""
            };
            format!("{}{suffix}", show_bytes(v))
        } else if self == Metric::CpuPercent {
            format!("{v:.1} %")
        } else {
            trim_float(v)
        }
    }
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }

    /// The comparison as written in conditions.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// True when `a OP b` holds.
    pub fn test(self, a: f64, b: f64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `METRIC OP VALUE [for DURATION]`.
    Threshold {
        /// What is measured.
        metric: Metric,
        /// How it is compared.
        op: Op,
        /// With what.
        value: f64,
        /// How long it must hold before firing (zero: at once).
        hold: Duration,
    },
    /// `EVENT >= N in DURATION`.
    Count {
        /// Event kind counted.
        event: String,
        /// How many make it fire.
        at_least: u32,
        /// Within how long.
        window: Duration,
    },
}

/// Parses `90`, `90%`, `6GiB`, `512MB`, `1.5e3`.
fn parse_value(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() || c == '%')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit {
        "%" => 1.0,
        unit => unit_size(unit)?,
    };
    let v = n * mult;
    v.is_finite().then_some(v)
}

impl Condition {
    /// Parses a condition; the error says what is expected.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let usage = "write `METRIC OP VALUE [for DURATION]` (e.g. `cpu_percent > 90 for 5m`) or `EVENT >= N in DURATION` (e.g. `crashed >= 3 in 10m`), with spaces between the parts";
        let Some(first) = words.first() else {
            return Err(format!("is empty; {usage}"));
        };
        if let Some(metric) = Metric::parse(first) {
            let (op, value, hold) = match words.as_slice() {
                [_, op, value] => (op, value, None),
                [_, op, value, "for", d] => (op, value, Some(d)),
                _ => return Err(format!("is not a condition; {usage}")),
            };
            let op = Op::parse(op)
                .ok_or_else(|| format!("unknown comparison {op:?}; use >, >=, <, <=, == or !="))?;
            let value = parse_value(value).ok_or_else(|| {
                format!("{value:?} is not a number (units allowed: %, B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)")
            })?;
            let hold = match hold {
                None => Duration::ZERO,
                Some(d) => duration::parse(d).map_err(|e| e.to_string())?,
            };
            return Ok(Condition::Threshold {
                metric,
                op,
                value,
                hold,
            });
        }
        match words.as_slice() {
            [event, op @ (">=" | ">"), n, "in", d] => {
                if !valid_event(event) {
                    return Err(neither(event, usage));
                }
                let n: u32 = n
                    .parse()
                    .map_err(|_| format!("{n:?} is not a whole number"))?;
                let at_least = if *op == ">" { n.saturating_add(1) } else { n };
                if at_least == 0 {
                    return Err("the count must be at least 1".into());
                }
                let window = duration::parse(d)
                    .map_err(|e| e.to_string())
                    .and_then(|w| {
                        if w.is_zero() {
                            Err(format!("the window {d:?} is zero; it must be at least 1s"))
                        } else {
                            Ok(w)
                        }
                    })?;
                Ok(Condition::Count {
                    event: event.to_string(),
                    at_least,
                    window,
                })
            }
            _ if Metric::parse(first).is_none() && !valid_event(first) => {
                Err(neither(first, usage))
            }
            _ => Err(format!("is not a condition; {usage}")),
        }
    }
}

/// The error for a first word that names neither a metric nor an event kind.
fn neither(word: &str, usage: &str) -> String {
    let metrics: Vec<&str> = METRICS.iter().map(|(n, _)| *n).collect();
    format!(
        "{word:?} is neither a metric ({}) nor an event kind; {usage}",
        metrics.join(", ")
    )
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Threshold {
                metric,
                op,
                value,
                hold,
            } => {
                write!(
                    f,
                    "{} {} {}",
                    metric.name(),
                    op.symbol(),
                    metric.show(*value)
                )?;
                if !hold.is_zero() {
                    write!(f, " for {}", duration::format(*hold))?;
                }
                Ok(())
            }
            Condition::Count {
                event,
                at_least,
                window,
            } => write!(f, "{event} >= {at_least} in {}", duration::format(*window)),
        }
    }
}

impl Condition {
    /// The condition in plain words, as events say it: `memory above 6 GiB for 10m`.
    pub fn plain(&self) -> String {
        match self {
            Condition::Threshold {
                metric,
                op,
                value,
                hold,
            } => {
                let what = match metric {
                    Metric::CpuPercent => "CPU",
                    Metric::MemoryBytes => "memory",
                    Metric::VirtualBytes => "virtual memory",
                    Metric::Threads => "threads",
                    Metric::OpenFiles => "open files",
                    Metric::DiskReadBps => "disk reads",
                    Metric::DiskWriteBps => "disk writes",
                    Metric::Players => "players",
                };
                let how = match op {
                    Op::Gt => "above",
                    Op::Ge => "at or above",
                    Op::Lt => "below",
                    Op::Le => "at or below",
                    Op::Eq => "at",
                    Op::Ne => "not at",
                };
                let amount = match metric {
                    Metric::MemoryBytes | Metric::VirtualBytes => {
                        ByteSize(*value as u64).to_string()
                    }
                    Metric::DiskReadBps | Metric::DiskWriteBps => {
                        format!("{}/s", ByteSize(*value as u64))
                    }
                    Metric::CpuPercent => format!("{} %", trim_float(*value)),
                    _ => trim_float(*value),
                };
                let mut out = format!("{what} {how} {amount}");
                if !hold.is_zero() {
                    out.push_str(" for ");
                    out.push_str(&duration::format(*hold));
                }
                out
            }
            Condition::Count { .. } => self.to_string(),
        }
    }
}

/// Parses one `restart_when` condition of a program: a resource threshold held for a
/// while (`memory_bytes > 6GiB for 10m`). The error says what is expected.
pub fn restart_condition(text: &str) -> Result<Condition, String> {
    let c = Condition::parse(text)?;
    match &c {
        Condition::Count { .. } => Err(format!(
            "{text:?} counts events; restart_when takes resource conditions only, e.g. `memory_bytes > 6GiB for 10m` (a restart loop is the restart policy's job)"
        )),
        Condition::Threshold { hold, .. } if hold.is_zero() => Err(format!(
            "{text:?} has no duration; add `for DURATION` (e.g. `for 10m`): it is how long the condition must hold, and the shortest time between two restarts"
        )),
        Condition::Threshold { .. } => Ok(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_print() {
        let c = Condition::parse("memory_bytes > 6GiB for 2m").expect("parses");
        assert_eq!(
            c,
            Condition::Threshold {
                metric: Metric::MemoryBytes,
                op: Op::Gt,
                value: 6.0 * 1024.0 * 1024.0 * 1024.0,
                hold: Duration::from_secs(120)
            }
        );
        assert_eq!(c.to_string(), "memory_bytes > 6.0 GiB for 2m");
        assert_eq!(
            Condition::parse("cpu_percent > 90% for 5m")
                .expect("parses")
                .to_string(),
            "cpu_percent > 90.0 % for 5m"
        );
        assert_eq!(
            Condition::parse("players == 0 for 30m")
                .expect("parses")
                .to_string(),
            "players == 0 for 30m"
        );
        assert_eq!(
            Condition::parse("crashed >= 3 in 10m").expect("parses"),
            Condition::Count {
                event: "crashed".into(),
                at_least: 3,
                window: Duration::from_secs(600)
            }
        );
        for bad in [
            "",
            "cpu_percent >> 3",
            "cpu_percent > lots",
            "cpu_percent > 3 for ever",
            "Crashed >= 3 in 1m",
            "crashed >= 0 in 1m",
            "crashed >= 3 in 0s",
            "crashed == 3",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn restart_conditions_need_a_duration_and_read_in_plain_words() {
        let c = restart_condition("memory_bytes > 6GiB for 10m").expect("valid");
        assert_eq!(c.plain(), "memory above 6 GiB for 10m");
        let c = restart_condition("cpu_percent >= 150 for 30s").expect("valid");
        assert_eq!(c.plain(), "CPU at or above 150 % for 30s");
        assert!(
            restart_condition("memory_bytes > 6GiB")
                .expect_err("no duration")
                .contains("for DURATION")
        );
        assert!(
            restart_condition("crashed >= 3 in 10m")
                .expect_err("a count")
                .contains("resource conditions only")
        );
    }
}
