// Alerts: channels (kind, event and program pickers, breaker, masked target; add/edit/delete
// and "send test" for administrators), each channel's delivery log, and rules built from
// pickers (rulebuilder.js) with the API's inline validation errors.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { can } from '../lib/session.js';
import { live } from '../lib/live.js';
import {
  confirmAction,
  errorsByField,
  Field,
  OutcomeBadge,
  toast,
  toastError,
  unplacedErrors,
} from '../lib/ui.js';
import { useProgramNames } from '../lib/stores.js';
import { ExportButton, ImportButton } from '../lib/tomlio.js';
import { ConditionBuilder, conditionText, EventPicker, eventLabel, parseCondition } from './rulebuilder.js';

// Discord first and by default: it is where game communities are.
const KINDS = ['discord', 'slack', 'telegram', 'ntfy', 'webhook'];
const SEVERITIES = ['info', 'warning', 'critical'];
/** Secret fields per kind (answers mask them: they must be typed again on edit). */
const TARGET_FIELDS = {
  webhook: ['url', 'secret'],
  discord: ['url'],
  slack: ['url'],
  telegram: ['bot_token', 'chat_id', 'api_url'],
  ntfy: ['server', 'topic', 'token'],
};
const OPTIONAL = new Set(['secret', 'token', 'api_url', 'server']);

// ---- status -------------------------------------------------------------------------------

function Status({ version }) {
  const [s, setS] = useState(null);
  useEffect(() => {
    api.get('/api/alerts/status').then(setS).catch(toastError);
  }, [version]);
  return html`<dl class="facts" data-alert-status>
    ${['pending', 'delivered', 'failed', 'dropped'].map(
      (k) => html`<div key=${k}><dt>${t(`outcome.${k}`)}</dt><dd class="num">${s ? fmt.int(s[k]) : t('common.none')}</dd></div>`,
    )}
  </dl>`;
}

// ---- channels -----------------------------------------------------------------------------

const EMPTY_CHANNEL = {
  name: '',
  kind: 'discord',
  url: '',
  secret: '',
  bot_token: '',
  chat_id: '',
  api_url: '',
  server: '',
  topic: '',
  token: '',
  events: [],
  severities: [],
  programs: [],
  enabled: true,
};

function formOf(c) {
  const f = { ...EMPTY_CHANNEL, name: c.name, kind: c.target.kind, enabled: c.enabled };
  // Masked secrets are not copied: the user types them again. Plain fields are kept.
  if (c.target.kind === 'telegram') f.chat_id = c.target.chat_id || '';
  if (c.target.kind === 'ntfy') f.server = c.target.server || '';
  f.events = c.events || [];
  f.severities = c.severities || [];
  f.programs = c.programs || [];
  return f;
}

function specOf(f) {
  const target = { kind: f.kind };
  for (const key of TARGET_FIELDS[f.kind]) {
    const v = f[key].trim();
    if (v || !OPTIONAL.has(key)) target[key] = v;
  }
  return {
    name: f.name.trim(),
    target,
    enabled: f.enabled,
    events: f.events,
    severities: f.severities,
    programs: f.programs,
  };
}

const channelKey = (field) => {
  if (field === 'name') return 'name';
  const m = /^target\.(\w+)/.exec(field);
  if (m) return m[1];
  const l = /^(events|programs)\[/.exec(field);
  return l ? l[1] : null;
};

/** Program checkboxes of a channel; names no longer defined stay ticked until unticked. */
function ProgramPicker({ value, onChange }) {
  const names = useProgramNames() || [];
  const all = [...new Set([...names, ...value])];
  const toggle = (n) => (e) =>
    onChange(e.currentTarget.checked ? [...value, n] : value.filter((x) => x !== n));
  return html`<fieldset data-program-picker>
    <legend>${t('alerts.field.programs')}</legend>
    <div class="row">
      ${all.map(
        (n) => html`<label class="check c-name"><input type="checkbox" data-program-pick=${n} checked=${value.includes(n)}
          onChange=${toggle(n)} /> ${n}</label>`,
      )}
    </div>
    <small class="help">${t('alerts.field.programs.help')}</small>
  </fieldset>`;
}

function ChannelForm({ initial, editing, onDone }) {
  const [f, setF] = useState(initial);
  const [errors, setErrors] = useState({});
  const [summary, setSummary] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (key) => (e) => {
    const el = e.currentTarget;
    setF({ ...f, [key]: el.type === 'checkbox' ? el.checked : el.value });
    if (errors[key]) setErrors({ ...errors, [key]: undefined });
  };
  const toggleSeverity = (s) => (e) =>
    setF({ ...f, severities: e.currentTarget.checked ? [...f.severities, s] : f.severities.filter((x) => x !== s) });

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setSummary(null);
    const spec = specOf(f);
    try {
      if (editing) await api.put(`/api/alerts/channels/${seg(spec.name)}`, spec);
      else await api.post('/api/alerts/channels', spec);
      toast(t('alerts.channel.saved', { name: spec.name }));
      onDone(true);
    } catch (err) {
      setErrors(errorsByField(err, channelKey));
      setSummary(unplacedErrors(err, channelKey) || t('form.invalid'));
      setBusy(false);
    }
  };

  const input = (key, { type = 'text', help, placeholder } = {}) => html`<${Field} id=${`ch-${key}`}
      label=${t(`alerts.field.${key}`)} help=${help} error=${errors[key]}>
      <input id=${`ch-${key}`} type=${type} value=${f[key]} placeholder=${placeholder} autocomplete="off"
        disabled=${key === 'name' && editing} aria-invalid=${errors[key] ? 'true' : undefined}
        onInput=${set(key)} />
    <//>`;

  return html`<form class="inline-form" onSubmit=${submit} novalidate data-channel-form>
    <h3>${editing ? t('alerts.channel.edit', { name: f.name }) : t('alerts.channel.add')}</h3>
    ${summary && html`<p class="error" role="alert">${summary}</p>`}
    ${input('name', { help: t('alerts.field.name.help') })}
    <${Field} id="ch-kind" label=${t('alerts.field.kind')}>
      <select id="ch-kind" value=${f.kind} onChange=${set('kind')}>
        ${KINDS.map((k) => html`<option value=${k}>${t(`alerts.kind.${k}`)}</option>`)}
      </select>
    <//>
    ${TARGET_FIELDS[f.kind].map((key) =>
      input(key, {
        type: ['secret', 'token', 'bot_token'].includes(key) ? 'password' : 'text',
        help: editing && key !== 'chat_id' && key !== 'server' ? t('alerts.field.retype') : undefined,
      }),
    )}
    <${EventPicker} value=${f.events} onChange=${(events) => setF({ ...f, events })} />
    ${errors.events && html`<small class="error" role="alert">${errors.events}</small>`}
    <fieldset>
      <legend>${t('alerts.field.severities')}</legend>
      <div class="row">
        ${SEVERITIES.map(
          (s) => html`<label class="check"><input type="checkbox" checked=${f.severities.includes(s)}
            onChange=${toggleSeverity(s)} /> ${t(`severity.${s}`)}</label>`,
        )}
      </div>
      <small class="help">${t('alerts.field.severities.help')}</small>
    </fieldset>
    <${ProgramPicker} value=${f.programs} onChange=${(programs) => setF({ ...f, programs })} />
    ${errors.programs && html`<small class="error" role="alert">${errors.programs}</small>`}
    <label class="check"><input type="checkbox" checked=${f.enabled} onChange=${set('enabled')} /> ${t('alerts.field.enabled')}</label>
    <div class="row">
      <button type="submit" class="btn primary" disabled=${busy}>${t('common.save')}</button>
      <button type="button" class="btn" onClick=${() => onDone(false)}>${t('common.cancel')}</button>
    </div>
  </form>`;
}

function targetText(tg) {
  switch (tg.kind) {
    case 'telegram':
      return `${tg.chat_id}`;
    case 'ntfy':
      return `${tg.server} · ${tg.topic}`;
    default:
      return tg.url;
  }
}

function filtersText(c) {
  const parts = [];
  if (c.events.length) parts.push(c.events.map(eventLabel).join(', '));
  if (c.severities.length) parts.push(c.severities.map((s) => t(`severity.${s}`)).join(', '));
  if (c.programs.length) parts.push(c.programs.join(', '));
  return parts.length ? parts.join(' · ') : t('alerts.filters.all');
}

const LOG_PAGE = 20;

function DeliveryLog({ channel, version }) {
  const [rows, setRows] = useState(null);
  const [next, setNext] = useState(null);
  const page = (before) =>
    api.get(`/api/alerts/channels/${seg(channel)}/deliveries?limit=${LOG_PAGE}${before ? `&before=${before}` : ''}`);
  useEffect(() => {
    page()
      .then((r) => {
        setRows(r.deliveries);
        setNext(r.next_before ?? null);
      })
      .catch(toastError);
  }, [channel, version]);
  const more = () =>
    page(next)
      .then((r) => {
        setRows((old) => [...(old || []), ...r.deliveries]);
        setNext(r.next_before ?? null);
      })
      .catch(toastError);
  return html`<div class="sub" data-deliveries=${channel}>
    <h3>${t('alerts.log.title', { name: channel })}</h3>
    ${rows == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : rows.length === 0
        ? html`<p class="muted">${t('alerts.log.empty')}</p>`
        : html`<ul class="items">
            ${rows.map(
              (d) => html`<li key=${d.id} class="item" data-delivery=${d.id}>
                <${OutcomeBadge} status=${d.status} />
                <span class="grow">${d.title || d.event}</span>
                <span class="muted small">${t(`severity.${d.severity}`)}${d.program ? ` · ${d.program}` : ''}</span>
                <span class="muted small num">${t('alerts.log.attempts', { n: fmt.int(d.attempts) })}</span>
                <time class="muted small num">${fmt.time(d.queued_ms)}</time>
                ${d.last_error && html`<span class="error small wide">${d.last_error}</span>`}
              </li>`,
            )}
          </ul>`}
    ${next != null && html`<button type="button" class="btn" onClick=${more}>${t('common.more')}</button>`}
  </div>`;
}

function Channels({ version, bump }) {
  const [channels, setChannels] = useState(null);
  const [editing, setEditing] = useState(null); // null, 'new', or a channel
  const [logOf, setLogOf] = useState(null);
  const [testing, setTesting] = useState(null);
  const [results, setResults] = useState({});
  const admin = can('admin');

  useEffect(() => {
    api
      .get('/api/alerts/channels')
      .then((r) => setChannels(r.channels))
      .catch(toastError);
  }, [version]);

  const remove = async (c) => {
    const ok = await confirmAction({
      title: t('alerts.channel.delete.title', { name: c.name }),
      body: t('alerts.channel.delete.body'),
      action: t('common.delete'),
    });
    if (!ok) return;
    try {
      await api.del(`/api/alerts/channels/${seg(c.name)}`);
      if (logOf === c.name) setLogOf(null);
      bump();
    } catch (e) {
      toastError(e);
    }
  };

  const test = async (c) => {
    setTesting(c.name);
    try {
      const d = await api.post(`/api/alerts/channels/${seg(c.name)}/test?wait=10`);
      setResults((r) => ({ ...r, [c.name]: d }));
      bump();
    } catch (e) {
      toastError(e);
    } finally {
      setTesting(null);
    }
  };

  const done = (saved) => {
    setEditing(null);
    if (saved) bump();
  };

  return html`<section class="card" aria-labelledby="channels-h">
    <div class="toolbar">
      <h2 id="channels-h">${t('alerts.channels')}</h2>
      <span class="grow"></span>
      ${admin && html`<${ImportButton} kind="channel" onDone=${bump} />`}
      ${admin && !editing && html`<button type="button" class="btn primary" data-add-channel onClick=${() => setEditing('new')}>${t('alerts.channel.add')}</button>`}
    </div>
    ${channels == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : channels.length === 0
        ? html`<p class="muted">${t('alerts.channels.empty')}</p>`
        : html`<ul class="items">
            ${channels.map((c) => {
              const r = results[c.name];
              return html`<li key=${c.name} class="item" data-channel=${c.name}>
                <strong>${c.name}</strong>
                <span class="muted small">${t(`alerts.kind.${c.target.kind}`)}</span>
                <code class="small clip">${targetText(c.target)}</code>
                <span class="small grow">${filtersText(c)}</span>
                ${!c.enabled && html`<span class="muted small">${t('alerts.disabled')}</span>`}
                <span class=${`small breaker-${c.breaker.state}`} data-breaker=${c.breaker.state}
                  title=${t('alerts.breaker.help')}>${t(`alerts.breaker.${c.breaker.state}`)}${c.breaker.consecutive_failures
                  ? ` · ${t('alerts.breaker.failures', { n: c.breaker.consecutive_failures })}`
                  : ''}</span>
                <div class="row end">
                  <button type="button" class="btn" aria-expanded=${logOf === c.name}
                    onClick=${() => setLogOf(logOf === c.name ? null : c.name)}>${t('alerts.log')}</button>
                  ${admin &&
                  html`<button type="button" class="btn" data-test disabled=${testing === c.name} onClick=${() => test(c)}>
                      ${testing === c.name ? t('alerts.testing') : t('alerts.test')}</button>
                    <button type="button" class="btn" onClick=${() => setEditing(c)}>${t('action.edit')}</button>
                    <button type="button" class="btn danger" onClick=${() => remove(c)}>${t('common.delete')}</button>`}
                  <${ExportButton} kind="channel" name=${c.name} />
                </div>
                ${r &&
                html`<p class="wide small" role="status" data-test-result=${r.status}>
                  ${t('alerts.test.result')} <${OutcomeBadge} status=${r.status} />
                  ${r.last_status != null && html` <span class="num">HTTP ${r.last_status}</span>`}
                  ${r.last_error && html` <span class="error">${r.last_error}</span>`}
                </p>`}
              </li>`;
            })}
          </ul>`}
    ${editing &&
    html`<${ChannelForm} key=${editing === 'new' ? 'new' : editing.name} editing=${editing !== 'new'}
      initial=${editing === 'new' ? EMPTY_CHANNEL : formOf(editing)} onDone=${done} />`}
    ${logOf && html`<${DeliveryLog} channel=${logOf} version=${version} />`}
  </section>`;
}

// ---- rules --------------------------------------------------------------------------------

const EMPTY_RULE = { name: '', program: '', condition: '', severity: '', cooldown_seconds: '0', action: '', enabled: true };

const ruleForm = (r) => ({
  name: r.name,
  program: r.program || '',
  condition: r.condition,
  severity: r.severity || '',
  cooldown_seconds: String(r.cooldown_seconds),
  action: r.action || '',
  enabled: r.enabled,
});

const RULE_FIELDS = new Set(['name', 'program', 'condition', 'severity', 'cooldown_seconds', 'action']);
const ruleKey = (field) => (RULE_FIELDS.has(field) ? field : null);

function RuleForm({ initial, editing, onDone }) {
  const [f, setF] = useState(initial);
  const [cond, setCond] = useState(() => parseCondition(initial.condition));
  const names = useProgramNames() || [];
  const programs = f.program && !names.includes(f.program) ? [...names, f.program] : names;
  const [errors, setErrors] = useState({});
  const [summary, setSummary] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (key) => (e) => {
    const el = e.currentTarget;
    setF({ ...f, [key]: el.type === 'checkbox' ? el.checked : el.value });
    if (errors[key]) setErrors({ ...errors, [key]: undefined });
  };

  const submit = async (e) => {
    e.preventDefault();
    if (!/^\d+$/.test(f.cooldown_seconds.trim())) {
      setErrors({ cooldown_seconds: t('form.number') });
      return;
    }
    const condition = conditionText(cond);
    if (!condition) {
      setErrors({ condition: t('rb.incomplete') });
      return;
    }
    const spec = {
      name: f.name.trim(),
      condition,
      cooldown_seconds: Number(f.cooldown_seconds.trim()),
      enabled: f.enabled,
    };
    if (f.program.trim()) spec.program = f.program.trim();
    if (f.severity) spec.severity = f.severity;
    if (f.action) spec.action = f.action;
    setBusy(true);
    setSummary(null);
    try {
      if (editing) await api.put(`/api/alerts/rules/${seg(spec.name)}`, spec);
      else await api.post('/api/alerts/rules', spec);
      toast(t('alerts.rule.saved', { name: spec.name }));
      onDone(true);
    } catch (err) {
      setErrors(errorsByField(err, ruleKey));
      setSummary(unplacedErrors(err, ruleKey) || t('form.invalid'));
      setBusy(false);
    }
  };

  const input = (key, help) => html`<${Field} id=${`ru-${key}`} label=${t(`alerts.rule.${key}`)} help=${help} error=${errors[key]}>
      <input id=${`ru-${key}`} value=${f[key]} autocomplete="off" disabled=${key === 'name' && editing}
        aria-invalid=${errors[key] ? 'true' : undefined} aria-describedby=${errors[key] ? `ru-${key}-error` : undefined}
        onInput=${set(key)} />
    <//>`;

  return html`<form class="inline-form" onSubmit=${submit} novalidate data-rule-form>
    <h3>${editing ? t('alerts.rule.edit', { name: f.name }) : t('alerts.rule.add')}</h3>
    ${summary && html`<p class="error" role="alert">${summary}</p>`}
    ${input('name')}
    <${Field} id="ru-program" label=${t('alerts.rule.program')} help=${t('alerts.rule.program.help')} error=${errors.program}>
      <select id="ru-program" value=${f.program} onChange=${set('program')}>
        <option value="">${t('alerts.rule.everyProgram')}</option>
        ${programs.map((n) => html`<option value=${n}>${n}</option>`)}
      </select>
    <//>
    <${ConditionBuilder} c=${cond} error=${errors.condition} onChange=${(c) => {
      setCond(c);
      if (errors.condition) setErrors({ ...errors, condition: undefined });
    }} />
    <${Field} id="ru-severity" label=${t('alerts.rule.severity')} error=${errors.severity}>
      <select id="ru-severity" value=${f.severity} onChange=${set('severity')}>
        <option value="">${t('alerts.rule.severity.default')}</option>
        ${SEVERITIES.map((s) => html`<option value=${s}>${t(`severity.${s}`)}</option>`)}
      </select>
    <//>
    ${input('cooldown_seconds')}
    <${Field} id="ru-action" label=${t('alerts.rule.action')} error=${errors.action}>
      <select id="ru-action" value=${f.action} onChange=${set('action')}>
        <option value="">${t('alerts.rule.action.none')}</option>
        <option value="restart">${t('action.restart')}</option>
      </select>
    <//>
    <label class="check"><input type="checkbox" checked=${f.enabled} onChange=${set('enabled')} /> ${t('alerts.field.enabled')}</label>
    <div class="row">
      <button type="submit" class="btn primary" disabled=${busy}>${t('common.save')}</button>
      <button type="button" class="btn" onClick=${() => onDone(false)}>${t('common.cancel')}</button>
    </div>
  </form>`;
}

function Rules() {
  const [rules, setRules] = useState(null);
  const [editing, setEditing] = useState(null);
  const [version, setVersion] = useState(0);
  const admin = can('admin');
  useEffect(() => {
    api
      .get('/api/alerts/rules')
      .then((r) => setRules(r.rules))
      .catch(toastError);
  }, [version]);

  const remove = async (r) => {
    const ok = await confirmAction({
      title: t('alerts.rule.delete.title', { name: r.name }),
      body: t('alerts.rule.delete.body'),
      action: t('common.delete'),
    });
    if (!ok) return;
    api
      .del(`/api/alerts/rules/${seg(r.name)}`)
      .then(() => setVersion((v) => v + 1))
      .catch(toastError);
  };
  const done = (saved) => {
    setEditing(null);
    if (saved) setVersion((v) => v + 1);
  };

  return html`<section class="card" aria-labelledby="rules-h">
    <div class="toolbar">
      <h2 id="rules-h">${t('alerts.rules')}</h2>
      <span class="grow"></span>
      ${admin && !editing && html`<button type="button" class="btn primary" data-add-rule onClick=${() => setEditing('new')}>${t('alerts.rule.add')}</button>`}
    </div>
    ${rules == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : rules.length === 0
        ? html`<p class="muted">${t('alerts.rules.empty')}</p>`
        : html`<ul class="items">
            ${rules.map(
              (r) => html`<li key=${r.name} class="item" data-rule=${r.name}>
                <strong>${r.name}</strong>
                <code class="small">${r.condition}</code>
                <span class="small muted grow">${r.program || t('alerts.rule.everyProgram')}
                  ${r.severity ? ` · ${t(`severity.${r.severity}`)}` : ''}
                  ${r.action ? ` · ${t('action.restart')}` : ''}
                  ${r.cooldown_seconds ? ` · ${t('alerts.rule.cooldown', { d: fmt.duration(r.cooldown_seconds) })}` : ''}</span>
                ${!r.enabled && html`<span class="muted small">${t('alerts.disabled')}</span>`}
                ${admin &&
                html`<div class="row end">
                  <button type="button" class="btn" onClick=${() => setEditing(r)}>${t('action.edit')}</button>
                  <button type="button" class="btn danger" onClick=${() => remove(r)}>${t('common.delete')}</button>
                </div>`}
              </li>`,
            )}
          </ul>`}
    ${editing &&
    html`<${RuleForm} key=${editing === 'new' ? 'new' : editing.name} editing=${editing !== 'new'}
      initial=${editing === 'new' ? EMPTY_RULE : ruleForm(editing)} onDone=${done} />`}
  </section>`;
}

// ---- page ---------------------------------------------------------------------------------

export function AlertsPage() {
  // Bumped after changes and on resync: channels, their breakers and the log refetch.
  const [version, setVersion] = useState(0);
  const bump = () => setVersion((v) => v + 1);
  useEffect(() => live.onResync(bump), []);
  return html`<main id="main" tabindex="-1" class="page" data-alerts-page>
    <h1>${t('nav.alerts')}</h1>
    <${Status} version=${version} />
    <${Channels} version=${version} bump=${bump} />
    <${Rules} />
  </main>`;
}
