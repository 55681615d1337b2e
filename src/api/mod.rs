//! The HTTP API: a thin layer that authenticates, authorises, calls a service and
//! formats the answer.
//!
//! Architecture invariant: no handler touches a child process or SQL. Handlers call the
//! supervisor (through program handles), the auth service, or the store's typed queries.
//! The OpenAPI document is assembled from the same route registrations that serve
//! requests (utoipa-axum), so it cannot drift from the code.

mod about;
mod alerts;
mod audit;
pub mod authn;
mod backups;
mod contract;
mod definitions;
pub mod error;
mod files;
mod fleet;
mod games;
mod grants;
pub mod guard;
mod health;
mod history;
mod install;
mod jobs;
pub mod listener;
mod metrics;
pub mod paging;
pub mod programs;
mod schedules;
mod security;
pub mod setup;
mod shared;
mod strict;
pub mod tls;
mod update;
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
use tokio_util::sync::CancellationToken;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::access::Perm;
use crate::auth::Auth;
use crate::bus::Bus;
use crate::config::Config;
use crate::games::Games;
use crate::schedule::Scheduler;
use crate::store::Store;
use crate::supervisor::Supervisor;
use authn::{Caller, LoginLimiter};
use error::{ApiError, ErrorBody};

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
    /// The one-time code for creating the first administrator in the browser.
    pub setup_code: setup::SetupCode,
    /// The other wardens, read for the fleet overview.
    pub fleet: crate::fleet::Fleet,
    /// Installs of servers from templates.
    pub installer: crate::install::Installer,
    /// Update checks and safe updates of installed servers.
    pub updater: crate::install::update::Updater,
    /// The JSON of each listed program's definition, while it is unchanged.
    pub spec_json: programs::SpecJson,
}

/// Shared handler state.
pub type AppState = Arc<App>;

impl App {
    /// The tags of program `name` (none when it does not exist).
    pub fn tags_of(&self, name: &str) -> Vec<String> {
        self.sup
            .get(name)
            .map(|h| h.snapshot().spec.tags.clone())
            .unwrap_or_default()
    }

    /// Fails with 403 unless the caller holds `perm` on program `name`. The check comes
    /// before anything else, so a refused caller learns nothing about the program.
    pub fn allow(&self, caller: &Caller, name: &str, perm: Perm) -> Result<(), ApiError> {
        if caller.perms_on(name, &self.tags_of(name)).has(perm) {
            Ok(())
        } else {
            Err(authn::refused(caller, name, perm))
        }
    }

    /// True when the caller may see program `name`.
    pub fn visible(&self, caller: &Caller, name: &str) -> bool {
        caller.perms_on(name, &self.tags_of(name)).has(Perm::View)
    }

    /// Names what a request did for the audit log. State-changing requests are recorded
    /// once, when they end, with their result (the audit middleware); others (a download)
    /// are written now.
    pub async fn audit(&self, caller: &Caller, action: &str, target: &str, detail: Option<String>) {
        if audit::describe(caller.1.as_ref(), action, target, detail.clone()) {
            return;
        }
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
    components(schemas(
        ErrorBody,
        metrics::AggParam,
        metrics::SortParam,
        metrics::FormatParam,
        metrics::TierParam,
        crate::files::Area,
        crate::files::ArchiveFormat
    ))
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

/// The routes and the OpenAPI document from the same registrations: the API, the
/// uploads (see [`router`]), and the completed document as JSON.
fn routes(max_upload_bytes: u64) -> (Router<AppState>, Router<AppState>, serde_json::Value) {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(health::health))
        .merge(authn::routes())
        .merge(backups::routes())
        .merge(programs::routes())
        .merge(games::routes())
        .merge(metrics::routes())
        .merge(users::routes())
        .merge(audit::routes())
        .merge(security::routes())
        .merge(grants::routes())
        .merge(alerts::routes())
        .merge(files::routes())
        .merge(fleet::routes())
        .merge(about::routes())
        .merge(ws::routes())
        .merge(schedules::routes())
        .merge(jobs::routes())
        .merge(history::routes())
        .merge(definitions::routes())
        .merge(setup::routes())
        .merge(install::routes())
        .merge(update::routes())
        .split_for_parts();
    let (uploads, upload_doc) = files::upload_routes(max_upload_bytes)
        .merge(fleet::long_routes())
        .split_for_parts();
    doc.merge(upload_doc);
    let mut doc = serde_json::to_value(&doc).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        serde_json::Value::Null
    });
    contract::complete(&mut doc);
    (api, uploads, doc)
}

/// The completed OpenAPI document, as `/api/openapi.json` serves it.
pub fn openapi_document(max_upload_bytes: u64) -> serde_json::Value {
    routes(max_upload_bytes).2
}

/// Builds the router and the OpenAPI document from the same registrations.
pub fn router(app: AppState) -> Router {
    // Uploads stream bodies far above the JSON limit for longer than the request
    // timeout: they carry their own body limit and are merged after the timeout layer
    // is applied, so it does not wrap them.
    let (api, uploads, doc) = routes(app.cfg.files.max_upload_bytes);
    // Kept as the bytes it is served as: the document as a `Value` tree held about 1 MB
    // of small allocations for as long as warden runs.
    let doc = serde_json::to_vec(&doc).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        b"null".to_vec()
    });
    let doc = axum::body::Bytes::from(doc.into_boxed_slice());
    let timeout = app.cfg.api.request_timeout;
    let body_limit = app.cfg.api.body_limit_bytes;
    api.route(
        "/api/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("application/json"),
                    )],
                    doc,
                )
            }
        }),
    )
    .layer(axum::extract::DefaultBodyLimit::max(body_limit))
    .layer(middleware::from_fn_with_state(timeout, request_timeout))
    .merge(uploads)
    .layer(middleware::from_fn_with_state(app.clone(), audit::record))
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
    // cutting it off would leave the client unsure whether it was stored. Extracting an
    // archive likewise answers when every entry is written (bounded by the transfer slots).
    let path = req.uri().path();
    if path.ends_with("/metrics/import") || path.ends_with("/files/extract") {
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
