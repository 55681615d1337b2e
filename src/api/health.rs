//! `/health`: whether warden and each of its parts work, without authentication (for load
//! balancers, service managers and people). 503 while a part is down or the database does
//! not answer; 200 with `degraded` while warden supervises but cannot store (a full disk)
//! or runs short of descriptors.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::health::{PartStatus, PartView};

/// Health answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `degraded` (programs are supervised, but something is short: storage,
    /// descriptors) or `failing` (a part of warden is down, or the database does not
    /// answer; the answer is then 503).
    pub status: &'static str,
    /// `ok` when the database answered a read.
    pub db: &'static str,
    /// warden's version.
    pub version: &'static str,
    /// Seconds since warden started.
    pub uptime_seconds: u64,
    /// Why the status is not `ok`, in plain words (empty when it is).
    pub problems: Vec<String>,
    /// Per component.
    pub components: Components,
}

/// Per-component figures.
#[derive(Serialize, ToSchema)]
pub struct Components {
    /// The database writer.
    pub store: StoreHealth,
    /// Space in the data directory's file system.
    pub disk: DiskHealth,
    /// warden's own open descriptors.
    pub descriptors: DescriptorHealth,
    /// The resource sampler.
    pub sampler: SamplerHealth,
    /// Alert delivery.
    pub alerts: AlertsHealth,
    /// warden's own log output.
    pub log: LogHealth,
    /// Every watched task and thread of warden.
    pub parts: Vec<PartView>,
}

/// The database writer.
#[derive(Serialize, ToSchema)]
pub struct StoreHealth {
    /// `ok`, or `failing` while batches fail to commit.
    pub status: &'static str,
    /// Unix ms of the last successful commit.
    pub last_commit_ms: Option<i64>,
    /// Unix ms since when commits fail.
    pub failing_since_ms: Option<i64>,
    /// The last commit error.
    pub error: Option<String>,
    /// The last failure was a full disk.
    pub disk_full: bool,
    /// Records that could not be stored since start.
    pub writes_lost: u64,
    /// Jobs waiting for the writer.
    pub queue: usize,
}

/// Space in the data directory's file system.
#[derive(Serialize, ToSchema)]
pub struct DiskHealth {
    /// `ok`, `low` (under 5 % or 100 MB free) or `unknown`.
    pub status: &'static str,
    /// The data directory.
    pub path: String,
    /// Free bytes.
    pub free_bytes: Option<u64>,
    /// Size of the file system.
    pub total_bytes: Option<u64>,
}

/// warden's own open descriptors.
#[derive(Serialize, ToSchema)]
pub struct DescriptorHealth {
    /// `ok`, `low` (over 90 % of the limit used) or `unknown`.
    pub status: &'static str,
    /// Open now.
    pub in_use: Option<u64>,
    /// The soft limit (none on Windows).
    pub limit: Option<u64>,
}

/// The resource sampler.
#[derive(Serialize, ToSchema)]
pub struct SamplerHealth {
    /// Ticks waiting between the sampler and the metrics writer.
    pub queue: u64,
    /// Samples waiting for the next batch write (grows while the store fails).
    pub buffered: u64,
    /// Samples dropped since start.
    pub dropped: u64,
}

/// Alert delivery.
#[derive(Serialize, ToSchema)]
pub struct AlertsHealth {
    /// Notifications waiting in the outbox (absent if the outbox could not be read).
    pub pending: Option<u64>,
    /// Requests in flight.
    pub in_flight: Option<usize>,
}

/// warden's own log output.
#[derive(Serialize, ToSchema)]
pub struct LogHealth {
    /// Lines dropped since start because the output failed or could not keep up.
    pub lines_dropped: u64,
}

/// Liveness of warden and each of its parts (no authentication).
#[utoipa::path(get, path = "/health", tag = "system", security(),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(super) async fn health(State(app): State<AppState>) -> Response {
    let mut problems = Vec::new();
    let mut failing = false;
    let db = match tokio::time::timeout(Duration::from_secs(2), app.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check: database unusable");
            failing = true;
            problems.push("the database cannot be read; see warden's log".to_string());
            "failing"
        }
        Err(_) => {
            failing = true;
            problems.push("the database did not answer within 2 s".to_string());
            "timeout"
        }
    };
    let parts = crate::health::parts();
    for p in parts.iter().filter(|p| p.status != PartStatus::Ok) {
        failing = true;
        problems.push(format!(
            "{} is down: {}",
            p.name,
            p.last_failure.as_deref().unwrap_or("unknown cause")
        ));
    }
    let sh = app.store.health();
    let dir = app.store.dir().to_path_buf();
    let mut degraded = false;
    if sh.failing_since_ms.is_some() {
        degraded = true;
        problems.push(if sh.disk_full {
            format!(
                "the disk holding the data directory {} is full: events and changes cannot be stored (programs are still supervised)",
                dir.display()
            )
        } else {
            format!(
                "the database cannot be written: {}",
                sh.last_error.as_deref().unwrap_or("unknown error")
            )
        });
    }
    let (usage, fds) = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            let usage = crate::os::mount_usage(&dir.to_string_lossy(), "");
            let fds = crate::os::ProcReader::new()
                .process(std::process::id())
                .map(|p| p.open_files);
            (usage, fds)
        }
    })
    .await
    .unwrap_or((None, None));
    let disk = match usage {
        Some(u) => {
            let free = u.total.saturating_sub(u.used);
            let low = free < 100 * 1024 * 1024 || free < u.total / 20;
            DiskHealth {
                status: if low { "low" } else { "ok" },
                path: dir.display().to_string(),
                free_bytes: Some(free),
                total_bytes: Some(u.total),
            }
        }
        None => DiskHealth {
            status: "unknown",
            path: dir.display().to_string(),
            free_bytes: None,
            total_bytes: None,
        },
    };
    let limit = crate::os::descriptor_limit();
    let fd_status = match (fds, limit) {
        (Some(n), Some(l)) if n * 10 > l * 9 => {
            degraded = true;
            problems.push(format!("warden uses {n} of its {l} file descriptors"));
            "low"
        }
        (Some(_), _) => "ok",
        _ => "unknown",
    };
    let (queue, buffered, dropped) = app.metrics.queue_figures();
    let alerts = match tokio::time::timeout(Duration::from_secs(2), app.alerts.status()).await {
        Ok(Ok(s)) => AlertsHealth {
            pending: Some(s.pending),
            in_flight: Some(s.in_flight),
        },
        _ => AlertsHealth {
            pending: None,
            in_flight: None,
        },
    };
    let status = if failing {
        "failing"
    } else if degraded {
        "degraded"
    } else {
        "ok"
    };
    let body = Health {
        status,
        db,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: app.started.elapsed().as_secs(),
        problems,
        components: Components {
            store: StoreHealth {
                status: if sh.failing_since_ms.is_some() {
                    "failing"
                } else {
                    "ok"
                },
                last_commit_ms: sh.last_commit_ms,
                failing_since_ms: sh.failing_since_ms,
                error: sh.last_error,
                disk_full: sh.disk_full,
                writes_lost: sh.writes_lost,
                queue: app.store.write_queue_depth(),
            },
            disk,
            descriptors: DescriptorHealth {
                status: fd_status,
                in_use: fds,
                limit,
            },
            sampler: SamplerHealth {
                queue,
                buffered,
                dropped,
            },
            alerts,
            log: LogHealth {
                lines_dropped: crate::logging::lines_dropped(),
            },
            parts,
        },
    };
    let code = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, axum::Json(body)).into_response()
}
