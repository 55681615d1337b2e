//! The web dashboard's assets: embedded in the binary at compile time (`web/`), served at
//! `/` (the page) and `/assets/<version>/…` (everything it loads).
//!
//! Cache busting: `<version>` is a hash of every embedded file, so a new build gets new
//! asset URLs. Assets are immutable for a year; the page itself is never cached, so a
//! browser always learns the current version. Relative ES-module imports resolve inside
//! the versioned prefix, so no file needs its imports rewritten. Compression: every
//! compressible asset is gzipped once, when the bundle is first built, and sent to
//! clients that accept gzip.
//!
//! Architecture invariant: this module serves bytes only. It knows nothing about
//! programs, users or the API; the page talks to the API like any other client.

use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Everything under `web/`, embedded even in debug builds (`debug-embed`), so tests run
/// exactly what ships.
#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Files;

/// Placeholder in `index.html` replaced by the versioned asset prefix.
const PREFIX_MARK: &str = "%ASSETS%";
/// Immutable, cacheable for a year: the URL changes whenever the content does.
const CACHE_ASSET: &str = "public, max-age=31536000, immutable";
/// Files smaller than this are not worth a gzip header and a decompression step.
const GZIP_MIN_BYTES: usize = 512;

/// One servable file.
struct Asset {
    /// The file as stored (cheap to clone into a response).
    raw: Bytes,
    /// Gzipped copy, when the type compresses and it came out smaller.
    gzip: Option<Bytes>,
    /// `Content-Type`.
    mime: &'static str,
}

/// All assets, the rendered page and the version they share.
struct Bundle {
    /// Hash of every embedded file; part of every asset URL.
    version: String,
    /// Assets by path relative to `web/`.
    files: HashMap<String, Asset>,
    /// `index.html` with the asset prefix filled in.
    index: Asset,
    /// The Content-Security-Policy header for the page.
    csp: HeaderValue,
}

static BUNDLE: LazyLock<Bundle> = LazyLock::new(build_bundle);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mime_of(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("md" | "txt" | "LICENSE") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

fn asset(raw: Vec<u8>, mime: &'static str) -> Asset {
    let compressible = !matches!(mime, "image/png" | "application/octet-stream");
    let gzip = if compressible && raw.len() >= GZIP_MIN_BYTES {
        gzip(&raw)
            .filter(|gz| gz.len() < raw.len())
            .map(Bytes::from)
    } else {
        None
    };
    Asset {
        raw: Bytes::from(raw),
        gzip,
        mime,
    }
}

/// The inline import map is the page's only inline script; the policy allows exactly it
/// by hash, so nothing injected into the page could run.
fn content_security_policy(index: &str) -> HeaderValue {
    let script_hash = index
        .split_once("<script type=\"importmap\">")
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map(|(map, _)| {
            let digest = Sha256::digest(map.as_bytes());
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .unwrap_or_default();
    let policy = format!(
        "default-src 'self'; script-src 'self'{script_hash}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'"))
}

fn build_bundle() -> Bundle {
    let mut names: Vec<String> = Files::iter().map(|p| p.into_owned()).collect();
    names.sort();
    let mut hasher = Sha256::new();
    let mut files = HashMap::new();
    for name in &names {
        let Some(file) = Files::get(name) else {
            continue;
        };
        hasher.update(name.as_bytes());
        hasher.update(file.metadata.sha256_hash());
        files.insert(name.clone(), asset(file.data.into_owned(), mime_of(name)));
    }
    let version = hex(&hasher.finalize()[..6]);
    let template = files
        .get("index.html")
        .map(|a| String::from_utf8_lossy(&a.raw).into_owned())
        .unwrap_or_default();
    let page = template.replace(PREFIX_MARK, &format!("/assets/{version}"));
    let csp = content_security_policy(&page);
    Bundle {
        version,
        files,
        index: asset(page.into_bytes(), "text/html; charset=utf-8"),
        csp,
    }
}

/// True when the client accepts gzip (and did not refuse it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn respond(a: &Asset, headers: &HeaderMap, cache: &'static str) -> Response {
    let (body, gzipped) = match &a.gzip {
        Some(gz) if accepts_gzip(headers) => (gz.clone(), true),
        _ => (a.raw.clone(), false),
    };
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

async fn index(headers: HeaderMap) -> Response {
    let b = &*BUNDLE;
    let mut resp = respond(&b.index, &headers, "no-cache");
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, b.csp.clone());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

async fn asset_file(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let b = &*BUNDLE;
    // An old page asking for an old version gets 404 rather than today's file under a
    // URL that promises yesterday's content forever.
    match b.files.get(&path).filter(|_| version == b.version) {
        Some(a) if path != "index.html" => respond(a, &headers, CACHE_ASSET),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// The version hash in asset URLs (for tests and the about page).
pub fn version() -> &'static str {
    &BUNDLE.version
}

/// Routes serving the dashboard. Builds (hashes, gzips) the bundle now, so the first
/// visitor does not wait for it.
pub fn router() -> Router {
    LazyLock::force(&BUNDLE);
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{version}/{*path}", get(asset_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_current_version_and_every_asset_exists() {
        let b = &*BUNDLE;
        let page = String::from_utf8_lossy(&b.index.raw);
        assert!(!page.contains(PREFIX_MARK));
        assert!(page.contains(&format!("/assets/{}/app.js", b.version)));
        for name in [
            "app.js",
            "style.css",
            "vendor/preact.mjs",
            "vendor/uPlot.esm.js",
        ] {
            assert!(b.files.contains_key(name), "{name} not embedded");
        }
    }

    #[test]
    fn scripts_are_gzipped_and_the_import_map_is_allowed_by_hash() {
        let b = &*BUNDLE;
        let app = b.files.get("vendor/preact.mjs").expect("preact");
        let gz = app.gzip.as_ref().expect("gzipped");
        assert!(gz.len() < app.raw.len() / 2);
        let csp = b.csp.to_str().expect("ascii");
        assert!(csp.contains("'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }

    #[test]
    fn accept_encoding_is_parsed() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        assert!(!accepts_gzip(&h));
    }
}
