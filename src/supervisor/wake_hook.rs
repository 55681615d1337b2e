//! The seam through which a service guards a sleeping program's ports (the `games`
//! service: answers status pings, wakes the program on a login or a query).
//!
//! Architecture invariant: the actor owns the guard task. It starts it when the program
//! enters `sleeping`, and ends it (dropping its listeners, awaited) before any spawn, so
//! the game can always bind its port again. The guard's result comes back into the
//! actor's `select!`: `Ok(who)` wakes the program.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::program::ProgramSpec;

/// Supplies the port guard of sleeping programs.
pub trait SleepGuard: Send + Sync {
    /// A future that listens on the program's game ports until someone should wake it
    /// (`Ok(who, in words)`) or the ports cannot be guarded (`Err(why)`); `None` when the
    /// program has nothing to guard. Dropping the future releases the ports.
    fn guard(&self, spec: Arc<ProgramSpec>) -> Option<BoxFuture<'static, Result<String, String>>>;
}
