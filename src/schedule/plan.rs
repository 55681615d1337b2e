//! The step graph of a job: validation at save time (duplicate or unknown steps, cycles)
//! and, while a run executes, which steps are ready. Pure; no processes, no time.

use std::collections::HashMap;

use super::spec::StepSpec;
use crate::program::FieldError;

/// Problems with the dependencies between steps, each naming the steps involved.
pub fn validate_graph(steps: &[StepSpec]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        if index.insert(s.name.as_str(), i).is_some() {
            errs.push(FieldError::duplicate(format!("steps[{i}].name"), &s.name));
        }
    }
    for (i, s) in steps.iter().enumerate() {
        for d in &s.depends_on {
            if d == &s.name {
                errs.push(FieldError::cycle(
                    format!("steps[{i}].depends_on"),
                    &format!("{0} -> {0}", s.name),
                ));
            } else if !index.contains_key(d.as_str()) {
                errs.push(FieldError::not_found(format!("steps[{i}].depends_on"), d));
            }
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    if let Some(cycle) = find_cycle(steps, &index) {
        let names: Vec<&str> = cycle.iter().map(|&i| steps[i].name.as_str()).collect();
        errs.push(FieldError::cycle(
            "steps",
            &format!("{} -> {}", names.join(" -> "), names[0]),
        ));
    }
    errs
}

/// One cycle in the "depends on" graph, as step indices in dependency order, if any.
fn find_cycle(steps: &[StepSpec], index: &HashMap<&str, usize>) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; steps.len()];
    for root in 0..steps.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // Iterative depth-first search; `path` is the current chain of steps.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let deps = &steps[node].depends_on;
            if *next < deps.len() {
                let dep = index.get(deps[*next].as_str()).copied();
                *next += 1;
                // Unknown names were reported before the cycle search runs.
                let Some(dep) = dep else { continue };
                match mark[dep] {
                    Mark::New => {
                        mark[dep] = Mark::OnPath;
                        path.push((dep, 0));
                    }
                    Mark::OnPath => {
                        let start = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        return Some(path[start..].iter().map(|(n, _)| *n).collect());
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}

/// Where a step stands within one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    /// Waiting for dependencies or a free slot.
    Pending,
    /// Running (or waiting between retries).
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed after its retries.
    Failed,
    /// Never started: a dependency failed or the run was cancelled.
    Skipped,
}

/// The progress of one run through a validated step graph.
#[derive(Debug)]
pub struct Plan {
    deps: Vec<Vec<usize>>,
    state: Vec<StepState>,
}

impl Plan {
    /// A plan for `steps`, which must have passed [`validate_graph`].
    pub fn new(steps: &[StepSpec]) -> Plan {
        let index: HashMap<&str, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let deps = steps
            .iter()
            .map(|s| {
                s.depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        Plan {
            deps,
            state: vec![StepState::Pending; steps.len()],
        }
    }

    /// Pending steps whose dependencies all succeeded, in definition order.
    pub fn ready(&self) -> Vec<usize> {
        (0..self.state.len())
            .filter(|&i| {
                self.state[i] == StepState::Pending
                    && self.deps[i]
                        .iter()
                        .all(|&d| self.state[d] == StepState::Succeeded)
            })
            .collect()
    }

    /// Records a state change; a failure skips every pending step that depends on it,
    /// directly or not.
    pub fn set(&mut self, i: usize, s: StepState) {
        self.state[i] = s;
        if s == StepState::Failed || s == StepState::Skipped {
            loop {
                let mut changed = false;
                for j in 0..self.state.len() {
                    if self.state[j] == StepState::Pending
                        && self.deps[j].iter().any(|&d| {
                            matches!(self.state[d], StepState::Failed | StepState::Skipped)
                        })
                    {
                        self.state[j] = StepState::Skipped;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
    }

    /// Marks every pending step skipped (the run was cancelled).
    pub fn skip_pending(&mut self) {
        for s in &mut self.state {
            if *s == StepState::Pending {
                *s = StepState::Skipped;
            }
        }
    }

    /// Steps currently running.
    pub fn running(&self) -> usize {
        self.state
            .iter()
            .filter(|s| **s == StepState::Running)
            .count()
    }

    /// The state of step `i`.
    pub fn state(&self, i: usize) -> StepState {
        self.state[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(spec: &[(&str, &[&str])]) -> Vec<StepSpec> {
        spec.iter()
            .map(|(n, d)| StepSpec {
                name: n.to_string(),
                command: "true".into(),
                args: vec![],
                cwd: None,
                env: Default::default(),
                timeout_seconds: None,
                depends_on: d.iter().map(|s| s.to_string()).collect(),
                retry: None,
            })
            .collect()
    }

    #[test]
    fn cycles_are_reported_with_their_steps() {
        let s = steps(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
        let errs = validate_graph(&s);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "steps");
        assert_eq!(errs[0].code, crate::program::FieldCode::Cycle);
        assert_eq!(errs[0].params["path"], "a -> c -> b -> a");
    }

    #[test]
    fn unknown_duplicate_and_self_dependencies_are_named() {
        let s = steps(&[("a", &["zz"]), ("a", &[]), ("b", &["b"])]);
        let msgs: Vec<String> = validate_graph(&s)
            .into_iter()
            .map(|e| format!("{}: {} {}", e.field, e.code.as_str(), e.message))
            .collect();
        assert_eq!(
            msgs,
            [
                "steps[1].name: duplicate \"a\" appears more than once",
                "steps[0].depends_on: not_found \"zz\" does not exist",
                "steps[2].depends_on: cycle these would wait for each other forever: b -> b; remove one of the links",
            ]
        );
    }

    #[test]
    fn a_diamond_is_fine_and_runs_in_waves() {
        let s = steps(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]);
        assert!(validate_graph(&s).is_empty());
        let mut p = Plan::new(&s);
        assert_eq!(p.ready(), [0]);
        p.set(0, StepState::Running);
        assert!(p.ready().is_empty());
        p.set(0, StepState::Succeeded);
        assert_eq!(p.ready(), [1, 2]);
        p.set(1, StepState::Succeeded);
        assert_eq!(p.ready(), [2]);
        p.set(2, StepState::Succeeded);
        assert_eq!(p.ready(), [3]);
        p.set(3, StepState::Succeeded);
        assert!(p.ready().is_empty() && p.running() == 0);
    }

    #[test]
    fn a_failure_skips_dependents_but_not_independent_branches() {
        let s = steps(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("x", &[])]);
        let mut p = Plan::new(&s);
        assert_eq!(p.ready(), [0, 3]);
        p.set(0, StepState::Failed);
        assert_eq!(p.state(1), StepState::Skipped);
        assert_eq!(p.state(2), StepState::Skipped);
        assert_eq!(p.ready(), [3]);
        p.set(3, StepState::Running);
        assert_eq!(p.running(), 1);
        p.set(3, StepState::Succeeded);
        assert!(p.ready().is_empty() && p.running() == 0);
    }
}
