//! The program lifecycle as a pure state machine: `(state, input) -> (transitions, actions)`.
//!
//! Nothing here spawns, signals or sleeps; the actor performs the returned [`Action`]s.
//! Time and randomness come in as arguments, so every rule (backoff, start limit, "a
//! requested stop is never a crash") is tested table-driven without processes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::program::{ExitInfo, RestartPolicy, RestartSpec, State};

/// Something that happened to the program.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Someone asked to start it.
    Start,
    /// Someone asked to stop it gracefully.
    Stop,
    /// Someone asked to restart it.
    Restart,
    /// Someone asked to kill it now.
    Kill,
    /// The process was spawned.
    Spawned,
    /// The process could not be spawned.
    SpawnFailed(String),
    /// The process exited after running for `ran`.
    Exited {
        /// How it ended.
        exit: ExitInfo,
        /// How long it ran.
        ran: Duration,
    },
    /// The one timer fired.
    Timer,
    /// The program's readiness check passed (why, in words).
    Ready(String),
    /// The program failed its liveness checks (why, in words): stop it, then treat the
    /// stop as a failure (back off, restart, or give up at the start limit).
    Unhealthy(String),
    /// The programs it waits for (`after`/`requires`) are ready (which, in words).
    DepsReady(String),
    /// Waiting for them was given up (why, in words).
    DepsFailed(String),
    /// Nobody played for a while (why, in words): stop gracefully into `sleeping`.
    Sleep(String),
    /// Someone connected while it slept (who, in words): start it.
    Wake(String),
}

/// The single timer a program can have armed: which purpose it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// `start_seconds` after spawning: the program counts as started (with a readiness
    /// gate: it stopped waiting for readiness).
    StartPeriod,
    /// The backoff delay before the next restart.
    Backoff,
    /// `stop.timeout_seconds` after the graceful step: kill the group.
    StopTimeout,
}

/// Work for the actor.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Spawn the process (answer with `Spawned` or `SpawnFailed`).
    Spawn,
    /// Perform the graceful stop step (signal or stdin line).
    GracefulStop,
    /// Kill the whole process group.
    KillGroup,
    /// Arm the timer (replacing any armed one).
    Arm(TimerKind, Duration),
    /// Disarm the timer.
    Disarm,
    /// Wait for the programs in `after`/`requires` (answer with `DepsReady`/`DepsFailed`).
    WaitDeps,
    /// Stop waiting for them.
    CancelDeps,
}

/// One state change, with the reason to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Why, in words.
    pub reason: String,
    /// The exit that caused it, if any.
    pub exit: Option<ExitInfo>,
}

/// What one input produced.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// State changes, in order.
    pub transitions: Vec<Transition>,
    /// Work to perform, in order.
    pub actions: Vec<Action>,
}

/// Lifecycle state and the counters the rules need.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    state: State,
    timer: Option<TimerKind>,
    restart: RestartSpec,
    start_seconds: u64,
    stop_timeout: Duration,
    /// Times of recent failures, for the start limit.
    failures: VecDeque<Instant>,
    /// Consecutive failures, for the backoff exponent; reset by a healthy run.
    consecutive: u32,
    /// Automatic restarts since the last requested start.
    restarts: u32,
    /// A restart was requested while stopping: start again once stopped.
    start_after_stop: bool,
    /// The current stop is because the program was unhealthy: its exit is a failure.
    unhealthy_stop: Option<String>,
    /// Stay `starting` until `Input::Ready` (or the start period ends).
    ready_gate: bool,
    /// Times of recent clean exits under `always`, for the clean-exit guard. Kept apart
    /// from `failures`: a clean exit is no failure and never leads to `fatal`.
    clean_exits: VecDeque<Instant>,
    /// Requested starts wait (`waiting`) for the programs in `after`/`requires` first.
    deps_gate: bool,
    /// The current stop puts the program to sleep: its end is `sleeping`, not `stopped`.
    sleep_after_stop: bool,
}

/// Clean exits within `window_seconds` that restart at once under `always`; from the
/// next one on, the clean-exit guard waits (growing like the backoff, capped by
/// `backoff_max_ms`) so a program that exits as soon as it starts does not spin.
pub const CLEAN_EXITS_BEFORE_GUARD: usize = 5;

impl Lifecycle {
    /// A stopped program with the given settings.
    pub fn new(restart: RestartSpec, start_seconds: u64, stop_timeout: Duration) -> Lifecycle {
        Lifecycle {
            state: State::Stopped,
            timer: None,
            restart,
            start_seconds,
            stop_timeout,
            failures: VecDeque::new(),
            consecutive: 0,
            restarts: 0,
            start_after_stop: false,
            unhealthy_stop: None,
            ready_gate: false,
            clean_exits: VecDeque::new(),
            deps_gate: false,
            sleep_after_stop: false,
        }
    }

    /// A program found running at boot (adopted after an unclean exit of warden).
    pub fn adopted(restart: RestartSpec, start_seconds: u64, stop_timeout: Duration) -> Lifecycle {
        Lifecycle {
            state: State::Running,
            ..Lifecycle::new(restart, start_seconds, stop_timeout)
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Automatic restarts since the last requested start.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Applies new settings; they govern the next decisions.
    pub fn reconfigure(
        &mut self,
        restart: RestartSpec,
        start_seconds: u64,
        stop_timeout: Duration,
    ) {
        self.restart = restart;
        self.start_seconds = start_seconds;
        self.stop_timeout = stop_timeout;
    }

    /// Makes the next starts wait for `Input::Ready` (a readiness check is configured).
    pub fn set_ready_gate(&mut self, on: bool) {
        self.ready_gate = on;
    }

    /// Makes requested starts wait for the programs in `after`/`requires`.
    pub fn set_deps_gate(&mut self, on: bool) {
        self.deps_gate = on;
    }

    /// Feeds one input. `jitter` in `[0, 1)` randomises the backoff delay.
    pub fn on(&mut self, input: Input, now: Instant, jitter: f64) -> Outcome {
        let mut out = Outcome::default();
        use State::*;
        match (self.state, input) {
            (Stopped | Crashed | Fatal | Sleeping, Input::Start | Input::Restart) => {
                self.reset_counters();
                self.begin_start(&mut out, "start requested");
            }
            (Sleeping, Input::Wake(who)) => {
                self.reset_counters();
                self.begin_start(&mut out, &format!("waking up: {who}"));
            }
            (Backoff, Input::Start | Input::Restart) => {
                self.reset_counters();
                self.disarm(&mut out);
                self.begin_start(&mut out, "start requested");
            }
            (Waiting, Input::DepsReady(why)) => {
                self.go(
                    &mut out,
                    Starting,
                    &format!("dependencies ready: {why}"),
                    None,
                );
                out.actions.push(Action::Spawn);
            }
            (Waiting, Input::DepsFailed(why)) => {
                self.go(&mut out, Stopped, &format!("not started: {why}"), None);
            }
            (Waiting, Input::Stop | Input::Kill) => {
                out.actions.push(Action::CancelDeps);
                self.go(&mut out, Stopped, "stop requested while waiting", None);
            }
            (Sleeping, Input::Stop | Input::Kill) => {
                self.go(&mut out, Stopped, "stop requested while asleep", None);
            }
            (Running, Input::Sleep(why)) => {
                self.begin_stop(&mut out, &format!("going to sleep: {why}"));
                self.sleep_after_stop = true;
            }
            // A request during an unhealthy stop takes over: the exit is then no failure.
            (Stopping, Input::Start | Input::Restart) => {
                self.start_after_stop = true;
                self.unhealthy_stop = None;
                self.sleep_after_stop = false;
            }
            (Starting | Running, Input::Restart) => {
                self.begin_stop(&mut out, "restart requested");
                self.start_after_stop = true;
            }
            (Starting | Running, Input::Stop) => self.begin_stop(&mut out, "stop requested"),
            (Starting | Running, Input::Unhealthy(why)) => {
                self.begin_stop(&mut out, &format!("unhealthy ({why}); stopping to restart"));
                self.unhealthy_stop = Some(why);
            }
            (Stopping, Input::Stop) => {
                self.start_after_stop = false;
                self.unhealthy_stop = None;
                self.sleep_after_stop = false;
            }
            (Backoff, Input::Stop | Input::Kill) => {
                self.disarm(&mut out);
                self.go(&mut out, Stopped, "stop requested during backoff", None);
            }
            (Starting | Running | Stopping, Input::Kill) => {
                self.disarm(&mut out);
                self.start_after_stop = false;
                self.unhealthy_stop = None;
                self.sleep_after_stop = false;
                if self.state != Stopping {
                    self.go(&mut out, Stopping, "kill requested", None);
                }
                out.actions.push(Action::KillGroup);
            }
            (Starting, Input::Spawned) => {
                if self.ready_gate {
                    // Wait for readiness; `start_seconds` (if any) bounds the wait.
                    if self.start_seconds > 0 {
                        self.arm(
                            &mut out,
                            TimerKind::StartPeriod,
                            Duration::from_secs(self.start_seconds),
                        );
                    }
                } else if self.start_seconds == 0 {
                    self.go(&mut out, Running, "started", None);
                } else {
                    self.arm(
                        &mut out,
                        TimerKind::StartPeriod,
                        Duration::from_secs(self.start_seconds),
                    );
                }
            }
            // A process that cannot be spawned (missing command or directory, no
            // permission) fails the same way on every retry: give up at once and say why.
            (Starting, Input::SpawnFailed(why)) => {
                self.disarm(&mut out);
                self.go(&mut out, Crashed, &format!("spawn failed: {why}"), None);
                self.go(&mut out, Fatal, &format!("spawn failed: {why}"), None);
            }
            (Starting, Input::Timer) if self.timer == Some(TimerKind::StartPeriod) => {
                self.timer = None;
                if self.ready_gate {
                    let reason = format!(
                        "started (readiness not confirmed within {} s)",
                        self.start_seconds
                    );
                    self.go(&mut out, Running, &reason, None);
                } else {
                    self.go(&mut out, Running, "started", None);
                }
            }
            (Starting, Input::Ready(why)) if self.ready_gate => {
                self.disarm(&mut out);
                self.go(&mut out, Running, &format!("ready: {why}"), None);
            }
            (Backoff, Input::Timer) if self.timer == Some(TimerKind::Backoff) => {
                self.timer = None;
                self.restarts += 1;
                let reason = format!("restarting (restart {})", self.restarts);
                self.go(&mut out, Starting, &reason, None);
                out.actions.push(Action::Spawn);
            }
            (Stopping, Input::Timer) if self.timer == Some(TimerKind::StopTimeout) => {
                self.timer = None;
                let reason = format!(
                    "did not stop within {} s; killing the process group",
                    self.stop_timeout.as_secs()
                );
                self.go(&mut out, Stopping, &reason, None);
                out.actions.push(Action::KillGroup);
            }
            (Stopping, Input::Exited { exit, .. }) if self.unhealthy_stop.is_some() => {
                self.disarm(&mut out);
                let why = self.unhealthy_stop.take().unwrap_or_default();
                let reason = format!("stopped as unhealthy: {why} ({})", exit.description);
                self.fail(&mut out, now, jitter, reason, Some(exit));
            }
            (Stopping, Input::Exited { exit, .. }) if self.sleep_after_stop => {
                self.disarm(&mut out);
                self.sleep_after_stop = false;
                let reason = format!(
                    "asleep ({}); a player connecting wakes it",
                    exit.description
                );
                self.go(&mut out, Sleeping, &reason, Some(exit));
            }
            (Stopping, Input::Exited { exit, .. }) => {
                self.disarm(&mut out);
                let reason = format!("stopped ({})", exit.description);
                self.go(&mut out, Stopped, &reason, Some(exit));
                if std::mem::take(&mut self.start_after_stop) {
                    self.reset_counters();
                    self.go(&mut out, Starting, "restart requested", None);
                    out.actions.push(Action::Spawn);
                }
            }
            (Starting | Running, Input::Exited { exit, .. })
                if exit.success() && self.restart.policy == RestartPolicy::Always =>
            {
                self.disarm(&mut out);
                self.clean_exit(&mut out, now, jitter, exit);
            }
            (Starting, Input::Exited { exit, .. }) => {
                self.disarm(&mut out);
                let reason = format!("exited during its start period ({})", exit.description);
                self.fail(&mut out, now, jitter, reason, Some(exit));
            }
            (Running, Input::Exited { exit, ran }) => {
                if ran >= Duration::from_secs(self.restart.window_seconds) {
                    // A healthy run: the next crash restarts right away again.
                    self.consecutive = 0;
                }
                // (A clean exit under `always` was handled above.)
                if exit.success() {
                    let reason = format!("exited ({})", exit.description);
                    self.go(&mut out, Stopped, &reason, Some(exit));
                } else {
                    let reason = format!("crashed ({})", exit.description);
                    self.fail(&mut out, now, jitter, reason, Some(exit));
                }
            }
            // Everything else (a start while running, a stale timer, …) changes nothing.
            _ => {}
        }
        out
    }

    fn reset_counters(&mut self) {
        self.failures.clear();
        self.clean_exits.clear();
        self.consecutive = 0;
        self.restarts = 0;
        self.start_after_stop = false;
    }

    fn go(&mut self, out: &mut Outcome, to: State, reason: &str, exit: Option<ExitInfo>) {
        out.transitions.push(Transition {
            from: self.state,
            to,
            reason: reason.to_string(),
            exit,
        });
        self.state = to;
    }

    fn arm(&mut self, out: &mut Outcome, kind: TimerKind, after: Duration) {
        self.timer = Some(kind);
        out.actions.push(Action::Arm(kind, after));
    }

    fn disarm(&mut self, out: &mut Outcome) {
        if self.timer.take().is_some() {
            out.actions.push(Action::Disarm);
        }
    }

    /// A requested start: wait for dependencies first when there are any.
    fn begin_start(&mut self, out: &mut Outcome, reason: &str) {
        if self.deps_gate {
            self.go(
                out,
                State::Waiting,
                &format!("{reason}; waiting for dependencies"),
                None,
            );
            out.actions.push(Action::WaitDeps);
        } else {
            self.go(out, State::Starting, reason, None);
            out.actions.push(Action::Spawn);
        }
    }

    fn begin_stop(&mut self, out: &mut Outcome, reason: &str) {
        self.disarm(out);
        self.start_after_stop = false;
        self.unhealthy_stop = None;
        self.sleep_after_stop = false;
        self.go(out, State::Stopping, reason, None);
        out.actions.push(Action::GracefulStop);
        self.arm(out, TimerKind::StopTimeout, self.stop_timeout);
    }

    /// A clean exit (code 0) under `always`: an ordinary end, reported as `exited`, then
    /// restarted. It never counts toward `max_failed_starts`; only the clean-exit guard
    /// slows down a program that exits cleanly again and again within `window_seconds`.
    fn clean_exit(&mut self, out: &mut Outcome, now: Instant, jitter: f64, exit: ExitInfo) {
        let reason = format!("exited ({}); policy always restarts it", exit.description);
        self.go(out, State::Stopped, &reason, Some(exit));
        let window = Duration::from_secs(self.restart.window_seconds);
        self.clean_exits.push_back(now);
        while let Some(first) = self.clean_exits.front() {
            if now.duration_since(*first) > window {
                self.clean_exits.pop_front();
            } else {
                break;
            }
        }
        let n = self.clean_exits.len();
        if n <= CLEAN_EXITS_BEFORE_GUARD {
            self.restarts += 1;
            let reason = format!("restarting after a clean exit (restart {})", self.restarts);
            self.go(out, State::Starting, &reason, None);
            out.actions.push(Action::Spawn);
            return;
        }
        let over = u32::try_from(n - CLEAN_EXITS_BEFORE_GUARD).unwrap_or(u32::MAX);
        let delay = backoff_delay(&self.restart, over, jitter);
        let reason = format!(
            "exited cleanly {n} times within {} s; waiting {:.1} s before restarting it so that a program that ends at once does not restart in a tight loop (clean-exit guard)",
            self.restart.window_seconds,
            delay.as_secs_f64()
        );
        self.go(out, State::Backoff, &reason, None);
        self.arm(out, TimerKind::Backoff, delay);
    }

    /// An unexpected exit (or failed spawn): crashed, then restart, back off, or give up.
    fn fail(
        &mut self,
        out: &mut Outcome,
        now: Instant,
        jitter: f64,
        reason: String,
        exit: Option<ExitInfo>,
    ) {
        self.go(out, State::Crashed, &reason, exit);
        if self.restart.policy == RestartPolicy::Never {
            return;
        }
        let window = Duration::from_secs(self.restart.window_seconds);
        self.failures.push_back(now);
        while let Some(first) = self.failures.front() {
            if now.duration_since(*first) > window {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        if self.failures.len() >= self.restart.max_failed_starts as usize {
            let reason = format!(
                "gave up after {} failures within {} s; start it again when fixed",
                self.failures.len(),
                self.restart.window_seconds
            );
            self.go(out, State::Fatal, &reason, None);
            return;
        }
        let delay = backoff_delay(&self.restart, self.consecutive, jitter);
        self.consecutive = self.consecutive.saturating_add(1);
        if delay.is_zero() {
            self.restarts += 1;
            let reason = format!("restarting (restart {})", self.restarts);
            self.go(out, State::Starting, &reason, None);
            out.actions.push(Action::Spawn);
        } else {
            let reason = format!("restarting in {:.1} s", delay.as_secs_f64());
            self.go(out, State::Backoff, &reason, None);
            self.arm(out, TimerKind::Backoff, delay);
        }
    }
}

/// Delay before the restart that follows `consecutive` earlier consecutive failures:
/// 0 for the first, then `initial * 2^(n-1)` capped at `max`, reduced by up to 25 %
/// jitter so that programs crashing together do not restart in lockstep.
pub fn backoff_delay(r: &RestartSpec, consecutive: u32, jitter: f64) -> Duration {
    if consecutive == 0 {
        return Duration::ZERO;
    }
    let base = crate::backoff::exponential(
        Duration::from_millis(r.backoff_initial_ms),
        Duration::from_millis(r.backoff_max_ms),
        consecutive,
    );
    crate::backoff::jitter_down(base, 0.25, jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use State::*;

    fn exit(code: i32) -> ExitInfo {
        ExitInfo {
            code: Some(code),
            signal: None,
            description: format!("exit code {code}"),
        }
    }

    fn spec(policy: RestartPolicy) -> RestartSpec {
        RestartSpec {
            policy,
            backoff_initial_ms: 100,
            backoff_max_ms: 1000,
            max_failed_starts: 3,
            window_seconds: 60,
        }
    }

    fn lc(policy: RestartPolicy, state: State) -> Lifecycle {
        let mut l = Lifecycle::new(spec(policy), 1, Duration::from_secs(30));
        l.state = state;
        l
    }

    fn gated(state: State) -> Lifecycle {
        let mut l = lc(RestartPolicy::OnFailure, state);
        l.set_ready_gate(true);
        l
    }

    fn exited(code: i32, ran_s: u64) -> Input {
        Input::Exited {
            exit: exit(code),
            ran: Duration::from_secs(ran_s),
        }
    }

    /// One row: (policy, state before, input, states passed through, actions).
    type Case = (RestartPolicy, State, Input, Vec<State>, Vec<Action>);

    fn ready() -> Input {
        Input::Ready("log line".into())
    }

    #[test]
    fn transition_table() {
        let p = RestartPolicy::OnFailure;
        let cases: Vec<Case> = vec![
            (p, Stopped, Input::Start, vec![Starting], vec![Spawn]),
            (p, Fatal, Input::Start, vec![Starting], vec![Spawn]),
            (p, Running, Input::Start, vec![], vec![]),
            (p, Stopped, Input::Stop, vec![], vec![]),
            (
                p,
                Running,
                Input::Stop,
                vec![Stopping],
                vec![
                    GracefulStop,
                    Arm(TimerKind::StopTimeout, Duration::from_secs(30)),
                ],
            ),
            (
                p,
                Starting,
                Input::Stop,
                vec![Stopping],
                vec![
                    GracefulStop,
                    Arm(TimerKind::StopTimeout, Duration::from_secs(30)),
                ],
            ),
            (p, Running, Input::Kill, vec![Stopping], vec![KillGroup]),
            (p, Backoff, Input::Stop, vec![Stopped], vec![]),
            // A requested stop is never a crash, whatever the exit status.
            (p, Stopping, exited(137, 5), vec![Stopped], vec![]),
            (
                RestartPolicy::Always,
                Stopping,
                exited(1, 5),
                vec![Stopped],
                vec![],
            ),
            // Crash while running: crashed, then restart right away.
            (
                p,
                Running,
                exited(1, 5),
                vec![Crashed, Starting],
                vec![Spawn],
            ),
            // Clean exit with on-failure: stopped, no restart.
            (p, Running, exited(0, 5), vec![Stopped], vec![]),
            // Clean exit with always: exited (not crashed), restarted at once.
            (
                RestartPolicy::Always,
                Running,
                exited(0, 5),
                vec![Stopped, Starting],
                vec![Spawn],
            ),
            // The same during the start period: still a clean exit.
            (
                RestartPolicy::Always,
                Starting,
                exited(0, 0),
                vec![Stopped, Starting],
                vec![Spawn],
            ),
            // A failure under always is still a crash.
            (
                RestartPolicy::Always,
                Running,
                exited(3, 5),
                vec![Crashed, Starting],
                vec![Spawn],
            ),
            // Policy never: crashed and stays there.
            (
                RestartPolicy::Never,
                Running,
                exited(1, 5),
                vec![Crashed],
                vec![],
            ),
            (
                p,
                Starting,
                Input::Spawned,
                vec![],
                vec![Arm(TimerKind::StartPeriod, Duration::from_secs(1))],
            ),
            (
                p,
                Starting,
                Input::SpawnFailed("nope".into()),
                vec![Crashed, Fatal],
                vec![],
            ),
        ];
        for (i, (policy, from, input, states, actions)) in cases.into_iter().enumerate() {
            let mut l = lc(policy, from);
            if from == Stopping {
                l.timer = Some(TimerKind::StopTimeout);
            }
            let out = l.on(input.clone(), Instant::now(), 0.0);
            let got: Vec<State> = out.transitions.iter().map(|t| t.to).collect();
            let acts: Vec<Action> = out.actions.into_iter().filter(|a| *a != Disarm).collect();
            assert_eq!(got, states, "case {i}: {from:?} + {input:?}");
            assert_eq!(acts, actions, "case {i}: {from:?} + {input:?}");
        }
    }

    /// With a readiness gate: (state before, armed timer, input, states, actions).
    type GateCase = (State, Option<TimerKind>, Input, Vec<State>, Vec<Action>);

    #[test]
    fn readiness_gate_table() {
        let cases: Vec<GateCase> = vec![
            // Spawned: wait for readiness, bounded by start_seconds.
            (
                Starting,
                None,
                Input::Spawned,
                vec![],
                vec![Arm(TimerKind::StartPeriod, Duration::from_secs(1))],
            ),
            // Ready while starting: running at once, timer disarmed.
            (
                Starting,
                Some(TimerKind::StartPeriod),
                ready(),
                vec![Running],
                vec![Disarm],
            ),
            // The start period ran out first: running anyway (the fallback).
            (
                Starting,
                Some(TimerKind::StartPeriod),
                Input::Timer,
                vec![Running],
                vec![],
            ),
            // Late or stale readiness changes nothing.
            (Running, None, ready(), vec![], vec![]),
            (
                Stopping,
                Some(TimerKind::StopTimeout),
                ready(),
                vec![],
                vec![],
            ),
            (Stopped, None, ready(), vec![], vec![]),
            (Backoff, Some(TimerKind::Backoff), ready(), vec![], vec![]),
            // Exiting before ready is a failure of the start.
            (
                Starting,
                Some(TimerKind::StartPeriod),
                exited(1, 0),
                vec![Crashed, Starting],
                vec![Disarm, Spawn],
            ),
        ];
        for (i, (from, timer, input, states, actions)) in cases.into_iter().enumerate() {
            let mut l = gated(from);
            l.timer = timer;
            let out = l.on(input.clone(), Instant::now(), 0.0);
            let got: Vec<State> = out.transitions.iter().map(|t| t.to).collect();
            assert_eq!(got, states, "gate case {i}: {from:?} + {input:?}");
            assert_eq!(out.actions, actions, "gate case {i}: {from:?} + {input:?}");
        }
        // Without a gate, readiness is ignored: the start period alone decides.
        let mut l = lc(RestartPolicy::OnFailure, Starting);
        l.timer = Some(TimerKind::StartPeriod);
        assert_eq!(l.on(ready(), Instant::now(), 0.0), Outcome::default());
        // With a gate and start_seconds = 0, nothing but readiness ends the start.
        let mut l = Lifecycle::new(spec(RestartPolicy::OnFailure), 0, Duration::from_secs(30));
        l.set_ready_gate(true);
        l.on(Input::Start, Instant::now(), 0.0);
        let o = l.on(Input::Spawned, Instant::now(), 0.0);
        assert_eq!(o, Outcome::default());
        assert_eq!(l.state(), Starting);
        let o = l.on(ready(), Instant::now(), 0.0);
        assert_eq!(o.transitions[0].reason, "ready: log line");
        assert_eq!(l.state(), Running);
    }

    #[test]
    fn backoff_grows_then_gives_up_at_the_start_limit() {
        let mut l = lc(RestartPolicy::OnFailure, Running);
        let t0 = Instant::now();
        // 1st failure: immediate restart.
        let o = l.on(exited(1, 2), t0, 0.0);
        assert_eq!(l.state(), Starting);
        assert!(o.actions.contains(&Spawn));
        // 2nd failure (during start): backoff 100 ms.
        let o = l.on(exited(1, 0), t0, 0.0);
        assert_eq!(l.state(), Backoff);
        assert!(
            o.actions
                .contains(&Arm(TimerKind::Backoff, Duration::from_millis(100)))
        );
        l.on(Input::Timer, t0, 0.0);
        assert_eq!(l.state(), Starting);
        assert_eq!(l.restarts(), 2);
        // 3rd failure within the window: fatal.
        let o = l.on(exited(1, 0), t0, 0.0);
        assert_eq!(l.state(), Fatal);
        assert!(o.actions.is_empty());
        // A manual start resets everything.
        l.on(Input::Start, t0, 0.0);
        assert_eq!(l.state(), Starting);
        assert_eq!(l.restarts(), 0);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut l = lc(RestartPolicy::OnFailure, Running);
        let t0 = Instant::now();
        for k in 0..10u64 {
            l.state = Running;
            l.on(exited(1, 61), t0 + Duration::from_secs(61 * k), 0.0);
            assert_ne!(l.state(), Fatal, "failure {k}");
            // A run longer than the window resets the backoff: restart is immediate.
            assert_eq!(l.state(), Starting, "failure {k}");
        }
    }

    #[test]
    fn restart_while_running_stops_then_starts() {
        let mut l = lc(RestartPolicy::OnFailure, Running);
        let o = l.on(Input::Restart, Instant::now(), 0.0);
        assert_eq!(l.state(), Stopping);
        assert!(o.actions.contains(&GracefulStop));
        let o = l.on(exited(0, 1), Instant::now(), 0.0);
        let got: Vec<State> = o.transitions.iter().map(|t| t.to).collect();
        assert_eq!(got, vec![Stopped, Starting]);
        assert!(o.actions.contains(&Spawn));
    }

    #[test]
    fn unhealthy_restarts_count_as_failures_and_reach_fatal() {
        let mut l = lc(RestartPolicy::OnFailure, Running);
        let t0 = Instant::now();
        let unhealthy = || Input::Unhealthy("3 checks failed".into());
        // Stopped gracefully, then the exit counts as the 1st failure: immediate restart.
        let o = l.on(unhealthy(), t0, 0.0);
        assert_eq!(l.state(), Stopping);
        assert!(o.actions.contains(&GracefulStop));
        let o = l.on(exited(143, 5), t0, 0.0);
        let got: Vec<State> = o.transitions.iter().map(|t| t.to).collect();
        assert_eq!(got, vec![Crashed, Starting]);
        assert!(
            o.transitions[0]
                .reason
                .starts_with("stopped as unhealthy: 3 checks failed")
        );
        l.on(Input::Spawned, t0, 0.0);
        l.on(Input::Timer, t0, 0.0);
        assert_eq!(l.state(), Running);
        // 2nd: backoff, not a counter reset.
        l.on(unhealthy(), t0, 0.0);
        l.on(exited(143, 5), t0, 0.0);
        assert_eq!(l.state(), Backoff);
        l.on(Input::Timer, t0, 0.0);
        l.on(Input::Spawned, t0, 0.0);
        l.on(Input::Timer, t0, 0.0);
        assert_eq!(l.restarts(), 2);
        // 3rd within the window: gives up instead of restarting forever.
        l.on(unhealthy(), t0, 0.0);
        l.on(exited(143, 5), t0, 0.0);
        assert_eq!(l.state(), Fatal);
    }

    #[test]
    fn a_request_during_an_unhealthy_stop_takes_over() {
        let mut l = lc(RestartPolicy::OnFailure, Running);
        let t0 = Instant::now();
        l.on(Input::Unhealthy("down".into()), t0, 0.0);
        l.on(Input::Stop, t0, 0.0);
        let o = l.on(exited(143, 5), t0, 0.0);
        let got: Vec<State> = o.transitions.iter().map(|t| t.to).collect();
        assert_eq!(got, vec![Stopped], "a requested stop is never a crash");
    }

    #[test]
    fn stop_timeout_kills_and_stale_timers_do_nothing() {
        let mut l = lc(RestartPolicy::OnFailure, Running);
        l.on(Input::Stop, Instant::now(), 0.0);
        let o = l.on(Input::Timer, Instant::now(), 0.0);
        assert!(o.actions.contains(&KillGroup));
        assert_eq!(l.state(), Stopping);
        // The timer was consumed; a second firing is stale.
        assert_eq!(l.on(Input::Timer, Instant::now(), 0.0), Outcome::default());
    }

    #[test]
    fn clean_exits_under_always_never_reach_fatal_and_a_tight_loop_is_slowed() {
        let mut l = lc(RestartPolicy::Always, Running);
        let t0 = Instant::now();
        // Far more clean exits than max_failed_starts (3), all within the window.
        for k in 0..20usize {
            l.state = Running;
            let o = l.on(exited(0, 0), t0 + Duration::from_millis(k as u64), 0.0);
            assert_eq!(o.transitions[0].to, Stopped, "exit {k}");
            assert_eq!(
                o.transitions[0].reason,
                "exited (exit code 0); policy always restarts it"
            );
            assert_ne!(l.state(), Fatal, "exit {k}");
            if k < CLEAN_EXITS_BEFORE_GUARD {
                assert_eq!(l.state(), Starting, "exit {k}: restarted at once");
                assert!(o.actions.contains(&Spawn));
            } else {
                // The guard: a growing wait, said in plain words.
                assert_eq!(l.state(), Backoff, "exit {k}");
                let reason = &o.transitions[1].reason;
                assert!(reason.contains("exited cleanly"), "{reason}");
                assert!(reason.contains("clean-exit guard"), "{reason}");
                let over = (k + 1 - CLEAN_EXITS_BEFORE_GUARD) as u32;
                let want = backoff_delay(&spec(RestartPolicy::Always), over, 0.0);
                assert!(o.actions.contains(&Arm(TimerKind::Backoff, want)), "{o:?}");
                l.on(Input::Timer, t0, 0.0);
                assert_eq!(l.state(), Starting);
            }
        }
        // Failures still count on their own: 3 crashes give up, clean exits did not help
        // them along.
        l.state = Running;
        l.on(exited(1, 0), t0, 0.0);
        assert_eq!(l.state(), Starting);
        l.state = Running;
        l.on(exited(1, 0), t0, 0.0);
        assert_eq!(l.state(), Backoff);
        l.state = Running;
        l.on(exited(1, 0), t0, 0.0);
        assert_eq!(l.state(), Fatal);
        // Clean exits spread beyond the window restart at once again.
        let mut l = lc(RestartPolicy::Always, Running);
        for k in 0..20u64 {
            l.state = Running;
            l.on(exited(0, 61), t0 + Duration::from_secs(61 * k), 0.0);
            assert_eq!(l.state(), Starting, "exit {k}");
        }
    }

    #[test]
    fn backoff_math() {
        let r = spec(RestartPolicy::OnFailure);
        assert_eq!(backoff_delay(&r, 0, 0.5), Duration::ZERO);
        assert_eq!(backoff_delay(&r, 1, 0.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(&r, 2, 0.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(&r, 5, 0.0), Duration::from_millis(1000));
        assert_eq!(backoff_delay(&r, 40, 0.0), Duration::from_millis(1000));
        assert_eq!(backoff_delay(&r, 1, 1.0), Duration::from_millis(75));
    }
}

#[cfg(test)]
mod power_tests {
    //! The `waiting` and `sleeping` states: start order and sleep when empty.
    use super::*;
    use Action::*;
    use State::*;

    fn lc(state: State, deps: bool) -> Lifecycle {
        let mut l = Lifecycle::new(RestartSpec::default(), 0, Duration::from_secs(30));
        l.state = state;
        l.set_deps_gate(deps);
        l
    }

    fn exited() -> Input {
        Input::Exited {
            exit: ExitInfo {
                code: Some(0),
                signal: None,
                description: "exit code 0".into(),
            },
            ran: Duration::from_secs(100),
        }
    }

    #[test]
    fn table() {
        let now = Instant::now();
        type Case = (State, bool, Input, Vec<State>, Vec<Action>);
        let cases: Vec<Case> = vec![
            (Stopped, true, Input::Start, vec![Waiting], vec![WaitDeps]),
            (Stopped, false, Input::Start, vec![Starting], vec![Spawn]),
            (
                Waiting,
                true,
                Input::DepsReady("db".into()),
                vec![Starting],
                vec![Spawn],
            ),
            (
                Waiting,
                true,
                Input::DepsFailed("db".into()),
                vec![Stopped],
                vec![],
            ),
            (Waiting, true, Input::Stop, vec![Stopped], vec![CancelDeps]),
            (Waiting, true, Input::Start, vec![], vec![]),
            (
                Running,
                false,
                Input::Sleep("empty".into()),
                vec![Stopping],
                vec![
                    GracefulStop,
                    Arm(TimerKind::StopTimeout, Duration::from_secs(30)),
                ],
            ),
            (
                Sleeping,
                false,
                Input::Wake("login".into()),
                vec![Starting],
                vec![Spawn],
            ),
            (
                Sleeping,
                true,
                Input::Wake("login".into()),
                vec![Waiting],
                vec![WaitDeps],
            ),
            (Sleeping, false, Input::Start, vec![Starting], vec![Spawn]),
            (Sleeping, false, Input::Stop, vec![Stopped], vec![]),
            (Stopped, false, Input::Wake("login".into()), vec![], vec![]),
            (Running, false, Input::Wake("login".into()), vec![], vec![]),
        ];
        for (from, deps, input, states, actions) in cases {
            let mut l = lc(from, deps);
            let out = l.on(input.clone(), now, 0.0);
            let got: Vec<State> = out.transitions.iter().map(|t| t.to).collect();
            assert_eq!(got, states, "{from:?} + {input:?}");
            assert_eq!(out.actions, actions, "{from:?} + {input:?}");
        }
    }

    #[test]
    fn a_sleep_stop_ends_asleep_unless_someone_intervenes() {
        let now = Instant::now();
        let mut l = lc(Running, false);
        l.on(Input::Sleep("empty".into()), now, 0.0);
        let out = l.on(exited(), now, 0.0);
        assert_eq!(l.state(), Sleeping, "{out:?}");

        // A stop requested during the sleep stop makes it a plain stop.
        let mut l = lc(Running, false);
        l.on(Input::Sleep("empty".into()), now, 0.0);
        l.on(Input::Stop, now, 0.0);
        l.on(exited(), now, 0.0);
        assert_eq!(l.state(), Stopped);

        // A start requested during it starts again.
        let mut l = lc(Running, false);
        l.on(Input::Sleep("empty".into()), now, 0.0);
        l.on(Input::Start, now, 0.0);
        l.on(exited(), now, 0.0);
        assert_eq!(l.state(), Starting);
    }
}
