//! Job endpoints: CRUD (admin: a job is a command line), run now and cancel (operator),
//! run history with step details (viewer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use super::guard::{Admin, Everywhere, perm};
use super::paging::{Page, page_body};
use super::shared::{RunRef, same_name};
use crate::schedule::record::{JobRunRecord, StepRunRecord};
use crate::schedule::spec::JobSpec;
use crate::schedule::{JobInfo, TriggerOutcome, TriggerResult};

/// All jobs.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    /// Jobs by name.
    pub jobs: Vec<JobInfo>,
}

/// Lists every job with its status and duration prediction.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs",
    responses((status = 200, body = JobList), (status = 401, body = ErrorBody)))]
async fn list(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
) -> Result<Json<JobList>, ApiError> {
    Ok(Json(JobList {
        jobs: app.sched.jobs().await,
    }))
}

/// Creates a job (admin). The step graph is validated: duplicate or unknown steps and
/// dependency cycles are refused with 422 naming the steps.
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", request_body = JobSpec,
    responses((status = 201, body = JobInfo), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(spec): Json<JobSpec>,
) -> Result<Response, ApiError> {
    let info = app.sched.create_job(spec).await?;
    app.audit(&caller, "job.create", &info.spec.name, None)
        .await;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// One job with its status, prediction and last run.
#[utoipa::path(get, path = "/api/jobs/{name}", tag = "jobs",
    params(("name" = String, Path, description = "job name")),
    responses((status = 200, body = JobInfo), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
    Path(name): Path<String>,
) -> Result<Json<JobInfo>, ApiError> {
    Ok(Json(app.sched.job(&name).await?))
}

/// Replaces a job (admin); a run in progress keeps the definition it started with.
#[utoipa::path(put, path = "/api/jobs/{name}", tag = "jobs", request_body = JobSpec,
    params(("name" = String, Path, description = "job name")),
    responses((status = 200, body = JobInfo), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    Json(spec): Json<JobSpec>,
) -> Result<Json<JobInfo>, ApiError> {
    same_name(&name, &spec.name)?;
    let info = app.sched.update_job(spec).await?;
    app.audit(&caller, "job.update", &name, None).await;
    Ok(Json(info))
}

/// Options for delete.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Cancel a run in progress first instead of refusing.
    #[serde(default)]
    force: bool,
}

/// Deletes a job with its history (admin). Refused (409) while a schedule runs it, or
/// while a run is in progress unless `force=true`.
#[utoipa::path(delete, path = "/api/jobs/{name}", tag = "jobs",
    params(("name" = String, Path, description = "job name"), DeleteQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    app.sched.delete_job(&name, q.force).await?;
    app.audit(&caller, "job.delete", &name, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the job now (operator). The overlap policy applies: the answer says whether the
/// run started, was queued or replaces the current one, with the predicted duration; a
/// skipped trigger answers 409 (and is recorded as a skipped run).
#[utoipa::path(post, path = "/api/jobs/{name}/run", tag = "jobs",
    params(("name" = String, Path, description = "job name")),
    responses((status = 202, body = TriggerResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn run_now(
    State(app): State<AppState>,
    Everywhere { caller, .. }: Everywhere<perm::Schedules>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let r = app
        .sched
        .run_job(&name, format!("manual:{}", caller.0.name))
        .await?;
    app.audit(&caller, "job.run", &name, None).await;
    if r.outcome == TriggerOutcome::Skipped {
        return Err(ApiError::conflict(format!(
            "job '{name}' was not started: {} (recorded as run {})",
            r.reason.as_deref().unwrap_or("skipped"),
            r.run_id.unwrap_or_default()
        )));
    }
    Ok((StatusCode::ACCEPTED, Json(r)).into_response())
}

/// Cancels the run in progress gracefully (operator): each running step gets the job's
/// stop signal and `stop_timeout_seconds` before its process group is killed. A trigger
/// waiting behind it is dropped.
#[utoipa::path(post, path = "/api/jobs/{name}/cancel", tag = "jobs",
    params(("name" = String, Path, description = "job name")),
    responses((status = 202, body = RunRef), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(app): State<AppState>,
    Everywhere { caller, .. }: Everywhere<perm::Schedules>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let run_id = app.sched.cancel_job(&name).await?;
    app.audit(&caller, "job.cancel", &name, None).await;
    Ok((StatusCode::ACCEPTED, Json(RunRef { run_id })).into_response())
}

page_body!("A page of job runs, newest first." JobRunPage, runs: JobRunRecord, "Runs (and skipped triggers), newest first.");

/// The job's run history, newest first.
#[utoipa::path(get, path = "/api/jobs/{name}/runs", tag = "jobs",
    params(("name" = String, Path, description = "job name"), Page),
    responses((status = 200, body = JobRunPage), (status = 404, body = ErrorBody)))]
async fn runs(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
    Path(name): Path<String>,
    page: Page,
) -> Result<Json<JobRunPage>, ApiError> {
    let runs = app.sched.job_runs(&name, page.before, page.limit).await?;
    Ok(Json(JobRunPage::new(&page, runs, |r| r.id)))
}

/// A run with every step attempt.
#[derive(Serialize, ToSchema)]
pub struct JobRunDetail {
    /// The run.
    pub run: JobRunRecord,
    /// Step attempts in start order (a retry is a new attempt).
    pub steps: Vec<StepRunRecord>,
}

/// One run with its step attempts: start, end, duration, exit status, retry count and
/// output tail of each.
#[utoipa::path(get, path = "/api/jobs/{name}/runs/{id}", tag = "jobs",
    params(("name" = String, Path, description = "job name"), ("id" = i64, Path, description = "run id")),
    responses((status = 200, body = JobRunDetail), (status = 404, body = ErrorBody)))]
async fn run_detail(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
    Path((name, id)): Path<(String, i64)>,
) -> Result<Json<JobRunDetail>, ApiError> {
    let (run, steps) = app.sched.job_run(&name, id).await?;
    Ok(Json(JobRunDetail { run, steps }))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(run_now))
        .routes(routes!(cancel))
        .routes(routes!(runs))
        .routes(routes!(run_detail))
}
