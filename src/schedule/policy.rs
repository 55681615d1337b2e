//! The small decisions of the scheduler as pure functions: retry delays, duration
//! prediction, overrun thresholds, what an overlapping trigger does, and the default
//! step concurrency. Each is unit-tested without processes or clocks.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::spec::{BackoffKind, OverlapPolicy, RetrySpec};

/// The delay before retry number `n` (1 for the first retry).
pub fn backoff_delay(r: &RetrySpec, n: u32) -> Duration {
    let n = u64::from(n.max(1));
    let ms = match r.backoff {
        BackoffKind::Fixed => r.delay_ms,
        BackoffKind::Linear => r.delay_ms.saturating_mul(n),
        BackoffKind::Exponential => {
            return crate::backoff::exponential(
                Duration::from_millis(r.delay_ms),
                Duration::from_millis(r.max_delay_ms),
                u32::try_from(n).unwrap_or(u32::MAX),
            );
        }
    };
    Duration::from_millis(ms.min(r.max_delay_ms))
}

/// Runs needed before a prediction is made.
pub const MIN_SAMPLES: usize = 3;

/// Predicted duration of the next run, from the durations of recent successful runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Prediction {
    /// How many runs the prediction is based on.
    pub samples: usize,
    /// Median duration.
    pub p50_ms: i64,
    /// 90th percentile duration: the run is "overrunning" past it.
    pub p90_ms: i64,
}

/// p50 and p90 (nearest rank) of `durations_ms`; `None` below [`MIN_SAMPLES`].
pub fn predict(durations_ms: &[i64]) -> Option<Prediction> {
    if durations_ms.len() < MIN_SAMPLES {
        return None;
    }
    let mut d = durations_ms.to_vec();
    d.sort_unstable();
    let rank = |p: f64| {
        let k = (p * d.len() as f64).ceil() as usize;
        d[k.clamp(1, d.len()) - 1]
    };
    Some(Prediction {
        samples: d.len(),
        p50_ms: rank(0.5),
        p90_ms: rank(0.9),
    })
}

/// When, after a run's start, the overrun warning (80 % of p90) and the overrun (100 %)
/// are due.
pub fn overrun_marks(p: &Prediction) -> (Duration, Duration) {
    let p90 = Duration::from_millis(u64::try_from(p.p90_ms.max(1)).unwrap_or(1));
    (p90.mul_f64(0.8), p90)
}

/// What a trigger does to a job, given what is going on with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start a run now.
    Start,
    /// Drop this trigger; the reason says why.
    Skip(&'static str),
    /// Remember it; it starts when the current run ends.
    Queue,
    /// Cancel the current run; this trigger starts when it has ended.
    Replace,
}

/// The overlap policy applied: `busy` when a run is in progress (including one left
/// over from before a restart of warden), `waiting` when a trigger already waits.
pub fn decide(policy: OverlapPolicy, busy: bool, waiting: bool) -> Decision {
    if !busy {
        return Decision::Start;
    }
    match policy {
        OverlapPolicy::Skip => Decision::Skip("a run is still in progress (overlap policy 'skip')"),
        OverlapPolicy::Queue if waiting => Decision::Skip(
            "a run is in progress and another already waits (overlap policy 'queue' keeps at most one)",
        ),
        OverlapPolicy::Queue => Decision::Queue,
        OverlapPolicy::Replace if waiting => {
            Decision::Skip("a run is being replaced and its replacement already waits")
        }
        OverlapPolicy::Replace => Decision::Replace,
    }
}

/// Memory assumed per concurrently running step when deriving the default limit.
const MEMORY_PER_STEP: u64 = 512 * 1024 * 1024;

/// Default step concurrency: one per core, fewer when free memory would not give each
/// step about 512 MiB; at least 1.
pub fn default_concurrency(cores: usize, available_memory: Option<u64>) -> usize {
    let by_mem = available_memory
        .map(|m| usize::try_from(m / MEMORY_PER_STEP).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    cores.min(by_mem).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(kind: BackoffKind) -> RetrySpec {
        RetrySpec {
            max_retries: 10,
            backoff: kind,
            delay_ms: 100,
            max_delay_ms: 1000,
            ..RetrySpec::default()
        }
    }

    #[test]
    fn backoff_kinds_grow_as_named_and_stop_at_the_cap() {
        let ms = |k, n| backoff_delay(&retry(k), n).as_millis();
        assert_eq!(
            [1, 2, 3].map(|n| ms(BackoffKind::Fixed, n)),
            [100, 100, 100]
        );
        assert_eq!(
            [1, 2, 3].map(|n| ms(BackoffKind::Linear, n)),
            [100, 200, 300]
        );
        assert_eq!(
            [1, 2, 3, 4, 5].map(|n| ms(BackoffKind::Exponential, n)),
            [100, 200, 400, 800, 1000]
        );
        assert_eq!(ms(BackoffKind::Exponential, 200), 1000);
        assert_eq!(ms(BackoffKind::Linear, u32::MAX), 1000);
    }

    #[test]
    fn prediction_needs_a_few_runs_and_uses_nearest_rank() {
        assert_eq!(predict(&[1, 2]), None);
        let p = predict(&[100, 300, 200]).expect("3 samples");
        assert_eq!((p.p50_ms, p.p90_ms), (200, 300));
        let ten: Vec<i64> = (1..=10).map(|i| i * 10).collect();
        let p = predict(&ten).expect("10 samples");
        assert_eq!((p.samples, p.p50_ms, p.p90_ms), (10, 50, 90));
        let (warn, over) = overrun_marks(&p);
        assert_eq!((warn.as_millis(), over.as_millis()), (72, 90));
    }

    #[test]
    fn overlap_policies() {
        use Decision::*;
        use OverlapPolicy as P;
        assert_eq!(decide(P::Skip, false, false), Start);
        assert_eq!(decide(P::Queue, false, false), Start);
        assert!(matches!(decide(P::Skip, true, false), Skip(_)));
        assert_eq!(decide(P::Queue, true, false), Queue);
        assert!(matches!(decide(P::Queue, true, true), Skip(_)));
        assert_eq!(decide(P::Replace, true, false), Replace);
        assert!(matches!(decide(P::Replace, true, true), Skip(_)));
    }

    #[test]
    fn concurrency_from_cores_and_memory() {
        assert_eq!(default_concurrency(8, None), 8);
        assert_eq!(default_concurrency(8, Some(2 * 1024 * 1024 * 1024)), 4);
        assert_eq!(default_concurrency(8, Some(10)), 1);
        assert_eq!(default_concurrency(0, None), 1);
    }
}
