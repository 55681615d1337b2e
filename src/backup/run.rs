//! Taking a backup: reserve the program, record the row, wait for a slot, make the data
//! consistent (pre steps or a stop), write and verify the archive on a worker thread, then
//! always the post steps (or a start), the outcome and the retention policy.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::archive::{self, Control, CreateSpec, Phase, Progress};
use super::error::BackupError;
use super::registry::{Activity, BusyGuard};
use super::service::{BackupService, on_worker_thread, source_dir, stop_limit, wait_stopped};
use super::settings::BackupSettings;
use super::steps;
use super::view::{BackupId, BackupOptions};
use crate::backup::record::{BackupRecord, BackupStatus};
use crate::bus::{BackupActivity, BackupActivityKind, Event};
use crate::program::State;
use crate::store::backups::BackupOutcome;
use crate::store::now_ms;
use crate::supervisor::ProgramHandle;
use crate::sync::lock;

/// Everything a backup task needs.
struct Job {
    handle: ProgramHandle,
    id: i64,
    started_at: i64,
    settings: BackupSettings,
    source: PathBuf,
    destination: PathBuf,
    cancel: CancellationToken,
    progress: watch::Sender<Progress>,
    /// The program's reservation, released just before the outcome is recorded.
    busy: Option<BusyGuard>,
}

impl BackupService {
    /// Starts a backup of `program` and returns its id at once; the backup runs in the
    /// background (progress on the bus and in [`BackupService::get`]). This is the entry
    /// point for schedules as well as the API.
    pub async fn run(&self, program: &str, opts: BackupOptions) -> Result<BackupId, BackupError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(BackupError::ShuttingDown);
        }
        let handle = self.inner.sup.get(program)?;
        let settings = self.settings(program).await?;
        let source = source_dir(&handle)?;
        let destination = self.destination(program, &settings);
        let (guard, cancel, progress) = self.reserve(program, Activity::Reserving)?;
        let id = self
            .inner
            .store
            .insert_backup(program, &opts.reason)
            .await?;
        self.set_activity(program, Activity::Backup(id));
        let started_at = now_ms();
        self.record(
            program,
            "backup_started",
            format!("backup {id} started ({})", opts.reason),
            serde_json::json!({ "backup_id": id, "reason": opts.reason }),
        )
        .await;
        self.publish(
            program,
            BackupActivityKind::Started,
            id,
            None,
            format!("backup {id} started"),
        );
        let svc = self.clone();
        self.inner.tasks.spawn(async move {
            let job = Job {
                handle,
                id,
                started_at,
                settings,
                source,
                destination,
                cancel,
                progress,
                busy: Some(guard),
            };
            svc.backup_task(job).await;
        });
        Ok(BackupId(id))
    }

    /// Runs a backup of `program` and waits until it has ended (schedules' `backup`
    /// task). Answers the final record; its `status` says whether it succeeded.
    pub async fn run_to_end(
        &self,
        program: &str,
        opts: BackupOptions,
    ) -> Result<BackupRecord, BackupError> {
        // Subscribed before the run starts, so its end cannot be missed; the periodic
        // re-read covers a lagging receiver.
        let mut events = self.inner.bus.subscribe();
        let BackupId(id) = self.run(program, opts).await?;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                ev = events.recv() => match ev {
                    Ok(ev) => match &*ev {
                        Event::Backup(a) if a.backup_id == id && a.restore_id.is_none() => {}
                        _ => continue,
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        events = self.inner.bus.subscribe();
                    }
                },
            }
            let record = self.record_of(id).await?;
            if record.status != BackupStatus::Running {
                return Ok(record);
            }
        }
    }

    /// Cancels a running backup. Its post steps still run.
    pub async fn cancel(&self, id: i64) -> Result<(), BackupError> {
        let busy = lock(&self.inner.busy);
        match busy.values().find(|b| b.activity == Activity::Backup(id)) {
            Some(b) => {
                b.cancel.cancel();
                Ok(())
            }
            None => Err(BackupError::Conflict(format!("backup {id} is not running"))),
        }
    }

    async fn backup_task(&self, mut job: Job) {
        let program = job.handle.name().to_string();
        let mut warnings = Vec::new();
        let slot = tokio::select! {
            s = self.inner.slots.clone().acquire_owned() => s.ok(),
            _ = job.cancel.cancelled() => None,
        };
        let result = match slot {
            None => Err(BackupError::Cancelled),
            Some(_slot) => self.consistent_backup(&job, &mut warnings).await,
        };
        let (outcome, finished) = match result {
            Ok(created) => {
                for f in &created.changed {
                    warnings.push(format!(
                        "{f}: changed while it was read on every attempt; it may be inconsistent"
                    ));
                }
                for s in &created.skipped {
                    warnings.push(format!("{s}: not archived"));
                }
                if created.attempts > 1 {
                    warnings.push(format!(
                        "retried: files changed while they were read (attempts: {})",
                        created.attempts
                    ));
                }
                let m = &created.manifest;
                let msg = format!(
                    "backup {} finished: {} files, {} bytes, archive {} bytes",
                    job.id, m.files, m.data_bytes, m.archive.bytes
                );
                self.record(
                    &program,
                    "backup_finished",
                    msg.clone(),
                    serde_json::json!({ "backup_id": job.id, "archive_bytes": m.archive.bytes, "data_bytes": m.data_bytes, "files": m.files, "duration_ms": now_ms() - job.started_at, "warnings": warnings }),
                )
                .await;
                let outcome = BackupOutcome {
                    status: BackupStatus::Ok,
                    path: Some(created.dir.to_string_lossy().into_owned()),
                    archive_bytes: Some(m.archive.bytes),
                    files: Some(m.files),
                    data_bytes: Some(m.data_bytes),
                    checksum: Some(m.archive.blake3.clone()),
                    error: None,
                    warnings,
                };
                (outcome, (BackupActivityKind::Finished, msg))
            }
            Err(e) => {
                let (status, kind, text) = match &e {
                    BackupError::Cancelled if self.inner.shutdown.is_cancelled() => (
                        BackupStatus::Cancelled,
                        BackupActivityKind::Cancelled,
                        "cancelled: warden is shutting down".to_string(),
                    ),
                    BackupError::Cancelled => (
                        BackupStatus::Cancelled,
                        BackupActivityKind::Cancelled,
                        "cancelled".to_string(),
                    ),
                    other => (
                        BackupStatus::Failed,
                        BackupActivityKind::Failed,
                        other.to_string(),
                    ),
                };
                let msg = format!("backup {} {status}: {text}", job.id);
                self.record(
                    &program,
                    if status == BackupStatus::Failed {
                        "backup_failed"
                    } else {
                        "backup_cancelled"
                    },
                    msg.clone(),
                    serde_json::json!({ "backup_id": job.id, "error": text, "warnings": warnings }),
                )
                .await;
                let outcome = BackupOutcome {
                    status,
                    path: None,
                    archive_bytes: None,
                    files: None,
                    data_bytes: None,
                    checksum: None,
                    error: Some(text),
                    warnings,
                };
                (outcome, (kind, msg))
            }
        };
        let ok = outcome.status == BackupStatus::Ok;
        // Free the program before the outcome becomes visible, so whoever sees this
        // backup finished can start the next one at once.
        drop(job.busy.take());
        if let Err(e) = self.inner.store.finish_backup(job.id, outcome).await {
            tracing::error!(error = %e, backup = job.id, "cannot record the end of a backup");
        }
        // Published once the record says so, so a subscriber that looks finds it.
        self.publish(&program, finished.0, job.id, None, finished.1);
        if ok {
            self.apply_retention(&program, &job.settings).await;
        }
    }

    /// Pre steps (or stop), the archive, then post steps (or start) whatever happened.
    async fn consistent_backup(
        &self,
        job: &Job,
        warnings: &mut Vec<String>,
    ) -> Result<archive::Created, BackupError> {
        let handle = &job.handle;
        // A sleeping server is backed up as a stopped one (no steps, no stop); a player
        // connecting meanwhile is answered by its wake guard, and it wakes when the
        // backup (post steps included) is over.
        let _asleep = handle.hold_wake();
        let program = handle.name().to_string();
        let state = handle.snapshot().status.state;
        let running = matches!(state, State::Starting | State::Running);
        let s = &job.settings;
        let mut stopped_by_us = false;
        let step_note = |svc: &BackupService| {
            let svc = svc.clone();
            let program = program.clone();
            let id = job.id;
            move |m: String| svc.publish(&program, BackupActivityKind::Step, id, None, m)
        };
        let before = if s.stop_during_backup && (state.is_active() || state == State::Backoff) {
            stopped_by_us = true;
            match handle.stop().await {
                Ok(()) => wait_stopped(handle, stop_limit(handle)).await,
                Err(e) => Err(e.into()),
            }
        } else if running && !s.pre.is_empty() {
            steps::run(
                handle,
                &self.inner.bus,
                &s.pre,
                Some(&job.cancel),
                step_note(self),
            )
            .await
        } else {
            Ok(())
        };
        let result = match before {
            Ok(()) => self.write(job).await,
            Err(e) => Err(e),
        };
        job.progress.send_modify(|p| p.phase = Phase::Finishing);
        if stopped_by_us {
            if let Err(e) = handle.start().await {
                warnings.push(format!(
                    "could not start '{program}' again after the backup: {e}"
                ));
            }
        } else if running
            && !s.post.is_empty()
            && let Err(e) =
                steps::run(handle, &self.inner.bus, &s.post, None, step_note(self)).await
        {
            warnings.push(format!("post step failed: {e}"));
        }
        result
    }

    async fn write(&self, job: &Job) -> Result<archive::Created, BackupError> {
        let spec = CreateSpec {
            program: job.handle.name().to_string(),
            backup_id: job.id,
            started_at_ms: job.started_at,
            source: job.source.clone(),
            destination: job.destination.clone(),
            include: job.settings.include.clone(),
            exclude: job.settings.exclude.clone(),
            zstd_level: job.settings.zstd_level,
            zstd_threads: self.inner.zstd_threads,
            change_retries: job.settings.change_retries,
            on_change: job.settings.on_change,
        };
        let cancel = job.cancel.clone();
        let progress = job.progress.clone();
        let bus = self.inner.bus.clone();
        let limit = job.settings.max_mib_per_second.map(|m| u64::from(m) << 20);
        let (program, id) = (spec.program.clone(), job.id);
        on_worker_thread(format!("backup-{id}"), self.inner.low_priority, move || {
            let report = |p: &Progress| {
                progress.send_replace(p.clone());
                bus.publish(Event::Backup(BackupActivity {
                    program: program.clone(),
                    ts: now_ms(),
                    kind: BackupActivityKind::Progress,
                    backup_id: id,
                    restore_id: None,
                    bytes_done: p.bytes_done,
                    bytes_total: p.bytes_total,
                    current_file: p.current_file.clone(),
                    message: format!("{:?}", p.phase).to_lowercase(),
                }));
            };
            let ctl = Control {
                cancel: &cancel,
                report: &report,
                max_bytes_per_second: limit,
            };
            archive::create(&spec, &ctl)
        })
        .await
    }
}
