//! What several resource handlers share: the check that the name in the URL matches the
//! body's, the reference to a started or cancelled run (schedules and jobs), and the
//! mapping of the scheduler's errors (schedules and jobs).

use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::program::FieldError;
use crate::schedule::SchedError;

/// Checks that the name in the URL and in the body agree (422 on `name`, code
/// `name_mismatch`, otherwise): renaming is not supported.
pub fn same_name(url: &str, body: &str) -> Result<(), ApiError> {
    if url == body {
        return Ok(());
    }
    Err(ApiError::validation(vec![FieldError::name_mismatch(
        "name", url,
    )]))
}

/// A chain run that started or was cancelled.
#[derive(Serialize, ToSchema)]
pub struct RunRef {
    /// The run's id.
    pub run_id: i64,
}

impl From<SchedError> for ApiError {
    fn from(e: SchedError) -> ApiError {
        match e {
            SchedError::NotFound(m) => ApiError::not_found(m),
            SchedError::Conflict(m) => ApiError::conflict(m),
            SchedError::Invalid(details) => ApiError::validation(details),
            SchedError::Store(s) => s.into(),
            SchedError::ShuttingDown => ApiError::unavailable("warden is shutting down"),
            SchedError::Start(_) => ApiError::internal(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renaming_body_is_refused_with_the_name_in_the_url() {
        assert!(same_name("a", "a").is_ok());
        let e = same_name("a", "b").err();
        assert_eq!(
            e.as_ref().map(|e| (e.status().as_u16(), e.code())),
            Some((422, "validation_failed"))
        );
        let e = e.map(|e| format!("{e:?}"));
        assert!(
            e.as_ref().is_some_and(|e| e.contains("NameMismatch")
                && e.contains("must match the name in the URL ('a')")),
            "{e:?}"
        );
    }
}
