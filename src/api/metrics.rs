//! Metrics endpoints: program and host history for charts, static host facts, the
//! process list, streaming export, import of JSON Lines, and the Prometheus exposition.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::Caller;
use super::error::{ApiError, ErrorBody, Json, Query};
use super::guard::{Admin, OnProgram, perm};
use crate::access::Perm;
use crate::bus::{HostSample, ProgramSample};
use crate::metrics::{Format, HistoryQuery, ImportError, ProcessSort};
use crate::program::FieldError;
use crate::store::metrics::{Agg, Tier};
use crate::store::now_ms;

/// How values within one point are combined.
#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
pub enum AggParam {
    /// Mean.
    #[default]
    Avg,
    /// Largest.
    Max,
    /// Smallest.
    Min,
}

/// A time range and resolution.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    /// Start: unix ms or RFC 3339 (default: one hour before `to`).
    from: Option<String>,
    /// End: unix ms or RFC 3339 (default: now).
    to: Option<String>,
    /// Most points per series, 1–10000 (default 300).
    #[param(minimum = 1, maximum = 10000)]
    points: Option<u32>,
    /// avg (default), max or min.
    agg: Option<AggParam>,
}

fn parse_time(field: &str, v: &str) -> Result<i64, FieldError> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            FieldError::invalid(field, v, "neither unix milliseconds nor an RFC 3339 time")
        })
}

/// Validates a range: `to` defaults to now and `from` to `default_span` before it.
fn range(from: Option<&str>, to: Option<&str>, default_span: i64) -> Result<(i64, i64), ApiError> {
    let mut problems = Vec::new();
    let to = match to.map(|v| parse_time("to", v)) {
        None => now_ms(),
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            problems.push(e);
            now_ms()
        }
    };
    let from = match from.map(|v| parse_time("from", v)) {
        None => to - default_span,
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            problems.push(e);
            to - default_span
        }
    };
    if problems.is_empty() && from >= to {
        problems.push(FieldError::too_large("from", "to"));
    }
    if problems.is_empty() {
        Ok((from, to))
    } else {
        Err(ApiError::validation(problems))
    }
}

impl HistoryParams {
    fn query(&self) -> Result<HistoryQuery, ApiError> {
        let points = self.points.unwrap_or(300);
        if !(1..=10_000).contains(&points) {
            return Err(ApiError::validation(vec![FieldError::out_of_range(
                "points", 1, 10_000,
            )]));
        }
        let (from, to) = range(self.from.as_deref(), self.to.as_deref(), 3_600_000)?;
        let agg = match self.agg.unwrap_or_default() {
            AggParam::Avg => Agg::Avg,
            AggParam::Max => Agg::Max,
            AggParam::Min => Agg::Min,
        };
        Ok(HistoryQuery {
            from,
            to,
            points,
            agg,
        })
    }
}

fn agg_name(a: Agg) -> &'static str {
    match a {
        Agg::Avg => "avg",
        Agg::Max => "max",
        Agg::Min => "min",
    }
}

/// Chart data: one timestamp per point, one array per series (null: not measured).
#[derive(Serialize, ToSchema)]
pub struct HistoryView {
    /// Start of the range, unix ms.
    pub from: i64,
    /// End of the range (exclusive), unix ms.
    pub to: i64,
    /// Tier that answered: `raw`, `1m`, `10m` or `1h`.
    pub tier: &'static str,
    /// Width of each point in ms.
    pub step_ms: i64,
    /// How values within a point were combined.
    pub agg: &'static str,
    /// Start of each point, unix ms.
    pub timestamps: Vec<i64>,
    /// Values by series name, aligned with `timestamps`.
    pub series: BTreeMap<String, Vec<Option<f64>>>,
}

/// A program's resource history and its latest sample.
#[derive(Serialize, ToSchema)]
pub struct ProgramMetrics {
    /// Program name.
    pub program: String,
    /// History.
    #[serde(flatten)]
    pub history: HistoryView,
    /// The latest sample, while the program runs.
    pub current: Option<ProgramSample>,
}

/// The host's resource history and its latest sample.
#[derive(Serialize, ToSchema)]
pub struct HostStats {
    /// History.
    #[serde(flatten)]
    pub history: HistoryView,
    /// The latest sample (per core and per filesystem too).
    pub current: Option<HostSample>,
}

async fn history(
    app: &AppState,
    program: Option<&str>,
    p: &HistoryParams,
) -> Result<HistoryView, ApiError> {
    let q = p.query()?;
    let h = app.metrics.history(program, q).await?;
    Ok(HistoryView {
        from: q.from,
        to: q.to,
        tier: h.tier,
        step_ms: h.step_ms,
        agg: agg_name(q.agg),
        timestamps: h.timestamps,
        series: h.series,
    })
}

/// A program's resource history (whole process tree): at most `points` points per
/// series, from the finest storage tier that holds the range at that resolution.
#[utoipa::path(get, path = "/api/programs/{name}/metrics", tag = "metrics",
    params(("name" = String, Path, description = "program name"), HistoryParams),
    responses((status = 200, body = ProgramMetrics), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn program_metrics(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
    Query(p): Query<HistoryParams>,
) -> Result<Json<ProgramMetrics>, ApiError> {
    app.sup.get(&name)?;
    let history = history(&app, Some(&name), &p).await?;
    Ok(Json(ProgramMetrics {
        current: app.metrics.current(&name),
        program: name,
        history,
    }))
}

/// The host's resource history (CPU, memory, swap, load, disk, network) and latest sample.
#[utoipa::path(get, path = "/api/system/stats", tag = "metrics",
    params(HistoryParams),
    responses((status = 200, body = HostStats), (status = 422, body = ErrorBody)))]
async fn system_stats(
    State(app): State<AppState>,
    _caller: Caller,
    Query(p): Query<HistoryParams>,
) -> Result<Json<HostStats>, ApiError> {
    let history = history(&app, None, &p).await?;
    Ok(Json(HostStats {
        history,
        current: app.metrics.current_host(),
    }))
}

/// Static facts about the host and warden.
#[derive(Serialize, ToSchema)]
pub struct SystemInfo {
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU architecture.
    pub arch: &'static str,
    /// CPU model.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Installed memory in bytes.
    pub memory_bytes: u64,
    /// Swap size in bytes.
    pub swap_bytes: u64,
    /// Unix ms when the host booted.
    pub boot_time_ms: i64,
    /// warden's version.
    pub warden_version: &'static str,
    /// Seconds since warden started.
    pub warden_uptime_seconds: u64,
    /// Configured sampling interval in ms.
    pub sample_interval_ms: u64,
}

/// Static facts about the host.
#[utoipa::path(get, path = "/api/system/info", tag = "metrics",
    responses((status = 200, body = SystemInfo), (status = 401, body = ErrorBody)))]
async fn system_info(
    State(app): State<AppState>,
    _caller: Caller,
) -> Result<Json<SystemInfo>, ApiError> {
    let f = app.metrics.system_info().await;
    Ok(Json(SystemInfo {
        hostname: f.hostname,
        os: f.os,
        kernel: f.kernel,
        arch: std::env::consts::ARCH,
        cpu_model: f.cpu_model,
        cpus: f.cpus,
        memory_bytes: f.memory_bytes,
        swap_bytes: f.swap_bytes,
        boot_time_ms: f.boot_time_ms,
        warden_version: env!("CARGO_PKG_VERSION"),
        warden_uptime_seconds: app.started.elapsed().as_secs(),
        sample_interval_ms: app.cfg.metrics.sample_interval.as_millis() as u64,
    }))
}

/// Sort order of the process list.
#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
pub enum SortParam {
    /// Highest CPU first.
    #[default]
    Cpu,
    /// Most memory first.
    Memory,
}

/// Process list options.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ProcessParams {
    /// cpu (default) or memory.
    sort: Option<SortParam>,
    /// How many, 1–500 (default 20).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// One process of the host.
#[derive(Serialize, ToSchema)]
pub struct ProcessRow {
    /// Process id.
    pub pid: u32,
    /// Executable name (never the command line, which may hold secrets).
    pub name: String,
    /// CPU % of one core, measured over 250 ms.
    pub cpu_percent: f64,
    /// Resident memory in bytes.
    pub memory_bytes: u64,
    /// The supervised program this is the main process of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
}

/// Top processes of the host.
#[derive(Serialize, ToSchema)]
pub struct ProcessList {
    /// Processes, in the requested order.
    pub processes: Vec<ProcessRow>,
}

/// The host's top processes by CPU or memory (admin: it shows every process).
#[utoipa::path(get, path = "/api/system/processes", tag = "metrics",
    params(ProcessParams),
    responses((status = 200, body = ProcessList), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn system_processes(
    State(app): State<AppState>,
    _: Admin,
    Query(p): Query<ProcessParams>,
) -> Result<Json<ProcessList>, ApiError> {
    let limit = p.limit.unwrap_or(20);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::out_of_range(
            "limit", 1, 500,
        )]));
    }
    let sort = match p.sort.unwrap_or_default() {
        SortParam::Cpu => ProcessSort::Cpu,
        SortParam::Memory => ProcessSort::Memory,
    };
    let processes = app
        .metrics
        .processes(sort, limit)
        .await
        .into_iter()
        .map(|p| ProcessRow {
            pid: p.pid,
            name: p.name,
            cpu_percent: p.cpu_percent,
            memory_bytes: p.memory_bytes,
            program: p.program,
        })
        .collect();
    Ok(Json(ProcessList { processes }))
}

/// Export format.
#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
pub enum FormatParam {
    /// CSV with a header line.
    Csv,
    /// JSON Lines (what import reads).
    #[default]
    Jsonl,
}

/// Storage tier to export.
#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
pub enum TierParam {
    /// Raw samples.
    #[default]
    #[serde(rename = "raw")]
    Raw,
    /// 1-minute averages.
    #[serde(rename = "1m")]
    Minute,
    /// 1-hour averages.
    #[serde(rename = "1h")]
    Hour,
}

/// Export options.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ExportParams {
    /// Start: unix ms or RFC 3339 (default: 48 hours before `to`).
    from: Option<String>,
    /// End: unix ms or RFC 3339 (default: now).
    to: Option<String>,
    /// jsonl (default) or csv.
    format: Option<FormatParam>,
    /// raw (default), 1m or 1h (rollup tiers export their averages).
    tier: Option<TierParam>,
}

/// Streams a program's stored samples as CSV or JSON Lines, in constant memory however
/// long the range. The JSON Lines form is what import reads.
#[utoipa::path(get, path = "/api/programs/{name}/metrics/export", tag = "metrics",
    params(("name" = String, Path, description = "program name"), ExportParams),
    responses((status = 200, description = "text/csv or application/x-ndjson stream"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn export(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::View>,
    Query(p): Query<ExportParams>,
) -> Result<Response, ApiError> {
    app.sup.get(&name)?;
    let (from, to) = range(p.from.as_deref(), p.to.as_deref(), 48 * 3_600_000)?;
    let (format, content_type, ext) = match p.format.unwrap_or_default() {
        FormatParam::Csv => (Format::Csv, "text/csv; charset=utf-8", "csv"),
        FormatParam::Jsonl => (Format::Jsonl, "application/x-ndjson", "jsonl"),
    };
    let tier = match p.tier.unwrap_or_default() {
        TierParam::Raw => Tier::Raw,
        TierParam::Minute => Tier::Minute,
        TierParam::Hour => Tier::Hour,
    };
    let stream = app
        .metrics
        .export(name.clone(), tier, from, to, format)
        .map(|chunk| {
            chunk.map_err(|e| {
                tracing::error!(error = %e, "metrics export failed mid-stream");
                e
            })
        });
    let disposition = format!("attachment; filename=\"{name}-metrics.{ext}\"");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// What an import stored.
#[derive(Serialize, ToSchema)]
pub struct ImportResult {
    /// Samples stored (a repeated timestamp replaces the earlier sample).
    pub imported: u64,
    /// Earliest imported timestamp, unix ms.
    pub from: Option<i64>,
    /// Latest imported timestamp, unix ms.
    pub to: Option<i64>,
}

/// Imports JSON Lines of samples into a program's history (e.g. from an older monitor):
/// `{"ts": <unix ms or RFC 3339>, "cpu_percent": …, "memory_bytes": …, …}` per line. All
/// or nothing: if any line is bad, nothing is stored and the bad lines are listed by
/// number in `details`. The body is read as a stream, so it is not bound by the usual
/// request body limit.
#[utoipa::path(post, path = "/api/programs/{name}/metrics/import", tag = "metrics",
    params(("name" = String, Path, description = "program name")),
    request_body(content = Option<String>, content_type = "application/x-ndjson",
        description = "JSON Lines of samples; an empty body imports nothing"),
    responses((status = 200, body = ImportResult), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::Define>,
    body: Body,
) -> Result<Json<ImportResult>, ApiError> {
    app.sup.get(&name)?;
    let summary = match app.metrics.import(&name, body.into_data_stream()).await {
        Ok(s) => s,
        Err(ImportError::Invalid { lines, bad }) => {
            let details = lines
                .into_iter()
                .map(|l| {
                    FieldError::unreadable(
                        format!("line {}", l.line),
                        Some(l.line),
                        None,
                        &l.message,
                    )
                })
                .collect();
            let mut e = ApiError::validation(details);
            e = e.with_message(format!(
                "{bad} line(s) are invalid; nothing was imported (the first ones are listed in details)"
            ));
            return Err(e);
        }
        Err(ImportError::Body(m)) => return Err(ApiError::bad_request(m)),
        Err(ImportError::Store(e)) => return Err(e.into()),
    };
    app.audit(
        &caller,
        "metrics.import",
        &name,
        Some(format!("{} samples", summary.samples)),
    )
    .await;
    Ok(Json(ImportResult {
        imported: summary.samples,
        from: summary.from,
        to: summary.to,
    }))
}

/// Prometheus text exposition: current values of every running program (label
/// `program`), of the host, and warden's own health. Needs a token unless
/// `metrics.prometheus_public` is set.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"), (status = 401, body = ErrorBody)))]
async fn prometheus(
    State(app): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Response, ApiError> {
    // Public exposition shows everything (the admin chose it); a caller sees the programs
    // they may view.
    let caller = match caller {
        Ok(c) => Some(c),
        Err(_) if app.cfg.metrics.prometheus_public => None,
        Err(e) => return Err(e),
    };
    let text = match caller {
        Some(c) if !c.0.access().perms_everywhere().has(Perm::View) => {
            app.metrics.prometheus_for(|p| app.visible(&c, p)).await
        }
        _ => app.metrics.prometheus().await,
    };
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(program_metrics))
        .routes(routes!(export))
        .routes(routes!(import))
        .routes(routes!(system_stats))
        .routes(routes!(system_info))
        .routes(routes!(system_processes))
        .routes(routes!(prometheus))
}
