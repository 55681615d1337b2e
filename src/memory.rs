//! warden's own memory: gives back what a burst (a backup, a big download, an import,
//! many dashboards) allocated, so its private memory returns to its idle figure.
//!
//! Rust and zstd's C code alike allocate with the system allocator (glibc on Linux), which
//! keeps freed pages unless told otherwise. At start this fixes its mmap threshold and caps
//! it at 2 arenas (`os::tune_allocator`); then, whenever private memory grew since the last
//! check, it trims the heap. Chosen by measurement against jemalloc and mimalloc: see
//! `bench/README.md`. Once, at the first check after start-up, it lets go of the
//! executable's pages that only start-up used (`os::release_startup_code`). An idle
//! warden does nothing else here.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::os;
use crate::store::Store;

/// How often private memory is checked.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Growth since the last trim that makes the next check trim again.
const TRIM_AFTER_GROWTH: u64 = 1 << 20;

/// Checks private memory every few seconds and, after it grew, lets SQLite drop its idle
/// page caches and returns freed memory to the OS; ends with `shutdown`.
pub async fn trim_loop(store: Store, shutdown: CancellationToken) {
    // For `bench/memory.py` only: measures what the tuning and the trim are worth.
    if std::env::var_os("WARDEN_BENCH_NO_TRIM").is_some() {
        return;
    }
    os::tune_allocator();
    // The first check comes after start-up (boot, adoption, the first requests): the
    // code only start-up ran goes back, then its heap garbage at the first tick below.
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep(CHECK_EVERY) => {}
    }
    let advised = tokio::task::spawn_blocking(os::release_startup_code)
        .await
        .unwrap_or(0);
    tracing::debug!(bytes = advised, "start-up code pages released");
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut after_last_trim = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(now) = os::private_memory() else {
            // Unknown here (not Linux): trim on every check, it is cheap.
            os::release_free_memory();
            continue;
        };
        if now > after_last_trim.saturating_add(TRIM_AFTER_GROWTH) || now < after_last_trim {
            // release_memory and malloc_trim walk caches and the heap: off the async
            // workers.
            let store = store.clone();
            let trimmed = tokio::task::spawn_blocking(move || {
                store.release_memory();
                os::release_free_memory();
                os::private_memory()
            })
            .await;
            after_last_trim = trimmed.ok().flatten().unwrap_or(now);
        }
    }
}
