//! Start order between programs (`after`, `requires`): the save-time cycle check, the
//! wait of a `waiting` program for the programs it follows, and the order of stops.
//!
//! The wait runs in its own task per waiting program (started by the actor on
//! `Action::WaitDeps`), watching the other programs' snapshots; it never blocks an actor.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::ProgramHandle;
use crate::program::{FieldError, ProgramSpec, State};

/// The registry of handles, shared by the supervisor and its actors.
pub(crate) type Peers = Arc<RwLock<BTreeMap<String, ProgramHandle>>>;

/// How long an `after` dependency that autostarts but is still `stopped` gets to begin
/// starting: at boot every actor begins at once, so a dependency may not have taken its
/// autostart yet when the dependent looks.
const AUTOSTART_GRACE: Duration = Duration::from_secs(3);

/// The programs `spec` waits for: `requires` first, then `after`, without repeats.
pub(crate) fn deps_of(spec: &ProgramSpec) -> Vec<String> {
    let mut seen = BTreeSet::new();
    spec.requires
        .iter()
        .chain(spec.after.iter())
        .filter(|d| seen.insert(d.as_str()))
        .cloned()
        .collect()
}

/// A cycle among `specs` (edges: a program → the programs it waits for), as the path
/// `a → b → a`, or `None`. The search begins at the names in `first` (the programs being
/// saved), so the cycle is named from the program the user is editing.
pub(crate) fn find_cycle<'a>(
    specs: impl IntoIterator<Item = &'a ProgramSpec>,
    first: &[&str],
) -> Option<Vec<String>> {
    let graph: BTreeMap<&str, Vec<String>> = specs
        .into_iter()
        .map(|s| (s.name.as_str(), deps_of(s)))
        .collect();
    // Iterative depth-first search with colours: 1 = on the current path, 2 = done.
    let mut colour: BTreeMap<&str, u8> = BTreeMap::new();
    let starts: Vec<&str> = first
        .iter()
        .filter_map(|n| graph.get_key_value(*n).map(|(k, _)| *k))
        .chain(graph.keys().copied())
        .collect();
    for start in starts {
        if colour.contains_key(start) {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        colour.insert(start, 1);
        while let Some((node, next)) = path.last().copied() {
            let edges = graph.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(dep) = edges.get(next) {
                if let Some(top) = path.last_mut() {
                    top.1 += 1;
                }
                let Some((&dep, _)) = graph.get_key_value(dep.as_str()) else {
                    continue; // Unknown names are no cycle (the program may come later).
                };
                match colour.get(dep) {
                    Some(1) => {
                        let from = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|(n, _)| n.to_string()).collect();
                        cycle.push(dep.to_string());
                        return Some(cycle);
                    }
                    Some(_) => {}
                    None => {
                        colour.insert(dep, 1);
                        path.push((dep, 0));
                    }
                }
            } else {
                colour.insert(node, 2);
                path.pop();
            }
        }
    }
    None
}

/// The field error for a cycle, naming it.
pub(crate) fn cycle_error(cycle: &[String]) -> FieldError {
    FieldError::cycle("after", &cycle.join(" -> "))
}

/// The programs in stop order: every program after all programs that wait for it
/// (dependents stop first), grouped into layers that can stop in parallel.
pub(crate) fn stop_layers(specs: &[Arc<ProgramSpec>]) -> Vec<Vec<String>> {
    let names: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    // depth = longest chain of programs waiting on it; stop deepest dependents first.
    let mut layers: Vec<Vec<String>> = Vec::new();
    let mut left: BTreeMap<&str, Vec<String>> = specs
        .iter()
        .map(|s| {
            let deps = deps_of(s)
                .into_iter()
                .filter(|d| names.contains(d.as_str()))
                .collect();
            (s.name.as_str(), deps)
        })
        .collect();
    while !left.is_empty() {
        // A program nobody left waits for can stop now.
        let waited_for: BTreeSet<String> = left.values().flatten().cloned().collect();
        let layer: Vec<String> = left
            .keys()
            .filter(|n| !waited_for.contains(**n))
            .map(|n| n.to_string())
            .collect();
        if layer.is_empty() {
            // A cycle (refused at save time, but never hang on one): stop the rest together.
            layers.push(left.keys().map(|n| n.to_string()).collect());
            break;
        }
        for n in &layer {
            left.remove(n.as_str());
        }
        layers.push(layer);
    }
    layers
}

/// Every program that waits, directly or not, for `name`.
pub(crate) fn dependents(specs: &[Arc<ProgramSpec>], name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        for s in specs {
            if deps_of(s).contains(&n) && out.insert(s.name.clone()) {
                todo.push(s.name.clone());
            }
        }
    }
    out
}

/// Every program `name` waits for, directly or not.
pub(crate) fn dependencies(peers: &Peers, name: &str) -> BTreeSet<String> {
    let specs: BTreeMap<String, Arc<ProgramSpec>> = match peers.read() {
        Ok(m) => m
            .iter()
            .map(|(k, h)| (k.clone(), h.snapshot().spec.clone()))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let mut out = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        if let Some(s) = specs.get(&n) {
            for d in deps_of(s) {
                if out.insert(d.clone()) {
                    todo.push(d);
                }
            }
        }
    }
    out
}

/// Waits until every program `spec` waits for is running (which, for a program with a
/// readiness check, means ready). An `after` program that is not on its way up is not
/// waited for; a `requires` program is, until `deps_timeout_seconds`. Returns what it
/// waited for, or why it gave up.
pub(super) async fn wait_ready(peers: Peers, spec: Arc<ProgramSpec>) -> Result<String, String> {
    let timeout = Duration::from_secs(spec.deps_timeout_seconds);
    let deadline = Instant::now() + timeout;
    let began = Instant::now();
    let mut waited = Vec::new();
    for name in deps_of(&spec) {
        let required = spec.requires.contains(&name);
        let handle = peers.read().ok().and_then(|m| m.get(&name).cloned());
        let Some(handle) = handle else {
            if required {
                return Err(format!(
                    "it requires '{name}', which does not exist; create it or remove it from requires"
                ));
            }
            continue;
        };
        let mut rx = handle.watch();
        let mut woke = false;
        loop {
            let (state, autostart) = {
                let snap = rx.borrow_and_update();
                (snap.status.state, snap.spec.autostart)
            };
            if state == State::Running {
                waited.push(name.clone());
                break;
            }
            if required && state == State::Sleeping && !woke {
                // A required server that sleeps is woken: it must run.
                woke = true;
                let h = handle.clone();
                tokio::spawn(async move { h.start().await });
            }
            let on_its_way =
                matches!(
                    state,
                    State::Starting | State::Waiting | State::Backoff | State::Stopping
                ) || (state == State::Stopped && autostart && began.elapsed() < AUTOSTART_GRACE);
            if !required && !on_its_way {
                break;
            }
            let wait_until = if !required && state == State::Stopped {
                (began + AUTOSTART_GRACE).min(deadline)
            } else {
                deadline
            };
            match tokio::time::timeout_at(wait_until, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    if required {
                        return Err(format!("'{name}' was deleted while it was awaited"));
                    }
                    break;
                }
                Err(_) if wait_until < deadline => {}
                Err(_) => {
                    let state = rx.borrow().status.state;
                    return Err(format!(
                        "'{name}' was still {} after {} s (start it, or start this program with --with-deps)",
                        state.as_str(),
                        timeout.as_secs()
                    ));
                }
            }
        }
    }
    Ok(if waited.is_empty() {
        "nothing to wait for".into()
    } else {
        format!("{} running", waited.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, after: &[&str], requires: &[&str]) -> ProgramSpec {
        let mut s: ProgramSpec =
            serde_json::from_value(serde_json::json!({"name": name, "command": "x"}))
                .expect("spec");
        s.after = after.iter().map(|s| s.to_string()).collect();
        s.requires = requires.iter().map(|s| s.to_string()).collect();
        s
    }

    #[test]
    fn cycles_are_found_and_named() {
        let ok = [
            spec("db", &[], &[]),
            spec("app", &["db"], &[]),
            spec("web", &["app"], &["db"]),
        ];
        assert_eq!(find_cycle(&ok, &[]), None);
        let bad = [
            spec("a", &["b"], &[]),
            spec("b", &[], &["c"]),
            spec("c", &["a"], &[]),
        ];
        let cycle = find_cycle(&bad, &["a"]).expect("a cycle");
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4, "{cycle:?}");
        assert!(
            cycle_error(&cycle).message.contains("a -> b -> c -> a"),
            "{cycle:?}"
        );
        // Unknown names are not cycles.
        assert_eq!(find_cycle(&[spec("a", &["ghost"], &[])], &[]), None);
    }

    #[test]
    fn dependents_stop_before_what_they_wait_for() {
        let specs: Vec<Arc<ProgramSpec>> = [
            spec("db", &[], &[]),
            spec("app", &["db"], &[]),
            spec("lobby", &["app"], &[]),
            spec("other", &[], &[]),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let layers = stop_layers(&specs);
        let pos = |n: &str| layers.iter().position(|l| l.iter().any(|x| x == n));
        assert!(
            pos("lobby") < pos("app") && pos("app") < pos("db"),
            "{layers:?}"
        );
        assert_eq!(
            dependents(&specs, "db").into_iter().collect::<Vec<_>>(),
            vec!["app".to_string(), "lobby".to_string()]
        );
    }
}
