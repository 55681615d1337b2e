//! File endpoints: list, read and save text, create folders, move, delete, upload and
//! download a program's files (and read its console logs with `area=logs`). The
//! confinement and all disk work live in `crate::files`; handlers parse, authorise,
//! call it, audit changes and format.
//!
//! Uploads have their own router ([`upload_routes`]): their body is far larger than the
//! JSON limit, and receiving it may take longer than the request timeout, which bounds
//! producing a response head — so the upload route sits outside that layer and limits
//! idleness per chunk instead.

use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::authn::Caller;
use super::error::{ApiError, ErrorBody, Json, Query};
use super::guard::{OnProgram, perm};
use crate::access::Perm;
use crate::files::{
    self, ArchiveFormat, Area, Deleted, Extracted, FilesError, Kind, Page, SaveText, Saved,
    TextFile, Uploaded,
};
use crate::program::{FieldError, ProgramSpec};

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> ApiError {
        match e {
            FilesError::BadPath(e) => ApiError::validation(vec![e]),
            FilesError::NoRoot(m) => ApiError::new(StatusCode::CONFLICT, "no_file_root", m),
            FilesError::NotFound(m) => ApiError::not_found(m),
            FilesError::Conflict(m) => ApiError::conflict(m),
            FilesError::TooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m)
            }
            FilesError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m)
            }
            FilesError::Denied(m) => ApiError::forbidden(m),
            FilesError::Busy(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", m),
            e @ FilesError::Io { .. } => ApiError::internal(&e),
        }
    }
}

/// The program's definition (its cwd and files_root), or 404.
fn spec_of(app: &AppState, name: &str) -> Result<ProgramSpec, ApiError> {
    Ok((*app.sup.get(name)?.snapshot().spec).clone())
}

/// True when the caller holds `define` on the program: only then does it see the game's
/// own secrets in its config files (`files::secrets`).
fn may_define(app: &AppState, caller: &Caller, name: &str) -> bool {
    caller.perms_on(name, &app.tags_of(name)).has(Perm::Define)
}

/// Audit target of a path: `program:path`.
fn target(name: &str, path: &str) -> String {
    format!("{name}:{path}")
}

/// Listing options.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Folder relative to the file root (default: the root).
    #[serde(default)]
    path: String,
    /// `files` (default) or `logs` (the program's console logs, read-only).
    #[serde(default)]
    area: Area,
    /// The `next_after` of the previous page.
    after: Option<String>,
    /// Page size, 1 to `files.max_page_entries` (default 200).
    #[param(minimum = 1)]
    limit: Option<usize>,
}

/// Lists a folder, one page at a time (folders first, then files, each by name).
#[utoipa::path(get, path = "/api/programs/{name}/files", tag = "files",
    params(("name" = String, Path, description = "program name"), ListQuery),
    responses((status = 200, body = Page), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    State(app): State<AppState>,
    OnProgram { name, .. }: OnProgram<perm::FilesRead>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let max = app.files.limits().max_page_entries;
    let limit = q.limit.unwrap_or(200.min(max));
    if !(1..=max).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::out_of_range(
            "limit", 1, max,
        )]));
    }
    let spec = spec_of(&app, &name)?;
    let path = files::parse("path", &q.path)?;
    Ok(Json(
        app.files.list(&spec, q.area, path, q.after, limit).await?,
    ))
}

/// Which file to read.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    /// File relative to the file root.
    path: String,
    /// `files` (default) or `logs`.
    #[serde(default)]
    area: Area,
}

/// Reads a text file for editing: its text, encoding and `version`. Binary files come
/// back with `is_text: false` and no text (download them instead); files above
/// `files.max_text_bytes` are refused with 413.
#[utoipa::path(get, path = "/api/programs/{name}/files/text", tag = "files",
    params(("name" = String, Path, description = "program name"), ReadQuery),
    responses((status = 200, body = TextFile), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn read_text(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::FilesRead>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<TextFile>, ApiError> {
    let spec = spec_of(&app, &name)?;
    let path = files::parse("path", &q.path)?;
    let mut file = app.files.read_text(&spec, q.area, path.clone()).await?;
    if q.area == Area::Files
        && !may_define(&app, &caller, &name)
        && let (Some(file_name), Some(text)) = (path.name(), file.text.as_mut())
        && let Some(masked) = files::secrets::mask(file_name, text)
    {
        *text = masked;
    }
    Ok(Json(file))
}

/// A text file to save.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    /// File relative to the file root.
    pub path: String,
    /// The complete new content.
    pub text: String,
    /// Encoding to write (e.g. `utf-8`, `windows-1252`); default: the file's current one.
    pub encoding: Option<String>,
    /// The `version` you read. Omit it only to create a file that does not exist yet.
    pub base_version: Option<String>,
}

/// Saves a text file atomically, keeping its permissions. Refused with 409 `conflict`
/// when the file changed since the `base_version` was read. A caller without `define`
/// reads the game's passwords in its config files masked (`********`); saving such a
/// file back keeps the real values where the text still holds the mask (422 naming the
/// line when there is no stored value to keep).
#[utoipa::path(put, path = "/api/programs/{name}/files/text", tag = "files", request_body = SaveRequest,
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = Saved), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_text(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::FilesWrite>,
    Json(req): Json<SaveRequest>,
) -> Result<Json<Saved>, ApiError> {
    let spec = spec_of(&app, &name)?;
    let path = files::parse("path", &req.path)?;
    let mut text = req.text;
    if let Some(file_name) = path.name()
        && files::secrets::applies(file_name)
        && !may_define(&app, &caller, &name)
    {
        let current = match app.files.read_text(&spec, Area::Files, path.clone()).await {
            Ok(f) => f.text,
            Err(FilesError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        text = files::secrets::unmask(file_name, &text, current.as_deref())
            .map_err(|m| ApiError::validation(vec![FieldError::invalid_secret("text", &m)]))?;
    }
    let saved = app
        .files
        .save_text(
            &spec,
            SaveText {
                path,
                text,
                encoding: req.encoding,
                base_version: req.base_version,
            },
        )
        .await?;
    app.audit(
        &caller,
        "files.save",
        &target(&name, &saved.path),
        Some(format!("{} bytes", saved.size)),
    )
    .await;
    Ok(Json(saved))
}

/// A folder to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MkdirRequest {
    /// Folder relative to the file root.
    pub path: String,
    /// Also create missing parent folders (and accept an existing folder).
    #[serde(default)]
    pub parents: bool,
}

/// Creates a folder.
#[utoipa::path(post, path = "/api/programs/{name}/files/mkdir", tag = "files", request_body = MkdirRequest,
    params(("name" = String, Path, description = "program name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn mkdir(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::FilesWrite>,
    Json(req): Json<MkdirRequest>,
) -> Result<StatusCode, ApiError> {
    let spec = spec_of(&app, &name)?;
    let path = files::parse("path", &req.path)?;
    let shown = path.to_string();
    app.files.mkdir(&spec, path, req.parents).await?;
    app.audit(&caller, "files.mkdir", &target(&name, &shown), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A move or rename.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// Current path relative to the file root.
    pub from: String,
    /// New path relative to the file root; must not exist.
    pub to: String,
}

/// What was moved.
#[derive(Serialize, ToSchema)]
pub struct Moved {
    /// Old path.
    pub from: String,
    /// New path.
    pub to: String,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: Kind,
}

/// Moves or renames a file or folder within the file root (never replacing anything).
#[utoipa::path(post, path = "/api/programs/{name}/files/move", tag = "files", request_body = MoveRequest,
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = Moved), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn move_entry(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::FilesWrite>,
    Json(req): Json<MoveRequest>,
) -> Result<Json<Moved>, ApiError> {
    let spec = spec_of(&app, &name)?;
    let from = files::parse("from", &req.from)?;
    let to = files::parse("to", &req.to)?;
    let (from_s, to_s) = (from.to_string(), to.to_string());
    let kind = app.files.rename(&spec, from, to).await?;
    app.audit(
        &caller,
        "files.move",
        &target(&name, &from_s),
        Some(format!("to {to_s}")),
    )
    .await;
    Ok(Json(Moved {
        from: from_s,
        to: to_s,
        kind,
    }))
}

/// What to delete.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// File or folder relative to the file root.
    path: String,
    /// Delete a non-empty folder with everything in it.
    #[serde(default)]
    recursive: bool,
}

/// Deletes a file, a symlink (not what it points to) or a folder.
#[utoipa::path(delete, path = "/api/programs/{name}/files", tag = "files",
    params(("name" = String, Path, description = "program name"), DeleteQuery),
    responses((status = 200, body = Deleted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn delete(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::FilesWrite>,
    Query(q): Query<DeleteQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let spec = spec_of(&app, &name)?;
    let path = files::parse("path", &q.path)?;
    let deleted = app.files.delete(&spec, path, q.recursive).await?;
    app.audit(
        &caller,
        "files.delete",
        &target(&name, &deleted.path),
        Some(format!("{:?}, {} bytes", deleted.kind, deleted.size).to_lowercase()),
    )
    .await;
    Ok(Json(deleted))
}

/// An archive to unpack.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractRequest {
    /// The archive (`.zip`, `.tar.zst`, `.tar.gz`, `.tar`) relative to the file root.
    pub path: String,
    /// The new folder to unpack into, relative to the file root; must not exist.
    pub to: String,
}

/// Unpacks an archive into a new folder (streaming, in bounded memory). An entry that
/// would land outside the folder refuses the whole archive; links and devices are
/// skipped. A refused or failed archive leaves nothing behind.
#[utoipa::path(post, path = "/api/programs/{name}/files/extract", tag = "files", request_body = ExtractRequest,
    params(("name" = String, Path, description = "program name")),
    responses((status = 200, body = Extracted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn extract(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::FilesWrite>,
    Json(req): Json<ExtractRequest>,
) -> Result<Json<Extracted>, ApiError> {
    let spec = spec_of(&app, &name)?;
    let path = files::parse("path", &req.path)?;
    let to = files::parse("to", &req.to)?;
    let shown = path.to_string();
    let out = app.files.extract(&spec, path, to).await?;
    app.audit(
        &caller,
        "files.extract",
        &target(&name, &shown),
        Some(format!(
            "into {}: {} files, {} bytes, {} skipped",
            out.to, out.files, out.bytes, out.skipped
        )),
    )
    .await;
    Ok(Json(out))
}

/// What to download.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DownloadQuery {
    /// File or folder relative to the root (default: the whole root, as an archive).
    #[serde(default)]
    path: String,
    /// `files` (default) or `logs`.
    #[serde(default)]
    area: Area,
    /// Archive format for a folder: `zip` (default) or `tar.zst`.
    #[serde(default)]
    format: ArchiveFormat,
}

/// Downloads a file, or a folder as a zip or tar.zst stream. For a caller without
/// `define`, the game's passwords in its config files are masked, as in `files/text`.
#[utoipa::path(get, path = "/api/programs/{name}/files/download", tag = "files",
    params(("name" = String, Path, description = "program name"), DownloadQuery),
    responses((status = 200, description = "the file's bytes, or the folder as an archive"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn download(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::FilesRead>,
    Query(q): Query<DownloadQuery>,
) -> Result<Response, ApiError> {
    let spec = spec_of(&app, &name)?;
    let path = files::parse("path", &q.path)?;
    let mask = q.area == Area::Files && !may_define(&app, &caller, &name);
    let dl = app
        .files
        .download(&spec, q.area, path, q.format, mask)
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(dl.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&dl.file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(len) = dl.len {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok((headers, Body::from_stream(dl.body)).into_response())
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266/5987).
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Where to upload.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// Existing folder relative to the file root (default: the root).
    #[serde(default)]
    path: String,
    /// Replace existing files (keeping their permissions) instead of refusing.
    #[serde(default)]
    overwrite: bool,
}

/// The multipart form of an upload. It only describes the form in the OpenAPI document
/// (the handler reads the parts as a stream), hence never constructed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// One part per file; its filename may contain folders (`world/level.dat`), which
    /// are created.
    #[schema(value_type = Vec<String>, format = Binary)]
    files: Vec<Vec<u8>>,
}

/// What an upload stored.
#[derive(Serialize, ToSchema)]
pub struct UploadResult {
    /// Files stored, in the order sent.
    pub files: Vec<Uploaded>,
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the upload is larger than files.max_upload_bytes",
        )
    } else {
        ApiError::bad_request(format!("cannot read the upload: {}", e.body_text()))
    }
}

/// Uploads files (multipart/form-data, streamed to disk) into a folder. Each file is
/// written to a temporary file and renamed into place when complete. The body may be up
/// to `files.max_upload_bytes`; a client that sends nothing for the request timeout is
/// cut off.
#[utoipa::path(post, path = "/api/programs/{name}/files/upload", tag = "files",
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    params(("name" = String, Path, description = "program name"), UploadQuery),
    responses((status = 200, body = UploadResult), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn upload(
    State(app): State<AppState>,
    OnProgram { caller, name, .. }: OnProgram<perm::FilesWrite>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<UploadResult>, ApiError> {
    // axum's own rejection is plain text; answer it in the API's error shape.
    let mut form = form.map_err(|r| {
        ApiError::new(
            r.status(),
            "invalid_multipart",
            format!("send the files as multipart/form-data: {}", r.body_text()),
        )
    })?;
    let max = app.files.limits().max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the upload is larger than files.max_upload_bytes ({max} bytes)"),
        ));
    }
    let spec = spec_of(&app, &name)?;
    let dir = files::parse("path", &q.path)?;
    let idle: Duration = app.cfg.api.request_timeout;
    let idle_error = || {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the upload sent nothing for {} s", idle.as_secs()),
        )
    };
    let mut up = app.files.begin_upload(&spec, dir, q.overwrite).await?;
    let mut stored = Vec::new();
    loop {
        let field = tokio::time::timeout(idle, form.next_field())
            .await
            .map_err(|_| idle_error())?
            .map_err(multipart_error)?;
        let Some(mut field) = field else { break };
        let Some(file_name) = field.file_name().map(str::to_string) else {
            return Err(ApiError::validation(vec![FieldError::required("files")]));
        };
        let mut file = up.file(&file_name).await?;
        while let Some(chunk) = tokio::time::timeout(idle, field.chunk())
            .await
            .map_err(|_| idle_error())?
            .map_err(multipart_error)?
        {
            file.write(&chunk).await?;
        }
        let done = up.finish_file(file).await?;
        app.audit(
            &caller,
            "files.upload",
            &target(&name, &done.path),
            Some(format!(
                "{} bytes{}",
                done.size,
                if done.replaced { ", replaced" } else { "" }
            )),
        )
        .await;
        stored.push(done);
    }
    if stored.is_empty() {
        return Err(ApiError::validation(vec![FieldError::required("files")]));
    }
    Ok(Json(UploadResult { files: stored }))
}

/// Routes of this module that fit the common request limits.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, delete))
        .routes(routes!(read_text, save_text))
        .routes(routes!(mkdir))
        .routes(routes!(move_entry))
        .routes(routes!(extract))
        .routes(routes!(download))
}

/// The upload route, with its own body limit; the caller mounts it outside the request
/// timeout (see the module doc).
pub fn upload_routes(max_upload_bytes: u64) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(
            usize::try_from(max_upload_bytes).unwrap_or(usize::MAX),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_safe_and_exact() {
        assert_eq!(
            content_disposition("world.zip"),
            "attachment; filename=\"world.zip\"; filename*=UTF-8''world.zip"
        );
        let v = content_disposition("é \"x\".txt");
        assert!(v.starts_with("attachment; filename=\"_ _x_.txt\""), "{v}");
        assert!(v.ends_with("filename*=UTF-8''%C3%A9%20%22x%22.txt"), "{v}");
        assert!(HeaderValue::from_str(&v).is_ok());
    }
}
