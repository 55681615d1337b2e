// Shared pieces of the interface: routing, state badges, uptimes, sparklines, the
// confirmation dialog, toasts, form fields and the program action buttons.

import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { t, fmt } from './i18n.js';
import { api, seg } from './api.js';
import { errorText, fieldText } from './errors.js';

export { errorText, fieldText };
import { allowed } from './session.js';
import { useNow, refreshProgram } from './stores.js';

// ---- routing (hash based: deep links work without server-side routes) -------------------

function parseRoute() {
  const path = location.hash.replace(/^#/, '') || '/';
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { path, parts };
}

export function useRoute() {
  const [route, setRoute] = useState(parseRoute);
  useEffect(() => {
    const on = () => setRoute(parseRoute());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export const href = {
  overview: () => '#/',
  program: (name) => `#/p/${seg(name)}`,
  edit: (name) => `#/p/${seg(name)}/edit`,
  create: () => '#/new',
  users: () => '#/users',
  settings: () => '#/settings',
  about: () => '#/about',
  alerts: () => '#/alerts',
  schedules: () => '#/schedules',
  files: (name) => `#/p/${seg(name)}/files`,
  fleet: () => '#/fleet',
  audit: () => '#/audit',
  processes: () => '#/processes',
  install: () => '#/install',
};

export function navigate(to) {
  location.hash = to;
}

// ---- program state ------------------------------------------------------------------------

export const ACTIVE = new Set(['starting', 'running', 'stopping']);

export function StateBadge({ state }) {
  return html`<span class="badge state-${state}" data-state=${state}>
    <span class="dot" aria-hidden="true"></span>${t(`state.${state}`)}
  </span>`;
}

/** Uptime text that ticks every second; only this small node re-renders. */
export function Uptime({ startedAt }) {
  const now = useNow();
  if (startedAt == null) return html`<span class="num">${t('common.none')}</span>`;
  return html`<span class="num">${fmt.duration(Math.max(0, (now - startedAt) / 1000))}</span>`;
}

/**
 * A badge for the outcome of a run, backup, restore or delivery (`succeeded`, `ok`,
 * `failed`…), coloured like the program states it resembles.
 */
const OUTCOME_CLASS = {
  succeeded: 'running',
  ok: 'running',
  delivered: 'running',
  healthy: 'running',
  running: 'starting',
  pending: 'starting',
  unknown: 'stopped',
  failing: 'backoff',
  failed: 'crashed',
  interrupted: 'crashed',
  lost: 'crashed',
  dropped: 'crashed',
  unhealthy: 'crashed',
  cancelled: 'stopped',
  skipped: 'stopped',
};

export function OutcomeBadge({ status }) {
  return html`<span class=${`badge state-${OUTCOME_CLASS[status] || 'stopped'}`} data-status=${status}>
    <span class="dot" aria-hidden="true"></span>${t(`outcome.${status}`)}
  </span>`;
}

// ---- sparkline ------------------------------------------------------------------------------

let accent = null;
addEventListener('warden-theme', () => {
  accent = null;
});

/** A tiny canvas line chart with a fixed size, so arriving data never moves the layout. */
export function Sparkline({ values, max, label, width = 72, height = 22 }) {
  const ref = useRef(null);
  useEffect(() => {
    const c = ref.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== width * dpr) {
      c.width = width * dpr;
      c.height = height * dpr;
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    if (!values || values.length < 2) return;
    if (!accent) accent = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#3b82f6';
    const top = Math.max(max ?? 0, ...values, 1e-9);
    const step = width / (values.length - 1);
    g.beginPath();
    values.forEach((v, i) => {
      const y = height - 1 - (Math.max(0, v) / top) * (height - 2);
      if (i === 0) g.moveTo(0, y);
      else g.lineTo(i * step, y);
    });
    g.strokeStyle = accent;
    g.lineWidth = 1.5;
    g.stroke();
  }, [values, max, width, height]);
  // data-points: how many values the line has (read by the browser tests).
  return html`<canvas ref=${ref} class="spark" role="img" aria-label=${label}
    data-points=${values ? values.length : 0} style=${`width:${width}px;height:${height}px`}></canvas>`;
}

// ---- confirmation dialog --------------------------------------------------------------------

let showConfirm = null;

/**
 * Asks the user to confirm; resolves to true or false. `option` (`{label, checked}`) adds
 * a checkbox whose final state is written back to `option.checked`.
 */
export function confirmAction({ title, body, action, danger = true, option = null }) {
  return new Promise((resolve) => {
    if (!showConfirm) {
      resolve(false);
      return;
    }
    showConfirm({ title, body, action, danger, option, resolve });
  });
}

/**
 * The one <dialog> used for confirmations (focus is trapped, Escape cancels). Focus starts
 * on Cancel, so a stray Enter never confirms something destructive.
 */
export function ConfirmHost() {
  const [req, setReq] = useState(null);
  const ref = useRef(null);
  useEffect(() => {
    showConfirm = setReq;
    return () => {
      showConfirm = null;
    };
  }, []);
  useEffect(() => {
    const d = ref.current;
    if (req && d && !d.open) d.showModal();
  }, [req]);
  const finish = (ok) => {
    const d = ref.current;
    if (d && d.open) d.close();
    if (req) req.resolve(ok);
    setReq(null);
  };
  return html`<dialog ref=${ref} class="confirm" aria-labelledby="confirm-title"
      onCancel=${(e) => { e.preventDefault(); finish(false); }}>
    ${req && html`<form method="dialog" onSubmit=${(e) => { e.preventDefault(); finish(true); }}>
      <h2 id="confirm-title">${req.title}</h2>
      <p>${req.body}</p>
      ${req.option &&
      html`<label class="check"><input type="checkbox" data-confirm-option checked=${req.option.checked}
        onChange=${(e) => { req.option.checked = e.currentTarget.checked; }} /> ${req.option.label}</label>`}
      <div class="row end">
        <button type="button" class="btn" autofocus onClick=${() => finish(false)}>${t('common.cancel')}</button>
        <button type="submit" class=${req.danger ? 'btn danger' : 'btn primary'} data-confirm="yes">${req.action}</button>
      </div>
    </form>`}
  </dialog>`;
}

// ---- toasts ---------------------------------------------------------------------------------

let pushToast = null;
let toastId = 0;

/** Shows a short message at the bottom of the screen (announced to screen readers). */
export function toast(text, kind = 'info') {
  if (pushToast) pushToast({ id: ++toastId, text, kind });
}

export function ToastHost() {
  const [items, setItems] = useState([]);
  useEffect(() => {
    pushToast = (item) => {
      setItems((list) => [...list.slice(-3), item]);
      setTimeout(() => setItems((list) => list.filter((i) => i.id !== item.id)), 5000);
    };
    return () => {
      pushToast = null;
    };
  }, []);
  return html`<div class="toasts" role="status" aria-live="polite">
    ${items.map((i) => html`<div key=${i.id} class=${`toast ${i.kind}`}>${i.text}</div>`)}
  </div>`;
}

/** A toast for a failed request, phrased from the API's error. */
export function toastError(e) {
  toast(errorText(e), 'error');
}

// ---- forms ----------------------------------------------------------------------------------

/** A labelled input with its help text and inline error. */
export function Field({ id, label, help, error, children }) {
  return html`<div class=${`field${error ? ' invalid' : ''}`}>
    <label for=${id}>${label}</label>
    ${children}
    ${help && html`<small id=${`${id}-help`} class="help">${help}</small>`}
    ${error && html`<small id=${`${id}-error`} class="error" role="alert">${error}</small>`}
  </div>`;
}

/**
 * The API's 422 details as `{field: sentence}` (sentences of one field joined); `known`
 * maps an API field name to the form's key, or returns null for fields the form lacks.
 */
export function errorsByField(err, known) {
  const out = {};
  for (const d of err.details || []) {
    const key = known(d.field);
    if (key) out[key] = out[key] ? `${out[key]} ${fieldText(d)}` : fieldText(d);
  }
  return out;
}

/** The details `errorsByField` could not place, as one line for the form's summary. */
export function unplacedErrors(err, known) {
  const rest = (err.details || []).filter((d) => !known(d.field));
  if (!rest.length) return (err.details || []).length ? null : errorText(err);
  return rest.map((d) => `${d.field}: ${fieldText(d)}`).join(' · ');
}

/** Copies text, also on plain-http LAN addresses where the Clipboard API is missing. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'offscreen';
  document.body.appendChild(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

// ---- program actions ------------------------------------------------------------------------

const CONFIRMED = new Set(['stop', 'restart', 'kill']);

/** Runs an action on a program, asking first for destructive ones. */
export async function runAction(name, action) {
  if (CONFIRMED.has(action)) {
    const ok = await confirmAction({
      title: t(`confirm.${action}.title`, { name }),
      body: t(`confirm.${action}.body`),
      action: t(`action.${action}`),
    });
    if (!ok) return;
  }
  try {
    await api.post(`/api/programs/${seg(name)}/${action}`);
    await refreshProgram(name);
  } catch (e) {
    toastError(e);
  }
}

/** Start/stop/restart (and kill with `full`) for whoever may control the program. */
export function ProgramActions({ program, full = false }) {
  const [busy, setBusy] = useState(false);
  if (!allowed('control', program.name)) return null;
  const active = ACTIVE.has(program.state);
  const run = async (action) => {
    setBusy(true);
    try {
      await runAction(program.name, action);
    } finally {
      setBusy(false);
    }
  };
  const button = (action, cls = 'btn') => html`<button type="button" class=${cls} disabled=${busy}
      data-action=${action} aria-label=${`${t(`action.${action}`)} ${program.name}`}
      onClick=${() => run(action)}>${t(`action.${action}`)}</button>`;
  return html`<div class="actions">
    ${active ? button('stop') : button('start', 'btn primary')}
    ${active && button('restart')}
    ${full && active && button('kill', 'btn danger')}
  </div>`;
}
