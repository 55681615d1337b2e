// Client-side state with per-key subscriptions, so live data re-renders only what it
// touches: a state change or a sample for one program wakes that program's row, never the
// whole overview. REST is the source of truth; live events patch it between refetches.

import { useEffect, useReducer } from 'preact/hooks';
import { api, seg } from './api.js';
import { live } from './live.js';

/** Key whose watchers hear about every change (for summaries such as "3 running"). */
const ANY = Symbol('any');

/** A keyed store: `get(key)`, `set(key, value)`, `useKey(key)` re-renders on that key only. */
class Keyed {
  constructor() {
    this.values = new Map();
    this.subs = new Map();
  }

  notify(key) {
    const subs = this.subs.get(key);
    if (subs) for (const fn of subs) fn();
  }

  get(key) {
    return this.values.get(key);
  }

  set(key, value) {
    this.values.set(key, value);
    this.notify(key);
    if (key !== ANY) this.notify(ANY);
  }

  delete(key) {
    this.set(key, undefined);
    this.values.delete(key);
  }

  watch(key, fn) {
    let set = this.subs.get(key);
    if (!set) {
      set = new Set();
      this.subs.set(key, set);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.subs.delete(key);
    };
  }
}

/** Re-renders the calling component whenever `keyed` changes `key`. */
function useKeyed(keyed, key) {
  const [, bump] = useReducer((n) => n + 1, 0);
  useEffect(() => keyed.watch(key, bump), [keyed, key]);
  return keyed.get(key);
}

// ---- programs ---------------------------------------------------------------------------

const programs = new Keyed();
/** Sorted program names; its own key so membership changes wake only the list. */
const LIST = Symbol('list');

function withClock(view) {
  // Uptime is counted locally from the moment the view was fetched.
  const startedAt = view.uptime_seconds == null ? null : Date.now() - view.uptime_seconds * 1000;
  return { ...view, startedAt };
}

function sameNames(a, b) {
  return a && a.length === b.length && a.every((n, i) => n === b[i]);
}

function setList(list) {
  const names = list.map((p) => p.name).sort();
  for (const name of programs.get(LIST) || []) {
    if (!names.includes(name)) programs.delete(name);
  }
  for (const p of list) programs.set(p.name, withClock(p));
  if (!sameNames(programs.get(LIST), names)) programs.set(LIST, names);
}

let refreshing = null;
/** Refetches every program (on load, reconnect and `lagged`). */
export function refreshPrograms() {
  if (!refreshing) {
    refreshing = api
      .get('/api/programs')
      .then((r) => setList(r.programs))
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/**
 * Refetches one program (after a live state change, for restarts, pid and uptime).
 * Resolves to false when the program does not exist.
 */
export async function refreshProgram(name) {
  try {
    const v = await api.get(`/api/programs/${seg(name)}`);
    programs.set(name, withClock(v));
    const names = programs.get(LIST) || [];
    if (!names.includes(name)) programs.set(LIST, [...names, name].sort());
    return true;
  } catch (e) {
    if (e.status !== 404) return true;
    programs.delete(name);
    programs.set(LIST, (programs.get(LIST) || []).filter((n) => n !== name));
    return false;
  }
}

const pendingRefresh = new Map();
function applyState(ev) {
  const prev = programs.get(ev.program);
  if (prev) {
    const active = ev.to === 'starting' || ev.to === 'running' || ev.to === 'stopping';
    programs.set(ev.program, {
      ...prev,
      state: ev.to,
      since_ms: ev.ts,
      pid: active ? ev.pid ?? prev.pid : null,
      startedAt: active ? (ev.to === 'starting' ? Date.now() : prev.startedAt) : null,
      last_exit: ev.exit ?? prev.last_exit,
    });
  }
  // The event carries the state; restarts and pid come from a (debounced) refetch.
  clearTimeout(pendingRefresh.get(ev.program));
  pendingRefresh.set(
    ev.program,
    setTimeout(() => {
      pendingRefresh.delete(ev.program);
      refreshProgram(ev.program);
    }, 250),
  );
}

/** Patches a program's game status from a health change or a players sample. */
function applyGame(ev) {
  const prev = programs.get(ev.program);
  if (!prev || !prev.game_status) return;
  const gs =
    ev.type === 'health'
      ? { ...prev.game_status, health: ev.to, failures: ev.failures, message: ev.to === 'healthy' ? null : ev.reason, checked_ms: ev.ts }
      : { ...prev.game_status, players: ev.online, max_players: ev.max ?? prev.game_status.max_players };
  programs.set(ev.program, { ...prev, game_status: gs });
}

/** Routes what the `programs` topic carries by its type. */
function onProgramMessage(ev) {
  if (ev.type === 'state') applyState(ev);
  else if (ev.type === 'health' || ev.type === 'players') applyGame(ev);
}

let started = false;
/** Starts following programs over the live connection (once per session). */
export function followPrograms() {
  if (started) return;
  started = true;
  live.subscribe('programs', onProgramMessage);
  live.subscribe('samples', addSample);
  live.onResync(() => refreshPrograms().catch(() => {}));
}

export const useProgram = (name) => useKeyed(programs, name);
export const useProgramNames = () => useKeyed(programs, LIST);
/** Re-renders the caller on any program change; returns every program's current view. */
export function useAllPrograms() {
  useKeyed(programs, ANY);
  return (programs.get(LIST) || []).map((n) => programs.get(n)).filter(Boolean);
}
export const programNow = (name) => programs.get(name);

// ---- samples ----------------------------------------------------------------------------

/** Live samples kept per program for sparklines. */
const SPARK_POINTS = 90;
const samples = new Keyed();

function addSample(s) {
  const prev = samples.get(s.program);
  const list = prev ? prev.list.slice(-(SPARK_POINTS - 1)) : [];
  list.push(s);
  samples.set(s.program, { list, latest: s });
}

/**
 * Seeds a program's sparkline from stored history (`rows`, oldest first) so a row has a
 * line on first load; live samples that already arrived stay after it.
 */
export function seedSamples(name, rows) {
  if (!rows.length) return;
  const prev = samples.get(name);
  const liveList = prev ? prev.list : [];
  const first = liveList.length ? liveList[0].ts : Infinity;
  const list = [...rows.filter((r) => r.ts < first), ...liveList].slice(-SPARK_POINTS);
  samples.set(name, { list, latest: prev ? prev.latest : rows[rows.length - 1] });
}

/** `{list, latest}` of recent live samples of a program, or undefined. */
export const useSamples = (name) => useKeyed(samples, name);

// ---- a one-second clock for uptimes -----------------------------------------------------

const clock = new Keyed();
const TICK = 'tick';
setInterval(() => clock.set(TICK, Date.now()), 1000);

/** Re-renders the caller every second; returns now (ms). */
export function useNow() {
  return useKeyed(clock, TICK) || Date.now();
}
