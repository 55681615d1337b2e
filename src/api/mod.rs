//! The HTTP API: a thin layer that authenticates, authorises, calls a service and
//! formats the answer.
//!
//! Architecture invariant: no handler touches a child process or SQL. Handlers call the
//! supervisor (through program handles), the auth service, or the store's typed queries.
//! The OpenAPI document is assembled from the same route registrations that serve
//! requests (utoipa-axum), so it cannot drift from the code.

mod about;
mod alerts;
pub mod authn;
mod backups;
pub mod error;
mod files;
mod games;
mod jobs;
mod metrics;
mod programs;
mod schedules;
mod users;
mod ws;

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
use crate::games::Games;
use crate::schedule::Scheduler;
use crate::store::Store;
use crate::supervisor::Supervisor;
use authn::{Caller, LoginLimiter};
use error::{ApiError, ErrorBody, Json};

/// Everything handlers need.
pub struct App {
    /// Program actors.
    pub sup: Supervisor,
    /// Game integrations (RCON, players, broadcasts, game-aware stops).
    pub games: Games,
    /// Alert channels, rules and deliveries.
    pub alerts: crate::alerts::Alerts,
    /// Schedules and jobs.
    pub sched: Scheduler,
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
    /// Program files (browse, edit, transfer).
    pub files: crate::files::Files,
    /// Resource sampling, history and the Prometheus exposition.
    pub metrics: crate::metrics::Metrics,
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
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(health))
        .merge(authn::routes())
        .merge(backups::routes())
        .merge(programs::routes())
        .merge(games::routes())
        .merge(metrics::routes())
        .merge(users::routes())
        .merge(alerts::routes())
        .merge(files::routes())
        .merge(about::routes())
        .merge(ws::routes())
        .merge(schedules::routes())
        .merge(jobs::routes())
        .split_for_parts();
    // Uploads stream bodies far above the JSON limit for longer than the request
    // timeout: they carry their own body limit and are merged after the timeout layer
    // is applied, so it does not wrap them.
    let (uploads, upload_doc) =
        files::upload_routes(app.cfg.files.max_upload_bytes).split_for_parts();
    doc.merge(upload_doc);
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
    .layer(axum::extract::DefaultBodyLimit::max(body_limit))
    .layer(middleware::from_fn_with_state(timeout, request_timeout))
    .merge(uploads)
    .fallback(|| async { ApiError::not_found("no such endpoint; see /api/openapi.json") })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not accept that method; see /api/openapi.json",
        )
    })
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
        ApiError::internal(&"a request handler panicked").into_response()
    }))
    // Spans name the path only: a query string may carry a token (`/api/ws?token=`).
    .layer(
        tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
        }),
    )
    .with_state(app)
}

/// Answers 503 with the error shape when a handler takes longer than the configured
/// timeout to produce its response head (streams, once started, are not cut).
async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    // A metrics import streams a body of any size and answers once all of it is stored;
    // cutting it off would leave the client unsure whether it was stored.
    if req.uri().path().ends_with("/metrics/import") {
        return next.run(req).await;
    }
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
