//! The fleet as Prometheus sees it: the HTTP service-discovery document listing this
//! warden's and every node's `/metrics` target, labelled by node. Node tokens never
//! appear in any answer.

use axum::extract::State;
use axum::http::{Extensions, HeaderMap};
use reqwest::Url;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::{Caller, over_https};
use super::error::{ApiError, ErrorBody, Json};
use super::programs::ProgramView;
use crate::access::Perm;
use crate::fleet::{FleetPrograms, TargetGroup, sd_document};

/// The address Prometheus reaches this warden at: the scheme and `Host` of this very
/// request (Prometheus asks the hub for the document over the same address it scrapes),
/// or the configured listen address when the request names no host.
fn own_url(app: &AppState, headers: &HeaderMap, ext: &Extensions) -> Result<Url, ApiError> {
    let scheme = if over_https(app, headers, ext) {
        "https"
    } else {
        "http"
    };
    let host = match headers.get("host").map(|h| h.to_str()) {
        Some(Ok(h)) => h.to_string(),
        Some(Err(_)) => return Err(ApiError::bad_request("the Host header is not text")),
        None => app.cfg.listen.to_string(),
    };
    Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
        ApiError::bad_request(format!(
            "the Host header {host:?} is not a host and port ({e})"
        ))
    })
}

/// Prometheus HTTP service discovery: one target group for this warden and one per fleet
/// node, each with its `/metrics` address and the labels `node`, `__scheme__` and
/// `__metrics_path__`. Use it in `http_sd_configs`; see README "Several machines" for
/// how Prometheus authenticates to each warden. Needs `view` on every program.
#[utoipa::path(get, path = "/api/fleet/prometheus-sd", tag = "fleet",
    responses((status = 200, body = Vec<TargetGroup>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn prometheus_sd(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ext: Extensions,
) -> Result<Json<Vec<TargetGroup>>, ApiError> {
    caller.require_everywhere(Perm::View)?;
    let me = own_url(&app, &headers, &ext)?;
    let nodes = app.store.fleet_nodes().await?;
    Ok(Json(sd_document(&app.cfg.fleet.name, &me, &nodes)))
}

/// The fleet overview: this warden's programs and every node's, each with a `node`
/// field, read from the nodes at once under their tokens. A node that does not answer
/// within `[fleet] timeout_ms` is listed in `nodes` as `unreachable` with when it last
/// answered; it never holds up the others. Needs `view` on every program.
#[utoipa::path(get, path = "/api/fleet/programs", tag = "fleet",
    responses((status = 200, body = FleetPrograms), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn programs(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<FleetPrograms>, ApiError> {
    caller.require_everywhere(Perm::View)?;
    let now = crate::clock::now_ms();
    let mut local = Vec::new();
    for h in app.sup.list().iter() {
        let view = ProgramView::of(h, now);
        local.push(serde_json::to_value(&view).map_err(|e| ApiError::internal(&e))?);
    }
    let out = app.fleet.programs(&app.cfg.fleet.name, local, now).await?;
    Ok(Json(out))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(prometheus_sd))
        .routes(routes!(programs))
}
