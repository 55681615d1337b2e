// Time-series charts with uPlot, loaded only when a page shows a chart so the overview's
// first load stays small. Each chart keeps a fixed height, so data arriving never moves
// the layout; drag to zoom, double-click to reset (uPlot's own gestures).

import { useEffect, useRef } from 'preact/hooks';
import { html } from './html.js';
import { currentLang } from './i18n.js';

let loading = null;
function loadUPlot() {
  if (!loading) {
    loading = Promise.all([
      import('../vendor/uPlot.esm.js'),
      new Promise((resolve) => {
        // uPlot's own stylesheet, once; failure only costs the legend's looks.
        const link = document.createElement('link');
        link.rel = 'stylesheet';
        link.href = new URL('../vendor/uPlot.min.css', import.meta.url).href;
        link.onload = resolve;
        link.onerror = resolve;
        document.head.appendChild(link);
      }),
    ]).then(([m]) => m.default);
  }
  return loading;
}

const COLOURS = ['--accent', '--chart-2'];

function themeColour(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function timeAxisFormatter(spanMs) {
  const opts = spanMs <= 86400e3 ? { hour: '2-digit', minute: '2-digit' } : { month: 'numeric', day: 'numeric' };
  const f = new Intl.DateTimeFormat(currentLang(), opts);
  return (u, splits) => splits.map((v) => f.format(new Date(v)));
}

function options(width, series, spanMs, yFormat) {
  const grid = themeColour('--border', '#444');
  const text = themeColour('--muted', '#888');
  return {
    width,
    height: 150,
    ms: 1,
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, 1e-9) * 1.1] } },
    axes: [
      { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, values: timeAxisFormatter(spanMs) },
      { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 64, values: (u, v) => v.map(yFormat) },
    ],
    series: [
      { value: (u, v) => (v == null ? '' : new Date(v).toLocaleString(currentLang())) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: themeColour(COLOURS[i % COLOURS.length], '#3b82f6'),
        width: 1.5,
        points: { show: false },
        value: (u, v) => (v == null ? '—' : yFormat(v)),
      })),
    ],
  };
}

/**
 * A chart of `data` = [ts(ms)[], ...values[]] with one entry in `series` ({label}) per
 * value column. `spanMs` picks the time-axis labels; `yFormat` formats values.
 */
export function Chart({ id, title, data, series, spanMs, yFormat }) {
  const box = useRef(null);
  const plot = useRef(null);
  const latest = useRef(data);
  latest.current = data;
  const points = data[0].length;
  useEffect(() => {
    let alive = true;
    let observer = null;
    const build = (uPlot) => {
      if (!alive || !box.current) return;
      if (plot.current) plot.current.destroy();
      const width = Math.max(200, box.current.clientWidth);
      plot.current = new uPlot(options(width, series, spanMs, yFormat), latest.current, box.current);
    };
    loadUPlot().then((uPlot) => {
      build(uPlot);
      observer = new ResizeObserver(() => {
        if (plot.current && box.current) {
          plot.current.setSize({ width: Math.max(200, box.current.clientWidth), height: 150 });
        }
      });
      if (box.current) observer.observe(box.current);
      addEventListener('warden-theme', rebuild);
    });
    const rebuild = () => loadUPlot().then(build);
    return () => {
      alive = false;
      if (observer) observer.disconnect();
      removeEventListener('warden-theme', rebuild);
      if (plot.current) plot.current.destroy();
      plot.current = null;
    };
    // Rebuilt when the range (axis labels) or language changes; data goes through setData.
  }, [spanMs, currentLang(), series.length]);
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);
  return html`<figure class="chart" data-chart=${id} data-points=${points}>
    <figcaption>${title}</figcaption>
    <div class="chart-box" ref=${box}></div>
  </figure>`;
}
