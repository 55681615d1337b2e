//! Grants: per-program permissions of users and API tokens (admin only to change).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::error::{ApiError, ErrorBody, Json, Path};
use super::guard::Admin;
use crate::access::Subject;
use crate::access::{Grant, Perm, Perms, Scope};
use crate::program::FieldError;

/// A grant as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct GrantView {
    /// Row id (to delete it).
    pub id: i64,
    /// `user` or `token`.
    pub subject_kind: Subject,
    /// User name or token public id.
    pub subject: String,
    /// What it covers.
    pub scope: Scope,
    /// What it allows.
    pub perms: Vec<Perm>,
    /// True when it includes `files.write` or `define`: its holder can run code as
    /// warden's user.
    pub runs_code: bool,
}

/// Every grant.
#[derive(Serialize, ToSchema)]
pub struct GrantList {
    /// By subject.
    pub grants: Vec<GrantView>,
}

/// Sets what a user or token may do on a scope.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// `user` or `token`.
    pub subject_kind: Subject,
    /// User name or token public id.
    pub subject: String,
    /// What it covers: `{"kind":"all"}`, `{"kind":"program","value":"NAME"}` or
    /// `{"kind":"tag","value":"TAG"}`.
    pub scope: Scope,
    /// Permission names or bundles (`viewer`, `operator`, `admin`); empty removes the
    /// grant. `files.write` and `define` let the holder run code as warden's user.
    pub perms: Vec<String>,
}

fn view(r: crate::store::access::GrantRow) -> GrantView {
    let perms = r.grant.perms.names();
    GrantView {
        id: r.id,
        subject_kind: r.subject_kind,
        subject: r.subject,
        scope: r.grant.scope,
        runs_code: perms.iter().any(|p| p.runs_code()),
        perms,
    }
}

/// Lists every grant (admin).
#[utoipa::path(get, path = "/api/grants", tag = "users",
    responses((status = 200, body = GrantList), (status = 403, body = ErrorBody)))]
async fn list(State(app): State<AppState>, _: Admin) -> Result<Json<GrantList>, ApiError> {
    let grants = app.store.grants().await?.into_iter().map(view).collect();
    Ok(Json(GrantList { grants }))
}

/// Sets (replaces) what a user or token may do on a scope (admin); an empty `perms`
/// removes the grant.
#[utoipa::path(put, path = "/api/grants", tag = "users", request_body = GrantRequest,
    responses((status = 200, body = GrantList), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(req): Json<GrantRequest>,
) -> Result<Json<GrantList>, ApiError> {
    let perms = Perms::parse(&req.perms).map_err(|m| {
        ApiError::validation(vec![FieldError::invalid(
            "perms",
            &req.perms.join(", "),
            &m,
        )])
    })?;
    if let Scope::Program(v) | Scope::Tag(v) = &req.scope
        && !crate::program::valid_name(v)
    {
        return Err(ApiError::validation(vec![FieldError::invalid_name(
            "scope.value",
            v,
        )]));
    }
    let detail = format!("{:?} {}", req.scope, perms.to_stored());
    app.store
        .set_grant(
            req.subject_kind,
            &req.subject,
            Grant {
                scope: req.scope,
                perms,
            },
        )
        .await?;
    app.auth.forget_cached();
    app.audit(&caller, "grant.set", &req.subject, Some(detail))
        .await;
    list(State(app), Admin(caller)).await
}

/// Deletes a grant (admin).
#[utoipa::path(delete, path = "/api/grants/{id}", tag = "users",
    params(("id" = i64, Path, description = "grant id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    app.store.delete_grant(id).await?;
    app.auth.forget_cached();
    app.audit(&caller, "grant.delete", &id.to_string(), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, set))
        .routes(routes!(delete))
}
