//! The fleet as Prometheus sees it: the HTTP service-discovery document listing this
//! warden's and every node's `/metrics` target, labelled by node. Node tokens never
//! appear in any answer.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Url;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::{Caller, over_https, refused};
use super::error::{ApiError, ErrorBody, Json, Query};
use super::guard::{Admin, Everywhere, perm};
use super::programs::{ConsoleInput, ProgramView};
use crate::access::Perm;
use crate::fleet::forward::ForwardError;
use crate::fleet::moving::{Incoming, MoveError, Moved, Mover};
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
    _: Everywhere<perm::View>,
    headers: HeaderMap,
    ext: Extensions,
) -> Result<Json<Vec<TargetGroup>>, ApiError> {
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
    _: Everywhere<perm::View>,
) -> Result<Json<FleetPrograms>, ApiError> {
    let now = crate::clock::now_ms();
    let mut local = Vec::new();
    for h in app.sup.list().iter() {
        let view = ProgramView::of(h, now);
        local.push(serde_json::to_value(&view).map_err(|e| ApiError::internal(&e))?);
    }
    let out = app.fleet.programs(&app.cfg.fleet.name, local, now).await?;
    Ok(Json(out))
}

/// A name that is not a name cannot exist (and must never become a path on a node): 404,
/// as for any program or node that does not exist.
fn names_exist(names: &[(&str, &str)]) -> Result<(), ApiError> {
    for (field, value) in names {
        if !crate::program::valid_name(value) {
            return Err(ApiError::not_found(format!(
                "no {field} named {value:?}: names are 1-63 lowercase letters, digits, '-' or '_'"
            )));
        }
    }
    Ok(())
}

/// What the hub asks of a node's program: `method` on `api/programs/NAME/{action}` with
/// `query`, allowed to callers holding `perm` on the program's name here.
struct Ask<'a> {
    method: reqwest::Method,
    action: &'a str,
    query: Vec<(&'static str, String)>,
    perm: Perm,
}

impl<'a> Ask<'a> {
    fn post(action: &'a str, perm: Perm) -> Ask<'a> {
        Ask {
            method: reqwest::Method::POST,
            action,
            query: Vec::new(),
            perm,
        }
    }

    fn get(action: &'a str, perm: Perm, query: Vec<(&'static str, String)>) -> Ask<'a> {
        Ask {
            method: reqwest::Method::GET,
            action,
            query,
            perm,
        }
    }
}

/// Forwards a request to `node` for the caller, after checking that the caller holds the
/// permission on program `name` here (grants on its name or on all programs; tags are a
/// node's own and do not reach across). Actions (not reads) are recorded in this audit
/// log; the node records them in its own, naming the caller.
async fn forward(
    app: &AppState,
    caller: &Caller,
    (node, name): (&str, &str),
    ask: Ask<'_>,
    body: Option<serde_json::Value>,
) -> Result<Response, ApiError> {
    let (action, perm) = (ask.action, ask.perm);
    let reading = ask.method == reqwest::Method::GET;
    names_exist(&[("node", node), ("program", name)])?;
    if !caller.perms_on(name, &[]).has(perm) {
        return Err(refused(caller, name, perm));
    }
    let on_behalf = format!("{} via hub {}", caller.0.name, app.cfg.fleet.name);
    let path = format!("api/programs/{name}/{action}");
    let answer = app
        .fleet
        .forward(
            node,
            (ask.method, &path, &ask.query),
            body.as_ref(),
            &on_behalf,
        )
        .await;
    // Audit names an action by its last word (`fleet.program.files` for `files/text`).
    let action = action.split('/').next().unwrap_or(action);
    let detail = match &answer {
        Ok(a) => format!("the node answered HTTP {}", a.status),
        Err(ForwardError::Node(e)) => e.clone(),
        Err(ForwardError::UnknownNode(_) | ForwardError::Store(_)) => String::new(),
    };
    let target = format!("{node}/{name}");
    match answer {
        Ok(a) => {
            if !reading {
                app.audit(
                    caller,
                    &format!("fleet.program.{action}"),
                    &target,
                    Some(detail),
                )
                .await;
            }
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
            if !reading {
                app.audit(
                    caller,
                    &format!("fleet.program.{action}"),
                    &target,
                    Some(detail),
                )
                .await;
            }
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
        Ask::post(&action, Perm::Control),
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
        Ask::post("console", Perm::Console),
        Some(body),
    )
    .await
}

/// The backups of a fleet node's program, as the node lists them (`view` on its name
/// here; the hub's token needs `view` on the node).
#[utoipa::path(get, path = "/api/fleet/nodes/{node}/programs/{name}/backups", tag = "fleet",
    params(("node" = String, Path, description = "fleet node name"),
        ("name" = String, Path, description = "program name on that node")),
    responses((status = 200, description = "the node's answer", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn node_backups(
    State(app): State<AppState>,
    caller: Caller,
    Path((node, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ask = Ask::get("backups", Perm::View, Vec::new());
    forward(&app, &caller, (&node, &name), ask, None).await
}

/// Starts a backup of a fleet node's program (`backups` on its name here; the hub's token
/// needs the operator role on the node). The node's answer is its backup, `202`.
#[utoipa::path(post, path = "/api/fleet/nodes/{node}/programs/{name}/backups", tag = "fleet",
    params(("node" = String, Path, description = "fleet node name"),
        ("name" = String, Path, description = "program name on that node")),
    responses((status = 202, description = "the node's answer", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
async fn node_backup(
    State(app): State<AppState>,
    caller: Caller,
    Path((node, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ask = Ask::post("backups", Perm::Backups);
    forward(
        &app,
        &caller,
        (&node, &name),
        ask,
        Some(serde_json::json!({})),
    )
    .await
}

/// Where in a node's program files to look.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct NodeFilesQuery {
    /// Folder (listing) or file (text) relative to the program's file root.
    #[serde(default)]
    path: String,
    /// The `next_after` of the previous page (listing).
    after: Option<String>,
    /// Page size (listing).
    #[param(minimum = 1)]
    limit: Option<usize>,
}

impl NodeFilesQuery {
    fn pairs(self) -> Vec<(&'static str, String)> {
        let mut q = vec![("path", self.path)];
        q.extend(self.after.map(|a| ("after", a)));
        q.extend(self.limit.map(|l| ("limit", l.to_string())));
        q
    }
}

/// Lists a folder of a fleet node's program (`files.read` on its name here; the node
/// masks what its own rules mask for the hub's token).
#[utoipa::path(get, path = "/api/fleet/nodes/{node}/programs/{name}/files", tag = "fleet",
    params(("node" = String, Path, description = "fleet node name"),
        ("name" = String, Path, description = "program name on that node"), NodeFilesQuery),
    responses((status = 200, description = "the node's answer", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
async fn node_files(
    State(app): State<AppState>,
    caller: Caller,
    Path((node, name)): Path<(String, String)>,
    Query(q): Query<NodeFilesQuery>,
) -> Result<Response, ApiError> {
    let ask = Ask::get("files", Perm::FilesRead, q.pairs());
    forward(&app, &caller, (&node, &name), ask, None).await
}

/// Reads a text file of a fleet node's program (`files.read` on its name here; game
/// passwords stay masked unless the hub's token may `define` on the node).
#[utoipa::path(get, path = "/api/fleet/nodes/{node}/programs/{name}/files/text", tag = "fleet",
    params(("node" = String, Path, description = "fleet node name"),
        ("name" = String, Path, description = "program name on that node"), NodeFilesQuery),
    responses((status = 200, description = "the node's answer", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
async fn node_file_text(
    State(app): State<AppState>,
    caller: Caller,
    Path((node, name)): Path<(String, String)>,
    Query(q): Query<NodeFilesQuery>,
) -> Result<Response, ApiError> {
    let ask = Ask::get("files/text", Perm::FilesRead, q.pairs());
    forward(&app, &caller, (&node, &name), ask, None).await
}

/// Which program goes to which node.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// A program of this warden.
    pub program: String,
    /// The fleet node it moves to.
    pub to: String,
}

/// Moves a program of this warden to a fleet node (admin): stops it here, takes a verified
/// backup, streams it and the definition to the node (whose token must be an admin's
/// there), which checks every file and defines the program in its `servers/NAME`; starts
/// it there when it ran here, and leaves it stopped here with autostart off. Answers when
/// the move has ended; on failure the program runs here again if it ran, and the answer
/// says why (`502 move_failed`). Every step is an event of the program.
#[utoipa::path(post, path = "/api/fleet/move", tag = "fleet", request_body = MoveRequest,
    responses((status = 200, body = Moved), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn move_program(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(req): Json<MoveRequest>,
) -> Result<Json<Moved>, ApiError> {
    names_exist(&[("program", &req.program), ("node", &req.to)])?;
    let mover = Mover {
        sup: &app.sup,
        backups: &app.backups,
        fleet: &app.fleet,
        on_behalf: format!("{} via hub {}", caller.0.name, app.cfg.fleet.name),
    };
    match mover.run(&req.program, &req.to).await {
        Ok(m) => Ok(Json(m)),
        Err(e @ (MoveError::NoProgram(_) | MoveError::NoNode(_))) => {
            Err(ApiError::not_found(e.to_string()))
        }
        Err(e @ MoveError::Exists { .. }) => Err(ApiError::conflict(e.to_string())),
        Err(MoveError::Failed(e)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "move_failed",
            format!(
                "moving '{}' to node '{}' failed, and it is as it was here: {e}",
                req.program, req.to
            ),
        )),
    }
}

/// The form of an arriving program, in this order. It only describes the form in the
/// OpenAPI document; the handler reads the parts as they stream.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct IncomingForm {
    /// The program's definition (JSON), as `GET /api/programs/{name}` shows it unmasked.
    definition: String,
    /// The backup's manifest (JSON).
    manifest: String,
    /// The backup's archive.
    #[schema(value_type = String, format = Binary)]
    archive: Vec<u8>,
}

fn storage(message: String) -> ApiError {
    ApiError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "insufficient_storage",
        message,
    )
}

/// The next part of the form, waiting at most `idle` for it.
async fn next_part(
    form: &mut Multipart,
    idle: std::time::Duration,
) -> Result<Option<axum::extract::multipart::Field<'_>>, ApiError> {
    tokio::time::timeout(idle, form.next_field())
        .await
        .map_err(|_| {
            ApiError::bad_request(format!("the sender went quiet for {} s", idle.as_secs()))
        })?
        .map_err(incoming_error)
}

/// A form that cannot be read as the three parts: 422 naming it (only another warden's
/// `fleet move` sends this form).
fn incoming_error(e: MultipartError) -> ApiError {
    ApiError::validation(vec![crate::program::FieldError::unreadable(
        "form",
        None,
        None,
        &format!("cannot read the arriving program: {}", e.body_text()),
    )])
}

/// Takes in a program moved from another warden (admin; `warden fleet move` on the
/// other warden sends it). The archive is checked file by file against its manifest
/// while it is extracted beside `servers/`, then renamed to `servers/NAME`, and the
/// program is defined there, stopped; paths into its old working directory are
/// rewritten. Nothing is left behind on failure.
#[utoipa::path(post, path = "/api/fleet/incoming", tag = "fleet",
    request_body(content = IncomingForm, content_type = "multipart/form-data"),
    responses((status = 201, body = ProgramView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn incoming(
    State(app): State<AppState>,
    _: Admin,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<ProgramView>), ApiError> {
    let mut form = form.map_err(|r| {
        ApiError::new(
            r.status(),
            "invalid_multipart",
            format!("send the program as multipart/form-data: {}", r.body_text()),
        )
    })?;
    let idle = app.cfg.api.request_timeout;
    // Parts that are all there but out of order are a form that cannot be used: 422
    // naming the part expected.
    let wrong = |want: &str| ApiError::validation(vec![crate::program::FieldError::required(want)]);
    let Some(part) = next_part(&mut form, idle)
        .await?
        .filter(|f| f.name() == Some("definition"))
    else {
        return Err(wrong("definition"));
    };
    let definition = part.text().await.map_err(incoming_error)?;
    let spec: crate::program::ProgramSpec = serde_json::from_str(&definition).map_err(|e| {
        ApiError::validation(vec![crate::program::FieldError::unreadable(
            "definition",
            Some(e.line() as u64),
            Some(e.column() as u64),
            &format!("not a program definition: {e}"),
        )])
    })?;
    if app.sup.get(&spec.name).is_ok() {
        return Err(ApiError::conflict(format!(
            "a program named '{}' exists here already",
            spec.name
        )));
    }
    let Some(part) = next_part(&mut form, idle)
        .await?
        .filter(|f| f.name() == Some("manifest"))
    else {
        return Err(wrong("manifest"));
    };
    let manifest: crate::backup::manifest::Manifest =
        serde_json::from_str(&part.text().await.map_err(incoming_error)?).map_err(|e| {
            ApiError::validation(vec![crate::program::FieldError::unreadable(
                "manifest",
                Some(e.line() as u64),
                Some(e.column() as u64),
                &format!("not a backup manifest: {e}"),
            )])
        })?;
    let root = app.cfg.install.root(&app.cfg.data_dir);
    let arriving = Incoming::begin(&root, &spec.name)
        .await
        .map_err(ApiError::conflict)?;
    let received = async {
        let Some(mut part) = next_part(&mut form, idle)
            .await?
            .filter(|f| f.name() == Some("archive"))
        else {
            return Err(wrong("archive"));
        };
        let mut file = arriving.archive_file().await.map_err(storage)?;
        while let Some(chunk) = tokio::time::timeout(idle, part.chunk())
            .await
            .map_err(|_| ApiError::bad_request("the sender went quiet"))?
            .map_err(incoming_error)?
        {
            file.write_all(&chunk)
                .await
                .map_err(|e| storage(format!("cannot store the archive: {e}")))?;
        }
        Ok(file)
    }
    .await;
    let file = match received {
        Ok(f) => f,
        Err(e) => {
            arriving.abandon().await;
            return Err(e);
        }
    };
    let name = spec.name.clone();
    arriving
        .finish(file, manifest, spec, &app.sup)
        .await
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "move_rejected", e))?;
    let handle = app.sup.get(&name).map_err(|e| ApiError::internal(&e))?;
    Ok((
        StatusCode::CREATED,
        Json(ProgramView::of(&handle, crate::clock::now_ms())),
    ))
}

/// The routes that stream large bodies for longer than the request timeout (merged
/// outside it, like file uploads): a program arriving from another warden, and a move,
/// which lasts as long as its copy.
pub fn long_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(incoming))
        .routes(routes!(move_program))
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(prometheus_sd))
        .routes(routes!(programs))
        .routes(routes!(node_console))
        .routes(routes!(node_backups, node_backup))
        .routes(routes!(node_files))
        .routes(routes!(node_file_text))
        .routes(routes!(node_action))
}
