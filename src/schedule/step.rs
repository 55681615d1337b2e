//! One attempt of one job step: spawn the command in its own process group with its
//! output going to a file, record its pid and start time before waiting on it, and stop it
//! gracefully (stop signal, timeout, then kill of the whole group) on timeout or cancel.
//!
//! Output goes to a file rather than a pipe so a step outlives a crash of warden without
//! dying on a broken pipe; the tail of that file is what the run history shows.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::spec::{FailureClass, JobSpec, StepSpec};
use crate::os;
use crate::schedule::record::StepStatus;
use crate::store::schedule::StepEnd;
use crate::store::{Store, now_ms};

/// Bytes of output kept in the run history.
const TAIL_BYTES: u64 = 4096;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Exit code 0.
    Succeeded,
    /// Failed in the given class, with a readable reason.
    Failed(FailureClass, String),
    /// Stopped because the run was cancelled.
    Cancelled,
}

/// Everything one attempt needs.
pub struct Attempt<'a> {
    /// The database (step rows).
    pub store: &'a Store,
    /// The job.
    pub job: &'a JobSpec,
    /// The step.
    pub step: &'a StepSpec,
    /// The run.
    pub run_id: i64,
    /// 0 for the first try.
    pub attempt: u32,
    /// Directory of this run's output files.
    pub run_dir: &'a Path,
    /// Cancelled when the run is cancelled.
    pub cancel: &'a CancellationToken,
}

impl Attempt<'_> {
    /// Runs the attempt to its end and records it.
    pub async fn run(self) -> Outcome {
        let log = self
            .run_dir
            .join(format!("{}.{}.log", self.step.name, self.attempt));
        let started_at = now_ms();
        let spawned = self.spawn(&log);
        let (mut child, pid) = match spawned {
            Ok(v) => v,
            Err(why) => {
                self.record_unstarted(started_at, &why).await;
                return Outcome::Failed(FailureClass::Spawn, why);
            }
        };
        let start_time = os::process_start_time(pid).unwrap_or(0);
        // Record the process before waiting on it: from here on a crash of warden leaves a
        // row that the next warden finds (pid + start time), so it never starts the job
        // again while this process lives. If it cannot be recorded, it must not run.
        let row = match self
            .store
            .insert_step_run(
                self.run_id,
                &self.step.name,
                self.attempt,
                started_at,
                Some((pid, start_time)),
            )
            .await
        {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(job = %self.job.name, step = %self.step.name, error = %e, "cannot record a step's process; killing it");
                let _ = os::kill_group(pid);
                let _ = child.wait().await;
                os::drain_group(pid, Duration::ZERO).await;
                return Outcome::Failed(
                    FailureClass::Spawn,
                    "the step's process could not be recorded in the database".into(),
                );
            }
        };
        let timeout = self.step.timeout_seconds.map(Duration::from_secs);
        enum Wake {
            Exited(std::io::Result<std::process::ExitStatus>),
            TimedOut,
            Cancelled,
        }
        let wake = tokio::select! {
            st = child.wait() => Wake::Exited(st),
            _ = sleep_opt(timeout) => Wake::TimedOut,
            _ = self.cancel.cancelled() => Wake::Cancelled,
        };
        let (status, stopped_for) = match wake {
            Wake::Exited(st) => (st, None),
            Wake::TimedOut => {
                let secs = timeout.map(|t| t.as_secs()).unwrap_or(0);
                let why = format!("timed out after {secs} s");
                (
                    self.stop(&mut child, pid).await,
                    Some(Outcome::Failed(FailureClass::Timeout, why)),
                )
            }
            Wake::Cancelled => (self.stop(&mut child, pid).await, Some(Outcome::Cancelled)),
        };
        // Whatever the step left behind in its group gets a short grace, then is killed.
        if stopped_for.is_none() {
            let _ = os::signal_group(pid, &self.job.stop_signal);
        }
        os::drain_group(pid, Duration::from_secs(2)).await;
        let exit = status.as_ref().ok().map(|s| os::describe_exit(*s));
        let outcome = match (stopped_for, &exit) {
            (Some(o), _) => o,
            (None, Some(e)) if e.success() => Outcome::Succeeded,
            (None, Some(e)) => Outcome::Failed(FailureClass::Exit, e.description.clone()),
            (None, None) => Outcome::Failed(
                FailureClass::Exit,
                "lost track of the step's process".into(),
            ),
        };
        let tail = read_tail(&log);
        let (state, failure, message) = match &outcome {
            Outcome::Succeeded => (StepStatus::Succeeded, None, "exit code 0".to_string()),
            Outcome::Failed(class, why) => (StepStatus::Failed, Some(class.as_str()), why.clone()),
            Outcome::Cancelled => (
                StepStatus::Cancelled,
                Some("cancelled"),
                format!(
                    "cancelled ({})",
                    exit.as_ref()
                        .map(|e| e.description.as_str())
                        .unwrap_or("exit unknown")
                ),
            ),
        };
        let end = StepEnd {
            state,
            exit_code: exit.as_ref().and_then(|e| e.code),
            signal: exit.as_ref().and_then(|e| e.signal.clone()),
            failure,
            message,
            output_tail: tail,
        };
        if let Err(e) = self.store.finish_step_run(row, end).await {
            tracing::error!(job = %self.job.name, step = %self.step.name, error = %e, "cannot record the end of a step");
        }
        outcome
    }

    fn spawn(&self, log: &Path) -> Result<(tokio::process::Child, u32), String> {
        let s = self.step;
        if let Some(cwd) = &s.cwd
            && !Path::new(cwd).is_dir()
        {
            return Err(format!("working directory {cwd:?} does not exist"));
        }
        std::fs::create_dir_all(self.run_dir)
            .map_err(|e| format!("cannot create {}: {e}", self.run_dir.display()))?;
        let out = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let mut cmd = tokio::process::Command::new(&s.command);
        cmd.args(&s.args)
            .envs(&s.env)
            .env("WARDEN_JOB", &self.job.name)
            .env("WARDEN_RUN_ID", self.run_id.to_string())
            .env("WARDEN_STEP", &s.name)
            .env("WARDEN_ATTEMPT", self.attempt.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(false);
        if let Some(cwd) = &s.cwd {
            cmd.current_dir(cwd);
        }
        os::prepare_command(&mut cmd);
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("command {:?} not found (check the path or PATH)", s.command)
            } else {
                format!("cannot run {:?}: {e}", s.command)
            }
        })?;
        let pid = child
            .id()
            .ok_or_else(|| "the process exited before it could be observed".to_string())?;
        if let Err(e) = os::attach_child(&child) {
            // On Windows the child is still suspended: it must not linger unseen.
            let mut child = child;
            let _ = child.start_kill();
            return Err(format!("cannot start {:?}: {e}", s.command));
        }
        Ok((child, pid))
    }

    /// The graceful stop: the job's stop signal to the whole group, then a kill after
    /// `stop_timeout_seconds`.
    async fn stop(
        &self,
        child: &mut tokio::process::Child,
        pid: u32,
    ) -> std::io::Result<std::process::ExitStatus> {
        if let Err(e) = os::signal_group(pid, &self.job.stop_signal) {
            tracing::warn!(job = %self.job.name, step = %self.step.name, error = %e, "stop signal failed");
        }
        let grace = Duration::from_secs(self.job.stop_timeout_seconds);
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(st) => st,
            Err(_) => {
                let _ = os::kill_group(pid);
                child.wait().await
            }
        }
    }

    async fn record_unstarted(&self, started_at: i64, why: &str) {
        let r = async {
            let id = self
                .store
                .insert_step_run(self.run_id, &self.step.name, self.attempt, started_at, None)
                .await?;
            self.store
                .finish_step_run(
                    id,
                    StepEnd {
                        state: StepStatus::Failed,
                        exit_code: None,
                        signal: None,
                        failure: Some(FailureClass::Spawn.as_str()),
                        message: why.to_string(),
                        output_tail: None,
                    },
                )
                .await
        };
        if let Err(e) = r.await {
            tracing::error!(job = %self.job.name, step = %self.step.name, error = %e, "cannot record a step that did not start");
        }
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The last [`TAIL_BYTES`] of a file as text, starting at a line boundary when cut.
fn read_tail(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    f.read_to_end(&mut buf).ok()?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > 0
        && let Some(nl) = text.find('\n')
    {
        text.drain(..=nl);
    }
    Some(text)
}

/// Directory holding the output files of one run.
pub fn run_dir(jobs_dir: &Path, job: &str, run_id: i64) -> PathBuf {
    jobs_dir.join(job).join(run_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_cut_at_a_line_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("out.log");
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!("line {i}\n"));
        }
        std::fs::write(&p, &text).expect("write");
        let tail = read_tail(&p).expect("tail");
        assert!(tail.len() <= TAIL_BYTES as usize);
        assert!(tail.starts_with("line "), "{}", &tail[..20]);
        assert!(tail.ends_with("line 999\n"));
        std::fs::write(&p, "short\n").expect("write");
        assert_eq!(read_tail(&p).as_deref(), Some("short\n"));
    }
}
