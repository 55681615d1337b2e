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
use crate::access::{Perm, Perms};
pub(crate) use crate::auth::Enrolment;
use crate::auth::{Principal, Role};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "warden_session";
/// Header carrying the CSRF token for cookie-authenticated state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller of a request, and the audit note of this request (set for
/// state-changing requests by the audit middleware, which writes one record per call).
pub struct Caller(pub Principal, pub(crate) Option<super::audit::Note>);

impl Caller {
    /// Fails with 403 unless the caller is an admin: users, tokens, grants, alert
    /// channels and the daemon itself are theirs alone.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.role >= Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the admin role; '{}' has the {} role",
                self.0.name,
                self.0.role.as_str()
            )))
        }
    }

    /// Fails with 403 unless the caller holds `perm` on every program (through its role
    /// or a grant on all programs): for things that belong to no single program.
    pub fn require_everywhere(&self, perm: Perm) -> Result<(), ApiError> {
        if self.0.access().perms_everywhere().has(perm) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the '{}' permission on all programs, which '{}' does not have",
                perm.as_str(),
                self.0.name
            )))
        }
    }

    /// The caller's permissions on program `name` with `tags`.
    pub fn perms_on(&self, name: &str, tags: &[String]) -> Perms {
        self.0.access().perms_on(name, tags)
    }
}

/// The 403 for a missing permission on a program.
pub fn refused(caller: &Caller, program: &str, perm: Perm) -> ApiError {
    let hint = if perm.runs_code() {
        " (it lets its holder run code as warden's user, so only admins grant it)"
    } else {
        ""
    };
    ApiError::forbidden(format!(
        "'{}' needs the '{}' permission on program '{program}'{hint}",
        caller.0.name,
        perm.as_str()
    ))
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
        let note = parts.extensions.get::<super::audit::Note>().cloned();
        if let Some(token) = bearer_token(&parts.headers)? {
            let principal = app.auth.token(token).await?;
            super::audit::set_actor(note.as_ref(), &principal.name);
            return Ok(Caller(principal, note));
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
        super::audit::set_actor(note.as_ref(), &principal.name);
        Ok(Caller(principal, note))
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

    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
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
    /// Permissions held on every program (the role's bundle and grants on all).
    pub everywhere: Vec<Perm>,
    /// Permissions per existing program, where they go beyond `everywhere` (so the
    /// dashboard shows only the buttons that work).
    pub programs: std::collections::BTreeMap<String, Vec<Perm>>,
}

impl Me {
    pub(crate) fn of(app: &AppState, p: Principal) -> Me {
        let access = p.access();
        let everywhere = access.perms_everywhere();
        let programs = app
            .sup
            .snapshots()
            .iter()
            .filter_map(|s| {
                let perms = access.perms_on(&s.spec.name, &s.spec.tags);
                (perms != everywhere).then(|| (s.spec.name.clone(), perms.names()))
            })
            .collect();
        Me {
            user: p.name,
            role: p.role,
            csrf_token: p.csrf,
            everywhere: everywhere.names(),
            programs,
        }
    }
}

/// The address of the peer that connected to warden.
fn peer_ip(ext: &axum::http::Extensions) -> IpAddr {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn trusted(app: &AppState, ip: IpAddr) -> bool {
    app.cfg.api.trusted_proxies.iter().any(|n| n.contains(ip))
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy (the one the nearest
/// untrusted hop reported; anything left of it could be forged by the client).
pub(crate) fn client_ip(
    app: &AppState,
    headers: &HeaderMap,
    ext: &axum::http::Extensions,
) -> IpAddr {
    let peer = peer_ip(ext);
    if !trusted(app, peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !trusted(app, *ip))
        .unwrap_or(peer)
}

/// True when the request reached warden over HTTPS: directly (warden's own TLS marks
/// the request) or through a trusted proxy that says so in `X-Forwarded-Proto`.
pub(crate) fn over_https(
    app: &AppState,
    headers: &HeaderMap,
    ext: &axum::http::Extensions,
) -> bool {
    if ext.get::<Https>().is_some() {
        return true;
    }
    trusted(app, peer_ip(ext))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// Marks a request that arrived over warden's own TLS listener.
#[derive(Debug, Clone, Copy)]
pub struct Https;

/// A short, stable, non-reversible tag of an attempted user name for the log: it lets
/// an admin see repeated attempts on one name without a password typed into the name
/// field ever reaching the log.
pub(crate) fn name_tag(name: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(name.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The answer to a password that needs a second step: send a code with the ticket to
/// `/api/auth/login/code` (first enrolling at `/api/auth/login/enrol` when `next` is
/// `enrol`).
#[derive(Serialize, ToSchema)]
pub struct LoginChallenge {
    /// `code` (two-factor login is on) or `enrol` (the site requires it; set it up now).
    pub next: &'static str,
    /// Proof of the password step, valid for 5 minutes and 5 wrong codes.
    pub ticket: String,
}

/// Where a login comes from, for the session list.
pub(crate) fn origin_of(ip: IpAddr, headers: &HeaderMap) -> crate::store::auth::SessionOrigin {
    crate::store::auth::SessionOrigin {
        address: Some(ip.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(300).collect()),
    }
}

/// The 429 of a locked account (per address).
pub(crate) fn locked(wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::too_many_requests(secs).with_message(format!(
        "too many failed sign-ins for this account from your address; try again in {} s",
        secs.max(1)
    ))
}

/// The response that sets the session cookie.
pub(crate) fn with_session_cookie(
    app: &AppState,
    secure: bool,
    cookie: &str,
    mut resp: Response,
) -> Result<Response, ApiError> {
    let max_age = app.cfg.api.session_ttl.as_secs();
    let secure = if secure { "; Secure" } else { "" };
    let set_cookie = format!(
        "{SESSION_COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    );
    let v = HeaderValue::from_str(&set_cookie).map_err(|e| ApiError::internal(&e))?;
    resp.headers_mut().insert(header::SET_COOKIE, v);
    Ok(resp)
}

/// Logs in with a user name and password; sets the session cookie (200), or asks for a
/// second step (202) when two-factor login is on or required.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(),
    request_body = LoginRequest,
    responses((status = 200, body = Me), (status = 202, body = LoginChallenge),
        (status = 401, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
async fn login(
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let ip = client_ip(&app, req.headers(), req.extensions());
    let secure = over_https(&app, req.headers(), req.extensions());
    let origin = origin_of(ip, req.headers());
    app.login_limiter.check(ip)?;
    let Json(body) = Json::<LoginRequest>::from_request(req, &app).await?;
    app.auth.lockout.check(&body.username, ip).map_err(locked)?;
    let step = match app.auth.login(&body.username, body.password, origin).await {
        Ok(ok) => ok,
        Err(e) => {
            if matches!(e, crate::auth::AuthError::Invalid) {
                app.auth.lockout.fail(&body.username, ip);
            }
            // Never the typed text: a password typed into the name field would land in
            // the log. A short hash still shows repeated attempts on one name.
            tracing::warn!(user_hash = %name_tag(&body.username), client = %ip, "failed login");
            let err: ApiError = e.into();
            let result = format!(
                "{} {}",
                err.status().as_u16(),
                err.status().canonical_reason().unwrap_or("")
            );
            record_login(
                &app,
                "-",
                &format!("user#{}", name_tag(&body.username)),
                result,
                ip,
            )
            .await;
            return Err(err);
        }
    };
    app.auth.lockout.clear(&body.username, ip);
    let (next, ticket) = match step {
        crate::auth::LoginStep::Done(s) => {
            tracing::info!(user = %s.principal.name, client = %ip, "login");
            let name = s.principal.name.clone();
            record_login(&app, &name, &name, "ok".into(), ip).await;
            let resp = Json(Me::of(&app, s.principal)).into_response();
            return with_session_cookie(&app, secure, &s.cookie, resp);
        }
        crate::auth::LoginStep::Code(t) => ("code", t),
        crate::auth::LoginStep::Enrol(t) => ("enrol", t),
    };
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(LoginChallenge { next, ticket }),
    )
        .into_response())
}

/// The audit record of a password login (the middleware leaves logins to this handler:
/// a failed one names no one, only the short hash of the typed name).
async fn record_login(app: &AppState, actor: &str, target: &str, result: String, ip: IpAddr) {
    let row = crate::store::access::NewAudit {
        actor: actor.to_string(),
        action: "auth.login".into(),
        target: target.to_string(),
        program: None,
        result: result.trim().to_string(),
        address: Some(ip.to_string()),
        detail: Some("password".into()),
    };
    if let Err(e) = app.store.audit_record(row).await {
        tracing::error!(error = %e, "cannot write audit record");
    }
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(),
    responses((status = 204)))]
async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
) -> Result<Response, ApiError> {
    // The extractor checks the CSRF header of a session: another site cannot log the
    // user out. An already ended session just gets its cookie cleared.
    match caller {
        Ok(_) => {
            if let Some(cookie) = cookie_value(&headers, SESSION_COOKIE) {
                app.auth.logout(cookie).await?;
            }
        }
        Err(e) if e.status() == axum::http::StatusCode::FORBIDDEN => return Err(e),
        Err(_) => {}
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
async fn me(State(app): State<AppState>, caller: Caller) -> Json<Me> {
    Json(Me::of(&app, caller.0))
}

/// Whether the request carries a live session or token: the dashboard's probe on load.
#[derive(Serialize, ToSchema)]
pub struct SessionState {
    /// True when the caller is signed in; `me` then says who.
    pub signed_in: bool,
    /// True when a session cookie was sent but has ended (the dashboard says so).
    pub expired: bool,
    /// The caller, when signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub me: Option<Me>,
}

/// The caller's session, or that there is none. Unlike `/api/auth/me` this answers 200
/// when signed out: being signed out is a state, not an error (a browser would log the
/// 401 of a page that merely checks).
#[utoipa::path(get, path = "/api/auth/session", tag = "auth", security(),
    responses((status = 200, body = SessionState)))]
async fn session(
    State(app): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<SessionState>, ApiError> {
    match caller {
        Ok(c) => Ok(Json(SessionState {
            signed_in: true,
            expired: false,
            me: Some(Me::of(&app, c.0)),
        })),
        Err(e) if e.status() == axum::http::StatusCode::UNAUTHORIZED => Ok(Json(SessionState {
            signed_in: false,
            expired: e.code() == "session_expired",
            me: None,
        })),
        Err(e) => Err(e),
    }
}

use axum::extract::FromRequest;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(session))
}
