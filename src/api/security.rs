//! Two-factor login (the code step of a login, enrolment, recovery codes, turning it
//! off), the sessions a user can see and end, and the admin's require-two-factor switch.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::{Caller, Enrolment, Me, client_ip, locked, origin_of, over_https};
use super::error::{ApiError, ErrorBody, Json, Query};
use super::guard::Admin;
use crate::auth::Role;

/// The user behind a session caller; API tokens have no second factor or sessions.
fn user_of(caller: &Caller) -> Result<&str, ApiError> {
    if caller.0.name.starts_with("token:") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_user",
            "API tokens have no two-factor login or sessions; sign in as a user",
        ));
    }
    Ok(&caller.0.name)
}

/// The second step of a login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The ticket of the password step.
    pub ticket: String,
    /// A 6-digit code from the authenticator app, or a recovery code.
    pub code: String,
}

/// Signed in after the code step.
#[derive(Serialize, ToSchema)]
pub struct LoginDone {
    /// Who is signed in.
    #[serde(flatten)]
    pub me: Me,
    /// After an enrolment during login: the recovery codes, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// Finishes a two-factor login with a code; sets the session cookie.
#[utoipa::path(post, path = "/api/auth/login/code", tag = "auth", security(),
    request_body = CodeRequest,
    responses((status = 200, body = LoginDone), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login_code(
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let ip = client_ip(&app, req.headers(), req.extensions());
    let secure = over_https(&app, req.headers(), req.extensions());
    let origin = origin_of(ip, req.headers());
    let note = req.extensions().get::<super::audit::Note>().cloned();
    app.login_limiter.check(ip)?;
    let Json(body) =
        <Json<CodeRequest> as axum::extract::FromRequest<AppState>>::from_request(req, &app)
            .await?;
    let (user, _) = app.auth.ticket(&body.ticket)?;
    super::audit::set_actor(note.as_ref(), &user);
    app.auth.lockout.check(&user, ip).map_err(locked)?;
    let (session, codes) = match app.auth.login_code(&body.ticket, &body.code, origin).await {
        Ok(ok) => ok,
        Err(e) => {
            if matches!(e, crate::auth::AuthError::WrongCode) {
                app.auth.lockout.fail(&user, ip);
            }
            tracing::warn!(user = %user, client = %ip, "wrong two-factor code");
            return Err(e.into());
        }
    };
    app.auth.lockout.clear(&user, ip);
    super::audit::describe(
        note.as_ref(),
        "auth.login",
        &user,
        Some("two-factor".into()),
    );
    tracing::info!(user = %user, client = %ip, "login");
    let resp = Json(LoginDone {
        me: Me::of(&app, session.principal),
        recovery_codes: codes,
    })
    .into_response();
    super::authn::with_session_cookie(&app, secure, &session.cookie, resp)
}

/// A ticket of the password step.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    /// The ticket of the password step (its `next` was `enrol`).
    pub ticket: String,
}

/// Enrols during login when the site requires two-factor login: gives the secret and QR
/// code; confirm with `/api/auth/login/code`.
#[utoipa::path(post, path = "/api/auth/login/enrol", tag = "auth", security(),
    request_body = TicketRequest,
    responses((status = 200, body = Enrolment), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn login_enrol(
    State(app): State<AppState>,
    Json(body): Json<TicketRequest>,
) -> Result<Json<Enrolment>, ApiError> {
    let (user, enrol) = app.auth.ticket(&body.ticket)?;
    if !enrol {
        return Err(ApiError::conflict(
            "two-factor login is already on for this user; send a code instead",
        ));
    }
    Ok(Json(app.auth.enrol_begin(&user).await?))
}

/// The caller's two-factor state.
#[derive(Serialize, ToSchema)]
pub struct TwoFactorStatus {
    /// Two-factor login is on.
    pub enabled: bool,
    /// The site requires it of every user.
    pub required: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
}

/// The caller's two-factor state.
#[utoipa::path(get, path = "/api/auth/2fa", tag = "auth",
    responses((status = 200, body = TwoFactorStatus), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn status(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<TwoFactorStatus>, ApiError> {
    let user = user_of(&caller)?;
    let row = app.store.user_totp(user).await?;
    Ok(Json(TwoFactorStatus {
        enabled: row.is_some_and(|r| r.enabled),
        required: app.auth.require_2fa().await?,
        recovery_codes_left: app.store.recovery_codes_left(user).await?,
    }))
}

/// Starts an enrolment of the caller: a new secret (not in force until confirmed).
#[utoipa::path(post, path = "/api/auth/2fa/enrol", tag = "auth",
    responses((status = 200, body = Enrolment), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn enrol(State(app): State<AppState>, caller: Caller) -> Result<Json<Enrolment>, ApiError> {
    let user = user_of(&caller)?.to_string();
    let e = app.auth.enrol_begin(&user).await?;
    app.audit(&caller, "auth.2fa.enrol", &user, None).await;
    Ok(Json(e))
}

/// A code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// A 6-digit code from the authenticator app.
    pub code: String,
}

/// The recovery codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Each works once in place of a code.
    pub recovery_codes: Vec<String>,
}

/// Confirms the caller's enrolment with a current code: two-factor login is on from now.
#[utoipa::path(post, path = "/api/auth/2fa/confirm", tag = "auth", request_body = Code,
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn confirm(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<Code>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let user = user_of(&caller)?.to_string();
    let codes = app.auth.enrol_confirm(&user, &body.code).await?;
    app.audit(&caller, "auth.2fa.enable", &user, None).await;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turning two-factor login off.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    /// A current code or a recovery code (not needed when an admin does it).
    pub code: Option<String>,
    /// Whose (admins only; the caller's own when absent).
    pub user: Option<String>,
}

/// Turns two-factor login off: one's own with a code, anyone's as an admin.
#[utoipa::path(post, path = "/api/auth/2fa/disable", tag = "auth", request_body = DisableRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn disable(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<DisableRequest>,
) -> Result<StatusCode, ApiError> {
    let (user, by_admin) = match body.user {
        Some(u) if Some(u.as_str()) != user_of(&caller).ok() => {
            caller.require_admin()?;
            (u, true)
        }
        _ => (user_of(&caller)?.to_string(), false),
    };
    if by_admin && app.store.user(&user).await?.is_none() {
        return Err(ApiError::not_found(format!("no user named '{user}'")));
    }
    app.auth
        .disable_2fa(&user, body.code.as_deref(), by_admin)
        .await?;
    app.audit(&caller, "auth.2fa.disable", &user, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A session as listed.
#[derive(Serialize, ToSchema)]
pub struct SessionItem {
    /// Public id (to end it).
    pub id: String,
    /// Whose.
    pub user: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last use (at most a minute behind).
    pub last_seen_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// The client's address at login.
    pub address: Option<String>,
    /// The browser at login.
    pub user_agent: Option<String>,
    /// True for the session of this request.
    pub current: bool,
}

/// Whose sessions.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionsQuery {
    /// A user's (admins), or `*` for everyone's (admins); the caller's own by default.
    user: Option<String>,
}

/// Lists live sessions: the caller's own, or (admins) a user's or everyone's.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", params(SessionsQuery),
    responses((status = 200, body = [SessionItem]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn sessions(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionsQuery>,
) -> Result<Json<Vec<SessionItem>>, ApiError> {
    let whose = match q.user {
        Some(u) if caller.0.role >= Role::Admin => (u != "*").then_some(u),
        Some(u) if Some(u.as_str()) == user_of(&caller).ok() => Some(u),
        Some(_) => {
            caller.require_admin()?;
            None
        }
        None => Some(user_of(&caller)?.to_string()),
    };
    let current = caller.0.session_id.clone();
    let rows = app.store.sessions(whose).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| SessionItem {
                current: current.as_deref() == Some(r.public_id.as_str()),
                id: r.public_id,
                user: r.user,
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                expires_at: r.expires_at,
                address: r.address,
                user_agent: r.user_agent,
            })
            .collect(),
    ))
}

/// Ends a session at once (its next request is 401 and its live feed closes at the
/// next heartbeat): one's own, or anyone's as an admin.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth",
    params(("id" = String, Path, description = "the session's public id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn revoke(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let only = if caller.0.role >= Role::Admin {
        None
    } else {
        Some(user_of(&caller)?.to_string())
    };
    let owner = app.store.delete_session_by_id(&id, only).await?;
    app.audit(&caller, "auth.session.revoke", &owner, Some(id))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The site's security policy.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Every user must use two-factor login (those without it enrol right after their
    /// password). API tokens are not affected.
    pub require_2fa: bool,
}

/// The site's security policy (admin).
#[utoipa::path(get, path = "/api/auth/policy", tag = "auth",
    responses((status = 200, body = Policy), (status = 403, body = ErrorBody)))]
async fn policy(State(app): State<AppState>, _: Admin) -> Result<Json<Policy>, ApiError> {
    Ok(Json(Policy {
        require_2fa: app.auth.require_2fa().await?,
    }))
}

/// Changes the site's security policy (admin).
#[utoipa::path(put, path = "/api/auth/policy", tag = "auth", request_body = Policy,
    responses((status = 200, body = Policy), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_policy(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<Policy>,
) -> Result<Json<Policy>, ApiError> {
    app.auth.set_require_2fa(body.require_2fa).await?;
    app.audit(
        &caller,
        "auth.policy",
        "require_2fa",
        Some(body.require_2fa.to_string()),
    )
    .await;
    Ok(Json(body))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login_code))
        .routes(routes!(login_enrol))
        .routes(routes!(status))
        .routes(routes!(enrol))
        .routes(routes!(confirm))
        .routes(routes!(disable))
        .routes(routes!(sessions))
        .routes(routes!(revoke))
        .routes(routes!(policy, set_policy))
}
