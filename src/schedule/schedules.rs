//! The schedules registry: listing, reading (next fire times, warnings), creating,
//! replacing, deleting and cancelling schedules, and the preview of a trigger.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::{SchedError, conflict};
use super::info::ScheduleInfo;
use super::service::{Entry, Scheduler};
use super::spec::{self, Known, ScheduleSpec};
use super::trigger::{Trigger, Zone};
use crate::program::FieldError;
use crate::schedule::record::ScheduleRunRecord;
use crate::store::schedule::DefKind;
use crate::sync::lock;

impl Scheduler {
    fn known_names(&self) -> (HashSet<String>, HashSet<String>) {
        let programs = self
            .inner
            .sh
            .sup
            .list()
            .iter()
            .map(|h| h.name().to_string())
            .collect();
        let jobs = crate::sync::read(&self.inner.jobs)
            .keys()
            .cloned()
            .collect();
        (programs, jobs)
    }

    fn validate_schedule(&self, spec: &ScheduleSpec) -> Result<(Trigger, Zone), SchedError> {
        let (programs, jobs) = self.known_names();
        let known = Known {
            programs: &programs,
            jobs: &jobs,
        };
        let (errs, parsed) = spec.validate(&known);
        match parsed {
            Some(p) if errs.is_empty() => Ok(p),
            _ => Err(SchedError::Invalid(errs)),
        }
    }

    /// Every schedule.
    pub async fn schedules(&self) -> Vec<ScheduleInfo> {
        let names: Vec<String> = lock(&self.inner.schedules).keys().cloned().collect();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Ok(i) = self.schedule(&n).await {
                out.push(i);
            }
        }
        out
    }

    /// One schedule.
    pub async fn schedule(&self, name: &str) -> Result<ScheduleInfo, SchedError> {
        let (spec, trigger, zone, running) = {
            let entries = lock(&self.inner.schedules);
            let e = entries
                .get(name)
                .ok_or_else(|| SchedError::NotFound(format!("no schedule named '{name}'")))?;
            (
                e.spec.clone(),
                e.trigger.clone(),
                e.zone,
                e.running.as_ref().and_then(|r| r.0),
            )
        };
        let now = Utc::now();
        let next_runs = if spec.enabled {
            trigger
                .upcoming(now, zone, 5)
                .into_iter()
                .map(|t| in_zone(t, zone))
                .collect()
        } else {
            Vec::new()
        };
        let last_run = self
            .inner
            .sh
            .store
            .schedule_runs(name, None, 1)
            .await?
            .into_iter()
            .next();
        let warnings = self.schedule_warnings(&spec, &trigger, zone).await;
        Ok(ScheduleInfo {
            spec: spec::masked(&spec),
            trigger_description: trigger.describe(),
            effective_timezone: zone_name(zone),
            next_runs,
            running_run_id: running,
            last_run,
            warnings,
        })
    }

    /// "this job takes ~27h but runs every 24h" for each job the chain runs.
    async fn schedule_warnings(
        &self,
        spec: &ScheduleSpec,
        trigger: &Trigger,
        zone: Zone,
    ) -> Vec<String> {
        let Some(gap) = trigger.min_gap(Utc::now(), zone) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for job in spec.jobs() {
            if !seen.insert(job) {
                continue;
            }
            if let Some(p) = self.inner.sh.prediction(job).await {
                let took = Duration::from_millis(u64::try_from(p.p90_ms).unwrap_or(0));
                if took > gap {
                    out.push(format!(
                        "job '{job}' takes ~{} (p90 of its last {} runs) but schedule '{}' runs it every {}",
                        crate::duration::format(took),
                        p.samples,
                        spec.name,
                        crate::duration::format(gap)
                    ));
                }
            }
        }
        out
    }

    /// Creates a schedule.
    pub async fn create_schedule(&self, spec: ScheduleSpec) -> Result<ScheduleInfo, SchedError> {
        let (trigger, zone) = self.validate_schedule(&spec)?;
        let _guard = self.inner.mutate.lock().await;
        self.inner
            .sh
            .store
            .insert_def(DefKind::Schedule, &spec.name, &spec)
            .await
            .map_err(conflict)?;
        let name = spec.name.clone();
        self.install(spec, trigger, zone);
        self.schedule(&name).await
    }

    /// Replaces a schedule (secrets sent back masked keep their stored values). A chain in
    /// progress finishes with the definition it started with.
    pub async fn update_schedule(
        &self,
        mut spec: ScheduleSpec,
    ) -> Result<ScheduleInfo, SchedError> {
        let _guard = self.inner.mutate.lock().await;
        let old = lock(&self.inner.schedules)
            .get(&spec.name)
            .map(|e| e.spec.clone())
            .ok_or_else(|| SchedError::NotFound(format!("no schedule named '{}'", spec.name)))?;
        spec::unmask(&mut spec, &old);
        let (trigger, zone) = self.validate_schedule(&spec)?;
        self.inner
            .sh
            .store
            .update_def(DefKind::Schedule, &spec.name, &spec)
            .await?;
        let name = spec.name.clone();
        self.install(spec, trigger, zone);
        self.schedule(&name).await
    }

    fn install(&self, spec: ScheduleSpec, trigger: Trigger, zone: Zone) {
        let next = spec
            .enabled
            .then(|| trigger.next_after(Utc::now(), zone))
            .flatten();
        let mut entries = lock(&self.inner.schedules);
        let running = entries.remove(&spec.name).and_then(|e| e.running);
        entries.insert(
            spec.name.clone(),
            Entry {
                spec: Arc::new(spec),
                trigger,
                zone,
                next,
                running,
            },
        );
        drop(entries);
        self.inner.wake.notify_one();
    }

    /// Deletes a schedule; a chain in progress is cancelled.
    pub async fn delete_schedule(&self, name: &str) -> Result<(), SchedError> {
        let _guard = self.inner.mutate.lock().await;
        let removed = lock(&self.inner.schedules).remove(name);
        let Some(e) = removed else {
            return Err(SchedError::NotFound(format!("no schedule named '{name}'")));
        };
        if let Some((_, cancel)) = e.running {
            cancel.cancel();
        }
        self.inner
            .sh
            .store
            .delete_def(DefKind::Schedule, name)
            .await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Cancels the chain in progress; answers its run id.
    pub fn cancel_schedule(&self, name: &str) -> Result<i64, SchedError> {
        let entries = lock(&self.inner.schedules);
        let e = entries
            .get(name)
            .ok_or_else(|| SchedError::NotFound(format!("no schedule named '{name}'")))?;
        match &e.running {
            Some((Some(run_id), cancel)) => {
                cancel.cancel();
                Ok(*run_id)
            }
            _ => Err(SchedError::Conflict(format!(
                "schedule '{name}' has no run in progress"
            ))),
        }
    }

    /// A page of a schedule's runs, newest first.
    pub async fn schedule_runs(
        &self,
        name: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ScheduleRunRecord>, SchedError> {
        if !lock(&self.inner.schedules).contains_key(name) {
            return Err(SchedError::NotFound(format!("no schedule named '{name}'")));
        }
        Ok(self
            .inner
            .sh
            .store
            .schedule_runs(name, before, limit)
            .await?)
    }
}

/// The zone as the API names it: its IANA name, or the host's offset.
fn zone_name(zone: Zone) -> String {
    match zone {
        Zone::Named(tz) => tz.name().to_string(),
        Zone::Local => format!(
            "host local time (UTC{})",
            chrono::Local::now().format("%:z")
        ),
    }
}

/// A trigger tried before it is saved: its effective zone and next `n` fire times (the
/// same computation as a saved schedule's `next_runs`), or the problems with the trigger
/// and the zone, per field.
pub fn preview_trigger(
    trigger: &str,
    timezone: Option<&str>,
    n: usize,
) -> Result<(String, Vec<String>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let zone = Zone::parse(timezone).map_err(|_| {
        errors.push(FieldError::invalid_timezone(
            "timezone",
            timezone.unwrap_or_default(),
        ))
    });
    let trigger = Trigger::parse(trigger)
        .map_err(|why| errors.push(FieldError::invalid_cron("trigger", trigger.trim(), &why)));
    match (trigger, zone) {
        (Ok(trigger), Ok(zone)) => Ok((
            zone_name(zone),
            trigger
                .upcoming(Utc::now(), zone, n)
                .into_iter()
                .map(|t| in_zone(t, zone))
                .collect(),
        )),
        _ => Err(errors),
    }
}

/// RFC 3339 in the schedule's zone, so "04:00" reads as 04:00.
fn in_zone(t: DateTime<Utc>, zone: Zone) -> String {
    match zone {
        Zone::Local => t.with_timezone(&chrono::Local).to_rfc3339(),
        Zone::Named(tz) => t.with_timezone(&tz).to_rfc3339(),
    }
}
