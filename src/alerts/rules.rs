//! Alert rules as a pure state machine: conditions (the grammar of `crate::condition`)
//! evaluated against resource samples and events, with time passed in (tests drive it
//! with tokio's paused clock or plain instants).
//!
//! Two kinds of condition:
//! - thresholds over a sample metric, held for a duration: `cpu_percent > 90 for 5m`;
//! - counts of an event kind within a window: `crashed >= 3 in 10m` (a restart loop).
//!   The event is any kind on the bus (lifecycle, notices from later producers such as
//!   health checks or backups), so new producers need no change here.
//!
//! A rule fires once when its condition becomes true and says "recovered" once when it
//! clears; nothing repeats in between. A cooldown keeps it from firing again too soon.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::model::{RuleAction, RuleSpec};
use crate::bus::{ProgramSample, Severity};
use crate::condition::{Condition, Metric};
use crate::program::{FieldError, valid_name};

/// A metric's value in a sample; `None` when the sample does not carry it (players).
fn sample_value(metric: Metric, s: &ProgramSample) -> Option<f64> {
    Some(match metric {
        Metric::CpuPercent => s.cpu_percent,
        Metric::MemoryBytes => s.memory_bytes as f64,
        Metric::VirtualBytes => s.virtual_bytes as f64,
        Metric::Threads => s.threads as f64,
        Metric::OpenFiles => s.open_files as f64,
        Metric::DiskReadBps => s.disk_read_bps,
        Metric::DiskWriteBps => s.disk_write_bps,
        Metric::Players => f64::from(s.players?),
    })
}

/// A validated, compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its name.
    pub name: String,
    /// The program it watches; `None`: each program on its own.
    pub program: Option<String>,
    /// What makes it fire.
    pub condition: Condition,
    /// Severity of its notifications.
    pub severity: Severity,
    /// Minimum time between two firings.
    pub cooldown: Duration,
    /// What to do on fire.
    pub action: Option<RuleAction>,
}

impl Rule {
    /// Validates a definition (every problem, by field) and compiles it. Disabled rules
    /// are validated too but compile to `None`.
    pub fn compile(spec: &RuleSpec) -> Result<Option<Rule>, Vec<FieldError>> {
        let mut errs = Vec::new();
        if !valid_name(&spec.name) {
            errs.push(FieldError::invalid_name("name", &spec.name));
        }
        if let Some(p) = &spec.program
            && !valid_name(p)
        {
            errs.push(FieldError::invalid_name("program", p));
        }
        let condition = match Condition::parse(&spec.condition) {
            Ok(c) => Some(c),
            Err(m) => {
                errs.push(FieldError::invalid("condition", &spec.condition, &m));
                None
            }
        };
        if spec.action == Some(RuleAction::Restart)
            && matches!(condition, Some(Condition::Count { .. }))
        {
            errs.push(FieldError::conflicts_with("action", "condition"));
        }
        let Some(condition) = condition.filter(|_| errs.is_empty()) else {
            return Err(errs);
        };
        if !spec.enabled {
            return Ok(None);
        }
        let default_severity = match condition {
            Condition::Count { .. } => Severity::Critical,
            Condition::Threshold { .. } => Severity::Warning,
        };
        Ok(Some(Rule {
            name: spec.name.clone(),
            program: spec.program.clone(),
            condition,
            severity: spec.severity.unwrap_or(default_severity),
            cooldown: Duration::from_secs(spec.cooldown_seconds),
            action: spec.action,
        }))
    }

    fn watches(&self, program: &str) -> bool {
        self.program.as_deref().is_none_or(|p| p == program)
    }
}

/// A rule changed state for a program.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The rule.
    pub rule: Arc<Rule>,
    /// The program (empty for events without one).
    pub program: String,
    /// True: fired; false: recovered.
    pub fired: bool,
    /// What was seen, in words, e.g. `memory_bytes is 6.4 GiB`.
    pub detail: String,
}

#[derive(Debug, Default)]
struct RuleState {
    /// Threshold: since when the condition has held.
    since: Option<Instant>,
    /// Count: times of matching events within the window.
    hits: VecDeque<Instant>,
    firing: bool,
    last_fired: Option<Instant>,
}

impl RuleState {
    fn cooled(&self, rule: &Rule, now: Instant) -> bool {
        self.last_fired
            .is_none_or(|t| now.duration_since(t) >= rule.cooldown)
    }

    fn idle(&self) -> bool {
        !self.firing && self.since.is_none() && self.hits.is_empty() && self.last_fired.is_none()
    }
}

/// Every enabled rule and its state per program.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
    /// By (rule name, program). Bounded by rules × programs: idle entries are removed.
    states: HashMap<(String, String), RuleState>,
}

impl RuleSet {
    /// Replaces the rules. A rule whose definition did not change keeps its state (so an
    /// unrelated edit does not re-fire it); others start afresh.
    pub fn replace(&mut self, rules: Vec<Arc<Rule>>) {
        let unchanged: HashMap<&str, &Arc<Rule>> = rules
            .iter()
            .filter(|r| self.rules.iter().any(|old| old == *r))
            .map(|r| (r.name.as_str(), r))
            .collect();
        self.states
            .retain(|(rule, _), _| unchanged.contains_key(rule.as_str()));
        self.rules = rules;
    }

    /// True when a rule judges samples (a metric threshold): only then does the engine
    /// follow them.
    pub fn wants_samples(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.condition, Condition::Threshold { .. }))
    }

    /// True when a rule counts events within a window, which ends on the clock: only
    /// then does the engine tick.
    pub fn wants_ticks(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.condition, Condition::Count { .. }))
    }

    /// Evaluates threshold rules against a sample.
    pub fn on_sample(&mut self, s: &ProgramSample, now: Instant) -> Vec<Verdict> {
        let mut out = Vec::new();
        for rule in &self.rules {
            let Condition::Threshold {
                metric,
                op,
                value,
                hold,
            } = &rule.condition
            else {
                continue;
            };
            if !rule.watches(&s.program) {
                continue;
            }
            let Some(v) = sample_value(*metric, s) else {
                continue;
            };
            let key = (rule.name.clone(), s.program.clone());
            let st = self.states.entry(key.clone()).or_default();
            if op.test(v, *value) {
                let since = *st.since.get_or_insert(now);
                if !st.firing && now.duration_since(since) >= *hold && st.cooled(rule, now) {
                    st.firing = true;
                    st.last_fired = Some(now);
                    out.push(Verdict {
                        rule: rule.clone(),
                        program: s.program.clone(),
                        fired: true,
                        detail: format!("{} is {}", metric.name(), metric.show(v)),
                    });
                }
            } else {
                st.since = None;
                if st.firing {
                    st.firing = false;
                    out.push(Verdict {
                        rule: rule.clone(),
                        program: s.program.clone(),
                        fired: false,
                        detail: format!("{} is back to {}", metric.name(), metric.show(v)),
                    });
                }
                forget_if_idle(&mut self.states, &key, rule, now);
            }
        }
        out
    }

    /// Counts an event for count rules.
    pub fn on_event(&mut self, kind: &str, program: Option<&str>, now: Instant) -> Vec<Verdict> {
        let program = program.unwrap_or("");
        let mut out = Vec::new();
        for rule in &self.rules {
            let Condition::Count {
                event,
                at_least,
                window,
            } = &rule.condition
            else {
                continue;
            };
            if event != kind || !rule.watches(program) {
                continue;
            }
            let st = self
                .states
                .entry((rule.name.clone(), program.to_string()))
                .or_default();
            st.hits.push_back(now);
            prune(&mut st.hits, *window, now);
            // Never keep more hits than needed to decide: memory stays bounded however
            // fast events come.
            while st.hits.len() > *at_least as usize {
                st.hits.pop_front();
            }
            if !st.firing && st.hits.len() >= *at_least as usize && st.cooled(rule, now) {
                st.firing = true;
                st.last_fired = Some(now);
                out.push(Verdict {
                    rule: rule.clone(),
                    program: program.to_string(),
                    fired: true,
                    detail: format!(
                        "{event} {} times within {}",
                        st.hits.len(),
                        crate::duration::format(*window)
                    ),
                });
            }
        }
        out
    }

    /// Lets time pass: count rules whose window no longer holds enough events recover.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Verdict> {
        let mut out = Vec::new();
        let mut idle = Vec::new();
        for rule in &self.rules {
            let Condition::Count {
                event,
                at_least,
                window,
            } = &rule.condition
            else {
                continue;
            };
            for ((name, program), st) in self.states.iter_mut() {
                if *name != rule.name {
                    continue;
                }
                prune(&mut st.hits, *window, now);
                if st.firing && st.hits.len() < *at_least as usize {
                    st.firing = false;
                    out.push(Verdict {
                        rule: rule.clone(),
                        program: program.clone(),
                        fired: false,
                        detail: format!(
                            "fewer than {at_least} {event} events within the last {}",
                            crate::duration::format(*window)
                        ),
                    });
                }
                if !st.firing && st.hits.is_empty() && st.cooled(rule, now) {
                    idle.push((name.clone(), program.clone()));
                }
            }
        }
        for key in idle {
            self.states.remove(&key);
        }
        out
    }

    /// The program's process ended (stopped, crashed, restarting): a new process must
    /// hold the condition for the full duration again. A firing rule stays firing until a
    /// sample shows it clear: "recovered" is only said when measured, and a restart
    /// action runs once per episode, not once per new process.
    pub fn program_ended(&mut self, program: &str, now: Instant) {
        for rule in &self.rules {
            if !matches!(rule.condition, Condition::Threshold { .. }) {
                continue;
            }
            let key = (rule.name.clone(), program.to_string());
            if let Some(st) = self.states.get_mut(&key) {
                st.since = None;
            }
            forget_if_idle(&mut self.states, &key, rule, now);
        }
    }

    /// The program's process ended: every threshold rule of it starts afresh, firing
    /// ones included (no "recovered" is said). Used for `restart_when`, where the new
    /// process must hold the condition for the full duration before the next restart;
    /// the cooldown still applies.
    pub fn rearm(&mut self, program: &str) {
        for ((_, p), st) in self.states.iter_mut() {
            if p == program {
                st.since = None;
                st.firing = false;
            }
        }
    }

    /// Tracked (rule, program) states.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.states.len()
    }
}

/// Removes a state that no longer remembers anything (its cooldown, if any, is over).
fn forget_if_idle(
    states: &mut HashMap<(String, String), RuleState>,
    key: &(String, String),
    rule: &Rule,
    now: Instant,
) {
    if let Some(st) = states.get_mut(key) {
        if st.last_fired.is_some() && st.cooled(rule, now) && !st.firing {
            st.last_fired = None;
        }
        if st.idle() {
            states.remove(key);
        }
    }
}

fn prune(hits: &mut VecDeque<Instant>, window: Duration, now: Instant) {
    while let Some(first) = hits.front() {
        if now.duration_since(*first) >= window {
            hits.pop_front();
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, program: Option<&str>, condition: &str, cooldown: u64) -> Arc<Rule> {
        let spec = RuleSpec {
            name: name.into(),
            program: program.map(str::to_string),
            condition: condition.into(),
            severity: None,
            cooldown_seconds: cooldown,
            action: None,
            enabled: true,
        };
        Arc::new(Rule::compile(&spec).expect("valid").expect("enabled"))
    }

    fn sample(program: &str, cpu: f64, mem: u64, players: Option<u32>) -> ProgramSample {
        ProgramSample {
            program: program.into(),
            ts: 0,
            cpu_percent: cpu,
            memory_bytes: mem,
            virtual_bytes: 0,
            threads: 1,
            open_files: 3,
            disk_read_bps: 0.0,
            disk_write_bps: 0.0,
            players,
        }
    }

    #[test]
    fn rule_validation_reports_every_field() {
        let spec = RuleSpec {
            name: "Bad".into(),
            program: Some("No Such".into()),
            condition: "crashed >= 3 in 10m".into(),
            severity: None,
            cooldown_seconds: 0,
            action: Some(RuleAction::Restart),
            enabled: true,
        };
        let errs = Rule::compile(&spec).expect_err("invalid");
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "program", "action"]);
    }

    #[tokio::test(start_paused = true)]
    async fn threshold_fires_once_after_hold_and_recovers_once() {
        let mut set = RuleSet::default();
        set.replace(vec![rule(
            "mem",
            Some("mc"),
            "memory_bytes > 6GiB for 2m",
            0,
        )]);
        let high = 7 * 1024 * 1024 * 1024;
        let step = Duration::from_secs(5);
        let mut fired = Vec::new();
        // 3 minutes above the threshold, sampled every 5 s: fires once, at 2 min.
        let start = Instant::now();
        for _ in 0..36 {
            for v in set.on_sample(&sample("mc", 1.0, high, None), Instant::now()) {
                fired.push((Instant::now().duration_since(start), v));
            }
            tokio::time::advance(step).await;
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert!(fired[0].1.fired);
        assert_eq!(fired[0].0, Duration::from_secs(120));
        assert_eq!(fired[0].1.detail, "memory_bytes is 7.0 GiB");
        // Other programs are not watched by this rule.
        assert!(
            set.on_sample(&sample("other", 1.0, high, None), Instant::now())
                .is_empty()
        );
        // Back below: one recovery, then silence.
        let back = set.on_sample(&sample("mc", 1.0, 1024, None), Instant::now());
        assert_eq!(back.len(), 1);
        assert!(!back[0].fired);
        for _ in 0..10 {
            tokio::time::advance(step).await;
            assert!(
                set.on_sample(&sample("mc", 1.0, 1024, None), Instant::now())
                    .is_empty()
            );
        }
        assert_eq!(set.tracked(), 0, "idle state is forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dip_restarts_the_hold_and_cooldown_delays_refiring() {
        let mut set = RuleSet::default();
        set.replace(vec![rule("cpu", None, "cpu_percent > 90 for 1m", 600)]);
        let hot = |set: &mut RuleSet| set.on_sample(&sample("mc", 99.0, 0, None), Instant::now());
        let cool = |set: &mut RuleSet| set.on_sample(&sample("mc", 5.0, 0, None), Instant::now());
        assert!(hot(&mut set).is_empty());
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(
            cool(&mut set).is_empty(),
            "a dip before the hold ends: nothing to recover"
        );
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(hot(&mut set).is_empty(), "the hold starts again");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(hot(&mut set).len(), 1, "fires after a full minute");
        assert_eq!(cool(&mut set).len(), 1, "recovers");
        // Hot again for 2 minutes: within the 10-minute cooldown, so no second fire.
        for _ in 0..12 {
            tokio::time::advance(Duration::from_secs(10)).await;
            assert!(hot(&mut set).is_empty());
        }
        // After the cooldown it fires again (the condition has held all along).
        tokio::time::advance(Duration::from_secs(480)).await;
        assert_eq!(hot(&mut set).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn players_rule_ignores_samples_without_players() {
        let mut set = RuleSet::default();
        set.replace(vec![rule("empty", None, "players == 0 for 30m", 0)]);
        for _ in 0..40 {
            assert!(
                set.on_sample(&sample("mc", 1.0, 0, None), Instant::now())
                    .is_empty()
            );
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        let mut fired = 0;
        for _ in 0..40 {
            fired += set
                .on_sample(&sample("mc", 1.0, 0, Some(0)), Instant::now())
                .len();
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        assert_eq!(fired, 1);
        let v = set.on_sample(&sample("mc", 1.0, 0, Some(3)), Instant::now());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].detail, "players is back to 3");
    }

    #[tokio::test(start_paused = true)]
    async fn restart_loop_fires_once_per_episode_and_recovers_when_the_window_clears() {
        let mut set = RuleSet::default();
        set.replace(vec![rule("loop", None, "crashed >= 3 in 10m", 0)]);
        let mut fired = Vec::new();
        for _ in 0..6 {
            fired.extend(set.on_event("crashed", Some("mc"), Instant::now()));
            tokio::time::advance(Duration::from_secs(30)).await;
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].detail, "crashed 3 times within 10m");
        // Another program's crashes are counted separately.
        assert!(
            set.on_event("crashed", Some("other"), Instant::now())
                .is_empty()
        );
        // Unrelated kinds do not count.
        assert!(
            set.on_event("stopped", Some("mc"), Instant::now())
                .is_empty()
        );
        tokio::time::advance(Duration::from_secs(5 * 60)).await;
        assert!(
            set.on_tick(Instant::now()).is_empty(),
            "still 3 within the window"
        );
        tokio::time::advance(Duration::from_secs(5 * 60)).await;
        let rec = set.on_tick(Instant::now());
        assert_eq!(rec.len(), 1);
        assert!(!rec[0].fired);
        assert!(set.on_tick(Instant::now()).is_empty());
        assert_eq!(set.tracked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_process_holds_again_and_recovery_is_only_said_when_measured() {
        let mut set = RuleSet::default();
        set.replace(vec![rule("cpu", None, "cpu_percent > 90 for 1m", 0)]);
        let hot = |set: &mut RuleSet| set.on_sample(&sample("mc", 99.0, 0, None), Instant::now());
        assert!(hot(&mut set).is_empty());
        tokio::time::advance(Duration::from_secs(50)).await;
        set.program_ended("mc", Instant::now());
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(
            hot(&mut set).is_empty(),
            "the hold starts again for the new process"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(hot(&mut set).len(), 1);
        // Restarted while firing: no recovery claimed, no second fire for the new process.
        set.program_ended("mc", Instant::now());
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(60)).await;
            assert!(hot(&mut set).is_empty());
        }
        let v = set.on_sample(&sample("mc", 5.0, 0, None), Instant::now());
        assert_eq!(v.len(), 1);
        assert!(!v[0].fired);
    }

    #[tokio::test(start_paused = true)]
    async fn replacing_rules_keeps_state_of_unchanged_ones_only() {
        let mut set = RuleSet::default();
        let a = rule("a", None, "cpu_percent > 90", 0);
        let b = rule("b", None, "memory_bytes > 1KiB", 0);
        set.replace(vec![a.clone(), b]);
        assert_eq!(
            set.on_sample(&sample("mc", 99.0, 4096, None), Instant::now())
                .len(),
            2
        );
        set.replace(vec![a, rule("b", None, "memory_bytes > 2KiB", 0)]);
        let v = set.on_sample(&sample("mc", 99.0, 4096, None), Instant::now());
        // `a` is still firing (no repeat); the edited `b` starts afresh and fires.
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].rule.name, "b");
    }

    #[test]
    fn rearm_makes_a_firing_rule_hold_again_on_the_new_process() {
        let t0 = Instant::now();
        let mut set = RuleSet::default();
        set.replace(vec![rule("r", Some("mc"), "memory_bytes > 100 for 2s", 0)]);
        assert!(set.on_sample(&sample("mc", 0.0, 200, None), t0).is_empty());
        let fired = set.on_sample(&sample("mc", 0.0, 200, None), t0 + Duration::from_secs(2));
        assert_eq!(fired.len(), 1);
        set.rearm("mc");
        let t1 = t0 + Duration::from_secs(3);
        assert!(set.on_sample(&sample("mc", 0.0, 200, None), t1).is_empty());
        let again = set.on_sample(&sample("mc", 0.0, 200, None), t1 + Duration::from_secs(2));
        assert_eq!(again.len(), 1, "fires again after holding afresh");
        assert!(again[0].fired);
    }
}
