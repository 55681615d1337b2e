//! The power sections of a program: start order (`after`, `requires`), resource
//! `limits`, and sleep when empty (`idle`). Types, parsing and validation only; the
//! supervisor enforces order, `os` applies limits, `sleep` guards the ports.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::game::QueryKind;
use super::{FieldError, ProgramSpec, valid_name};
use crate::units::ByteSize;

/// Default `deps_timeout_seconds`: five minutes, long enough for a database to recover.
pub fn default_deps_timeout() -> u64 {
    300
}

/// True for the default, which is then not serialised (stored specs stay as they were).
pub fn is_default_deps_timeout(v: &u64) -> bool {
    *v == default_deps_timeout()
}

/// Scheduling priority of a program's processes: `nice` on Linux, the priority class on
/// Windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessPriority {
    /// Runs only when nothing else wants the CPU (nice 19, IDLE_PRIORITY_CLASS).
    Idle,
    /// Yields to normal programs (nice 10, BELOW_NORMAL_PRIORITY_CLASS).
    BelowNormal,
    /// The default (nice 0, NORMAL_PRIORITY_CLASS).
    Normal,
    /// Ahead of normal programs (nice -5, ABOVE_NORMAL_PRIORITY_CLASS; needs root on Linux).
    AboveNormal,
    /// Ahead of nearly everything (nice -10, HIGH_PRIORITY_CLASS; needs root on Linux).
    High,
}

impl ProcessPriority {
    /// The Unix nice value.
    pub fn nice(self) -> i32 {
        match self {
            ProcessPriority::Idle => 19,
            ProcessPriority::BelowNormal => 10,
            ProcessPriority::Normal => 0,
            ProcessPriority::AboveNormal => -5,
            ProcessPriority::High => -10,
        }
    }
}

/// Resource limits of a program (its whole process tree).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory the program may use (bytes, or text like `6GiB`); above it the kernel kills
    /// it and warden reports `killed: out of memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<ByteSize>,
    /// CPU in percent of one core (150 = one and a half cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<f64>,
    /// Processes and threads the program may have at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    /// Relative share of disk time, 1-10000 (100 is the default of every program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_weight: Option<u16>,
    /// The cores (0-based) the program may run on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_affinity: Vec<usize>,
    /// `idle`, `below_normal`, `normal`, `above_normal` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<ProcessPriority>,
}

impl Limits {
    /// True when a control group (Linux) or job limit (Windows) is needed, as opposed to
    /// per-process settings (affinity, priority) alone.
    pub fn needs_group(&self) -> bool {
        self.memory_max.is_some()
            || self.cpu_max.is_some()
            || self.pids_max.is_some()
            || self.io_weight.is_some()
    }
}

/// What warden answers on while a server sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WakeProtocol {
    /// Minecraft Java over TCP: answers the Server List Ping, wakes on a login attempt.
    Minecraft,
    /// Steam A2S over UDP: wakes on the first packet, answers A2S_INFO with 0 players.
    A2s,
}

/// One port warden listens on while the server sleeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WakePort {
    /// `minecraft` (TCP) or `a2s` (UDP).
    pub protocol: WakeProtocol,
    /// The game's port.
    pub port: u16,
}

/// Sleep when empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdleSpec {
    /// Put the server to sleep after this many seconds without players (e.g. 600).
    pub empty_seconds: u64,
    /// Never put it to sleep during these local hours, e.g. `["18:00-23:30"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_awake: Vec<String>,
    /// The ports to guard while asleep; by default the game query's port (`slp` →
    /// `minecraft` over TCP, `a2s` → `a2s` over UDP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<WakePort>,
    /// The status message shown while asleep (Minecraft's server list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motd: Option<String>,
}

impl IdleSpec {
    /// The ports guarded while asleep: `listen`, or the one derived from the game query.
    pub fn effective_listen(&self, spec: &ProgramSpec) -> Vec<WakePort> {
        if !self.listen.is_empty() {
            return self.listen.clone();
        }
        let Some(q) = spec.game.as_ref().and_then(|g| g.effective_query()) else {
            return Vec::new();
        };
        let protocol = match q.kind {
            QueryKind::Slp => WakeProtocol::Minecraft,
            QueryKind::A2s => WakeProtocol::A2s,
            _ => return Vec::new(),
        };
        q.port
            .map(|port| vec![WakePort { protocol, port }])
            .unwrap_or_default()
    }

    /// True when `minute_of_day` (local time, 0-1439) falls in a `keep_awake` range.
    pub fn keeps_awake_at(&self, minute_of_day: u32) -> bool {
        self.keep_awake
            .iter()
            .filter_map(|r| parse_range(r))
            .any(|(a, b)| {
                if a <= b {
                    (a..b).contains(&minute_of_day)
                } else {
                    // Across midnight, e.g. 22:00-02:00.
                    minute_of_day >= a || minute_of_day < b
                }
            })
    }
}

/// `HH:MM-HH:MM` as minutes of the day.
fn parse_range(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let hm = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
    };
    Some((hm(a)?, hm(b)?))
}

/// Adds the problems of the power sections of `spec` to `errs`.
pub fn validate(spec: &ProgramSpec, errs: &mut Vec<FieldError>) {
    let mut err = |e: FieldError| errs.push(e);
    for (field, list) in [("after", &spec.after), ("requires", &spec.requires)] {
        for dep in list {
            if !valid_name(dep) {
                err(FieldError::invalid_name(field, dep));
            } else if *dep == spec.name {
                err(FieldError::cycle(field, &format!("{dep} -> {dep}")));
            }
        }
    }
    if spec.deps_timeout_seconds == 0 || spec.deps_timeout_seconds > 86_400 {
        err(FieldError::out_of_range("deps_timeout_seconds", 1, 86_400));
    }
    if let Some(l) = &spec.limits {
        if let Some(m) = l.memory_max
            && m.0 < 4 * 1024 * 1024
        {
            err(FieldError::too_small("limits.memory_max", "4 MiB"));
        }
        if let Some(c) = l.cpu_max
            && !(c.is_finite() && (1.0..=100_000.0).contains(&c))
        {
            err(FieldError::out_of_range("limits.cpu_max", 1, 100_000));
        }
        if l.pids_max == Some(0) {
            err(FieldError::too_small("limits.pids_max", 1));
        }
        if let Some(w) = l.io_weight
            && !(1..=10_000).contains(&w)
        {
            err(FieldError::out_of_range("limits.io_weight", 1, 10_000));
        }
        if l.cpu_affinity.iter().any(|&c| c >= 1024) {
            err(FieldError::out_of_range("limits.cpu_affinity", 0, 1023));
        }
    }
    if spec.restart_when.len() > 16 {
        err(FieldError::too_many("restart_when", 16));
    }
    for (i, text) in spec.restart_when.iter().enumerate() {
        if let Err(m) = crate::condition::restart_condition(text) {
            err(FieldError::invalid(format!("restart_when[{i}]"), text, &m));
        }
    }
    if let Some(idle) = &spec.idle {
        if idle.empty_seconds == 0 {
            err(FieldError::too_small("idle.empty_seconds", 1));
        }
        for r in &idle.keep_awake {
            if parse_range(r).is_none() {
                err(FieldError::invalid(
                    "idle.keep_awake",
                    r,
                    "write a range of local hours such as \"18:00-23:30\"",
                ));
            }
        }
        let has_query = spec
            .game
            .as_ref()
            .and_then(|g| g.effective_query())
            .is_some_and(|q| {
                matches!(
                    q.kind,
                    QueryKind::Slp | QueryKind::A2s | QueryKind::Palworld
                )
            });
        if !has_query {
            err(FieldError::needs("idle", "game.query"));
        }
        if idle.effective_listen(spec).is_empty() {
            err(FieldError::required("idle.listen"));
        }
        if let Some(m) = &idle.motd
            && m.chars().count() > 200
        {
            err(FieldError::too_long("idle.motd", 200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_text_and_numbers() {
        let l: Limits = serde_json::from_str(r#"{"memory_max":"64MiB","cpu_max":50}"#).expect("ok");
        assert_eq!(l.memory_max, Some(ByteSize(64 << 20)));
        let back: Limits =
            serde_json::from_str(&serde_json::to_string(&l).expect("json")).expect("ok");
        assert_eq!(back, l);
        assert!(serde_json::from_str::<Limits>(r#"{"memory_max":"much"}"#).is_err());
    }

    #[test]
    fn keep_awake_ranges() {
        let idle = IdleSpec {
            empty_seconds: 60,
            keep_awake: vec!["18:00-23:30".into(), "23:50-00:10".into()],
            listen: Vec::new(),
            motd: None,
        };
        assert!(idle.keeps_awake_at(18 * 60));
        assert!(!idle.keeps_awake_at(23 * 60 + 30));
        assert!(idle.keeps_awake_at(5));
        assert!(!idle.keeps_awake_at(12 * 60));
        assert_eq!(parse_range("25:00-01:00"), None);
    }

    #[test]
    fn a_whole_day_keeps_awake_at_every_minute() {
        let idle = IdleSpec {
            empty_seconds: 60,
            keep_awake: vec!["00:00-24:00".into()],
            listen: Vec::new(),
            motd: None,
        };
        assert!((0..1440).all(|m| idle.keeps_awake_at(m)));
        let none = IdleSpec {
            keep_awake: Vec::new(),
            ..idle
        };
        assert!((0..1440).all(|m| !none.keeps_awake_at(m)));
        assert!((0..24 * 60).contains(&crate::clock::local_minute_of_day()));
    }
}
