// Time-series charts with uPlot, loaded only when a page shows a chart so the overview's
// first load stays small. Each chart keeps a fixed height, so data arriving never moves
// the layout; drag to zoom, double-click to reset (uPlot's own gestures).

import { useEffect, useRef } from 'preact/hooks';
import { html } from './html.js';
import { addStrings, currentLang, t } from './i18n.js';

addStrings({
  en: { 'charts.time': 'Time', 'charts.show': 'Show charts' },
  ko: { 'charts.time': '시각', 'charts.show': '차트 보기' },
});

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

/** The value axis is as wide as its longest label (as uPlot's own examples measure it). */
function axisSize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1) return axis._size;
  let size = axis.ticks.size + axis.gap;
  const longest = (values || []).reduce((a, v) => (v.length > a.length ? v : a), '');
  if (longest) {
    u.ctx.font = axis.font[0];
    size += u.ctx.measureText(longest).width / devicePixelRatio;
  }
  return Math.ceil(size);
}

/** Tick steps for byte values, so axes read 512 MiB, 1 GiB rather than 476.8 MiB. */
export const BINARY_STEPS = Array.from({ length: 41 }, (_, i) => 2 ** i);

function options(width, series, spanMs, yFormat, emptyMax, incrs) {
  const grid = themeColour('--border', '#444');
  const text = themeColour('--muted', '#888');
  return {
    width,
    height: 150,
    ms: 1,
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    // From zero; an empty or flat-zero chart gets a sensible scale instead of 0…0.
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : emptyMax] } },
    axes: [
      { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, values: timeAxisFormatter(spanMs) },
      { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: axisSize, incrs, values: (u, v) => v.map(yFormat) },
    ],
    series: [
      { label: t('charts.time'), value: (u, v) => (v == null ? '—' : new Date(v).toLocaleString(currentLang())) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: themeColour(COLOURS[i % COLOURS.length], '#3b82f6'),
        width: 1.5,
        // A limit ({label, dash: true}) is drawn dashed beside the usage.
        ...(s.dash ? { dash: [6, 4] } : {}),
        points: { show: false },
        value: (u, v) => (v == null ? '—' : yFormat(v)),
      })),
    ],
  };
}

/**
 * A chart of `data` = [ts(ms)[], ...values[]] with one entry in `series` ({label}) per
 * value column; `points` is how many of them are real samples. `spanMs` picks the
 * time-axis labels; `yFormat` formats values; `emptyMax`
 * is the top of the value axis while there is no data above zero; `incrs` the tick steps.
 */
export function Chart({ id, title, data, points, series, spanMs, yFormat, emptyMax = 1, incrs }) {
  const box = useRef(null);
  const plot = useRef(null);
  const latest = useRef(data);
  latest.current = data;
  useEffect(() => {
    let alive = true;
    let observer = null;
    const build = (uPlot) => {
      if (!alive || !box.current) return;
      if (plot.current) plot.current.destroy();
      const width = Math.max(200, box.current.clientWidth);
      plot.current = new uPlot(options(width, series, spanMs, yFormat, emptyMax, incrs), latest.current, box.current);
      // The plotted data is readable from the figure (`.uplot.data`): the browser tests
      // check what is drawn, not what was fetched.
      box.current.parentElement.uplot = plot.current;
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
