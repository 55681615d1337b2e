//! The fleet as Prometheus sees it: the HTTP service-discovery document listing this
//! warden's and every node's `/metrics` target, labelled by node. Node tokens never
//! appear in any answer.

use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Url;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::{Caller, over_https, refused};
use super::error::{ApiError, ErrorBody, Json};
use super::programs::{ConsoleInput, ProgramView};
use crate::access::Perm;
use crate::fleet::forward::ForwardError;
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

/// Forwards `body` to `path` on `node` for the caller, after checking that the caller
/// holds `perm` on program `name` here (grants on its name or on all programs; tags are
/// a node's own and do not reach across), and records it in this audit log; the node
/// records it in its own, naming the caller.
async fn forward(
    app: &AppState,
    caller: &Caller,
    (node, name): (&str, &str),
    what: (&str, Perm),
    body: Option<serde_json::Value>,
) -> Result<Response, ApiError> {
    let (action, perm) = what;
    // A name that is not a name cannot exist (and must never become a path on the node):
    // 404, as for any program that does not exist.
    for (field, value) in [("node", node), ("program", name)] {
        if !crate::program::valid_name(value) {
            return Err(ApiError::not_found(format!(
                "no {field} named {value:?}: names are 1-63 lowercase letters, digits, '-' or '_'"
            )));
        }
    }
    if !caller.perms_on(name, &[]).has(perm) {
        return Err(refused(caller, name, perm));
    }
    let on_behalf = format!("{} via hub {}", caller.0.name, app.cfg.fleet.name);
    let path = format!("api/programs/{name}/{action}");
    let answer = app
        .fleet
        .forward(node, &path, body.as_ref(), &on_behalf)
        .await;
    let detail = match &answer {
        Ok(a) => format!("the node answered HTTP {}", a.status),
        Err(ForwardError::Node(e)) => e.clone(),
        Err(ForwardError::UnknownNode(_) | ForwardError::Store(_)) => String::new(),
    };
    let target = format!("{node}/{name}");
    match answer {
        Ok(a) => {
            app.audit(
                caller,
                &format!("fleet.program.{action}"),
                &target,
                Some(detail),
            )
            .await;
            let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY);
            Ok(if a.body.is_null() {
                status.into_response()
            } else {
                (status, axum::Json(a.body)).into_response()
            })
        }
        Err(ForwardError::UnknownNode(n)) => Err(ApiError::not_found(format!(
            "no fleet node named '{n}'; `warden fleet list` shows the nodes"
        ))),
        Err(ForwardError::Store(e)) => Err(e.into()),
        Err(ForwardError::Node(e)) => {
            app.audit(
                caller,
                &format!("fleet.program.{action}"),
                &target,
                Some(detail),
            )
            .await;
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "node_failed",
                format!("node '{node}': {e}"),
            ))
        }
    }
}

/// Starts, stops or restarts a program of a fleet node: the hub checks the caller's
/// `control` permission on the program's name, then the node does the action under the
/// hub's token (which needs the operator role there). The answer is the node's own
/// (`200`/`202` with the program, or its error); `502 node_failed` when the node could
/// not be reached or refused the hub.
#[utoipa::path(post, path = "/api/fleet/nodes/{node}/programs/{name}/{action}", tag = "fleet",
    params(("node" = String, Path, description = "fleet node name"),
        ("name" = String, Path, description = "program name on that node"),
        ("action" = String, Path, description = "start, stop or restart")),
    responses((status = 200, description = "the node's answer", body = Object),
        (status = 202, description = "the node's answer (a warned stop)", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn node_action(
    State(app): State<AppState>,
    caller: Caller,
    Path((node, name, action)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    if !matches!(action.as_str(), "start" | "stop" | "restart") {
        return Err(ApiError::not_found(format!(
            "no action '{action}' on a node's program: use start, stop, restart or console"
        )));
    }
    forward(
        &app,
        &caller,
        (&node, &name),
        (&action, Perm::Control),
        None,
    )
    .await
}

/// Sends a line to the console of a fleet node's program (the caller needs `console`
/// on its name here; the hub's token needs the operator role on the node).
#[utoipa::path(post, path = "/api/fleet/nodes/{node}/programs/{name}/console", tag = "fleet",
    params(("node" = String, Path, description = "fleet node name"),
        ("name" = String, Path, description = "program name on that node")),
    request_body = ConsoleInput,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
async fn node_console(
    State(app): State<AppState>,
    caller: Caller,
    Path((node, name)): Path<(String, String)>,
    Json(body): Json<ConsoleInput>,
) -> Result<Response, ApiError> {
    let body = serde_json::json!({ "line": body.line });
    forward(
        &app,
        &caller,
        (&node, &name),
        ("console", Perm::Console),
        Some(body),
    )
    .await
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(prometheus_sd))
        .routes(routes!(programs))
        .routes(routes!(node_console))
        .routes(routes!(node_action))
}
