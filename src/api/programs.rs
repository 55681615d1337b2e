//! Program endpoints: CRUD, lifecycle actions, events, console tail/input/stream, apply.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::{Caller, refused};
use super::error::{ApiError, ErrorBody, Json, Query};
use super::guard::{Admin, OnProgram, perm};
use super::paging::{Filter, Page, page_body};
use super::shared::same_name;
use crate::access::Perm;
use crate::bus::{ConsoleLine, Event};
use crate::games::{StopOptions, StopPlan};
use crate::history::EventRecord;
use crate::program::{ExitInfo, ProgramSpec, State as LifeState};
use crate::program::{GameHealth, StateReason};
use crate::store::now_ms;
use crate::supervisor::{ProgramHandle, Snapshot};

/// A program with its live status.
#[derive(Serialize, ToSchema)]
pub struct ProgramView {
    /// The definition (passwords shown as `********`). Shared with the actor's snapshot
    /// when there is nothing to mask, so listing copies no specs.
    #[serde(flatten)]
    pub spec: Arc<ProgramSpec>,
    /// The live status, beside the definition's fields.
    #[serde(flatten)]
    pub status: StatusView,
}

/// A program's live status.
#[derive(Serialize, ToSchema)]
pub struct StatusView {
    /// Lifecycle state.
    pub state: LifeState,
    /// Process id, when running.
    pub pid: Option<u32>,
    /// Seconds since the current process was spawned.
    pub uptime_seconds: Option<u64>,
    /// Automatic restarts since the last requested start.
    pub restarts: u32,
    /// Unix ms of the last state change.
    pub since_ms: i64,
    /// How the last process ended.
    pub last_exit: Option<ExitInfo>,
    /// True when adopted from a previous warden run.
    pub adopted: bool,
    /// Game health and players of the current process (programs with a game section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub game_status: Option<GameHealth>,
    /// Why the program is crashed or gave up, as codes (`spawn_failed`, `gave_up`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<StateReason>,
    /// What enforces the limits of the current process: `cgroup v1`, `cgroup v2` or `job
    /// object` (absent without memory/CPU/process/I/O limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits_mode: Option<String>,
}

impl ProgramView {
    pub(super) fn of(h: &ProgramHandle, now: i64) -> ProgramView {
        ProgramView::from_snapshot(&h.snapshot(), now)
    }

    fn from_snapshot(snap: &Snapshot, now: i64) -> ProgramView {
        ProgramView {
            spec: shown_spec(&snap.spec),
            status: StatusView::of(snap, now),
        }
    }
}

/// The definition as answered: stored passwords (game settings, secret-named
/// environment variables) are never shown.
fn shown_spec(spec: &Arc<ProgramSpec>) -> Arc<ProgramSpec> {
    if spec.has_secrets() {
        Arc::new(spec.masked())
    } else {
        spec.clone()
    }
}

impl StatusView {
    fn of(snap: &Snapshot, now: i64) -> StatusView {
        let s = &snap.status;
        StatusView {
            state: s.state,
            pid: s.pid,
            uptime_seconds: s
                .started_at_ms
                .filter(|_| s.state.is_active())
                .map(|t| u64::try_from((now - t).max(0) / 1000).unwrap_or(0)),
            restarts: s.restarts,
            since_ms: s.since_ms,
            last_exit: s.last_exit.clone(),
            adopted: s.adopted,
            game_status: s.game.clone(),
            reason: s.reason.clone(),
            limits_mode: s.limits_mode.clone(),
        }
    }
}

/// All programs.
#[derive(Serialize, ToSchema)]
pub struct ProgramList {
    /// Programs by name.
    pub programs: Vec<ProgramView>,
}

/// The JSON of each program's definition as it is listed, kept while the definition is
/// unchanged. A dashboard or a script asks the list every second or so, and serialising
/// every definition each time was two thirds of the list's work; a definition changes
/// only when it is edited. Holds one entry per program listed, replaced when the
/// definition (its `Arc`) is another, dropped when the program is gone.
#[derive(Default)]
pub struct SpecJson(std::sync::Mutex<std::collections::HashMap<String, CachedSpec>>);

/// A definition and its JSON object. Holding the `Arc` keeps its address from being
/// reused by another definition while the entry lives, so pointer equality is identity.
struct CachedSpec {
    spec: Arc<ProgramSpec>,
    json: Arc<[u8]>,
}

impl SpecJson {
    /// The list body for `snaps`: exactly what serialising a [`ProgramList`] of them
    /// gives, with each definition's JSON taken from the cache.
    fn list_body(
        &self,
        snaps: &[&Snapshot],
        all: &[Arc<Snapshot>],
        now: i64,
    ) -> serde_json::Result<Vec<u8>> {
        let mut cache = crate::sync::lock(&self.0);
        if cache.len() > all.len() {
            cache.retain(|name, _| all.iter().any(|s| s.spec.name == *name));
        }
        let mut body = Vec::with_capacity(64 + snaps.len() * 512);
        body.extend_from_slice(b"{\"programs\":[");
        for (i, snap) in snaps.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            let json = match cache.get(&snap.spec.name) {
                Some(c) if Arc::ptr_eq(&c.spec, &snap.spec) => c.json.clone(),
                _ => {
                    let json: Arc<[u8]> = serde_json::to_vec(&shown_spec(&snap.spec))?.into();
                    cache.insert(
                        snap.spec.name.clone(),
                        CachedSpec {
                            spec: snap.spec.clone(),
                            json: json.clone(),
                        },
                    );
                    json
                }
            };
            // `{spec fields}` and `{status fields}` become `{spec fields,status fields}`:
            // the spec object without its `}`, then the status object with its `{`
            // turned into the comma (both always have fields: a name, a state).
            body.extend_from_slice(json.strip_suffix(b"}").unwrap_or(&json));
            let at = body.len();
            serde_json::to_writer(&mut body, &StatusView::of(snap, now))?;
            body[at] = b',';
        }
        body.extend_from_slice(b"]}");
        Ok(body)
    }
}

/// Lists every program with its status, in one call.
#[utoipa::path(get, path = "/api/programs", tag = "programs",
    responses((status = 200, body = ProgramList), (status = 401, body = ErrorBody)))]
async fn list(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let all = app.sup.snapshots();
    let visible: Vec<&Snapshot> = all
        .iter()
        .map(|s| &**s)
        .filter(|s| caller.perms_on(&s.spec.name, &s.spec.tags).has(Perm::View))
        .collect();
    let body = app
        .spec_json
        .list_body(&visible, &all, now_ms())
        .map_err(|e| ApiError::internal(&e))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// 422 when a spec that is otherwise valid names a command that cannot be run here
/// (the other problems are reported by the supervisor's validation, all at once).
fn resolvable(spec: &ProgramSpec) -> Result<(), ApiError> {
    if !spec.validate().is_empty() {
        return Ok(());
    }
    spec.resolve_command()
        .map(|_| ())
        .map_err(|e| ApiError::validation(vec![e]))
}

/// Creates a program (admin: a program is a command line).
#[utoipa::path(post, path = "/api/programs", tag = "programs", request_body = ProgramSpec,
    responses((status = 201, body = ProgramView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Json(spec): Json<ProgramSpec>,
) -> Result<Response, ApiError> {
    if !caller.perms_on(&spec.name, &spec.tags).has(Perm::Define) {
        return Err(refused(&caller, &spec.name, Perm::Define));
    }
    resolvable(&spec)?;
    let h = app.sup.create(spec).await?;
    app.audit(&caller, "program.create", h.name(), None).await;
    Ok((StatusCode::CREATED, Json(ProgramView::of(&h, now_ms()))).into_response())
}

/// One program with its status.
#[utoipa::path(get, path = "/api/programs/{name}", tag = "programs",
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
) -> Result<Json<ProgramView>, ApiError> {
    let h = app.sup.get(&name)?;
    Ok(Json(ProgramView::of(&h, now_ms())))
}

/// Replaces a program's definition; a running process picks it up at its next start.
#[utoipa::path(put, path = "/api/programs/{name}", tag = "programs", request_body = ProgramSpec,
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Define>,
    Json(spec): Json<ProgramSpec>,
) -> Result<Json<ProgramView>, ApiError> {
    same_name(&name, &spec.name)?;
    resolvable(&spec)?;
    app.sup.update(spec).await?;
    app.audit(&caller, "program.update", &name, None).await;
    Ok(Json(ProgramView::of(&app.sup.get(&name)?, now_ms())))
}

/// Options for delete.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Stop a running program first instead of refusing.
    #[serde(default)]
    force: bool,
}

/// Deletes a program. A running one is refused (409) unless `force=true`, which stops it
/// gracefully first.
#[utoipa::path(delete, path = "/api/programs/{name}", tag = "programs",
    params(("name" = String, Path, description = "program name"), DeleteQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Define>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    // Its update record goes with it (a foreign key), so a later program of that name
    // is not taken for an install of this template.
    app.sup.delete(&name, q.force).await?;
    app.audit(&caller, "program.delete", &name, None).await;
    Ok(StatusCode::NO_CONTENT)
}

macro_rules! action {
    ($fn:ident, $method:ident, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "programs",
            params(("name" = String, Path, description = "program name")),
            responses((status = 200, body = ProgramView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
        async fn $fn(
            State(app): State<AppState>,
            OnProgram { caller, name, .. }: OnProgram<perm::Control>,
        ) -> Result<Json<ProgramView>, ApiError> {
            let h = app.sup.get(&name)?;
            h.$method().await?;
            app.audit(&caller, concat!("program.", stringify!($method)), &name, None).await;
            Ok(Json(ProgramView::of(&h, now_ms())))
        }
    };
}

/// Options of start.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct StartQuery {
    /// Start the programs it waits for (`after`, `requires`, transitively) too.
    #[serde(default)]
    with_deps: bool,
}

/// Starts the program (no-op when running). With `after`/`requires` it is `waiting`
/// until those programs are running and ready.
#[utoipa::path(post, path = "/api/programs/{name}/start", tag = "programs",
    params(("name" = String, Path, description = "program name"), StartQuery),
    responses((status = 200, body = ProgramView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn start(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Control>,
    Query(q): Query<StartQuery>,
) -> Result<Json<ProgramView>, ApiError> {
    let h = app.sup.get(&name)?;
    if q.with_deps {
        app.sup.start_with_deps(&name).await?;
    } else {
        h.start().await?;
    }
    let detail = q.with_deps.then(|| "with_deps".to_string());
    app.audit(&caller, "program.start", &name, detail).await;
    Ok(Json(ProgramView::of(&h, now_ms())))
}
/// Game-aware options of stop and restart.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct StopQuery {
    /// Warn players this many seconds before, comma-separated (e.g. `300,60,10`); the stop
    /// then begins at the longest lead time and the answer is 202 with the plan.
    #[param(pattern = r"^( *[0-9]{1,9} *(, *[0-9]{1,9} *)*)?$")]
    warn: Option<String>,
    /// Refuse (409 `players_online`) when players are online.
    #[serde(default)]
    only_when_empty: bool,
    /// Stop the programs that wait for it (`after`, `requires`) first (stop only).
    #[serde(default)]
    with_deps: bool,
}

async fn stop_or_restart(
    app: &AppState,
    caller: &Caller,
    name: &str,
    q: StopQuery,
    restart: bool,
) -> Result<Response, ApiError> {
    let h = app.sup.get(name)?;
    let what = if restart { "restart" } else { "stop" };
    let warn = match q.warn.as_deref() {
        None | Some("") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|w| w.trim().parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    "warn must be comma-separated whole seconds, e.g. warn=300,60,10",
                )
            })?,
    };
    if q.with_deps && !restart && warn.is_empty() && !q.only_when_empty {
        app.sup.stop_with_deps(name).await?;
        app.audit(caller, "program.stop", name, Some("with_deps".into()))
            .await;
        return Ok(Json(ProgramView::of(&h, now_ms())).into_response());
    }
    if warn.is_empty() && !q.only_when_empty {
        if restart {
            h.restart().await?;
        } else {
            h.stop().await?;
        }
        app.audit(caller, &format!("program.{what}"), name, None)
            .await;
        return Ok(Json(ProgramView::of(&h, now_ms())).into_response());
    }
    let detail = format!("warn={warn:?} only_when_empty={}", q.only_when_empty);
    let plan: StopPlan = app
        .games
        .stop_gracefully(
            name,
            StopOptions {
                restart,
                warn,
                only_when_empty: q.only_when_empty,
            },
        )
        .await?;
    app.audit(caller, &format!("program.{what}"), name, Some(detail))
        .await;
    if plan.warnings.is_empty() {
        Ok(Json(ProgramView::of(&h, now_ms())).into_response())
    } else {
        Ok((StatusCode::ACCEPTED, Json(plan)).into_response())
    }
}

/// Stops the program with its stop sequence (no-op when stopped). With `warn`, players
/// are warned first and the answer is 202 with the plan; with `only_when_empty`, the stop
/// is refused while players are online.
#[utoipa::path(post, path = "/api/programs/{name}/stop", tag = "programs",
    params(("name" = String, Path, description = "program name"), StopQuery),
    responses((status = 200, body = ProgramView), (status = 202, body = StopPlan), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "`only_when_empty`: the game server could not be asked for its players"),
        (status = 504, body = ErrorBody, description = "`only_when_empty`: the game server did not answer in time")))]
async fn stop(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Control>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ApiError> {
    stop_or_restart(&app, &caller, &name, q, false).await
}

/// Stops, then starts the program; `warn` and `only_when_empty` as for stop.
#[utoipa::path(post, path = "/api/programs/{name}/restart", tag = "programs",
    params(("name" = String, Path, description = "program name"), StopQuery),
    responses((status = 200, body = ProgramView), (status = 202, body = StopPlan), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "`only_when_empty`: the game server could not be asked for its players"),
        (status = 504, body = ErrorBody, description = "`only_when_empty`: the game server did not answer in time")))]
async fn restart(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Control>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ApiError> {
    stop_or_restart(&app, &caller, &name, q, true).await
}
action!(
    kill,
    kill,
    "/api/programs/{name}/kill",
    "Kills the program's whole process group now."
);

/// Filter of the event log.
#[derive(Deserialize, IntoParams)]
pub struct EventFilter {
    /// Only this program's events (for `/api/events`).
    program: Option<String>,
}

impl Filter for EventFilter {}

page_body!("A page of events, newest first." EventPage, events: EventRecord, "Events, newest first.");

async fn event_page(
    app: &AppState,
    program: Option<String>,
    page: &Page<EventFilter>,
    shown: impl Fn(&EventRecord) -> bool,
) -> Result<EventPage, ApiError> {
    let events = app.store.events(program, page.before, page.limit).await?;
    let mut events = EventPage::new(page, events, |e| e.id);
    // Filtered after the page is read: a page may come back shorter (even empty) while
    // `next_before` still leads on through the log.
    events.events.retain(|e| shown(e));
    Ok(events)
}

/// A program's lifecycle events, newest first.
#[utoipa::path(get, path = "/api/programs/{name}/events", tag = "programs",
    params(("name" = String, Path, description = "program name"), Page<EventFilter>),
    responses((status = 200, body = EventPage), (status = 404, body = ErrorBody)))]
async fn program_events(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
    page: Page<EventFilter>,
) -> Result<Json<EventPage>, ApiError> {
    app.sup.get(&name)?;
    Ok(Json(event_page(&app, Some(name), &page, |_| true).await?))
}

/// All events (optionally of one program), newest first.
#[utoipa::path(get, path = "/api/events", tag = "events", params(Page<EventFilter>),
    responses((status = 200, body = EventPage)))]
async fn all_events(
    State(app): State<AppState>,
    caller: Caller,
    page: Page<EventFilter>,
) -> Result<Json<EventPage>, ApiError> {
    let program = page.filter.program.clone();
    if let Some(p) = &program {
        app.allow(&caller, p, Perm::View)?;
    }
    // Warden's own events (no program) go to those who may see every program.
    let everywhere = caller.0.access().perms_everywhere().has(Perm::View);
    let shown = |e: &EventRecord| match &e.program {
        None => everywhere,
        Some(p) => everywhere || app.visible(&caller, p),
    };
    Ok(Json(event_page(&app, program, &page, shown).await?))
}

/// Console tail size.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct TailQuery {
    /// Number of recent lines, 0-10000 (default 100); 0 makes a stream send only new lines.
    #[param(minimum = 0, maximum = 10000)]
    lines: Option<usize>,
}

impl TailQuery {
    fn lines(&self) -> Result<usize, ApiError> {
        let n = self.lines.unwrap_or(100);
        if n > 10_000 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "lines must be between 0 and 10000",
            ));
        }
        Ok(n)
    }
}

/// The last console lines.
#[derive(Serialize, ToSchema)]
pub struct ConsoleTail {
    /// Lines, oldest first.
    pub lines: Vec<ConsoleLine>,
}

/// The last N console lines of a program (from memory).
#[utoipa::path(get, path = "/api/programs/{name}/console", tag = "console",
    params(("name" = String, Path, description = "program name"), TailQuery),
    responses((status = 200, body = ConsoleTail), (status = 404, body = ErrorBody)))]
async fn console_tail(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::Console>,
    Query(q): Query<TailQuery>,
) -> Result<Json<ConsoleTail>, ApiError> {
    let h = app.sup.get(&name)?;
    Ok(Json(ConsoleTail {
        lines: h.console_tail(q.lines()?),
    }))
}

/// A line for the program's stdin.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleInput {
    /// The line, without newline.
    pub line: String,
}

/// Sends a line to the program's stdin.
#[utoipa::path(post, path = "/api/programs/{name}/console", tag = "console",
    params(("name" = String, Path, description = "program name")), request_body = ConsoleInput,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn console_input(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Console>,
    Json(body): Json<ConsoleInput>,
) -> Result<StatusCode, ApiError> {
    if body.line.contains('\n') || body.line.contains('\r') || body.line.len() > 8192 {
        let e = if body.line.len() > 8192 {
            crate::program::FieldError::too_long("line", 8192)
        } else {
            crate::program::FieldError::control_chars("line")
        };
        return Err(ApiError::validation(vec![e]));
    }
    let h = app.sup.get(&name)?;
    app.audit(&caller, "program.console", &name, Some(body.line.clone()))
        .await;
    h.send_input(body.line).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Streams the console as JSON lines: the last `lines` lines, then live ones, until the
/// client disconnects or warden shuts down. A client that cannot keep up is cut off
/// (its queue is bounded) rather than allowed to grow warden's memory.
#[utoipa::path(get, path = "/api/programs/{name}/console/stream", tag = "console",
    params(("name" = String, Path, description = "program name"), TailQuery),
    responses((status = 200, description = "application/x-ndjson stream of console lines"), (status = 404, body = ErrorBody)))]
async fn console_stream(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::Console>,
    Query(q): Query<TailQuery>,
) -> Result<Response, ApiError> {
    let h = app.sup.get(&name)?;
    let mut bus = app.bus.subscribe();
    let backlog = h.console_tail(q.lines()?);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(512);
    let shutdown = app.shutdown.clone();
    tokio::spawn(async move {
        for line in backlog {
            if tx.try_send(ndjson(&line)).is_err() {
                return;
            }
        }
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                ev = bus.recv() => ev,
            };
            match ev {
                Ok(ev) => {
                    if let Event::Console(line) = &*ev
                        && line.program == name
                        && tx.try_send(ndjson(line)).is_err()
                    {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let note = format!("{{\"lagged\":{n}}}\n");
                    if tx.try_send(Bytes::from(note)).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn ndjson(line: &ConsoleLine) -> Bytes {
    let mut v = serde_json::to_vec(line).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// Programs to create or update.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// The desired programs.
    pub programs: Vec<ProgramSpec>,
}

/// What apply did.
#[derive(Serialize, ToSchema, Default)]
pub struct ApplyResult {
    /// Programs created.
    pub created: Vec<String>,
    /// Programs whose definition changed.
    pub updated: Vec<String>,
    /// Programs already as described.
    pub unchanged: Vec<String>,
}

/// Creates or updates programs from a declarative list (what `warden apply FILE` sends).
/// Everything is validated first; nothing is changed if any program is invalid.
#[utoipa::path(post, path = "/api/apply", tag = "programs", request_body = ApplyRequest,
    responses((status = 200, body = ApplyResult), (status = 422, body = ErrorBody)))]
async fn apply(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(req): Json<ApplyRequest>,
) -> Result<Json<ApplyResult>, ApiError> {
    Ok(Json(apply_programs(&app, &caller, req.programs).await?))
}

/// Creates or updates `programs` as `warden apply` does (the caller is an admin): every
/// program validated first, nothing changed if any is invalid. Shared with the
/// dashboard's TOML import.
pub(super) async fn apply_programs(
    app: &AppState,
    caller: &Caller,
    programs: Vec<ProgramSpec>,
) -> Result<ApplyResult, ApiError> {
    let applied = app.sup.apply(programs).await?;
    app.audit(
        caller,
        "programs.apply",
        "*",
        Some(format!(
            "created {:?}, updated {:?}",
            applied.created, applied.updated
        )),
    )
    .await;
    Ok(ApplyResult {
        created: applied.created,
        updated: applied.updated,
        unchanged: applied.unchanged,
    })
}

/// Waits up to `timeout` for a program to reach `state` (helper for tests and the CLI's `--wait`).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// Target state.
    state: LifeState,
    /// Seconds to wait at most (1-25, default 10; below the request timeout).
    #[param(minimum = 1, maximum = 25)]
    timeout: Option<u64>,
}

/// Waits until the program is in the given state (or the timeout passes) and returns it.
#[utoipa::path(get, path = "/api/programs/{name}/wait", tag = "programs",
    params(("name" = String, Path, description = "program name"), WaitQuery),
    responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody)))]
async fn wait(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<ProgramView>, ApiError> {
    let secs = q.timeout.unwrap_or(10);
    if !(1..=25).contains(&secs) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "timeout must be between 1 and 25 seconds",
        ));
    }
    let h = app.sup.get(&name)?;
    let target = q.state;
    let snap = h
        .wait_for(Duration::from_secs(secs), |s| s.state == target)
        .await;
    if snap.status.state != target {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "program '{name}' is still {} after {secs} s",
                snap.status.state.as_str()
            ),
        ));
    }
    Ok(Json(ProgramView::of(&h, now_ms())))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(restart))
        .routes(routes!(kill))
        .routes(routes!(wait))
        .routes(routes!(program_events))
        .routes(routes!(all_events))
        .routes(routes!(console_tail, console_input))
        .routes(routes!(console_stream))
        .routes(routes!(apply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::ProgramStatus;

    fn snapshot(json: serde_json::Value, state: LifeState) -> Arc<Snapshot> {
        let spec: ProgramSpec = serde_json::from_value(json).expect("spec");
        Arc::new(Snapshot {
            spec: Arc::new(spec),
            status: ProgramStatus {
                state,
                pid: Some(42),
                since_ms: 1_000,
                started_at_ms: Some(1_000),
                restarts: 2,
                last_exit: Some(ExitInfo {
                    code: None,
                    signal: Some("SIGKILL".into()),
                    description: "killed by SIGKILL".into(),
                }),
                adopted: false,
                game: None,
                reason: None,
                limits_mode: Some("cgroup v2".into()),
            },
        })
    }

    fn plain(snaps: &[&Snapshot], now: i64) -> Vec<u8> {
        let programs = snaps
            .iter()
            .map(|s| ProgramView::from_snapshot(s, now))
            .collect();
        serde_json::to_vec(&ProgramList { programs }).expect("json")
    }

    /// The list body built from cached definitions is byte for byte the serialised
    /// [`ProgramList`], stays so when a definition changes, shows no password, and the
    /// cache forgets programs that are gone.
    #[test]
    fn the_cached_list_is_the_serialised_list() {
        let cache = SpecJson::default();
        let mut all = vec![
            snapshot(
                serde_json::json!({"name": "web", "command": "sleep", "args": ["9"]}),
                LifeState::Running,
            ),
            snapshot(
                serde_json::json!({"name": "db", "command": "sleep",
                    "env": {"DB_PASSWORD": "hunter2"}}),
                LifeState::Backoff,
            ),
        ];
        let now = 61_000;
        for _ in 0..2 {
            let snaps: Vec<&Snapshot> = all.iter().map(|s| &**s).collect();
            let body = cache.list_body(&snaps, &all, now).expect("body");
            assert_eq!(
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&plain(&snaps, now))
            );
            assert!(!String::from_utf8_lossy(&body).contains("hunter2"));
        }
        // An edited definition is a new Arc: its JSON is made again.
        all[0] = snapshot(
            serde_json::json!({"name": "web", "command": "sleep", "args": ["10"]}),
            LifeState::Stopped,
        );
        let snaps: Vec<&Snapshot> = all.iter().map(|s| &**s).collect();
        let body = cache.list_body(&snaps, &all, now).expect("body");
        assert_eq!(body, plain(&snaps, now));
        assert!(String::from_utf8_lossy(&body).contains("[\"10\"]"));
        // A caller seeing none of them gets an empty list; a deleted program is dropped.
        assert_eq!(
            cache.list_body(&[], &all, now).expect("body"),
            plain(&[], now)
        );
        all.pop();
        cache.list_body(&[], &all, now).expect("body");
        assert_eq!(crate::sync::lock(&cache.0).len(), 1);
    }
}
