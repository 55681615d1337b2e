//! The seam through which a service guards a sleeping program's ports (the `games`
//! service: answers status pings, wakes the program on a login or a query).
//!
//! Architecture invariant: the actor owns the guard task. It starts it when the program
//! enters `sleeping`, and ends it (dropping its listeners, awaited) before any spawn, so
//! the game can always bind its port again. The guard's result comes back into the
//! actor's `select!`: `Ok(who)` wakes the program.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use tokio::sync::watch;

use crate::program::ProgramSpec;

/// How many holds keep a sleeping program from waking (a backup or restore of its files
/// is running): while any is held, a player who connects is told the server is starting
/// and the wake happens when the last hold ends.
#[derive(Clone)]
pub struct WakeHolds(Arc<watch::Sender<u32>>);

impl Default for WakeHolds {
    fn default() -> Self {
        WakeHolds(Arc::new(watch::channel(0).0))
    }
}

impl WakeHolds {
    /// Holds wakes off until the returned guard is dropped.
    pub fn hold(&self) -> WakeHold {
        self.0.send_modify(|n| *n += 1);
        WakeHold(self.0.clone())
    }

    /// Follows the number of holds.
    pub fn watch(&self) -> watch::Receiver<u32> {
        self.0.subscribe()
    }
}

/// One hold of [`WakeHolds`]; released when dropped.
pub struct WakeHold(Arc<watch::Sender<u32>>);

impl Drop for WakeHold {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Supplies the port guard of sleeping programs.
pub trait SleepGuard: Send + Sync {
    /// A future that listens on the program's game ports until someone should wake it
    /// (`Ok(who, in words)`) or the ports cannot be guarded (`Err(why)`); `None` when the
    /// program has nothing to guard. Dropping the future releases the ports. While `held`
    /// is above zero a wake is deferred (the player is answered, the ports stay guarded)
    /// until it drops to zero.
    fn guard(
        &self,
        spec: Arc<ProgramSpec>,
        held: watch::Receiver<u32>,
    ) -> Option<BoxFuture<'static, Result<String, String>>>;
}
