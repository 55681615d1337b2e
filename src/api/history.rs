//! Read-only history for the dashboard's pictures: a program's availability strip (from
//! its state events), a job's run durations with p50/p90, and a program's backup sizes
//! with the space left where they are written. Viewers read them, like their neighbours
//! (events, job runs, backups).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use super::guard::{Everywhere, OnProgram, perm};
use crate::backup::record::BackupStatus;
use crate::history::{StateHistory, Strip, percentile, strip};
use crate::schedule::record::RunStatus;
use crate::store::now_ms;

/// The window of an availability strip.
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum StripRange {
    /// The last 24 hours.
    #[default]
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days.
    #[serde(rename = "7d")]
    Week,
}

impl StripRange {
    fn span_ms(self) -> i64 {
        match self {
            StripRange::Day => 86_400_000,
            StripRange::Week => 7 * 86_400_000,
        }
    }
}

/// Availability options.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct StripParams {
    /// `24h` (default) or `7d`.
    range: Option<StripRange>,
}

/// A program's availability over the window.
#[derive(Serialize, ToSchema)]
pub struct AvailabilityView {
    /// Program name.
    pub program: String,
    /// The window asked for.
    pub range: StripRange,
    /// The strip: segments, time per class and the uptime percentage.
    #[serde(flatten)]
    pub strip: Strip,
}

/// When the program was running, stopped, crashed or given up on over the last 24 hours
/// or 7 days, from its stored state events, with the share of that time it was running.
#[utoipa::path(get, path = "/api/programs/{name}/availability", tag = "programs",
    params(("name" = String, Path, description = "program name"), StripParams),
    responses((status = 200, body = AvailabilityView), (status = 404, body = ErrorBody)))]
async fn availability(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
    Query(q): Query<StripParams>,
) -> Result<Json<AvailabilityView>, ApiError> {
    let now_state = app.sup.get(&name)?.snapshot().status.state;
    let range = q.range.unwrap_or_default();
    let to = now_ms();
    let from = to - range.span_ms();
    let stored = app
        .store
        .state_history(&name, from, to)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no program named '{name}'")))?;
    let h = StateHistory {
        created_at: stored.created_at,
        before: stored.before,
        changes: stored.changes,
        now: now_state,
    };
    Ok(Json(AvailabilityView {
        program: name,
        range,
        strip: strip(from, to, &h),
    }))
}

/// Duration options.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DurationParams {
    /// How many of the last finished runs, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// One finished run on the durations chart.
#[derive(Serialize, ToSchema)]
pub struct RunDuration {
    /// Run id.
    pub id: i64,
    /// Unix ms.
    pub started_at: i64,
    /// How long it ran.
    pub duration_ms: i64,
    /// `succeeded`, `failed`, `cancelled` or `interrupted`.
    pub state: RunStatus,
}

/// A job's run durations over time.
#[derive(Serialize, ToSchema)]
pub struct JobDurations {
    /// Job name.
    pub job: String,
    /// Finished runs, oldest first.
    pub runs: Vec<RunDuration>,
    /// Median duration of the succeeded runs among them; absent without any.
    pub p50_ms: Option<i64>,
    /// 90th percentile (nearest rank) of the same.
    pub p90_ms: Option<i64>,
    /// How many succeeded runs the percentiles are taken from.
    pub samples: usize,
}

/// How long a job's last finished runs took, oldest first, with p50 and p90 of the
/// succeeded ones.
#[utoipa::path(get, path = "/api/jobs/{name}/durations", tag = "jobs",
    params(("name" = String, Path, description = "job name"), DurationParams),
    responses((status = 200, body = JobDurations), (status = 404, body = ErrorBody)))]
async fn job_durations(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
    Path(name): Path<String>,
    Query(q): Query<DurationParams>,
) -> Result<Json<JobDurations>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    let rows = app.sched.job_durations(&name, limit).await?;
    let ok: Vec<i64> = rows
        .iter()
        .filter(|r| r.3 == RunStatus::Succeeded)
        .map(|r| r.2)
        .collect();
    Ok(Json(JobDurations {
        job: name,
        p50_ms: percentile(&ok, 0.5),
        p90_ms: percentile(&ok, 0.9),
        samples: ok.len(),
        runs: rows
            .into_iter()
            .map(|(id, started_at, duration_ms, state)| RunDuration {
                id,
                started_at,
                duration_ms,
                state,
            })
            .collect(),
    }))
}

/// One finished backup on the sizes chart.
#[derive(Serialize, ToSchema)]
pub struct BackupSize {
    /// Backup id.
    pub id: i64,
    /// When it finished, unix ms.
    pub finished_at: i64,
    /// Size of the compressed archive.
    pub archive_bytes: u64,
    /// Bytes of file data before compression.
    pub data_bytes: Option<u64>,
}

/// A program's backup sizes over time and the space where they are written.
#[derive(Serialize, ToSchema)]
pub struct BackupSizes {
    /// Program name.
    pub program: String,
    /// Finished backups, oldest first.
    pub backups: Vec<BackupSize>,
    /// The folder backups are written to.
    pub destination: String,
    /// Free bytes on the filesystem holding it; absent when it cannot be read.
    pub free_bytes: Option<u64>,
    /// Size of that filesystem.
    pub total_bytes: Option<u64>,
}

/// Sizes of a program's finished backups over time, oldest first, and the free space of
/// the filesystem they are written to.
#[utoipa::path(get, path = "/api/programs/{name}/backup-sizes", tag = "backups",
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = BackupSizes), (status = 404, body = ErrorBody)))]
async fn backup_sizes(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
) -> Result<Json<BackupSizes>, ApiError> {
    let (dest, usage) = app.backups.destination_space(&name).await?;
    let mut backups: Vec<BackupSize> = app
        .store
        .backups(&name)
        .await?
        .into_iter()
        .filter(|b| b.status == BackupStatus::Ok)
        .filter_map(|b| {
            Some(BackupSize {
                id: b.id,
                finished_at: b.finished_at?,
                archive_bytes: b.archive_bytes?,
                data_bytes: b.data_bytes,
            })
        })
        .collect();
    backups.sort_by_key(|b| (b.finished_at, b.id));
    Ok(Json(BackupSizes {
        program: name,
        backups,
        destination: dest.to_string_lossy().into_owned(),
        free_bytes: usage.as_ref().map(|u| u.total.saturating_sub(u.used)),
        total_bytes: usage.map(|u| u.total),
    }))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(availability))
        .routes(routes!(job_durations))
        .routes(routes!(backup_sizes))
}
