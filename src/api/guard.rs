//! Permission extractors: a handler's signature says what the caller needs, and the check
//! runs before the handler (and before its body is read), so a route cannot forget it.
//!
//! - [`Admin`]: the admin role (users, tokens, grants, alert channels, the daemon).
//! - [`Everywhere<P>`]: permission `P` on every program, for things of no single program
//!   (jobs, alert rules, the fleet).
//! - [`OnProgram<P>`]: permission `P` on the program named by the `{name}` path segment.
//! - [`OnBackup<P>`], [`OnRestore<P>`]: `P` on the program of the backup or restore `{id}`
//!   (looked up first: 404 when there is none).
//! - [`OnSchedule<P>`]: `P` on every program the schedule `{name}` acts on (looked up
//!   first; a schedule of no program needs `P` everywhere).
//!
//! Refusals are the 403s of [`Caller::require_admin`], [`Caller::require_everywhere`] and
//! [`App::allow`](super::App::allow), word for word; the audit middleware records them as
//! before (the caller's note is set, the handler never ran).

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::authn::Caller;
use super::error::{ApiError, Path};
use crate::access::Perm;

/// A permission as a type, for [`Everywhere`] and [`OnProgram`].
pub trait Need: Send + Sync {
    /// The permission.
    const PERM: Perm;
}

/// The permissions as types (`perm::FilesRead` stands for `Perm::FilesRead`).
pub mod perm {
    use super::{Need, Perm};

    macro_rules! needs {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("`Perm::", stringify!($name), "`.")]
            pub struct $name;
            impl Need for $name {
                const PERM: Perm = Perm::$name;
            }
        )*};
    }

    needs!(
        View,
        Console,
        Control,
        Players,
        FilesRead,
        FilesWrite,
        Backups,
        BackupsRestore,
        Schedules,
        Define,
    );
}

/// A caller with the admin role.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}

/// A caller holding permission `P` on every program.
pub struct Everywhere<P> {
    /// Who is calling.
    pub caller: Caller,
    _perm: PhantomData<P>,
}

impl<P: Need> FromRequestParts<AppState> for Everywhere<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        caller.require_everywhere(P::PERM)?;
        Ok(Everywhere {
            caller,
            _perm: PhantomData,
        })
    }
}

/// A caller holding permission `P` on the program named by the route's `{name}`.
pub struct OnProgram<P> {
    /// Who is calling.
    pub caller: Caller,
    /// The program (the `{name}` path segment, decoded).
    pub name: String,
    _perm: PhantomData<P>,
}

/// The decoded path segment `key` of the request's route.
async fn segment(parts: &mut Parts, app: &AppState, key: &str) -> Result<String, ApiError> {
    let Path(mut segments) =
        Path::<HashMap<String, String>>::from_request_parts(parts, app).await?;
    segments.remove(key).ok_or_else(|| {
        ApiError::internal(&format!(
            "route {} is guarded by its {{{key}}} segment but has none",
            parts.uri.path()
        ))
    })
}

/// The `{id}` path segment as a number (the 400 of `Path<i64>` otherwise).
async fn id_segment(parts: &mut Parts, app: &AppState) -> Result<i64, ApiError> {
    let Path(id) = Path::<i64>::from_request_parts(parts, app).await?;
    Ok(id)
}

impl<P: Need> FromRequestParts<AppState> for OnProgram<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        let name = segment(parts, app, "name").await?;
        app.allow(&caller, &name, P::PERM)?;
        Ok(OnProgram {
            caller,
            name,
            _perm: PhantomData,
        })
    }
}

macro_rules! by_id {
    ($(#[$doc:meta])* $name:ident, $lookup:ident) => {
        $(#[$doc])*
        pub struct $name<P> {
            /// Who is calling.
            pub caller: Caller,
            /// The `{id}` path segment.
            pub id: i64,
            _perm: PhantomData<P>,
        }

        impl<P: Need> FromRequestParts<AppState> for $name<P> {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                app: &AppState,
            ) -> Result<Self, ApiError> {
                let caller = Caller::from_request_parts(parts, app).await?;
                let id = id_segment(parts, app).await?;
                let program = app.backups.$lookup(id).await?.record.program;
                app.allow(&caller, &program, P::PERM)?;
                Ok($name {
                    caller,
                    id,
                    _perm: PhantomData,
                })
            }
        }
    };
}

by_id!(
    /// A caller holding permission `P` on the program of backup `{id}`.
    OnBackup,
    get
);
by_id!(
    /// A caller holding permission `P` on the program of restore `{id}`.
    OnRestore,
    get_restore
);

/// A caller holding permission `P` on every program schedule `{name}` acts on.
pub struct OnSchedule<P> {
    /// Who is calling.
    pub caller: Caller,
    /// The schedule (the `{name}` path segment, decoded).
    pub name: String,
    _perm: PhantomData<P>,
}

impl<P: Need> FromRequestParts<AppState> for OnSchedule<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        let name = segment(parts, app, "name").await?;
        super::schedules::allow_schedule(app, &caller, &name, P::PERM).await?;
        Ok(OnSchedule {
            caller,
            name,
            _perm: PhantomData,
        })
    }
}
