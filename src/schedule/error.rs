//! Errors of scheduler operations, phrased for the person who asked.

use crate::program::FieldError;
use crate::store::StoreError;

/// Errors of scheduler operations, phrased for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    /// No such schedule, job or run.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (running, referenced, exists…).
    #[error("{0}")]
    Conflict(String),
    /// The definition is invalid.
    #[error("the definition is invalid")]
    Invalid(Vec<FieldError>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// warden is shutting down.
    #[error("warden is shutting down")]
    ShuttingDown,
    /// The scheduler could not start.
    #[error("cannot start the scheduler: {0}")]
    Start(String),
}

/// A store conflict (a name already taken) as the scheduler's conflict; anything else as
/// a store failure.
pub(super) fn conflict(e: StoreError) -> SchedError {
    match e {
        StoreError::Conflict(m) => SchedError::Conflict(m),
        other => SchedError::Store(other),
    }
}
