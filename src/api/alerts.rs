//! Alert endpoints: channels (secrets masked), rules, "send test", the delivery log and
//! the outbox status. Reading needs `viewer`; defining and testing needs `admin`
//! (channels hold secrets, and a rule can restart programs).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use super::guard::{Admin, Everywhere, perm};
use super::paging::{Page, page_body};
use super::shared::same_name;
use crate::alerts::model::{ChannelSpec, RuleSpec};
use crate::alerts::{AlertError, AlertStatus, ChannelView, DeliveryView};

impl From<AlertError> for ApiError {
    fn from(e: AlertError) -> ApiError {
        match e {
            AlertError::NoChannel(_) | AlertError::NoRule(_) => ApiError::not_found(e.to_string()),
            AlertError::Invalid(details) => ApiError::validation(details),
            AlertError::Client(_) => ApiError::internal(&e),
            AlertError::Store(s) => s.into(),
        }
    }
}

/// All channels.
#[derive(Serialize, ToSchema)]
pub struct ChannelList {
    /// Channels by name, secrets masked.
    pub channels: Vec<ChannelView>,
}

/// Lists alert channels (URLs and tokens masked).
#[utoipa::path(get, path = "/api/alerts/channels", tag = "alerts",
    responses((status = 200, body = ChannelList), (status = 401, body = ErrorBody)))]
async fn list_channels(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
) -> Result<Json<ChannelList>, ApiError> {
    Ok(Json(ChannelList {
        channels: app.alerts.channels(),
    }))
}

/// Creates an alert channel.
#[utoipa::path(post, path = "/api/alerts/channels", tag = "alerts", request_body = ChannelSpec,
    responses((status = 201, body = ChannelView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_channel(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(spec): Json<ChannelSpec>,
) -> Result<Response, ApiError> {
    let view = app.alerts.create_channel(spec).await?;
    app.audit(&caller, "alerts.channel.create", &view.spec.name, None)
        .await;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// One alert channel (URLs and tokens masked).
#[utoipa::path(get, path = "/api/alerts/channels/{name}", tag = "alerts",
    params(("name" = String, Path, description = "channel name")),
    responses((status = 200, body = ChannelView), (status = 404, body = ErrorBody)))]
async fn get_channel(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
    Path(name): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(app.alerts.channel(&name)?))
}

/// Replaces an alert channel's definition (send the secrets again: answers never carry them).
#[utoipa::path(put, path = "/api/alerts/channels/{name}", tag = "alerts", request_body = ChannelSpec,
    params(("name" = String, Path, description = "channel name")),
    responses((status = 200, body = ChannelView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_channel(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    Json(spec): Json<ChannelSpec>,
) -> Result<Json<ChannelView>, ApiError> {
    same_name(&name, &spec.name)?;
    let view = app.alerts.update_channel(spec).await?;
    app.audit(&caller, "alerts.channel.update", &name, None)
        .await;
    Ok(Json(view))
}

/// Deletes an alert channel with its queue and delivery log.
#[utoipa::path(delete, path = "/api/alerts/channels/{name}", tag = "alerts",
    params(("name" = String, Path, description = "channel name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_channel(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.alerts.delete_channel(&name).await?;
    app.audit(&caller, "alerts.channel.delete", &name, None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Options of "send test".
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct TestQuery {
    /// Seconds to wait for the first attempt's outcome, 0-20 (default 10; 0 only queues).
    #[param(maximum = 20)]
    wait: Option<u64>,
}

/// Sends a test message through the channel (ignoring its filters) and reports the first
/// attempt: `delivered`, or `pending` with the error and the next retry, or `failed`.
#[utoipa::path(post, path = "/api/alerts/channels/{name}/test", tag = "alerts",
    params(("name" = String, Path, description = "channel name"), TestQuery),
    responses((status = 200, body = DeliveryView), (status = 404, body = ErrorBody)))]
async fn test_channel(
    State(app): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    Query(q): Query<TestQuery>,
) -> Result<Json<DeliveryView>, ApiError> {
    let wait = q.wait.unwrap_or(10);
    if wait > 20 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "wait must be between 0 and 20 seconds",
        ));
    }
    Ok(Json(
        app.alerts
            .test_channel(&name, std::time::Duration::from_secs(wait))
            .await?,
    ))
}

page_body!("A page of a channel's delivery log." DeliveryPage, deliveries: DeliveryView, "Newest first.");

/// A channel's delivery log: every notification with its attempts, status and last error.
#[utoipa::path(get, path = "/api/alerts/channels/{name}/deliveries", tag = "alerts",
    params(("name" = String, Path, description = "channel name"), Page),
    responses((status = 200, body = DeliveryPage), (status = 404, body = ErrorBody)))]
async fn deliveries(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
    Path(name): Path<String>,
    page: Page,
) -> Result<Json<DeliveryPage>, ApiError> {
    let deliveries = app
        .alerts
        .deliveries(&name, page.before, page.limit)
        .await?;
    Ok(Json(DeliveryPage::new(&page, deliveries, |d| d.id)))
}

/// All rules.
#[derive(Serialize, ToSchema)]
pub struct RuleList {
    /// Rules by name.
    pub rules: Vec<RuleSpec>,
}

/// Lists alert rules.
#[utoipa::path(get, path = "/api/alerts/rules", tag = "alerts",
    responses((status = 200, body = RuleList), (status = 401, body = ErrorBody)))]
async fn list_rules(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
) -> Result<Json<RuleList>, ApiError> {
    Ok(Json(RuleList {
        rules: app.alerts.rules(),
    }))
}

/// Creates an alert rule; it applies at once.
#[utoipa::path(post, path = "/api/alerts/rules", tag = "alerts", request_body = RuleSpec,
    responses((status = 201, body = RuleSpec), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_rule(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Json(spec): Json<RuleSpec>,
) -> Result<Response, ApiError> {
    let rule = app.alerts.create_rule(spec).await?;
    app.audit(
        &caller,
        "alerts.rule.create",
        &rule.name,
        Some(rule.condition.clone()),
    )
    .await;
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

/// One alert rule.
#[utoipa::path(get, path = "/api/alerts/rules/{name}", tag = "alerts",
    params(("name" = String, Path, description = "rule name")),
    responses((status = 200, body = RuleSpec), (status = 404, body = ErrorBody)))]
async fn get_rule(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
    Path(name): Path<String>,
) -> Result<Json<RuleSpec>, ApiError> {
    Ok(Json(app.alerts.rule(&name)?))
}

/// Replaces an alert rule.
#[utoipa::path(put, path = "/api/alerts/rules/{name}", tag = "alerts", request_body = RuleSpec,
    params(("name" = String, Path, description = "rule name")),
    responses((status = 200, body = RuleSpec), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_rule(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    Json(spec): Json<RuleSpec>,
) -> Result<Json<RuleSpec>, ApiError> {
    same_name(&name, &spec.name)?;
    let rule = app.alerts.update_rule(spec).await?;
    app.audit(
        &caller,
        "alerts.rule.update",
        &name,
        Some(rule.condition.clone()),
    )
    .await;
    Ok(Json(rule))
}

/// Deletes an alert rule.
#[utoipa::path(delete, path = "/api/alerts/rules/{name}", tag = "alerts",
    params(("name" = String, Path, description = "rule name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_rule(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.alerts.delete_rule(&name).await?;
    app.audit(&caller, "alerts.rule.delete", &name, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Outbox and delivery figures: queued, delivered, failed, dropped, in flight.
#[utoipa::path(get, path = "/api/alerts/status", tag = "alerts",
    responses((status = 200, body = AlertStatus), (status = 401, body = ErrorBody)))]
async fn status(
    State(app): State<AppState>,
    _: Everywhere<perm::View>,
) -> Result<Json<AlertStatus>, ApiError> {
    Ok(Json(app.alerts.status().await?))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(get_channel, update_channel, delete_channel))
        .routes(routes!(test_channel))
        .routes(routes!(deliveries))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
        .routes(routes!(status))
}
