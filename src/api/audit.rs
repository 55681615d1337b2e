//! The audit log: one record per state-changing request (who, what, target, program,
//! result, address) — or one per thing it changed, when its handler describes several (an
//! upload of many files) — written by the [`record`] middleware when the request ends, so
//! refused and failed calls are in it too; and `GET /api/audit` to read it (admin).

use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::error::{ApiError, ErrorBody, Json};
use super::guard::Admin;
use super::paging::{Filter, Page, page_body};
use crate::access::AuditRecord;
use crate::store::access::{AuditFilter, NewAudit};

/// What the handler said about the request, filled in while it runs.
#[derive(Debug, Default)]
pub struct Described {
    actor: Option<String>,
    /// What was done, in order: action, target, detail.
    done: Vec<(String, String, Option<String>)>,
}

/// The request's audit note, shared by the middleware, the `Caller` extractor and the
/// handler.
pub type Note = Arc<Mutex<Described>>;

/// Records who is calling (the extractor knows first).
pub(crate) fn set_actor(note: Option<&Note>, actor: &str) {
    if let Some(n) = note
        && let Ok(mut d) = n.lock()
    {
        d.actor = Some(actor.to_string());
    }
}

/// Puts the handler's description into the note; false when there is no note (the
/// request is not recorded by the middleware).
pub(crate) fn describe(
    note: Option<&Note>,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> bool {
    let Some(n) = note else { return false };
    if let Ok(mut d) = n.lock() {
        d.done
            .push((action.to_string(), target.to_string(), detail));
    }
    true
}

/// The program named in an API path (`/api/programs/NAME/…`).
fn program_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/programs/")?;
    let name = rest.split('/').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// The person a fleet hub says it acts for (`X-Warden-For`), as printable text of at most
/// 200 characters.
fn on_behalf(headers: &axum::http::HeaderMap) -> Option<String> {
    let text = headers
        .get(crate::fleet::forward::ON_BEHALF_HEADER)?
        .to_str()
        .ok()?;
    let clean: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    (!clean.trim().is_empty()).then_some(clean)
}

/// Middleware: records every state-changing API request when it ends.
pub async fn record(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let recorded = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        && (path.starts_with("/api/") || path == "/metrics")
        // Logins are recorded by the login handler, which knows the outcome's meaning.
        && path != "/api/auth/login";
    if !recorded {
        return next.run(req).await;
    }
    let note: Note = Arc::default();
    req.extensions_mut().insert(note.clone());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let address = super::authn::client_ip(&app, req.headers(), req.extensions()).to_string();
    let on_behalf = on_behalf(req.headers());
    let resp = next.run(req).await;
    let status = resp.status();
    let d = note
        .lock()
        .map(|mut d| std::mem::take(&mut *d))
        .unwrap_or_default();
    let result = if status.is_success() || status.is_redirection() {
        "ok".to_string()
    } else {
        format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim()
        .to_string()
    };
    let mut done = d.done;
    if done.is_empty() {
        // Refused before the handler said anything: the route itself is the action.
        done.push((format!("{method} {route}"), path.clone(), None));
    }
    let actor = d.actor.unwrap_or_else(|| "-".into());
    let program = program_of(&path);
    // A fleet hub acting for someone names them; only a token (the hub's) can say so,
    // and it is recorded as what it is: the hub's word.
    let on_behalf = on_behalf.filter(|_| actor.starts_with("token:"));
    for (action, target, detail) in done {
        let detail = match (&on_behalf, detail) {
            (Some(who), Some(d)) => Some(format!("{d} (for {who})")),
            (Some(who), None) => Some(format!("for {who}")),
            (None, d) => d,
        };
        let row = NewAudit {
            actor: actor.clone(),
            action,
            target,
            program: program.clone(),
            result: result.clone(),
            address: Some(address.clone()),
            detail,
        };
        if let Err(e) = app.store.audit_record(row).await {
            tracing::error!(error = %e, "cannot write audit record");
        }
    }
    resp
}

/// Filters of the audit log.
#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only this actor (a user name or `token:NAME`).
    user: Option<String>,
    /// Only records about this program.
    program: Option<String>,
    /// Only this action or actions below it (`program` matches `program.start`).
    action: Option<String>,
    /// From this time (unix ms, inclusive).
    since: Option<i64>,
    /// Before this time (unix ms).
    until: Option<i64>,
}

impl Filter for AuditQuery {
    const DEFAULT_LIMIT: u32 = 100;
}

page_body!("A page of the audit log, newest first." AuditPage, entries: AuditRecord, "Records, newest first.");

/// Reads the audit log (admin): every state-changing call with who, what, target,
/// result and address.
#[utoipa::path(get, path = "/api/audit", tag = "users", params(Page<AuditQuery>),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(
    State(app): State<AppState>,
    _: Admin,
    page: Page<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let q = &page.filter;
    let entries = app
        .store
        .audit_page(AuditFilter {
            actor: q.user.clone(),
            program: q.program.clone(),
            action: q.action.clone(),
            since: q.since,
            until: q.until,
            before: page.before,
            limit: page.limit,
        })
        .await?;
    Ok(Json(AuditPage::new(&page, entries, |e| e.id)))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}
