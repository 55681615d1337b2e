//! The one error shape of the API, and extractors whose rejections use it.
//!
//! Every 4xx/5xx body is `{"error":{"code":"…","message":"…","details":[…]}}`. `code` is
//! stable (clients switch on it); `message` is for people. 5xx messages never carry
//! internals: the real cause goes to warden's log only.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::program::FieldError;
use crate::store::StoreError;
use crate::supervisor::SupError;

/// An API error: HTTP status, stable code, readable message, optional field details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<FieldError>,
    params: serde_json::Map<String, serde_json::Value>,
    retry_after: Option<u64>,
}

/// The JSON body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Error fields.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `validation_failed`.
    pub code: String,
    /// What went wrong and, where possible, how to fix it.
    pub message: String,
    /// Per-field problems for `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
    /// The values a client needs to phrase `code` in its own words (e.g. `name` and
    /// `state` for `program_active`, `retry_after` for `rate_limited`); absent when none.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Option<Object>)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            params: serde_json::Map::new(),
            retry_after: None,
        }
    }

    /// The same error with a parameter its code's sentence needs.
    pub fn with_param(mut self, key: &str, value: impl Into<serde_json::Value>) -> ApiError {
        self.params.insert(key.to_string(), value.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401.
    pub fn unauthenticated() -> ApiError {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in, or send an API token as 'Authorization: Bearer <token>'",
        )
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422 with per-field details.
    pub fn validation(details: Vec<FieldError>) -> ApiError {
        let summary = details
            .iter()
            .map(|d| format!("{}: {}", d.field, d.message))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            details,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!("the request is invalid: {summary}"),
            )
        }
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            params: [(
                "retry_after".to_string(),
                serde_json::Value::from(retry_after_secs.max(1)),
            )]
            .into_iter()
            .collect(),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many attempts; try again in {} s",
                    retry_after_secs.max(1)
                ),
            )
        }
    }

    /// 500: logs `cause`, tells the client only that something failed inside.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "warden hit an internal error; details are in its log",
        )
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The same error with another message (e.g. a summary of its details).
    pub fn with_message(mut self, message: impl Into<String>) -> ApiError {
        self.message = message.into();
        self
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
                params: self.params,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<SupError> for ApiError {
    fn from(e: SupError) -> ApiError {
        match e {
            SupError::NotFound(ref name) => {
                let name = name.clone();
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
                    .with_param("name", name)
            }
            SupError::Conflict(m) => ApiError::conflict(m),
            SupError::Exists(ref name) => {
                let name = name.clone();
                ApiError::new(StatusCode::CONFLICT, "already_exists", e.to_string())
                    .with_param("name", name)
            }
            SupError::Active { ref name, state } => {
                let name = name.clone();
                ApiError::new(StatusCode::CONFLICT, "program_active", e.to_string())
                    .with_param("name", name)
                    .with_param("state", state.as_str())
            }
            SupError::NotRunning(ref name) => {
                let name = name.clone();
                ApiError::new(StatusCode::CONFLICT, "program_not_running", e.to_string())
                    .with_param("name", name)
            }
            SupError::Invalid(details) => ApiError::validation(details),
            SupError::Unavailable(m) => ApiError::conflict(m),
            SupError::ShuttingDown => ApiError::unavailable("warden is shutting down"),
            SupError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Closed => ApiError::unavailable("warden is shutting down"),
            // Not an internal error: the operator can act on it, and the path is theirs.
            StoreError::DiskFull(dir) => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                format!(
                    "the disk holding warden's data directory {} is full; the change was not saved: free space there and retry",
                    dir.display()
                ),
            ),
            other => ApiError::internal(&other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong user name or password, or an invalid or revoked token",
            ),
            AuthError::WeakPassword(m) | AuthError::BadInput(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", m)
            }
            AuthError::WrongCode => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong_code",
                "wrong or already used code; enter the current code from your authenticator app or an unused recovery code",
            ),
            AuthError::LoginExpired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "login_expired",
                "this sign-in has expired or had too many wrong codes; enter your password again",
            ),
            AuthError::TwoFactorState(m) => ApiError::conflict(m),
            AuthError::Hash | AuthError::Seal(_) => ApiError::internal(&e),
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r {
            JsonRejection::JsonDataError(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!(
                    "the JSON body does not match what this endpoint takes: {}",
                    source_text(&e)
                ),
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {}", source_text(&e)),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body with 'Content-Type: application/json'",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than this server accepts (api.body_limit_bytes)",
            ),
            other => ApiError::bad_request(format!("cannot read the request body: {other}")),
        }
    }
}

/// The innermost error text of a rejection (serde's message with line and column),
/// without axum's generic prefix.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("invalid query parameters: {}", source_text(&r)),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request(format!("invalid path: {}", source_text(&r)))
    }
}

/// `axum::Json` whose rejection is an [`ApiError`], read strictly (a struct only from
/// an object; see [`super::strict`]).
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(super::strict::Strict(value)) =
            axum::Json::<super::strict::Strict<T>>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` whose rejection is an [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[cfg(test)]
mod tests {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every error code the server answers with has an English and a Korean sentence in
    /// the dashboard's catalogue (`error.CODE` in `web/lib/i18n.js`), so a new code cannot
    /// ship with only the server's English message to show.
    #[test]
    fn every_error_code_is_in_the_dashboard_catalogue() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let code_re = regex::Regex::new(r#"(?:StatusCode::[A-Z_]+|\.status\(\)),\s*"([a-z_]+)""#)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut files = Vec::new();
        rust_files(&root.join("src"), &mut files);
        let mut codes = std::collections::BTreeSet::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            for c in code_re.captures_iter(&text) {
                codes.insert(c[1].to_string());
            }
        }
        assert!(codes.len() > 30, "the scan found too few codes: {codes:?}");
        for code in [
            "not_found",
            "conflict",
            "validation_failed",
            "program_active",
        ] {
            assert!(codes.contains(code), "the scan missed {code}");
        }
        let missing = crate::web::untranslated(codes.iter().map(|c| format!("error.{c}")));
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
