//! A program's own `restart_when` conditions (`memory_bytes > 6GiB for 10m`): compiled
//! into rules of the alert grammar, judged by the engine beside the alert rules, and
//! acted on by a graceful restart (the same as a requested one: a game's save-safe stop
//! steps run) with an event saying why in plain words.
//!
//! No restart loop: a condition must hold for its whole duration on the new process
//! before it fires again (the rule state forgets `since` when the process ends), and the
//! rule's cooldown is that duration too, so one condition restarts a program at most once
//! per duration.

use std::sync::Arc;
use std::time::Duration;

use super::model::{Notification, RuleAction};
use super::rules::{Rule, Verdict};
use crate::bus::{Notice, NoticeField, Severity};
use crate::condition::{Condition, restart_condition};
use crate::store::events::NewEvent;
use crate::store::{Store, now_ms};
use crate::supervisor::Supervisor;

/// The event kind of a restart made by a `restart_when` condition.
pub const KIND: &str = "restarted_by_rule";
/// The event kind when such a restart could not be made.
pub const FAILED_KIND: &str = "restart_rule_failed";

const MARK: &str = "/restart_when[";

/// Every program's `restart_when` conditions as rules named `PROGRAM/restart_when[i]`.
/// Conditions that do not parse (a spec stored before validation knew them) are skipped.
pub(super) fn rules_of(sup: &Supervisor) -> Vec<Arc<Rule>> {
    let mut out = Vec::new();
    for snap in sup.snapshots() {
        let spec = &snap.spec;
        for (i, text) in spec.restart_when.iter().enumerate() {
            let Ok(condition) = restart_condition(text) else {
                continue;
            };
            let Condition::Threshold { hold, .. } = condition else {
                continue;
            };
            out.push(Arc::new(Rule {
                name: format!("{}{MARK}{i}]", spec.name),
                program: Some(spec.name.clone()),
                condition,
                severity: Severity::Warning,
                cooldown: hold,
                action: Some(RuleAction::Restart),
            }));
        }
    }
    out
}

/// The notification sent to alert channels when a condition fires (kind
/// `restarted_by_rule`, so channels can filter on it).
pub(super) fn notification(v: &Verdict, display: Option<&str>) -> Notification {
    let plain = v.rule.condition.plain();
    Notification::from_notice(
        &Notice {
            kind: KIND.into(),
            severity: Severity::Warning,
            program: Some(v.program.clone()),
            ts: now_ms(),
            summary: format!("restarting: {plain}"),
            fields: vec![
                NoticeField {
                    name: "Condition".into(),
                    value: v.rule.condition.to_string(),
                },
                NoticeField {
                    name: "Seen".into(),
                    value: v.detail.clone(),
                },
            ],
        },
        display,
    )
}

/// Restarts the program of a fired condition and records why.
pub(super) async fn restart(store: &Store, sup: &Supervisor, v: &Verdict) {
    let plain = v.rule.condition.plain();
    let outcome = match sup.get(&v.program) {
        Ok(h) => match tokio::time::timeout(Duration::from_secs(10), h.restart()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the program did not answer within 10 s".to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let (kind, message) = match &outcome {
        Ok(()) => (KIND, format!("restarted: {plain}")),
        Err(e) => (FAILED_KIND, format!("could not restart ({plain}): {e}")),
    };
    tracing::info!(program = %v.program, "{message}");
    let mut data = serde_json::json!({
        "condition": v.rule.condition.to_string(),
        "seen": v.detail,
    });
    if let Condition::Threshold {
        metric,
        op,
        value,
        hold,
    } = &v.rule.condition
    {
        data["metric"] = metric.name().into();
        data["op"] = op.symbol().into();
        data["value"] = (*value).into();
        data["hold_seconds"] = hold.as_secs().into();
    }
    if let Err(e) = &outcome {
        data["error"] = e.clone().into();
    }
    let ev = NewEvent::now(Some(&v.program), kind, message, data);
    store.record_event(ev).await;
}
