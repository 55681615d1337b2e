//! Backup endpoints: per-program settings, create/list/cancel/verify/delete/download
//! backups, restore and discard the rollback copy. Roles: viewers read; operators take,
//! cancel and verify backups; admins change settings, restore, delete and download
//! (archives may hold secrets such as server configs).

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::error::{ApiError, ErrorBody, Json, Query};
use super::guard::{OnBackup, OnProgram, OnRestore, perm};
use crate::backup::manifest::Manifest;
use crate::backup::record::RestoreRecord;
use crate::backup::settings::BackupSettings;
use crate::backup::{
    BackupError, BackupOptions, BackupPreview, BackupView, RestoreOptions, RestoreView,
};

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> ApiError {
        match e {
            BackupError::NotFound(m) => ApiError::not_found(m),
            BackupError::Conflict(m) => ApiError::conflict(m),
            BackupError::Invalid(details) => ApiError::validation(details),
            BackupError::ShuttingDown => ApiError::unavailable("warden is shutting down"),
            BackupError::Store(s) => s.into(),
            other => ApiError::internal(&other),
        }
    }
}

/// Gets a program's backup settings (the defaults when none were saved).
#[utoipa::path(get, path = "/api/programs/{name}/backup-settings", tag = "backups",
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = BackupSettings), (status = 404, body = ErrorBody)))]
async fn get_settings(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
) -> Result<Json<BackupSettings>, ApiError> {
    Ok(Json(app.backups.settings(&name).await?))
}

/// Replaces a program's backup settings (admin: they name directories and console lines).
#[utoipa::path(put, path = "/api/programs/{name}/backup-settings", tag = "backups",
    params(("name" = String, Path, description = "program name")), request_body = BackupSettings,
    responses((status = 200, body = BackupSettings), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_settings(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Define>,
    Json(settings): Json<BackupSettings>,
) -> Result<Json<BackupSettings>, ApiError> {
    app.backups.set_settings(&name, settings).await?;
    app.audit(&caller, "backup.settings", &name, None).await;
    Ok(Json(app.backups.settings(&name).await?))
}

/// Globs to try in the backup settings form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// Include globs, as in the settings.
    pub include: Vec<String>,
    /// Exclude globs, as in the settings.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// How many covered files a preview names.
const PREVIEW_SAMPLE: usize = 200;

/// Which files of the program's working directory these include/exclude globs cover now
/// (nothing is saved). Names files, so it needs `files.read`.
#[utoipa::path(post, path = "/api/programs/{name}/backup-settings/preview", tag = "backups",
    params(("name" = String, Path, description = "program name")), request_body = PreviewRequest,
    responses((status = 200, body = BackupPreview), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn preview_settings(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::FilesRead>,
    Json(req): Json<PreviewRequest>,
) -> Result<Json<BackupPreview>, ApiError> {
    Ok(Json(
        app.backups
            .preview(&name, req.include, req.exclude, PREVIEW_SAMPLE)
            .await?,
    ))
}

/// A program's backups.
#[derive(Serialize, ToSchema)]
pub struct BackupList {
    /// Newest first.
    pub backups: Vec<BackupView>,
}

/// Lists a program's backups, newest first, with live progress of a running one.
#[utoipa::path(get, path = "/api/programs/{name}/backups", tag = "backups",
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = BackupList)))]
async fn list(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
) -> Result<Json<BackupList>, ApiError> {
    Ok(Json(BackupList {
        backups: app.backups.list(&name).await?,
    }))
}

/// Starts a backup of the program (202: it runs in the background; follow it with
/// `GET /api/backups/{id}` or the bus). 409 while a backup or restore of it runs.
#[utoipa::path(post, path = "/api/programs/{name}/backups", tag = "backups",
    params(("name" = String, Path, description = "program name")),
    responses((status = 202, body = BackupView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Backups>,
) -> Result<Response, ApiError> {
    let id = app
        .backups
        .run(
            &name,
            BackupOptions {
                reason: format!("manual by {}", caller.0.name),
            },
        )
        .await?;
    app.audit(
        &caller,
        "backup.create",
        &name,
        Some(format!("backup {}", id.0)),
    )
    .await;
    let view = app.backups.get(id.0).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

/// One backup, with live progress while it runs or is verified.
#[utoipa::path(get, path = "/api/backups/{id}", tag = "backups",
    params(("id" = i64, Path, description = "backup id")),
    responses((status = 200, body = BackupView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(app): State<AppState>,
    OnBackup { id, .. }: OnBackup<perm::View>,
) -> Result<Json<BackupView>, ApiError> {
    Ok(Json(app.backups.get(id).await?))
}

/// Deletes a backup and its files. 409 while it runs or a restore or verification uses it.
#[utoipa::path(delete, path = "/api/backups/{id}", tag = "backups",
    params(("id" = i64, Path, description = "backup id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete(
    State(app): State<AppState>,
    OnBackup { caller, id, .. }: OnBackup<perm::BackupsRestore>,
) -> Result<StatusCode, ApiError> {
    app.backups.delete(id).await?;
    app.audit(&caller, "backup.delete", &id.to_string(), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Cancels a running backup; its post steps still run. 409 if it is not running.
#[utoipa::path(post, path = "/api/backups/{id}/cancel", tag = "backups",
    params(("id" = i64, Path, description = "backup id")),
    responses((status = 202, body = BackupView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(app): State<AppState>,
    OnBackup { caller, id, .. }: OnBackup<perm::Backups>,
) -> Result<Response, ApiError> {
    app.backups.get(id).await?;
    app.backups.cancel(id).await?;
    app.audit(&caller, "backup.cancel", &id.to_string(), None)
        .await;
    Ok((StatusCode::ACCEPTED, Json(app.backups.get(id).await?)).into_response())
}

/// Starts re-reading a backup against its manifest (202). The result appears in the
/// backup as `verified_at`, `verify_ok` and per-file `verify_problems`.
#[utoipa::path(post, path = "/api/backups/{id}/verify", tag = "backups",
    params(("id" = i64, Path, description = "backup id")),
    responses((status = 202, body = BackupView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn verify(
    State(app): State<AppState>,
    OnBackup { caller, id, .. }: OnBackup<perm::Backups>,
) -> Result<Response, ApiError> {
    let view = app.backups.verify(id).await?;
    app.audit(&caller, "backup.verify", &id.to_string(), None)
        .await;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

/// The manifest of a finished backup: every entry with its size and BLAKE3.
#[utoipa::path(get, path = "/api/backups/{id}/manifest", tag = "backups",
    params(("id" = i64, Path, description = "backup id")),
    responses((status = 200, body = Manifest), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn manifest(
    State(app): State<AppState>,
    OnBackup { id, .. }: OnBackup<perm::View>,
) -> Result<Json<Manifest>, ApiError> {
    Ok(Json(app.backups.manifest(id).await?))
}

/// Streams a finished backup's archive (`.tar.zst`).
#[utoipa::path(get, path = "/api/backups/{id}/download", tag = "backups",
    params(("id" = i64, Path, description = "backup id")),
    responses((status = 200, description = "the archive, application/zstd"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn download(
    State(app): State<AppState>,
    OnBackup { caller, id, .. }: OnBackup<perm::FilesRead>,
) -> Result<Response, ApiError> {
    let a = app.backups.open_archive(id).await?;
    app.audit(&caller, "backup.download", &id.to_string(), None)
        .await;
    let stream = tokio_util::io::ReaderStream::with_capacity(a.file, 256 * 1024);
    // The file name is ours (program name + timestamp), so it needs no escaping.
    let disposition = format!("attachment; filename=\"{}\"", a.name);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_string()),
            (header::CONTENT_LENGTH, a.size.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Restore options.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct RestoreQuery {
    /// Stop the program first if it runs (and start it again afterwards) instead of
    /// answering 409.
    #[serde(default)]
    stop: bool,
}

/// Restores a backup into its program's working directory (202; follow it with
/// `GET /api/restores/{id}`). 409 while the program runs, unless `stop=true`.
#[utoipa::path(post, path = "/api/backups/{id}/restore", tag = "backups",
    params(("id" = i64, Path, description = "backup id"), RestoreQuery),
    responses((status = 202, body = RestoreView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn restore(
    State(app): State<AppState>,
    OnBackup { caller, id, .. }: OnBackup<perm::BackupsRestore>,
    Query(q): Query<RestoreQuery>,
) -> Result<Response, ApiError> {
    let view = app
        .backups
        .restore(id, RestoreOptions { stop: q.stop })
        .await?;
    app.audit(
        &caller,
        "backup.restore",
        &view.record.program,
        Some(format!("backup {id}, restore {}", view.record.id)),
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

/// A program's restores.
#[derive(Serialize, ToSchema)]
pub struct RestoreList {
    /// Newest first.
    pub restores: Vec<RestoreRecord>,
}

/// Lists a program's restores, newest first.
#[utoipa::path(get, path = "/api/programs/{name}/restores", tag = "backups",
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = RestoreList)))]
async fn list_restores(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
) -> Result<Json<RestoreList>, ApiError> {
    Ok(Json(RestoreList {
        restores: app.backups.restores(&name).await?,
    }))
}

/// One restore, with live progress while it runs.
#[utoipa::path(get, path = "/api/restores/{id}", tag = "backups",
    params(("id" = i64, Path, description = "restore id")),
    responses((status = 200, body = RestoreView), (status = 404, body = ErrorBody)))]
async fn get_restore(
    State(app): State<AppState>,
    OnRestore { id, .. }: OnRestore<perm::View>,
) -> Result<Json<RestoreView>, ApiError> {
    Ok(Json(app.backups.get_restore(id).await?))
}

/// Deletes the copy of the previous data a restore kept.
#[utoipa::path(post, path = "/api/restores/{id}/discard", tag = "backups",
    params(("id" = i64, Path, description = "restore id")),
    responses((status = 200, body = RestoreView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn discard(
    State(app): State<AppState>,
    OnRestore { caller, id, .. }: OnRestore<perm::BackupsRestore>,
) -> Result<Json<RestoreView>, ApiError> {
    let view = app.backups.discard_rollback(id).await?;
    app.audit(&caller, "backup.discard_rollback", &id.to_string(), None)
        .await;
    Ok(Json(view))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(preview_settings))
        .routes(routes!(list, create))
        .routes(routes!(list_restores))
        .routes(routes!(get_one, delete))
        .routes(routes!(cancel))
        .routes(routes!(verify))
        .routes(routes!(manifest))
        .routes(routes!(download))
        .routes(routes!(restore))
        .routes(routes!(get_restore))
        .routes(routes!(discard))
}
