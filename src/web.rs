//! The web dashboard's assets: embedded in the binary at compile time (`web/`), served at
//! `/` (the page) and `/assets/<version>/…` (everything it loads).
//!
//! Cache busting: `<version>` is a hash of every embedded file, so a new build gets new
//! asset URLs. Assets are immutable for a year; the page itself is never cached, so a
//! browser always learns the current version. Relative ES-module imports resolve inside
//! the versioned prefix, so no file needs its imports rewritten. Compression: `build.rs`
//! gzips every compressible asset once, at build time, and fills in the page's asset
//! prefix; both copies are static bytes of the binary, sent as they are (gzipped to
//! clients that accept gzip), so serving the dashboard costs no heap and no start-up work.
//!
//! Architecture invariant: this module serves bytes only. It knows nothing about
//! programs, users or the API; the page talks to the API like any other client.

use std::sync::LazyLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use sha2::{Digest, Sha256};

mod generated {
    //! The table `build.rs` writes: every file under `web/`, embedded even in debug
    //! builds, so tests run exactly what ships.
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// Immutable, cacheable for a year: the URL changes whenever the content does.
const CACHE_ASSET: &str = "public, max-age=31536000, immutable";

/// One servable file.
struct Asset {
    /// The file as stored.
    raw: &'static [u8],
    /// Gzipped copy, when the type compresses and it came out smaller.
    gzip: Option<&'static [u8]>,
    /// `Content-Type`.
    mime: &'static str,
}

/// An embedded file by its path relative to `web/`.
fn file(path: &str) -> Option<Asset> {
    let i = generated::FILES
        .binary_search_by(|(name, _, _)| (*name).cmp(path))
        .ok()?;
    let (name, raw, gzip) = generated::FILES[i];
    Some(Asset {
        raw,
        gzip,
        mime: mime_of(name),
    })
}

/// The page with its asset prefix filled in.
fn page() -> Asset {
    Asset {
        raw: generated::INDEX.0,
        gzip: generated::INDEX.1,
        mime: "text/html; charset=utf-8",
    }
}

/// The Content-Security-Policy header for the page (computed once).
static CSP: LazyLock<HeaderValue> =
    LazyLock::new(|| content_security_policy(&String::from_utf8_lossy(generated::INDEX.0)));

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
    let (body, gzipped) = match a.gzip {
        Some(gz) if accepts_gzip(headers) => (gz, true),
        _ => (a.raw, false),
    };
    let mut resp = Response::new(Body::from(Bytes::from_static(body)));
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
    let mut resp = respond(&page(), &headers, "no-cache");
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

async fn asset_file(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    // An old page asking for an old version gets 404 rather than today's file under a
    // URL that promises yesterday's content forever.
    match file(&path).filter(|_| version == generated::VERSION) {
        Some(a) if path != "index.html" => respond(&a, &headers, CACHE_ASSET),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// The version hash in asset URLs (for tests and the about page).
pub fn version() -> &'static str {
    generated::VERSION
}

/// Routes serving the dashboard.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{version}/{*path}", get(asset_file))
}

/// The catalogue keys (e.g. `error.not_found`) that `web/lib/i18n.js` lacks in English
/// or in Korean, each named with the language it lacks: for the unit tests that keep the
/// server's codes and the dashboard's sentences in step.
#[cfg(test)]
pub(crate) fn untranslated(keys: impl IntoIterator<Item = String>) -> Vec<String> {
    let js = include_str!("../web/lib/i18n.js");
    let ko_at = js.find("\n  ko: {").unwrap_or(js.len());
    let (en, ko) = js.split_at(ko_at);
    let mut missing = Vec::new();
    if ko.is_empty() {
        missing.push("web/lib/i18n.js has no ko table".to_string());
    }
    for key in keys {
        let quoted = format!("'{key}':");
        if !en.contains(&quoted) {
            missing.push(format!("{key} has no English text in web/lib/i18n.js"));
        }
        if !ko.contains(&quoted) {
            missing.push(format!("{key} has no Korean text in web/lib/i18n.js"));
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_current_version_and_every_asset_exists() {
        let page = String::from_utf8_lossy(page().raw).into_owned();
        assert!(!page.contains("%ASSETS%"));
        assert!(page.contains(&format!("/assets/{}/app.js", version())));
        assert!(
            generated::FILES.windows(2).all(|w| w[0].0 < w[1].0),
            "the table is sorted for binary search"
        );
        for name in [
            "app.js",
            "style.css",
            "vendor/preact.mjs",
            "vendor/uPlot.esm.js",
        ] {
            assert!(file(name).is_some(), "{name} not embedded");
        }
    }

    #[test]
    fn scripts_are_gzipped_and_the_import_map_is_allowed_by_hash() {
        let app = file("vendor/preact.mjs").expect("preact");
        let gz = app.gzip.expect("gzipped");
        assert!(gz.len() < app.raw.len() / 2);
        // Compressed at build time: it decodes to the file.
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut decoded)
            .expect("gunzip");
        assert_eq!(decoded, app.raw);
        assert!(page().gzip.is_some(), "the page is gzipped too");
        let csp = CSP.to_str().expect("ascii");
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
