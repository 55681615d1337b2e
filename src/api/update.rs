//! Updates of installed servers: `GET /api/programs/{name}/update`, `POST …/update/check`
//! and `POST …/update/apply` (the work is the `install::update` service's).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::error::{ApiError, ErrorBody, Json};
use super::guard::{OnProgram, perm};
use crate::install::update::{ApplyRequest, UpdateError, UpdateStatus};

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> ApiError {
        match e {
            UpdateError::NotFound(n) => ApiError::not_found(format!("no program named '{n}'")),
            UpdateError::NotUpdatable(m) => ApiError::conflict(m),
            UpdateError::Busy(m) => ApiError::conflict(m),
            UpdateError::Check(f) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "update_check_failed",
                format!("{} ({})", f.message, f.code),
            ),
            UpdateError::Store(m) => ApiError::internal(&m),
        }
    }
}

/// Installed and available build, the update under way and the next window (view).
/// A program not installed from a template answers `installed_from_template: false`.
#[utoipa::path(get, path = "/api/programs/{name}/update", tag = "install",
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = UpdateStatus), (status = 404, body = ErrorBody)))]
async fn update_status(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
) -> Result<Json<UpdateStatus>, ApiError> {
    Ok(Json(app.updater.status(&name).await?))
}

/// Asks the program's source for its latest build now (define: it runs SteamCMD).
#[utoipa::path(post, path = "/api/programs/{name}/update/check", tag = "install",
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = UpdateStatus), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn check_update(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Define>,
) -> Result<Json<UpdateStatus>, ApiError> {
    let status = app.updater.check(&name).await?;
    app.audit(
        &caller,
        "program.update_check",
        &name,
        status
            .available
            .as_ref()
            .map(|b| format!("available build {b}")),
    )
    .await;
    Ok(Json(status))
}

/// Updates the program to its source's latest build (define: updating runs new code).
/// Answers 202 at once; the update waits for its window (`now` skips the wait for players),
/// backs up, applies, and rolls back when the new build does not become ready.
#[utoipa::path(post, path = "/api/programs/{name}/update/apply", tag = "install",
    params(("name" = String, Path, description = "program name")), request_body = ApplyRequest,
    responses((status = 202, body = UpdateStatus), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn apply_update(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Define>,
    Json(req): Json<ApplyRequest>,
) -> Result<Response, ApiError> {
    let now = req.now;
    let status = app.updater.apply(&name, req).await?;
    app.audit(
        &caller,
        "program.update_apply",
        &name,
        Some(if now {
            "now".into()
        } else {
            "in its window".into()
        }),
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(update_status))
        .routes(routes!(check_update))
        .routes(routes!(apply_update))
}
