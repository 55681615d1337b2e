// Metrics history over REST, normalised to columns for the charts.
//
// The metrics service answers `GET /api/programs/{name}/metrics?from=&to=&points=&agg=` and
// `GET /api/system/stats` (same parameters). Two answer shapes are accepted, so the charts
// do not depend on which one that service settles on:
//   rows:    {"points": [{"ts": 1700000000000, "cpu_percent": 12.5, …}, …]}   (or "samples")
//            where a value may also be {"avg": …, "min": …, "max": …}
//   columns: {"ts": [1700000000000, …], "series": {"cpu_percent": [12.5, …], …}}  (or "values")
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

/** `{ts: number[], series: {field: (number|null)[]}}` from either answer shape. */
export function normalise(r, agg = 'avg') {
  const rows = r && (r.points || r.samples);
  if (Array.isArray(rows)) {
    const ts = [];
    const series = {};
    rows.forEach((row, i) => {
      ts.push(row.ts);
      for (const [k, v] of Object.entries(row)) {
        if (k === 'ts' || k === 'program') continue;
        if (!series[k]) series[k] = new Array(rows.length).fill(null);
        series[k][i] = value(v, agg);
      }
    });
    return { ts, series };
  }
  if (r && Array.isArray(r.ts)) {
    const cols = r.series || r.values || {};
    const series = {};
    for (const [k, v] of Object.entries(cols)) {
      series[k] = Array.isArray(v) ? v.map((x) => value(x, agg)) : [];
    }
    return { ts: r.ts, series };
  }
  return { ts: [], series: {} };
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
