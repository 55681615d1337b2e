// Metrics history over REST, normalised to columns for the charts.
//
// The metrics service answers `GET /api/programs/{name}/metrics?from=&to=&points=&agg=` and
// `GET /api/system/stats` (same parameters) in columns:
//   {"timestamps": [1700000000000, …], "series": {"cpu_percent": [12.5, null, …], …}, "step_ms": …}
// A bucket with no sample is null in every series. Those are dropped, and a gap (one null
// point) is put back only where samples really stop for a while, so a chart draws a line
// even when the bucket is finer than the sampling interval, and a break where the program
// was not running.
// A 404 means this warden has no metrics service: callers show a note instead of a chart.

import { api, seg } from './api.js';

/** Chart ranges in ms; the same keys name them in the catalogue (`range.*`). */
export const RANGES = { '15m': 15 * 60e3, '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };

function value(v, agg) {
  if (v == null) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'object') return v[agg] ?? v.avg ?? v.value ?? null;
  return null;
}

/** Buckets at least this many typical spacings apart are drawn with a break between them. */
const GAP_FACTOR = 3;

/** `{ts: number[], series: {field: (number|null)[]}}` from the API's columns. */
export function normalise(r, agg = 'avg') {
  const stamps = r && Array.isArray(r.timestamps) ? r.timestamps : [];
  const cols = (r && r.series) || {};
  const keys = Object.keys(cols).filter((k) => Array.isArray(cols[k]));
  const kept = [];
  stamps.forEach((t, i) => {
    if (keys.some((k) => value(cols[k][i], agg) != null)) kept.push(i);
  });
  // The typical spacing of real samples: the smallest distance between kept buckets.
  let spacing = Infinity;
  for (let j = 1; j < kept.length; j += 1) spacing = Math.min(spacing, stamps[kept[j]] - stamps[kept[j - 1]]);
  const ts = [];
  const series = Object.fromEntries(keys.map((k) => [k, []]));
  kept.forEach((i, j) => {
    if (j > 0 && stamps[i] - stamps[kept[j - 1]] > GAP_FACTOR * spacing) {
      ts.push(stamps[kept[j - 1]] + spacing);
      for (const k of keys) series[k].push(null);
    }
    ts.push(stamps[i]);
    for (const k of keys) series[k].push(value(cols[k][i], agg));
  });
  return { ts, series, stepMs: (r && r.step_ms) || null };
}

async function fetchSeries(path, rangeMs, points) {
  const to = Date.now();
  const from = to - rangeMs;
  try {
    const r = await api.get(`${path}?from=${from}&to=${to}&points=${points}&agg=avg`);
    return { available: true, ...normalise(r) };
  } catch (e) {
    if (e.status === 404) return { available: false, ts: [], series: {} };
    throw e;
  }
}

/** History of one program; `available` is false when warden has no metrics service. */
export function programMetrics(name, rangeMs, points = 300) {
  return fetchSeries(`/api/programs/${seg(name)}/metrics`, rangeMs, points);
}

/** Host history (CPU, memory, disk), same conventions. */
export function hostStats(rangeMs, points = 60) {
  return fetchSeries('/api/system/stats', rangeMs, points);
}
