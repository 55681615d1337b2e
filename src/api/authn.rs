//! Who is calling: the [`Caller`] extractor (bearer token or session cookie + CSRF),
//! role checks, and the login/logout/me endpoints with per-address rate limiting.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::error::{ApiError, Json};
use crate::auth::{Principal, Role};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "warden_session";
/// Header carrying the CSRF token for cookie-authenticated state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl Caller {
    /// Fails with 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role; '{}' has the {} role",
                role.as_str(),
                self.0.name,
                self.0.role.as_str()
            )))
        }
    }
}

/// The token of an `Authorization: Bearer` header; an error for any other scheme.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(ApiError::unauthenticated)
        })
        .transpose()
}

/// 401 for a session cookie that is unknown, expired or ended.
pub(crate) fn session_expired() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "session_expired",
        "your session has expired; log in again",
    )
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer_token(&parts.headers)? {
            return Ok(Caller(app.auth.token(token).await?));
        }
        let Some(cookie) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(ApiError::unauthenticated());
        };
        let principal = app
            .auth
            .session(cookie)
            .await
            .map_err(|_| session_expired())?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let expected = principal.csrf.as_deref().unwrap_or("");
            let ok: bool = sent.as_bytes().ct_eq(expected.as_bytes()).into();
            if !ok || expected.is_empty() {
                return Err(ApiError::forbidden(
                    "missing or wrong X-CSRF-Token header (take it from the login or /api/auth/me answer)",
                ));
            }
        }
        Ok(Caller(principal))
    }
}

/// Per-address login limiter.
pub struct LoginLimiter(DefaultKeyedRateLimiter<IpAddr>);

impl LoginLimiter {
    /// Allows `per_minute` attempts per address per minute (bursting up to that).
    pub fn new(per_minute: u32) -> LoginLimiter {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        LoginLimiter(RateLimiter::keyed(Quota::per_minute(n)))
    }

    fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        // Forget idle addresses so the table cannot grow without bound.
        if self.0.len() > 10_000 {
            self.0.retain_recent();
        }
        self.0.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            ApiError::too_many_requests(wait.as_secs() + 1)
        })
    }
}

/// Login request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Who is logged in.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// User name (or `token:<name>`).
    pub user: String,
    /// Role.
    pub role: Role,
    /// CSRF token to send as `X-CSRF-Token` on state-changing requests (sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

fn client_ip(parts_ext: &axum::http::Extensions) -> IpAddr {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// Logs in with a user name and password; sets the session cookie.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
async fn login(
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let ip = client_ip(req.extensions());
    app.login_limiter.check(ip)?;
    let Json(body) = Json::<LoginRequest>::from_request(req, &app).await?;
    let (cookie, principal) = match app.auth.login(&body.username, body.password).await {
        Ok(ok) => ok,
        Err(e) => {
            // Never log the password; the user name helps spot brute force.
            tracing::warn!(user = %body.username, client = %ip, "failed login");
            return Err(e.into());
        }
    };
    tracing::info!(user = %principal.name, client = %ip, "login");
    let max_age = app.cfg.api.session_ttl.as_secs();
    let set_cookie =
        format!("{SESSION_COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}");
    let mut resp = Json(Me {
        user: principal.name,
        role: principal.role,
        csrf_token: principal.csrf,
    })
    .into_response();
    let v = HeaderValue::from_str(&set_cookie).map_err(|e| ApiError::internal(&e))?;
    resp.headers_mut().insert(header::SET_COOKIE, v);
    Ok(resp)
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204)))]
async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(cookie) = cookie_value(&headers, SESSION_COOKIE) {
        app.auth.logout(cookie).await?;
    }
    let mut resp = axum::http::StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("warden_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(resp)
}

/// The caller's identity and role.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody)))]
async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        user: caller.0.name,
        role: caller.0.role,
        csrf_token: caller.0.csrf,
    })
}

use axum::extract::FromRequest;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}
