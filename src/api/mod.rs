//! The HTTP API: a thin layer that authenticates, authorises, calls a service and
//! formats the answer.
//!
//! Architecture invariant: no handler touches a child process or SQL. Handlers call the
//! supervisor (through program handles), the auth service, or the store's typed queries.
//! The OpenAPI document is assembled from the same route registrations that serve
//! requests (utoipa-axum), so it cannot drift from the code.

pub mod authn;
mod backups;
pub mod error;
mod programs;
mod users;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Auth;
use crate::bus::Bus;
use crate::config::Config;
use crate::store::Store;
use crate::supervisor::Supervisor;
use authn::{Caller, LoginLimiter};
use error::{ApiError, ErrorBody, Json};

/// Everything handlers need.
pub struct App {
    /// Program actors.
    pub sup: Supervisor,
    /// Database.
    pub store: Store,
    /// Authentication.
    pub auth: Auth,
    /// Event bus (for streams).
    pub bus: Bus,
    /// Daemon configuration.
    pub cfg: Config,
    /// Cancelled when warden shuts down; long-lived responses watch it.
    pub shutdown: CancellationToken,
    /// Login rate limiter.
    pub login_limiter: LoginLimiter,
    /// When warden started.
    pub started: Instant,
    /// Backups, verification, restores.
    pub backups: crate::backup::BackupService,
}

/// Shared handler state.
pub type AppState = Arc<App>;

impl App {
    /// Records a change in the audit log.
    pub async fn audit(&self, caller: &Caller, action: &str, target: &str, detail: Option<String>) {
        if let Err(e) = self
            .store
            .audit(&caller.0.name, action, target, detail)
            .await
        {
            tracing::error!(error = %e, "cannot write audit record");
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "warden API", description = "Supervise, monitor and schedule the programs of one machine."),
    modifiers(&Security),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(authn::SESSION_COOKIE))),
        );
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("token", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
    }
}

/// Health answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// `ok` when the database answered.
    pub db: &'static str,
    /// warden's version.
    pub version: &'static str,
    /// Seconds since warden started.
    pub uptime_seconds: u64,
}

/// Liveness and database check (no authentication).
#[utoipa::path(get, path = "/health", tag = "system", security(),
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
async fn health(State(app): State<AppState>) -> Result<Json<Health>, ApiError> {
    match tokio::time::timeout(Duration::from_secs(2), app.store.ping()).await {
        Ok(Ok(())) => Ok(Json(Health {
            status: "ok",
            db: "ok",
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: app.started.elapsed().as_secs(),
        })),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check: database unusable");
            Err(ApiError::unavailable(
                "the database is not usable; see warden's log",
            ))
        }
        Err(_) => Err(ApiError::unavailable(
            "the database did not answer within 2 s",
        )),
    }
}

/// Builds the router and the OpenAPI document from the same registrations.
pub fn router(app: AppState) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(health))
        .merge(authn::routes())
        .merge(backups::routes())
        .merge(programs::routes())
        .merge(users::routes())
        .split_for_parts();
    let doc = Arc::new(doc);
    let timeout = app.cfg.api.request_timeout;
    let body_limit = app.cfg.api.body_limit_bytes;
    api.route(
        "/api/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
    .fallback(|| async { ApiError::not_found("no such endpoint; see /api/openapi.json") })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not accept that method; see /api/openapi.json",
        )
    })
    .layer(axum::extract::DefaultBodyLimit::max(body_limit))
    .layer(middleware::from_fn_with_state(timeout, request_timeout))
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
        ApiError::internal(&"a request handler panicked").into_response()
    }))
    .layer(tower_http::trace::TraceLayer::new_for_http())
    .with_state(app)
}

/// Answers 503 with the error shape when a handler takes longer than the configured
/// timeout to produce its response head (streams, once started, are not cut).
async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into_response(),
    }
}
