//! Templates and installs: `GET /api/templates`, `POST /api/install` and
//! `GET /api/install/{id}` (the work is the `install` service's).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::Caller;
use super::error::{ApiError, ErrorBody, Json, Path};
use super::guard::Admin;
use crate::install::template::{LoadProblem, Origin, Port, Source, Template, Variable};
use crate::install::{InstallError, InstallRequest, InstallStatus};
use crate::program::game::GameProfile;

impl From<InstallError> for ApiError {
    fn from(e: InstallError) -> ApiError {
        match e {
            InstallError::Invalid(details) => ApiError::validation(details),
            InstallError::Conflict(m) => ApiError::conflict(m),
            InstallError::NotFound(id) => ApiError::not_found(format!("no install {id}")),
            InstallError::Store(m) => ApiError::internal(&m),
        }
    }
}

/// A template as clients see it: secret defaults masked, ports also listed as variables.
#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    /// Name for `warden new --template`.
    pub name: String,
    /// Template version.
    pub version: u32,
    /// Human title.
    pub title: String,
    /// The title in Korean, when the template has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_ko: Option<String>,
    /// About the server.
    pub description: String,
    /// The description in Korean, when the template has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description_ko: Option<String>,
    /// `shipped` or `user`.
    pub origin: Origin,
    /// Where the files come from.
    pub source: Source,
    /// Systems it has a command line for (`linux`, `windows`).
    pub systems: Vec<String>,
    /// True when it can be installed on this machine's OS.
    pub installable_here: bool,
    /// Ports and their meaning.
    pub ports: Vec<Port>,
    /// Every variable a user may set (the ports' included), secret defaults masked.
    pub variables: Vec<Variable>,
    /// The game profile of the program it makes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub game_profile: Option<GameProfile>,
    /// What its backups include by default.
    pub backup_include: Vec<String>,
}

impl TemplateView {
    fn of(t: &Template) -> TemplateView {
        let t = t.masked();
        let systems = t.systems();
        TemplateView {
            installable_here: systems.iter().any(|s| s == std::env::consts::OS),
            variables: t.all_variables(),
            name: t.name,
            version: t.version,
            title: t.title,
            title_ko: t.title_ko,
            description: t.description,
            description_ko: t.description_ko,
            origin: t.origin,
            source: t.source,
            systems,
            ports: t.ports,
            game_profile: t.game.map(|g| g.profile),
            backup_include: t.backup.map(|b| b.include).unwrap_or_default(),
        }
    }
}

/// Every template.
#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    /// By name.
    pub templates: Vec<TemplateView>,
    /// Files in `DATA/templates` that could not be used, and why.
    pub problems: Vec<LoadProblem>,
}

/// Lists the templates servers can be installed from, with their variables (viewer).
#[utoipa::path(get, path = "/api/templates", tag = "install",
    responses((status = 200, body = TemplateList), (status = 401, body = ErrorBody)))]
async fn list_templates(
    State(app): State<AppState>,
    _caller: Caller,
) -> Result<Json<TemplateList>, ApiError> {
    let installer = app.installer.clone();
    let (all, problems) = tokio::task::spawn_blocking(move || installer.templates())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(TemplateList {
        templates: all.iter().map(TemplateView::of).collect(),
        problems,
    }))
}

/// Installs a server from a template (admin): checks the request, answers 202 with the
/// install's status and installs in the background; the program appears, stopped, when
/// the install has finished.
#[utoipa::path(post, path = "/api/install", tag = "install", request_body = InstallRequest,
    responses((status = 202, body = InstallStatus), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn start_install(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(req): Json<InstallRequest>,
) -> Result<Response, ApiError> {
    let template = req.template.clone();
    // Reads the template files: off the async workers.
    let installer = app.installer.clone();
    let status = tokio::task::spawn_blocking(move || installer.start(req))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    app.audit(
        &caller,
        "program.install",
        &status.program,
        Some(format!("template {template}")),
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

/// One install's status: state, progress, installed build or the failure (admin).
#[utoipa::path(get, path = "/api/install/{id}", tag = "install",
    params(("id" = u64, Path, description = "Install id")),
    responses((status = 200, body = InstallStatus), (status = 404, body = ErrorBody)))]
async fn install_status(
    State(app): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<InstallStatus>, ApiError> {
    Ok(Json(app.installer.status(id)?))
}

/// The password of the Steam account SteamCMD logs in with.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SteamPassword {
    /// The password of the account named by `install.steam_user`; stored sealed.
    #[schema(min_length = 1)]
    pub password: String,
}

/// Stores the password of the Steam account SteamCMD logs in with (`install.steam_user`),
/// sealed like the other secrets (admin). 409 when no account is configured.
#[utoipa::path(put, path = "/api/install/steam-account", tag = "install",
    request_body = SteamPassword,
    responses((status = 204, description = "stored"), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn set_steam_password(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(req): Json<SteamPassword>,
) -> Result<StatusCode, ApiError> {
    if req.password.is_empty() || req.password.contains(['\n', '\r', '\0']) {
        let e = if req.password.is_empty() {
            crate::program::FieldError::required("password")
        } else {
            crate::program::FieldError::control_chars("password")
        };
        return Err(ApiError::validation(vec![e]));
    }
    let user = app.installer.set_steam_password(&req.password).await?;
    app.audit(&caller, "install.steam_password", &user, None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(start_install))
        .routes(routes!(install_status))
        .routes(routes!(set_steam_password))
}
