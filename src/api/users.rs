//! User and API-token administration (admin only, except changing one's own password).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::Caller;
use super::error::{ApiError, ErrorBody, Json, Path};
use super::guard::Admin;
use crate::auth::{NewToken, Role};

/// A user (never with its password hash).
#[derive(Serialize, ToSchema)]
pub struct UserView {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Unix ms.
    pub created_ms: i64,
}

/// New user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Password (at least 8 characters).
    pub password: String,
    /// Role.
    pub role: Role,
}

/// Password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The new password.
    pub password: String,
}

/// Lists users.
#[utoipa::path(get, path = "/api/users", tag = "users",
    responses((status = 200, body = Vec<UserView>), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(app): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = app.store.users().await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserView {
                name: u.name,
                role: u.role,
                created_ms: u.created_at,
            })
            .collect(),
    ))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_user(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<NewUser>,
) -> Result<StatusCode, ApiError> {
    app.auth
        .add_user(&body.name, body.password, body.role)
        .await?;
    app.audit(
        &caller,
        "user.add",
        &body.name,
        Some(body.role.as_str().into()),
    )
    .await;
    Ok(StatusCode::CREATED)
}

/// Deletes a user.
#[utoipa::path(delete, path = "/api/users/{name}", tag = "users",
    params(("name" = String, Path, description = "user name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_user(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.store.delete_user(&name).await?;
    app.audit(&caller, "user.remove", &name, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's password (admins for anyone, others for themselves). Ends their sessions.
#[utoipa::path(put, path = "/api/users/{name}/password", tag = "users", request_body = PasswordChange,
    params(("name" = String, Path, description = "user name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_password(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    if caller.0.name != name {
        caller.require_admin()?;
    }
    app.auth.set_password(&name, body.password).await?;
    app.audit(&caller, "user.passwd", &name, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// An API token (never with its secret).
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    /// Row id.
    pub id: i64,
    /// Public id, shown in the token itself after `wdn_`.
    pub public_id: String,
    /// Label.
    pub name: String,
    /// Role.
    pub role: String,
    /// Who created it.
    pub created_by: Option<String>,
    /// Unix ms.
    pub created_ms: i64,
    /// Unix ms of the last use (to the minute).
    pub last_used_ms: Option<i64>,
    /// Unix ms of revocation.
    pub revoked_ms: Option<i64>,
}

/// Token request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Label, e.g. `backup-script`.
    pub name: String,
    /// Role granted to the token.
    pub role: Role,
}

/// Lists tokens.
#[utoipa::path(get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 403, body = ErrorBody)))]
async fn list_tokens(
    State(app): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = app.store.tokens().await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                public_id: t.public_id,
                name: t.name,
                role: t.role,
                created_by: t.created_by,
                created_ms: t.created_at,
                last_used_ms: t.last_used_at,
                revoked_ms: t.revoked_at,
            })
            .collect(),
    ))
}

/// Creates a token. The answer is the only time its secret is shown.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = TokenRequest,
    responses((status = 201, body = NewToken), (status = 403, body = ErrorBody)))]
async fn create_token(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<TokenRequest>,
) -> Result<Response, ApiError> {
    let t = app
        .auth
        .create_token(&body.name, body.role, Some(caller.0.name.clone()))
        .await?;
    app.audit(
        &caller,
        "token.create",
        &t.public_id,
        Some(body.role.as_str().into()),
    )
    .await;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

/// Revokes a token by id or public id.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "token id or public id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let public_id = app.auth.revoke_token(&id).await?;
    app.audit(&caller, "token.revoke", &public_id, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, add_user))
        .routes(routes!(remove_user))
        .routes(routes!(set_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}
