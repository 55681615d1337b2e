// One program: status and actions, resource charts, the availability strip, the live console with search, copy
// and a command box with history, and the events timeline.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { allowed } from '../lib/session.js';
import { live } from '../lib/live.js';
import { BINARY_STEPS, Chart } from '../lib/charts.js';
import { Backups } from './backups.js';
import { AvailabilityStrip } from '../lib/pictures.js';
import { ExportButton } from '../lib/tomlio.js';
import { GamePanel } from './game.js';
import { UpdatePanel } from './update.js';
import { programMetrics, RANGES } from '../lib/metrics.js';
import { refreshProgram, useProgram } from '../lib/stores.js';
import { Reason } from '../lib/reasons.js';
import { eventKindLabel, eventText, exitText } from '../lib/events.js';
import {
  ACTIVE,
  confirmAction,
  copyText,
  href,
  navigate,
  ProgramActions,
  StateBadge,
  toast,
  toastError,
  Uptime,
} from '../lib/ui.js';

// ---- charts ---------------------------------------------------------------------------------

const LIVE_RANGES = new Set(['15m', '1h']);
const FIELDS = ['cpu_percent', 'memory_bytes', 'players', 'disk_read_bps', 'disk_write_bps'];
const EMPTY = { ts: [], ...Object.fromEntries(FIELDS.map((f) => [f, []])) };

/** Phones open the program page on state, actions and console; charts wait for a tap. */
const PHONE = '(max-width: 600px)';

/** The newest plotted value of a column, or null. */
function newest(col) {
  for (let i = col.length - 1; i >= 0; i -= 1) if (col[i] != null) return col[i];
  return null;
}

/** "Memory 1.2 GiB of 6 GiB · CPU 12 % of 50 %": usage beside the limits, when set. */
function Usage({ data, limits }) {
  const mem = limits && limits.memory_max;
  const cpu = limits && limits.cpu_max;
  if (!mem && !cpu) return null;
  const usedMem = newest(data.memory_bytes);
  const usedCpu = newest(data.cpu_percent);
  return html`<p class="muted small" data-usage>
    ${mem ? html`<span data-usage-memory>${t('usage.memory', { used: fmt.bytes(usedMem), limit: fmt.bytes(mem) })}</span>` : null}
    ${mem && cpu ? ' · ' : null}
    ${cpu ? html`<span data-usage-cpu>${t('usage.cpu', { used: fmt.percent(usedCpu), limit: fmt.percent(cpu) })}</span>` : null}
  </p>`;
}

function Charts({ name, limits }) {
  const [expanded, setExpanded] = useState(() => !matchMedia(PHONE).matches);
  const [range, setRange] = useState('15m');
  const [data, setData] = useState(EMPTY);
  const [available, setAvailable] = useState(true);
  const span = RANGES[range];

  useEffect(() => {
    let alive = true;
    const load = () =>
      programMetrics(name, span)
        .then((m) => {
          if (!alive) return;
          setAvailable(m.available);
          const cols = { ts: m.ts };
          for (const f of FIELDS) cols[f] = m.series[f] || m.ts.map(() => null);
          setData(cols);
        })
        .catch(toastError);
    load();
    const unresync = live.onResync(load);
    return () => {
      alive = false;
      unresync();
    };
  }, [name, range]);

  useEffect(() => {
    if (!LIVE_RANGES.has(range)) return undefined;
    return live.subscribe(`samples:${name}`, (s) =>
      setData((d) => {
        if (d.ts.length && s.ts <= d.ts[d.ts.length - 1]) return d;
        // Keep the window: drop points that fell out of the range.
        const cut = s.ts - span;
        let first = 0;
        while (first < d.ts.length && d.ts[first] < cut) first += 1;
        const next = { ts: [...d.ts.slice(first), s.ts] };
        for (const f of FIELDS) next[f] = [...d[f].slice(first), s[f] ?? null];
        return next;
      }),
    );
  }, [name, range]);

  // The time axis always shows the whole range: a point without values marks its start
  // (and, with no data at all, its end), so a few fresh samples do not fill the chart.
  const shown = useMemo(() => {
    const n = data.ts.length;
    const end = n ? data.ts[n - 1] : Date.now();
    const start = end - span;
    if (n && data.ts[0] <= start) return data;
    const padded = { ts: n ? [start, ...data.ts] : [start, end] };
    for (const f of FIELDS) padded[f] = n ? [null, ...data[f]] : [null, null];
    return padded;
  }, [data, span]);
  // A limit is drawn as a flat line beside the usage.
  const memLimit = (limits && limits.memory_max) || null;
  const cpuLimit = (limits && limits.cpu_max) || null;
  const cpu = useMemo(
    () => (cpuLimit ? [shown.ts, shown.cpu_percent, shown.ts.map(() => cpuLimit)] : [shown.ts, shown.cpu_percent]),
    [shown, cpuLimit],
  );
  const mem = useMemo(
    () => (memLimit ? [shown.ts, shown.memory_bytes, shown.ts.map(() => memLimit)] : [shown.ts, shown.memory_bytes]),
    [shown, memLimit],
  );
  const cpuSeries = cpuLimit ? [{ label: t('charts.cpu') }, { label: t('charts.limit'), dash: true }] : [{ label: t('charts.cpu') }];
  const memSeries = memLimit
    ? [{ label: t('charts.memory') }, { label: t('charts.limit'), dash: true }]
    : [{ label: t('charts.memory') }];
  const players = useMemo(() => [shown.ts, shown.players], [shown]);
  const disk = useMemo(() => [shown.ts, shown.disk_read_bps, shown.disk_write_bps], [shown]);
  const points = data.ts.length;
  const noHistory = !available && data.ts.length === 0;

  if (!expanded) {
    return html`<section class="card charts-card" aria-labelledby="charts-h" data-charts-collapsed>
      <div class="toolbar">
        <h2 id="charts-h">${t('charts.title')}</h2>
        <span class="grow"></span>
        <button type="button" class="btn" data-show-charts onClick=${() => setExpanded(true)}>${t('charts.show')}</button>
      </div>
      <${Usage} data=${data} limits=${limits} />
    </section>`;
  }
  return html`<section class="card charts-card" aria-labelledby="charts-h">
    <div class="toolbar">
      <h2 id="charts-h">${t('charts.title')}</h2>
      <span class="grow"></span>
      <div class="segmented" role="group" aria-label=${t('charts.range')}>
        ${Object.keys(RANGES).map(
          (r) => html`<button type="button" class=${r === range ? 'btn on' : 'btn'} aria-pressed=${r === range}
            data-range=${r} onClick=${() => setRange(r)}>${t(`range.${r}`)}</button>`,
        )}
      </div>
    </div>
    <${Usage} data=${data} limits=${limits} />
    <p class=${noHistory ? 'note' : 'muted small'} data-metrics-unavailable=${noHistory ? '' : undefined}>
      ${noHistory ? t('charts.unavailable') : t('charts.zoomHint')}
    </p>
    <div class="charts">
      <${Chart} id="cpu" points=${points} title=${t('charts.cpu')} data=${cpu} spanMs=${span}
        series=${cpuSeries} yFormat=${(v) => fmt.percent(v)} emptyMax=${Math.max(100, cpuLimit || 0)} />
      <${Chart} id="memory" points=${points} title=${t('charts.memory')} data=${mem} spanMs=${span}
        series=${memSeries} yFormat=${(v) => fmt.bytes(v)} emptyMax=${Math.max(1024 ** 3, memLimit || 0)} incrs=${BINARY_STEPS} />
      <${Chart} id="players" points=${points} title=${t('charts.players')} data=${players} spanMs=${span}
        series=${[{ label: t('charts.players') }]} yFormat=${(v) => fmt.int(v)} emptyMax=${10} />
      <${Chart} id="disk" points=${points} title=${t('charts.disk')} data=${disk} spanMs=${span}
        series=${[{ label: t('charts.read') }, { label: t('charts.write') }]} yFormat=${(v) => fmt.rate(v)}
        emptyMax=${1024 ** 2} incrs=${BINARY_STEPS} />
    </div>
  </section>`;
}

// ---- console --------------------------------------------------------------------------------

const TAIL_LINES = 500;
const MAX_LINES = 2000;
const HISTORY_MAX = 50;
let lineId = 0;

const lineKey = (l) => `${l.ts}|${l.stream}|${l.text}`;
const withId = (l) => ({ id: ++lineId, ts: l.ts, stream: l.stream, text: l.text });

function loadHistory(name) {
  try {
    return JSON.parse(localStorage.getItem(`warden.history.${name}`)) || [];
  } catch {
    return [];
  }
}

function CommandBox({ name, running }) {
  const [line, setLine] = useState('');
  const [history, setHistory] = useState(() => loadHistory(name));
  const [pos, setPos] = useState(-1);
  const [busy, setBusy] = useState(false);

  const send = async (e) => {
    e.preventDefault();
    if (!line.trim()) return;
    setBusy(true);
    try {
      await api.post(`/api/programs/${seg(name)}/console`, { line });
      const next = [...history.filter((h) => h !== line), line].slice(-HISTORY_MAX);
      setHistory(next);
      localStorage.setItem(`warden.history.${name}`, JSON.stringify(next));
      setLine('');
      setPos(-1);
    } catch (err) {
      toastError(err);
    } finally {
      setBusy(false);
    }
  };

  const onKey = (e) => {
    if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
    if (!history.length) return;
    e.preventDefault();
    let p = pos;
    if (e.key === 'ArrowUp') p = p < 0 ? history.length - 1 : Math.max(0, p - 1);
    else p = p < 0 ? -1 : p + 1 >= history.length ? -1 : p + 1;
    setPos(p);
    setLine(p < 0 ? '' : history[p]);
  };

  return html`<form class="command" onSubmit=${send}>
    <label for="console-input" class="sr-only">${t('console.command')}</label>
    <input id="console-input" autocomplete="off" spellcheck="false" value=${line}
      placeholder=${running ? t('console.placeholder') : t('console.notRunning')} disabled=${!running}
      onInput=${(e) => setLine(e.currentTarget.value)} onKeyDown=${onKey} />
    <button type="submit" class="btn primary" disabled=${!running || busy}>${t('console.send')}</button>
  </form>`;
}

function Console({ name, running }) {
  const [lines, setLines] = useState([]);
  const [query, setQuery] = useState('');
  const [follow, setFollow] = useState(true);
  const box = useRef(null);

  useEffect(() => {
    let alive = true;
    let pending = [];
    let frame = 0;
    let loaded = false;
    // Lines are applied once per animation frame, however fast they arrive.
    const flush = () => {
      frame = 0;
      const batch = pending;
      pending = [];
      setLines((ls) => [...ls, ...batch.map(withId)].slice(-MAX_LINES));
    };
    const unsubscribe = live.subscribe(`console:${name}`, (l) => {
      pending.push(l);
      if (loaded && !frame) frame = requestAnimationFrame(flush);
    });
    const load = () =>
      api
        .get(`/api/programs/${seg(name)}/console?lines=${TAIL_LINES}`)
        .then((r) => {
          if (!alive) return;
          // Live lines that raced the tail are kept unless the tail already has them.
          const seen = new Set(r.lines.slice(-200).map(lineKey));
          const extra = pending.filter((l) => !seen.has(lineKey(l)));
          pending = [];
          loaded = true;
          setLines([...r.lines, ...extra].map(withId).slice(-MAX_LINES));
        })
        .catch(toastError);
    load();
    const unresync = live.onResync(load);
    return () => {
      alive = false;
      unsubscribe();
      unresync();
      cancelAnimationFrame(frame);
    };
  }, [name]);

  const q = query.trim().toLowerCase();
  const shown = q ? lines.filter((l) => l.text.toLowerCase().includes(q)) : lines;

  useEffect(() => {
    const el = box.current;
    if (follow && el) el.scrollTop = el.scrollHeight;
  }, [shown, follow]);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
    if (atBottom !== follow) setFollow(atBottom);
  };

  const copy = async () => {
    try {
      await copyText(shown.map((l) => l.text).join('\n'));
      toast(t('common.copied'));
    } catch (e) {
      toastError(e);
    }
  };

  return html`<section class="card console-card" aria-labelledby="console-h">
    <div class="toolbar">
      <h2 id="console-h">${t('console.title')}</h2>
      <span class="muted small num">${t('console.shown', { n: fmt.int(shown.length) })}</span>
      <span class="grow"></span>
      <input type="search" class="filter" placeholder=${t('console.search')} aria-label=${t('console.search')}
        value=${query} onInput=${(e) => setQuery(e.currentTarget.value)} />
      <label class="check"><input type="checkbox" checked=${follow}
        onChange=${(e) => setFollow(e.currentTarget.checked)} /> ${t('console.follow')}</label>
      <button type="button" class="btn" onClick=${copy}>${t('console.copy')}</button>
    </div>
    <div class="console" ref=${box} onScroll=${onScroll} role="log" tabindex="0" aria-labelledby="console-h">
      ${shown.length === 0
        ? html`<p class="muted">${lines.length ? t('console.noMatch') : t('console.empty')}</p>`
        : shown.map((l) => html`<div key=${l.id} class=${`line ${l.stream}`}>${l.text}</div>`)}
    </div>
    <${CommandBox} name=${name} running=${running} />
  </section>`;
}

// ---- events ---------------------------------------------------------------------------------

const EVENT_PAGE = 30;

function Events({ name }) {
  const [events, setEvents] = useState(null);
  const [next, setNext] = useState(null);

  const page = (before) =>
    api.get(`/api/programs/${seg(name)}/events?limit=${EVENT_PAGE}${before ? `&before=${before}` : ''}`);

  useEffect(() => {
    let alive = true;
    let timer = 0;
    const loadNewest = () =>
      page()
        .then((r) => {
          if (!alive) return;
          // Keep older pages the user loaded; the newest page replaces what it covers.
          setEvents((old) => {
            const oldest = r.events.length ? r.events[r.events.length - 1].id : Infinity;
            return [...r.events, ...(old || []).filter((e) => e.id < oldest)];
          });
          setNext((n) => (n == null ? r.next_before : n));
        })
        .catch(toastError);
    loadNewest();
    const unsubscribe = live.subscribe('events', (ev) => {
      // Backup progress is not a stored event; everything else of this program is.
      if (ev.program !== name || (ev.type === 'backup' && (ev.kind === 'progress' || ev.kind === 'step'))) return;
      clearTimeout(timer);
      // Written to the store before it is published, so a refetch finds it.
      timer = setTimeout(loadNewest, 200);
    });
    const unresync = live.onResync(loadNewest);
    return () => {
      alive = false;
      clearTimeout(timer);
      unsubscribe();
      unresync();
    };
  }, [name]);

  const more = () =>
    page(next)
      .then((r) => {
        setEvents((old) => [...(old || []), ...r.events]);
        setNext(r.next_before ?? null);
      })
      .catch(toastError);

  return html`<section class="card" aria-labelledby="events-h">
    <h2 id="events-h">${t('events.title')}</h2>
    ${events == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : events.length === 0
        ? html`<p class="muted">${t('events.empty')}</p>`
        : html`<ol class="timeline">
            ${events.map(
              (e) => html`<li key=${e.id}>
                <time class="muted num" datetime=${e.time}>${fmt.time(e.ts)}</time>
                ${e.kind === 'state' && e.data && e.data.to ? html`<${StateBadge} state=${e.data.to} />` : html`<span class="kind" data-kind=${e.kind}>${eventKindLabel(e.kind)}</span>`}
                <span class="msg">${eventText(e)}</span>
              </li>`,
            )}
          </ol>`}
    ${next != null && html`<button type="button" class="btn" onClick=${more}>${t('events.more')}</button>`}
  </section>`;
}

// ---- page -----------------------------------------------------------------------------------

async function deleteProgram(p) {
  const ok = await confirmAction({
    title: t('confirm.delete.title', { name: p.name }),
    body: t('confirm.delete.body'),
    action: t('action.delete'),
  });
  if (!ok) return;
  try {
    await api.del(`/api/programs/${seg(p.name)}?force=${ACTIVE.has(p.state)}`);
    await refreshProgram(p.name);
    navigate(href.overview());
  } catch (e) {
    toastError(e);
  }
}

function Header({ p }) {
  const active = ACTIVE.has(p.state);
  return html`<section class="card program-head">
    <div class="toolbar">
      <h1>${p.display_name || p.name}</h1>
      ${p.display_name && html`<span class="muted">${p.name}</span>`}
      <${StateBadge} state=${p.state} />
      <span class="grow"></span>
      <${ProgramActions} program=${p} full />
      ${allowed('files.read', p.name) && html`<a class="btn" href=${href.files(p.name)}>${t('files.open')}</a>`}
      <${ExportButton} kind="program" name=${p.name} />
      ${allowed('define', p.name) &&
      html`<a class="btn" href=${href.edit(p.name)}>${t('action.edit')}</a>
        <button type="button" class="btn danger" onClick=${() => deleteProgram(p)}>${t('action.delete')}</button>`}
    </div>
    <dl class="facts">
      <div><dt>${t('col.uptime')}</dt><dd><${Uptime} startedAt=${active ? p.startedAt : null} /></dd></div>
      <div><dt>PID</dt><dd class="num">${p.pid ?? t('common.none')}</dd></div>
      <div><dt>${t('program.restarts')}</dt><dd class="num">${fmt.int(p.restarts)}</dd></div>
      <div><dt>${t('program.lastExit')}</dt><dd>${p.last_exit ? exitText(p.last_exit) : p.reason && p.reason.code === 'spawn_failed' ? t('program.neverStarted') : t('common.none')}</dd></div>
      <div><dt>${t('program.changed')}</dt><dd class="num">${fmt.time(p.since_ms)}</dd></div>
    </dl>
    ${p.reason && html`<p class="note error-note"><${Reason} reason=${p.reason} /></p>`}
    ${p.adopted && html`<p class="muted small">${t('program.adopted')}</p>`}
    <details>
      <summary>${t('program.definition')}</summary>
      <dl class="facts">
        <div><dt>${t('program.command')}</dt><dd><code>${[p.command, ...p.args].join(' ')}</code></dd></div>
        <div><dt>${t('program.cwd')}</dt><dd><code>${p.cwd || t('common.none')}</code></dd></div>
        <div><dt>${t('program.policy')}</dt><dd>${t(`form.policy.${p.restart.policy}`)}</dd></div>
      </dl>
    </details>
  </section>`;
}

export function ProgramPage({ name }) {
  const p = useProgram(name);
  const [missing, setMissing] = useState(false);
  useEffect(() => {
    setMissing(false);
    refreshProgram(name).then((found) => setMissing(!found));
  }, [name]);
  if (!p) {
    return html`<main id="main" tabindex="-1" class="page">
      <p class="muted">${missing ? t('program.notFound', { name }) : t('common.loading')}</p>
      <a href=${href.overview()}>${t('common.back')}</a>
    </main>`;
  }
  return html`<main id="main" tabindex="-1" class="page" data-program-page=${name}>
    <${Header} p=${p} />
    ${p.game && html`<${GamePanel} p=${p} />`}
    <${Charts} name=${name} limits=${p.limits} />
    <${AvailabilityStrip} name=${name} />
    ${allowed('console', name) && html`<${Console} name=${name} running=${p.state === 'running' || p.state === 'starting'} />`}
    <${UpdatePanel} name=${name} />
    <${Backups} program=${p} />
    <${Events} name=${name} />
  </main>`;
}
