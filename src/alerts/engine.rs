//! The alert engine: one task that follows the bus, turns lifecycle events, notices and
//! rule verdicts into notifications, queues them in the outbox (durably, one row per
//! matching channel) and pokes the dispatcher. Rule actions (restart) run here too.
//!
//! Events are taken in batches (everything already buffered, up to [`BATCH`]) so a burst
//! costs one store transaction, not one per event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::model::{Notification, RuleAction};
use super::restart_when;
use super::rules::{Rule, RuleSet, Verdict};
use super::{ChannelSet, RuleBook};
use crate::bus::{Event, Notice, NoticeField, SampleTick, Severity};
use crate::config::AlertsConfig;
use crate::program::State;
use crate::store::alerts::NewDelivery;
use crate::store::events::NewEvent;
use crate::store::{Store, now_ms};
use crate::supervisor::Supervisor;

/// Most bus events handled in one outbox transaction.
const BATCH: usize = 256;

/// Counters for the status API.
#[derive(Default)]
pub struct Stats {
    /// Notifications dropped because the outbox was full, since warden started.
    pub dropped: AtomicU64,
    /// Bus events this engine missed because it fell behind.
    pub lagged: AtomicU64,
}

/// What the engine needs.
pub struct Deps {
    /// Database.
    pub store: Store,
    /// Display names and the restart action.
    pub sup: Supervisor,
    /// Settings.
    pub cfg: AlertsConfig,
    /// Current channels.
    pub channels: watch::Receiver<Arc<ChannelSet>>,
    /// Current rules.
    pub rules: watch::Receiver<Arc<RuleBook>>,
    /// Poked after rows are queued.
    pub wake: Arc<Notify>,
    /// Counters.
    pub stats: Arc<Stats>,
}

/// Runs until `stop`; then handles every event already published and returns. Samples
/// are followed, and the clock ticks, only while a rule needs them: with no such rule an
/// idle warden does not wake this task at all.
pub async fn run(
    mut d: Deps,
    mut bus: broadcast::Receiver<Arc<Event>>,
    mut samples: watch::Receiver<Arc<SampleTick>>,
    stop: CancellationToken,
) {
    crate::health::injected_fault("alert-engine");
    let mut rules = RuleSet::default();
    rules.replace(d.rules.borrow_and_update().compiled.clone());
    // Programs' own `restart_when` conditions, judged beside the alert rules.
    let mut own = RuleSet::default();
    own.replace(restart_when::rules_of(&d.sup));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples_open = true;
    loop {
        let mut batch: Vec<Arc<Event>> = Vec::new();
        let mut verdicts: Vec<Verdict> = Vec::new();
        let mut tick_samples: Option<Arc<SampleTick>> = None;
        let mut stopping = false;
        let judging = samples_open && (rules.wants_samples() || own.wants_samples());
        tokio::select! {
            // Rule changes first: an event published after a rule was saved is judged by it.
            biased;
            Ok(()) = d.rules.changed() => {
                rules.replace(d.rules.borrow_and_update().compiled.clone());
            }
            _ = stop.cancelled() => {
                stopping = true;
                drain(&mut bus, &mut batch, usize::MAX, &d.stats);
            }
            r = bus.recv() => match r {
                Ok(ev) => {
                    batch.push(ev);
                    drain(&mut bus, &mut batch, BATCH, &d.stats);
                }
                Err(RecvError::Lagged(n)) => lagged(&d.stats, n),
                Err(RecvError::Closed) => return,
            },
            changed = samples.changed(), if judging => {
                match changed {
                    Ok(()) => tick_samples = Some(samples.borrow_and_update().clone()),
                    Err(_) => samples_open = false,
                }
            }
            _ = tick.tick(), if rules.wants_ticks() => verdicts = rules.on_tick(Instant::now()),
        }
        let mut notes = Vec::new();
        let mut own_verdicts = Vec::new();
        if let Some(t) = &tick_samples {
            let now = Instant::now();
            for s in &t.programs {
                verdicts.extend(rules.on_sample(s, now));
                own_verdicts.extend(own.on_sample(s, now));
            }
        }
        for ev in &batch {
            notes.extend(handle(&d, &mut rules, ev, &mut verdicts));
            own_verdicts.extend(judge_own(&d, &mut own, ev));
        }
        let own_restarts: Vec<Verdict> = own_verdicts.into_iter().filter(|v| v.fired).collect();
        for v in &own_restarts {
            let display = display_name(&d.sup, &v.program);
            notes.push(restart_when::notification(v, Some(&display)));
        }
        let mut restarts = Vec::new();
        for v in &verdicts {
            notes.push(rule_notification(&d, v));
            if v.fired && v.rule.action == Some(RuleAction::Restart) && !v.program.is_empty() {
                restarts.push(v.clone());
            }
        }
        enqueue(&d, notes).await;
        for v in restarts {
            restart(&d, &v).await;
        }
        for v in own_restarts {
            restart_when::restart(&d.store, &d.sup, &v).await;
        }
        if stopping {
            return;
        }
    }
}

fn drain(
    bus: &mut broadcast::Receiver<Arc<Event>>,
    batch: &mut Vec<Arc<Event>>,
    max: usize,
    stats: &Stats,
) {
    while batch.len() < max {
        match bus.try_recv() {
            Ok(ev) => batch.push(ev),
            Err(broadcast::error::TryRecvError::Lagged(n)) => lagged(stats, n),
            Err(_) => break,
        }
    }
}

fn lagged(stats: &Stats, n: u64) {
    stats.lagged.fetch_add(n, Ordering::Relaxed);
    tracing::warn!(
        missed = n,
        "the alert engine fell behind the event bus; some events produced no alert"
    );
}

fn display_name(sup: &Supervisor, program: &str) -> String {
    sup.get(program)
        .ok()
        .and_then(|h| h.snapshot().spec.display_name.clone())
        .unwrap_or_else(|| program.to_string())
}

/// Feeds one event to the programs' `restart_when` rules: definitions reload on program
/// changes, samples are judged, and a process that ends must hold a condition afresh.
fn judge_own(d: &Deps, own: &mut RuleSet, ev: &Event) -> Vec<Verdict> {
    match ev {
        Event::Program(_) => {
            own.replace(restart_when::rules_of(&d.sup));
            Vec::new()
        }
        Event::State(c) if c.to != State::Running && c.to != State::Starting => {
            // Unlike an alert, a restart condition is judged afresh on the new process.
            own.rearm(&c.program);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// The notifications of one event; rule verdicts it causes go to `verdicts`.
fn handle(
    d: &Deps,
    rules: &mut RuleSet,
    ev: &Event,
    verdicts: &mut Vec<Verdict>,
) -> Vec<Notification> {
    let now = Instant::now();
    match ev {
        Event::State(c) => {
            let n = Notification::from_state(c, &display_name(&d.sup, &c.program));
            if let Some(n) = &n {
                verdicts.extend(rules.on_event(&n.event, Some(&c.program), now));
            }
            if matches!(
                c.to,
                State::Stopped | State::Crashed | State::Fatal | State::Backoff | State::Sleeping
            ) {
                rules.program_ended(&c.program, now);
            }
            n.into_iter().collect()
        }
        Event::Notice(notice) => {
            verdicts.extend(rules.on_event(&notice.kind, notice.program.as_deref(), now));
            let display = notice.program.as_deref().map(|p| display_name(&d.sup, p));
            vec![Notification::from_notice(notice, display.as_deref())]
        }
        Event::Job(_) | Event::Schedule(_) | Event::Backup(_) => {
            let Some((notice, notify)) = activity_notice(ev) else {
                return Vec::new();
            };
            verdicts.extend(rules.on_event(&notice.kind, notice.program.as_deref(), now));
            if notify {
                let display = notice.program.as_deref().map(|p| display_name(&d.sup, p));
                vec![Notification::from_notice(&notice, display.as_deref())]
            } else {
                Vec::new()
            }
        }
        // Health changes arrive as notices too (kind `health_unhealthy`/`health_recovered`);
        // player counts reach rules through samples.
        // Definition changes are recorded as events; nothing to notify.
        Event::Console(_)
        | Event::Players(_)
        | Event::Health(_)
        | Event::Program(_)
        | Event::Install(_) => Vec::new(),
    }
}

/// A job, schedule or backup event as a notice, and whether it is worth a notification.
/// Routine ones (a run started or succeeded, a schedule fired, a backup finished) only
/// reach rules, so a job every minute does not flood a channel that takes everything;
/// failures, overruns, skips, misses and restores are sent. Backup progress is neither.
fn activity_notice(ev: &Event) -> Option<(Notice, bool)> {
    use crate::bus::{BackupActivityKind as B, JobEventKind as J, ScheduleEventKind as S};
    let field = |name: &str, value: String| NoticeField {
        name: name.into(),
        value,
    };
    let (kind, severity, summary, ts, mut fields) = match ev {
        Event::Job(j) => {
            let severity = match j.kind {
                J::Failed | J::Overrun => Some(Severity::Warning),
                J::Cancelled | J::Skipped | J::OverrunWarning => Some(Severity::Info),
                J::Started | J::Finished => None,
            };
            let mut fields = vec![
                field("Job", j.job.clone()),
                field("Run", j.run_id.to_string()),
            ];
            if let Some(ms) = j.duration_ms {
                fields.push(field("Duration", format!("{:.1} s", ms as f64 / 1000.0)));
            }
            (
                j.kind.event_kind(),
                severity,
                format!("job {}: {}", j.job, j.message),
                j.ts,
                fields,
            )
        }
        Event::Schedule(e) => {
            let severity = match e.kind {
                S::Failed => Some(Severity::Warning),
                S::Skipped | S::Missed => Some(Severity::Info),
                S::Fired | S::Finished => None,
            };
            (
                e.kind.event_kind(),
                severity,
                format!("schedule {}: {}", e.schedule, e.message),
                e.ts,
                vec![field("Schedule", e.schedule.clone())],
            )
        }
        Event::Backup(b) => {
            let (kind, severity) = match b.kind {
                B::Started | B::Progress | B::Step => return None,
                B::Failed => ("backup_failed", Some(Severity::Warning)),
                B::RestoreFailed => ("restore_failed", Some(Severity::Warning)),
                B::Cancelled => ("backup_cancelled", Some(Severity::Info)),
                B::Restored => ("restored", Some(Severity::Info)),
                B::Finished => ("backup_finished", None),
                B::Pruned => ("backup_pruned", None),
                B::Verified => ("backup_verified", None),
                B::RestoreStarted => ("restore_started", None),
            };
            let notice = Notice {
                kind: kind.to_string(),
                severity: severity.unwrap_or(Severity::Info),
                program: Some(b.program.clone()),
                ts: b.ts,
                summary: b.message.clone(),
                fields: vec![field("Backup", b.backup_id.to_string())],
            };
            return Some((notice, severity.is_some()));
        }
        _ => return None,
    };
    fields.retain(|f| !f.value.is_empty());
    let notice = Notice {
        kind: kind.to_string(),
        severity: severity.unwrap_or(Severity::Info),
        program: None,
        ts,
        summary,
        fields,
    };
    Some((notice, severity.is_some()))
}

fn rule_notification(d: &Deps, v: &Verdict) -> Notification {
    let rule: &Rule = &v.rule;
    let display = (!v.program.is_empty()).then(|| display_name(&d.sup, &v.program));
    let who = display.clone().unwrap_or_else(|| "warden".to_string());
    let mut fields = vec![
        NoticeField {
            name: "Rule".into(),
            value: rule.name.clone(),
        },
        NoticeField {
            name: "Condition".into(),
            value: rule.condition.to_string(),
        },
    ];
    let (event, severity, title, message) = if v.fired {
        let mut message = format!("rule '{}': {}", rule.name, rule.condition);
        if rule.action == Some(RuleAction::Restart) {
            message.push_str("; restarting the program");
            fields.push(NoticeField {
                name: "Action".into(),
                value: "restart".into(),
            });
        }
        (
            "rule_fired",
            rule.severity,
            format!("{who}: {}", v.detail),
            message,
        )
    } else {
        (
            "rule_recovered",
            Severity::Info,
            format!("{who}: {} recovered", rule.name),
            v.detail.clone(),
        )
    };
    Notification {
        event: event.to_string(),
        severity,
        program: (!v.program.is_empty()).then(|| v.program.clone()),
        display_name: display,
        title,
        message,
        fields,
        ts: now_ms(),
        exit: None,
        last_lines: Vec::new(),
        rule: Some(rule.name.clone()),
        test: false,
    }
}

/// Severity as stored in the outbox (its drop order).
pub fn rank(s: Severity) -> u8 {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => crate::store::alerts::CRITICAL_RANK,
    }
}

/// Queues `notes` for every channel that accepts them, then wakes the dispatcher.
async fn enqueue(d: &Deps, notes: Vec<Notification>) {
    if notes.is_empty() {
        return;
    }
    let channels = d.channels.borrow().clone();
    let mut items = Vec::new();
    for n in &notes {
        let json = match serde_json::to_string(n) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a notification");
                continue;
            }
        };
        for ch in channels.iter().filter(|c| c.spec.accepts(n)) {
            items.push(NewDelivery {
                channel_id: ch.id,
                severity: rank(n.severity),
                event: n.event.clone(),
                program: n.program.clone(),
                notification: json.clone(),
            });
        }
    }
    if items.is_empty() {
        return;
    }
    match d
        .store
        .outbox_enqueue(items, d.cfg.outbox_max_pending)
        .await
    {
        Ok(q) => {
            d.wake.notify_one();
            if q.dropped > 0 {
                report_drops(d, q.dropped).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot queue alert notifications; they are lost"),
    }
}

/// Drops are themselves reported: counted for the status API, logged, and written to
/// the event log (kind `alerts_dropped`).
async fn report_drops(d: &Deps, n: u64) {
    d.stats.dropped.fetch_add(n, Ordering::Relaxed);
    let message = format!(
        "{n} alert notification(s) dropped: the outbox holds alerts.outbox_max_pending = {} undelivered notifications (oldest low-severity ones are dropped first; critical ones never)",
        d.cfg.outbox_max_pending
    );
    tracing::warn!(dropped = n, "{message}");
    let ev = NewEvent::now(
        None,
        "alerts_dropped",
        message,
        serde_json::json!({ "dropped": n }),
    );
    d.store.record_event(ev).await;
}

async fn restart(d: &Deps, v: &Verdict) {
    let outcome = match d.sup.get(&v.program) {
        Ok(h) => match tokio::time::timeout(Duration::from_secs(10), h.restart()).await {
            Ok(Ok(())) => format!(
                "rule '{}' restarted the program ({})",
                v.rule.name, v.detail
            ),
            Ok(Err(e)) => format!("rule '{}' could not restart the program: {e}", v.rule.name),
            Err(_) => format!(
                "rule '{}' asked for a restart; the program did not answer within 10 s",
                v.rule.name
            ),
        },
        Err(e) => format!("rule '{}' could not restart the program: {e}", v.rule.name),
    };
    tracing::info!(program = %v.program, "{outcome}");
    let ev = NewEvent::now(
        Some(&v.program),
        "alert_action",
        outcome,
        serde_json::json!({ "rule": v.rule.name, "action": "restart" }),
    );
    d.store.record_event(ev).await;
}
