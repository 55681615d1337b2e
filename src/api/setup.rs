//! First run in the browser: while no user exists, `warden serve` prints a one-time setup
//! code (and writes it to `DATA/setup-code`, readable by its owner only); whoever can read
//! it may create the first administrator from the login page. The code is used up by the
//! first success, and no code exists once any user does.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::extract::{FromRequest, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::error::{ApiError, ErrorBody, Json};
use crate::auth::Role;
use crate::program::FieldError;

/// The file holding the code, inside the data directory.
pub const SETUP_CODE_FILE: &str = "setup-code";

/// The pending setup code, if first-run setup is open.
#[derive(Default)]
pub struct SetupCode(Mutex<Option<String>>);

impl SetupCode {
    /// Makes a fresh code, writes it to `DATA/setup-code` (0600) and returns it.
    pub fn open(&self, data_dir: &Path) -> std::io::Result<String> {
        let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let raw: String = (0..12)
            .map(|_| alphabet[rand::random_range(0..alphabet.len())] as char)
            .collect();
        let code = format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12]);
        crate::os::write_private(&file(data_dir), &format!("{code}\n"))?;
        if let Ok(mut c) = self.0.lock() {
            *c = Some(code.clone());
        }
        Ok(code)
    }

    fn take_if(&self, given: &str) -> bool {
        let Ok(mut c) = self.0.lock() else {
            return false;
        };
        let ok = c
            .as_deref()
            .is_some_and(|code| bool::from(code.as_bytes().ct_eq(given.trim().as_bytes())));
        if ok {
            *c = None;
        }
        ok
    }
}

/// Where the code is written.
pub fn file(data_dir: &Path) -> PathBuf {
    data_dir.join(SETUP_CODE_FILE)
}

/// The first administrator.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstAdmin {
    /// The code `warden serve` printed (also in `DATA/setup-code`).
    pub code: String,
    /// User name.
    pub username: String,
    /// Password (at least 8 characters).
    pub password: String,
}

/// Creates the first administrator with the one-time setup code; 409 once any user
/// exists, 403 for a wrong code (rate-limited like logins).
#[utoipa::path(post, path = "/api/setup/admin", tag = "system", security(),
    request_body = FirstAdmin,
    responses((status = 201), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn first_admin(
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let ip = super::authn::client_ip(&app, req.headers(), req.extensions());
    app.login_limiter.check(ip)?;
    let Json(body) = Json::<FirstAdmin>::from_request(req, &app).await?;
    if app.store.has_users().await? {
        return Err(ApiError::conflict(
            "an administrator already exists; sign in instead",
        ));
    }
    if body.password.chars().count() < 8 {
        return Err(ApiError::validation(vec![FieldError::too_short(
            "password", 8,
        )]));
    }
    if !app.setup_code.take_if(&body.code) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_setup_code",
            "wrong setup code: use the one `warden serve` printed (also in the data directory's setup-code file)",
        ));
    }
    if let Err(e) = app
        .auth
        .add_user(&body.username, body.password, Role::Admin)
        .await
    {
        // The code stays usable when the name was the problem.
        if let Ok(mut c) = app.setup_code.0.lock() {
            *c = Some(body.code.trim().to_string());
        }
        return Err(e.into());
    }
    let _ = std::fs::remove_file(file(&app.cfg.data_dir));
    tracing::info!(user = %body.username, client = %ip, "first administrator created in the browser");
    Ok(StatusCode::CREATED.into_response())
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(first_admin))
}
