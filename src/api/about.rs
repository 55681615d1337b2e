//! Facts about this warden for the dashboard: whether first-run setup is still needed
//! (the one unauthenticated fact the login page shows) and the about page.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::Caller;
use super::error::{ApiError, ErrorBody, Json};

use crate::store::now_ms;

/// First-run state.
#[derive(Serialize, ToSchema)]
pub struct Setup {
    /// False until the first user is created (`warden user add …`); the login page then
    /// explains how.
    pub has_users: bool,
}

/// Whether any user exists (no authentication; says nothing else).
#[utoipa::path(get, path = "/api/setup", tag = "system", security(),
    responses((status = 200, body = Setup)))]
async fn setup(State(app): State<AppState>) -> Result<Json<Setup>, ApiError> {
    Ok(Json(Setup {
        has_users: app.store.has_users().await?,
    }))
}

/// About this warden.
#[derive(Serialize, ToSchema)]
pub struct About {
    /// warden's version.
    pub version: &'static str,
    /// The dashboard build (hash of its assets).
    pub web_version: &'static str,
    /// Absolute data directory.
    pub data_dir: String,
    /// Seconds since warden started.
    pub uptime_seconds: u64,
    /// Unix ms when warden started.
    pub started_ms: i64,
    /// Operating system (`linux`, `windows`, …).
    pub os: &'static str,
    /// CPU architecture.
    pub arch: &'static str,
    /// warden's process id.
    pub pid: u32,
}

/// Version, data directory and uptime (viewer).
#[utoipa::path(get, path = "/api/system/about", tag = "system",
    responses((status = 200, body = About), (status = 401, body = ErrorBody)))]
async fn about(State(app): State<AppState>, _caller: Caller) -> Result<Json<About>, ApiError> {
    let uptime = app.started.elapsed();
    let data_dir =
        std::path::absolute(&app.cfg.data_dir).unwrap_or_else(|_| app.cfg.data_dir.clone());
    Ok(Json(About {
        version: env!("CARGO_PKG_VERSION"),
        web_version: crate::web::version(),
        data_dir: data_dir.display().to_string(),
        uptime_seconds: uptime.as_secs(),
        started_ms: now_ms() - i64::try_from(uptime.as_millis()).unwrap_or(0),
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
        pid: std::process::id(),
    }))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(setup))
        .routes(routes!(about))
}
