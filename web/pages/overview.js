// The overview: host summary and every program as a row (a card on narrow screens).
// Each row subscribes to its own program and its own samples, so a live update repaints
// one row's cells, never the list.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt } from '../lib/i18n.js';
import { can } from '../lib/session.js';
import { hostStats, programMetrics, RANGES } from '../lib/metrics.js';
import {
  refreshPrograms,
  useAllPrograms,
  useProgram,
  useProgramNames,
  useSamples,
  programNow,
  seedSamples,
} from '../lib/stores.js';
import { Reason } from '../lib/reasons.js';
import { ImportButton } from '../lib/tomlio.js';
import { ACTIVE, href, ProgramActions, Sparkline, StateBadge, toastError, Uptime } from '../lib/ui.js';

const HOST_REFRESH_MS = 15000;

/** The first series present under one of `names`. */
function pick(series, names) {
  for (const n of names) if (series[n]) return series[n];
  return null;
}

function lastOf(values) {
  if (!values) return null;
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] != null) return values[i];
  return null;
}

function HostGauge({ id, label, values, text, max }) {
  const last = lastOf(values);
  return html`<div class="gauge" data-gauge=${id} data-value=${last == null ? '' : last}>
    <span class="gauge-label">${label}</span>
    <span class="gauge-value num">${text}</span>
    <${Sparkline} values=${values} max=${max} label=${label} width=${96} height=${26} />
  </div>`;
}

function HostSummary() {
  const [host, setHost] = useState(null);
  useEffect(() => {
    let alive = true;
    const load = () =>
      hostStats(RANGES['15m'])
        .then((h) => alive && setHost(h))
        .catch(() => alive && setHost({ available: false, series: {} }));
    load();
    const timer = setInterval(load, HOST_REFRESH_MS);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, []);
  const s = (host && host.series) || {};
  const cpu = pick(s, ['cpu_percent', 'cpu']);
  const memUsed = pick(s, ['memory_used_bytes', 'memory_bytes', 'mem_used_bytes']);
  const memTotal = lastOf(pick(s, ['memory_total_bytes', 'mem_total_bytes']));
  const diskUsed = pick(s, ['disk_used_bytes']);
  const diskTotal = lastOf(pick(s, ['disk_total_bytes']));
  const of = (used, total) => (total ? `${fmt.bytes(used)} / ${fmt.bytes(total)}` : fmt.bytes(used));
  return html`<section class="card host" aria-labelledby="host-h">
    <h2 id="host-h">${t('host.title')}</h2>
    ${host && !host.available
      ? html`<p class="muted" data-host-unavailable>${t('host.unavailable')}</p>`
      : html`<div class="gauges">
          <${HostGauge} id="cpu" label=${t('host.cpu')} values=${cpu} max=${100} text=${fmt.percent(lastOf(cpu))} />
          <${HostGauge} id="memory" label=${t('host.memory')} values=${memUsed} max=${memTotal} text=${of(lastOf(memUsed), memTotal)} />
          <${HostGauge} id="disk" label=${t('host.disk')} values=${diskUsed} max=${diskTotal} text=${of(lastOf(diskUsed), diskTotal)} />
        </div>`}
  </section>`;
}

/** Programs whose sparklines were already seeded from history during this page's life. */
const seeded = new Set();
const SPARK_HISTORY_POINTS = 90;

/** Fills a running program's sparklines from the last 15 minutes of stored samples, once. */
function useSeededSparklines(name, active) {
  useEffect(() => {
    if (!active || seeded.has(name)) return;
    seeded.add(name);
    programMetrics(name, RANGES['15m'], SPARK_HISTORY_POINTS)
      .then((m) => {
        const rows = m.ts.map((ts, i) => {
          const row = { ts, program: name };
          for (const [k, v] of Object.entries(m.series)) row[k] = v[i];
          return row;
        });
        seedSamples(
          name,
          rows.filter((r) => r.cpu_percent != null),
        );
      })
      // A sparkline without history is only emptier; live samples still fill it.
      .catch(() => seeded.delete(name));
  }, [name, active]);
}

/** CPU, memory and players cells: the only part of a row that a sample repaints. */
function RowMetrics({ name, active }) {
  useSeededSparklines(name, active);
  const s = useSamples(name);
  const latest = active && s ? s.latest : null;
  const list = active && s ? s.list : null;
  return html`
    <div role="cell" class="c-cpu" data-label=${t('col.cpu')}>
      <span class="num">${fmt.percent(latest && latest.cpu_percent)}</span>
      <${Sparkline} values=${list && list.map((x) => x.cpu_percent)} label=${t('col.cpu')} />
    </div>
    <div role="cell" class="c-mem" data-label=${t('col.memory')}>
      <span class="num">${fmt.bytes(latest && latest.memory_bytes)}</span>
      <${Sparkline} values=${list && list.map((x) => x.memory_bytes)} label=${t('col.memory')} />
    </div>
    <div role="cell" class="c-players num" data-label=${t('col.players')}>${fmt.int(latest && latest.players)}</div>`;
}

function ProgramRow({ name }) {
  const p = useProgram(name);
  if (!p) return null;
  const active = ACTIVE.has(p.state);
  return html`<div role="row" class="prow" data-program=${name}>
    <div role="cell" class="c-state"><${StateBadge} state=${p.state} /><${Reason} reason=${p.reason} /></div>
    <div role="cell" class="c-name">
      <a href=${href.program(name)}>${p.display_name || name}</a>
      ${p.display_name && html`<small class="muted">${name}</small>`}
    </div>
    <div role="cell" class="c-uptime" data-label=${t('col.uptime')}><${Uptime} startedAt=${active ? p.startedAt : null} /></div>
    <${RowMetrics} name=${name} active=${active} />
    <div role="cell" class="c-restarts num" data-label=${t('col.restarts')}>${fmt.int(p.restarts)}</div>
    <div role="cell" class="c-actions"><${ProgramActions} program=${p} /></div>
  </div>`;
}

function Counts() {
  const all = useAllPrograms();
  const running = all.filter((p) => p.state === 'running').length;
  return html`<span class="muted" data-counts>${t('overview.count', { n: fmt.int(all.length), running: fmt.int(running) })}</span>`;
}

export function Overview() {
  const names = useProgramNames();
  const [filter, setFilter] = useState('');
  useEffect(() => {
    refreshPrograms().catch(toastError);
  }, []);
  const q = filter.trim().toLowerCase();
  const shown = (names || []).filter((n) => {
    if (!q) return true;
    const p = programNow(n);
    return n.includes(q) || (p && p.display_name && p.display_name.toLowerCase().includes(q));
  });
  return html`<main id="main" tabindex="-1" class="page">
    <${HostSummary} />
    <section class="card" aria-labelledby="programs-h">
      <div class="toolbar">
        <h1 id="programs-h">${t('overview.title')}</h1>
        <${Counts} />
        <span class="grow"></span>
        <input type="search" class="filter" placeholder=${t('overview.filter')} aria-label=${t('overview.filter')}
          value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} />
        ${can('admin') && html`<a class="btn" href=${href.install()} data-new-server>${t('install.open')}</a>`}
        ${can('admin') && html`<${ImportButton} kind="program" onDone=${() => refreshPrograms().catch(() => {})} />`}
        ${can('admin') && html`<a class="btn primary" href=${href.create()}>${t('overview.new')}</a>`}
      </div>
      ${names == null
        ? html`<p class="muted">${t('common.loading')}</p>`
        : names.length === 0
          ? html`<p class="empty">${t('overview.empty')} ${can('admin')
              ? html`<a href=${href.create()}>${t('overview.emptyAdmin')}</a>`
              : t('overview.emptyCli')}</p>`
          : html`<div class="programs" role="table" aria-labelledby="programs-h">
              <div role="row" class="prow head">
                <span role="columnheader" class="c-state">${t('col.state')}</span>
                <span role="columnheader" class="c-name">${t('col.name')}</span>
                <span role="columnheader" class="c-uptime">${t('col.uptime')}</span>
                <span role="columnheader" class="c-cpu">${t('col.cpu')}</span>
                <span role="columnheader" class="c-mem">${t('col.memory')}</span>
                <span role="columnheader" class="c-players">${t('col.players')}</span>
                <span role="columnheader" class="c-restarts">${t('col.restarts')}</span>
                <span role="columnheader" class="c-actions">${t('col.actions')}</span>
              </div>
              ${shown.map((n) => html`<${ProgramRow} key=${n} name=${n} />`)}
            </div>`}
    </section>
  </main>`;
}
