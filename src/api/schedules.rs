//! Schedule endpoints: CRUD (admin: a schedule runs commands), run now and cancel
//! (operator), run history (viewer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::Caller;
use super::error::{ApiError, ErrorBody, Json, Path};
use super::guard::{Admin, OnSchedule, perm};
use super::paging::{Page, page_body};
use super::shared::{RunRef, same_name};
use crate::access::Perm;
use crate::program::FieldError;
use crate::schedule::record::ScheduleRunRecord;
use crate::schedule::spec::ScheduleSpec;
use crate::schedule::{Fired, ScheduleInfo};

/// All schedules.
#[derive(Serialize, ToSchema)]
pub struct ScheduleList {
    /// Schedules by name.
    pub schedules: Vec<ScheduleInfo>,
}

/// Lists every schedule with its next fire times.
#[utoipa::path(get, path = "/api/schedules", tag = "schedules",
    responses((status = 200, body = ScheduleList), (status = 401, body = ErrorBody)))]
async fn list(State(app): State<AppState>, caller: Caller) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = app
        .sched
        .schedules()
        .await
        .into_iter()
        .filter(|s| may(&app, &caller, &s.spec, Perm::View))
        .collect();
    Ok(Json(ScheduleList { schedules }))
}

/// True when the caller holds `perm` on every program the schedule names; a schedule
/// that runs jobs or HTTP requests belongs to no program and needs `perm` everywhere.
fn may(app: &AppState, caller: &Caller, spec: &ScheduleSpec, perm: Perm) -> bool {
    if caller.0.access().perms_everywhere().has(perm) {
        return true;
    }
    let mut programs = Vec::new();
    for task in &spec.tasks {
        match task.action.program() {
            Some(p) => programs.push(p),
            None => return false,
        }
    }
    let c = &spec.conditions;
    programs.extend(c.skip_if_not_running.as_deref());
    programs.extend(c.only_when_empty.as_deref());
    !programs.is_empty()
        && programs
            .iter()
            .all(|p| caller.perms_on(p, &app.tags_of(p)).has(perm))
}

/// Fails with 403 unless [`may`] allows `perm` on schedule `name`.
pub(super) async fn allow_schedule(
    app: &AppState,
    caller: &Caller,
    name: &str,
    perm: Perm,
) -> Result<(), ApiError> {
    let info = app.sched.schedule(name).await?;
    if may(app, caller, &info.spec, perm) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "'{}' needs the '{}' permission on every program schedule '{name}' acts on",
        caller.0.name,
        perm.as_str()
    )))
}

/// Creates a schedule (admin). Invalid triggers, unknown programs or jobs, and task kinds
/// this build lacks are refused with 422 naming the field and task.
#[utoipa::path(post, path = "/api/schedules", tag = "schedules", request_body = ScheduleSpec,
    responses((status = 201, body = ScheduleInfo), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(spec): Json<ScheduleSpec>,
) -> Result<Response, ApiError> {
    let info = app.sched.create_schedule(spec).await?;
    app.audit(&caller, "schedule.create", &info.spec.name, None)
        .await;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// One schedule with its next 5 fire times and last run.
#[utoipa::path(get, path = "/api/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = ScheduleInfo), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(app): State<AppState>,
    OnSchedule { name, .. }: OnSchedule<perm::View>,
) -> Result<Json<ScheduleInfo>, ApiError> {
    Ok(Json(app.sched.schedule(&name).await?))
}

/// Replaces a schedule (admin). Masked secrets sent back unchanged keep their values.
#[utoipa::path(put, path = "/api/schedules/{name}", tag = "schedules", request_body = ScheduleSpec,
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = ScheduleInfo), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    Json(spec): Json<ScheduleSpec>,
) -> Result<Json<ScheduleInfo>, ApiError> {
    same_name(&name, &spec.name)?;
    let info = app.sched.update_schedule(spec).await?;
    app.audit(&caller, "schedule.update", &name, None).await;
    Ok(Json(info))
}

/// Deletes a schedule (admin); a chain in progress is cancelled.
#[utoipa::path(delete, path = "/api/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.sched.delete_schedule(&name).await?;
    app.audit(&caller, "schedule.delete", &name, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the schedule's chain now (operator). Its conditions apply; a run already in
/// progress or a failed condition answers 409 (recorded as a skipped run).
#[utoipa::path(post, path = "/api/schedules/{name}/run", tag = "schedules",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 202, body = RunRef), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn run_now(
    State(app): State<AppState>,
    OnSchedule { caller, name, .. }: OnSchedule<perm::Schedules>,
) -> Result<Response, ApiError> {
    let fired = app
        .sched
        .fire(&name, None, format!("manual:{}", caller.0.name))
        .await?;
    app.audit(&caller, "schedule.run", &name, None).await;
    match fired {
        Fired::Started(run_id) => {
            Ok((StatusCode::ACCEPTED, Json(RunRef { run_id })).into_response())
        }
        Fired::Skipped(run_id, reason) => Err(ApiError::conflict(format!(
            "schedule '{name}' did not run: {reason} (recorded as run {run_id})"
        ))),
    }
}

/// Cancels the chain in progress (operator): the current task is abandoned, no further
/// task runs. Job runs it started go on; cancel them on the job.
#[utoipa::path(post, path = "/api/schedules/{name}/cancel", tag = "schedules",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 202, body = RunRef), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(app): State<AppState>,
    OnSchedule { caller, name, .. }: OnSchedule<perm::Schedules>,
) -> Result<Response, ApiError> {
    let run_id = app.sched.cancel_schedule(&name)?;
    app.audit(&caller, "schedule.cancel", &name, None).await;
    Ok((StatusCode::ACCEPTED, Json(RunRef { run_id })).into_response())
}

page_body!("A page of chain runs, newest first." ScheduleRunPage, runs: ScheduleRunRecord, "Runs, newest first.");

/// The schedule's run history (fired, skipped and manual runs), newest first.
#[utoipa::path(get, path = "/api/schedules/{name}/runs", tag = "schedules",
    params(("name" = String, Path, description = "schedule name"), Page),
    responses((status = 200, body = ScheduleRunPage), (status = 404, body = ErrorBody)))]
async fn runs(
    State(app): State<AppState>,
    OnSchedule { name, .. }: OnSchedule<perm::View>,
    page: Page,
) -> Result<Json<ScheduleRunPage>, ApiError> {
    let runs = app
        .sched
        .schedule_runs(&name, page.before, page.limit)
        .await?;
    Ok(Json(ScheduleRunPage::new(&page, runs, |r| r.id)))
}

/// A trigger to try before saving it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerPreviewRequest {
    /// A cron expression (5 or 6 fields) or an interval such as `every 6h`.
    #[schema(example = "0 4 * * *")]
    pub trigger: String,
    /// IANA time zone; the host's when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// How many fire times, 1-20 (default 5).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 20)]
    pub count: Option<u32>,
}

/// What a trigger would do: its next fire times, or why it is not valid.
#[derive(Serialize, ToSchema)]
pub struct TriggerPreview {
    /// True when the trigger and the zone are valid.
    pub valid: bool,
    /// The zone the fire times are in (absent when invalid).
    pub effective_timezone: Option<String>,
    /// The next fire times, RFC 3339 in that zone, as a saved schedule's `next_runs`.
    pub next_runs: Vec<String>,
    /// Problems with `trigger` or `timezone`, per field (empty when valid).
    pub errors: Vec<FieldError>,
}

/// Previews a trigger (any signed-in user): the next fire times in its zone, computed
/// as a saved schedule's are. An invalid trigger is an answer (200, `valid: false`, the
/// problems per field), not an error, so a form can ask while the user types.
#[utoipa::path(post, path = "/api/triggers/preview", tag = "schedules",
    request_body = TriggerPreviewRequest,
    responses((status = 200, body = TriggerPreview), (status = 401, body = ErrorBody)))]
async fn preview(
    _caller: Caller,
    Json(req): Json<TriggerPreviewRequest>,
) -> Result<Json<TriggerPreview>, ApiError> {
    let count = req.count.unwrap_or(5);
    if !(1..=20).contains(&count) {
        return Err(ApiError::validation(vec![FieldError::out_of_range(
            "count", 1, 20,
        )]));
    }
    let zone = req.timezone.as_deref().filter(|z| !z.trim().is_empty());
    Ok(Json(
        match crate::schedule::preview_trigger(&req.trigger, zone, count as usize) {
            Ok((zone, next_runs)) => TriggerPreview {
                valid: true,
                effective_timezone: Some(zone),
                next_runs,
                errors: Vec::new(),
            },
            Err(errors) => TriggerPreview {
                valid: false,
                effective_timezone: None,
                next_runs: Vec::new(),
                errors,
            },
        },
    ))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(run_now))
        .routes(routes!(cancel))
        .routes(routes!(runs))
        .routes(routes!(preview))
}
