//! Paging of the newest-first logs (events, schedule and job runs, deliveries, audit): one
//! query extractor that validates `before` and `limit` once, and the page bodies.
//!
//! A page is asked for with `?before=ID&limit=N` (plus the endpoint's own filters) and
//! answered with the items, newest first, and `next_before`: the id to pass as `before` for
//! the next (older) page, absent on the last one.

use std::collections::HashSet;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

use super::error::ApiError;

/// Largest page any endpoint serves.
pub const MAX_LIMIT: u32 = 500;

/// An endpoint's own query filters beside `before` and `limit`. Its fields are documented
/// through `IntoParams`, which also names the parameters the extractor accepts (an
/// unknown one is refused). It must not refuse unknown fields itself: `before` and
/// `limit` reach it too.
pub trait Filter: DeserializeOwned + IntoParams {
    /// Page size when the query names none.
    const DEFAULT_LIMIT: u32 = 50;
}

/// No filters: paging only.
#[derive(Deserialize)]
pub struct NoFilter {}

impl IntoParams for NoFilter {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        Vec::new()
    }
}

impl Filter for NoFilter {}

/// A validated page request: `limit` is within 1..=[`MAX_LIMIT`]. Rejections are 400
/// `invalid_query` in the one error shape.
pub struct Page<F = NoFilter> {
    /// Only items with an id below this (the `next_before` of the previous page).
    pub before: Option<i64>,
    /// Page size.
    pub limit: u32,
    /// The endpoint's own filters.
    pub filter: F,
}

impl<F> Page<F> {
    /// The `next_before` cursor after `items`: the last id when the page is full (there
    /// may be more), none when it is not.
    pub fn next_before<T>(&self, items: &[T], id: impl Fn(&T) -> i64) -> Option<i64> {
        if items.len() == self.limit as usize {
            items.last().map(id)
        } else {
            None
        }
    }
}

/// The paging fields of a query (other fields are the filter's).
#[derive(Deserialize, IntoParams)]
struct PageParams {
    /// Only items with an id below this (the `next_before` of the previous page).
    before: Option<i64>,
    /// Page size, 1-500.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

fn invalid_query(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message)
}

impl<F: Filter, S: Send + Sync> FromRequestParts<S> for Page<F> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let uri = &parts.uri;
        let names = <Page<F> as IntoParams>::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .map(|p| p.name)
            .collect::<Vec<_>>();
        let known: HashSet<&str> = names.iter().map(String::as_str).collect();
        let axum::extract::Query(pairs) =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)?;
        if let Some((unknown, _)) = pairs.iter().find(|(k, _)| !known.contains(k.as_str())) {
            return Err(invalid_query(format!(
                "invalid query parameters: unknown parameter '{unknown}'; this endpoint takes {}",
                names.join(", ")
            )));
        }
        let axum::extract::Query(paging) = axum::extract::Query::<PageParams>::try_from_uri(uri)?;
        let axum::extract::Query(filter) = axum::extract::Query::<F>::try_from_uri(uri)?;
        let limit = paging.limit.unwrap_or(F::DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid_query(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        Ok(Page {
            before: paging.before,
            limit,
            filter,
        })
    }
}

/// Always query parameters: utoipa's path macro infers where parameters are from a
/// `Query<T>` argument, which a handler taking a [`Page`] does not have.
impl<F: Filter> IntoParams for Page<F> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let query = || Some(ParameterIn::Query);
        let mut params = PageParams::into_params(query);
        for p in &mut params {
            if p.name == "limit" {
                p.description = Some(format!(
                    "Page size, 1-{MAX_LIMIT} (default {}).",
                    F::DEFAULT_LIMIT
                ));
            }
        }
        params.extend(F::into_params(query));
        params
    }
}

/// Declares a page body: the items under their own field name (`events`, `runs`, …) and
/// `next_before`, with `new` building it from a [`Page`] request.
macro_rules! page_body {
    ($doc:tt $name:ident, $field:ident: $item:ty, $field_doc:tt) => {
        #[doc = $doc]
        #[derive(serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            #[doc = $field_doc]
            pub $field: Vec<$item>,
            /// Pass as `before` for the next (older) page; absent on the last page.
            pub next_before: Option<i64>,
        }

        impl $name {
            /// The page of `items` read for `page`, each known by `id`.
            pub fn new<F>(
                page: &$crate::api::paging::Page<F>,
                $field: Vec<$item>,
                id: impl Fn(&$item) -> i64,
            ) -> $name {
                let next_before = page.next_before(&$field, id);
                $name {
                    $field,
                    next_before,
                }
            }
        }
    };
}
pub(crate) use page_body;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[derive(Deserialize, IntoParams)]
    struct ByProgram {
        /// A program.
        program: Option<String>,
    }

    impl Filter for ByProgram {
        const DEFAULT_LIMIT: u32 = 100;
    }

    async fn page<F: Filter>(query: &str) -> Result<Page<F>, ApiError> {
        let (mut parts, _) = Request::get(format!("/x?{query}"))
            .body(())
            .map_err(|e| ApiError::bad_request(e.to_string()))?
            .into_parts();
        Page::<F>::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn validates_once_with_precise_messages() {
        let p = page::<NoFilter>("").await.ok();
        assert_eq!(p.map(|p| (p.before, p.limit)), Some((None, 50)));
        let p = page::<ByProgram>("before=7&program=a").await.ok();
        assert_eq!(
            p.map(|p| (p.before, p.limit, p.filter.program)),
            Some((Some(7), 100, Some("a".to_string())))
        );
        for (q, words) in [
            ("limit=0", "limit must be between 1 and 500"),
            ("limit=501", "limit must be between 1 and 500"),
            ("before=x", "before"),
            (
                "program=a",
                "unknown parameter 'program'; this endpoint takes before, limit",
            ),
        ] {
            let e = page::<NoFilter>(q)
                .await
                .err()
                .map(|e| (e.status(), e.code()));
            assert_eq!(e, Some((StatusCode::BAD_REQUEST, "invalid_query")), "{q}");
            let resp = axum::response::IntoResponse::into_response(
                page::<NoFilter>(q)
                    .await
                    .err()
                    .unwrap_or_else(|| ApiError::bad_request("")),
            );
            let body = axum::body::to_bytes(resp.into_body(), 4096)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            assert!(text.contains(words), "{q}: {text}");
        }
    }

    #[test]
    fn documents_the_filter_and_its_default() {
        let params = <Page<ByProgram>>::into_params(|| None);
        let names: Vec<_> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["before", "limit", "program"]);
        for p in &params {
            let p = serde_json::to_value(p).unwrap_or_default();
            assert_eq!(
                (&p["in"], &p["required"]),
                (&"query".into(), &false.into()),
                "{p}"
            );
        }
        assert_eq!(
            params[1].description.as_deref(),
            Some("Page size, 1-500 (default 100).")
        );
    }
}
