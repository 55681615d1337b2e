// Create or edit a program. The API validates; its 422 `details` are shown beside the
// fields they name. Only what the browser can know for sure (numbers, KEY=value lines) is
// checked here first.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { can } from '../lib/session.js';
import { refreshProgram } from '../lib/stores.js';
import { Field, href, navigate, toast } from '../lib/ui.js';

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'];
const POLICIES = ['never', 'on-failure', 'always'];
const NUMBERS = [
  'start_seconds',
  'restart.backoff_initial_ms',
  'restart.backoff_max_ms',
  'restart.max_failed_starts',
  'restart.window_seconds',
  'stop.timeout_seconds',
];

/** The API's defaults (what an empty definition gets). */
const DEFAULTS = {
  name: '',
  display_name: '',
  command: '',
  args: '',
  cwd: '',
  env: '',
  autostart: false,
  start_seconds: '1',
  'restart.policy': 'on-failure',
  'restart.backoff_initial_ms': '1000',
  'restart.backoff_max_ms': '60000',
  'restart.max_failed_starts': '5',
  'restart.window_seconds': '60',
  'stop.signal': 'SIGTERM',
  'stop.stdin': '',
  'stop.timeout_seconds': '30',
};

function fromSpec(p) {
  return {
    name: p.name,
    display_name: p.display_name || '',
    command: p.command,
    args: (p.args || []).join('\n'),
    cwd: p.cwd || '',
    env: Object.entries(p.env || {})
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    autostart: !!p.autostart,
    start_seconds: String(p.start_seconds),
    'restart.policy': p.restart.policy,
    'restart.backoff_initial_ms': String(p.restart.backoff_initial_ms),
    'restart.backoff_max_ms': String(p.restart.backoff_max_ms),
    'restart.max_failed_starts': String(p.restart.max_failed_starts),
    'restart.window_seconds': String(p.restart.window_seconds),
    'stop.signal': p.stop.signal,
    'stop.stdin': p.stop.stdin || '',
    'stop.timeout_seconds': String(p.stop.timeout_seconds),
  };
}

/** `[spec, errors]`: the JSON the API takes, and problems found before sending it. */
function toSpec(f) {
  const errors = {};
  const num = (key) => {
    const v = f[key].trim();
    if (!/^\d+$/.test(v)) {
      errors[key] = t('form.number');
      return 0;
    }
    return Number(v);
  };
  const env = {};
  f.env.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const at = line.indexOf('=');
    if (at <= 0) errors.env = t('form.env.bad', { n: i + 1 });
    else env[line.slice(0, at).trim()] = line.slice(at + 1);
  });
  const spec = {
    name: f.name.trim(),
    command: f.command.trim(),
    args: f.args.split('\n').filter((a) => a !== ''),
    env,
    autostart: f.autostart,
    start_seconds: num('start_seconds'),
    restart: {
      policy: f['restart.policy'],
      backoff_initial_ms: num('restart.backoff_initial_ms'),
      backoff_max_ms: num('restart.backoff_max_ms'),
      max_failed_starts: num('restart.max_failed_starts'),
      window_seconds: num('restart.window_seconds'),
    },
    stop: { signal: f['stop.signal'], timeout_seconds: num('stop.timeout_seconds') },
  };
  if (f.display_name.trim()) spec.display_name = f.display_name.trim();
  if (f.cwd.trim()) spec.cwd = f.cwd.trim();
  if (f['stop.stdin'].trim()) spec.stop.stdin = f['stop.stdin'];
  return [spec, errors];
}

const fieldId = (key) => `f-${key.replace('.', '-')}`;

function focusFirst(errors) {
  const first = Object.keys(errors)[0];
  if (first) requestAnimationFrame(() => document.getElementById(fieldId(first))?.focus());
}

export function ProgramForm({ name }) {
  const editing = name != null;
  const [form, setForm] = useState(editing ? null : DEFAULTS);
  const [errors, setErrors] = useState({});
  const [summary, setSummary] = useState(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!editing) return;
    api
      .get(`/api/programs/${seg(name)}`)
      .then((p) => setForm(fromSpec(p)))
      .catch((e) => setSummary(e.message));
  }, [name]);

  if (!can('admin')) return html`<main id="main" tabindex="-1" class="page"><p>${t('common.forbidden')}</p></main>`;
  if (!form) return html`<main id="main" tabindex="-1" class="page"><p class="muted">${summary || t('common.loading')}</p></main>`;

  const set = (key) => (e) => {
    const v = e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value;
    setForm({ ...form, [key]: v });
    if (errors[key]) setErrors({ ...errors, [key]: undefined });
  };

  const submit = async (e) => {
    e.preventDefault();
    const [spec, local] = toSpec(form);
    if (Object.keys(local).length) {
      setErrors(local);
      setSummary(t('form.invalid'));
      focusFirst(local);
      return;
    }
    setBusy(true);
    setSummary(null);
    try {
      if (editing) await api.put(`/api/programs/${seg(name)}`, spec);
      else await api.post('/api/programs', spec);
      await refreshProgram(spec.name);
      toast(t('form.saved', { name: spec.name }));
      navigate(href.program(spec.name));
    } catch (err) {
      const byField = {};
      for (const d of err.details || []) {
        const key = d.field in DEFAULTS ? d.field : null;
        if (key) byField[key] = byField[key] ? `${byField[key]} ${d.message}` : d.message;
      }
      setErrors(byField);
      setSummary(Object.keys(byField).length ? t('form.invalid') : err.message);
      focusFirst(byField);
      setBusy(false);
    }
  };

  const describedBy = (key) =>
    [errors[key] && `${fieldId(key)}-error`, `${fieldId(key)}-help`].filter(Boolean).join(' ');
  const text = (key, { help, type = 'text', disabled = false, placeholder } = {}) => html`<${Field}
      id=${fieldId(key)} label=${t(`form.${key}`)} help=${help} error=${errors[key]}>
      <input id=${fieldId(key)} name=${key} type=${type} value=${form[key]} disabled=${disabled}
        placeholder=${placeholder} inputmode=${NUMBERS.includes(key) ? 'numeric' : undefined}
        aria-invalid=${errors[key] ? 'true' : undefined} aria-describedby=${describedBy(key)}
        onInput=${set(key)} />
    <//>`;
  const area = (key, help) => html`<${Field} id=${fieldId(key)} label=${t(`form.${key}`)} help=${help} error=${errors[key]}>
      <textarea id=${fieldId(key)} name=${key} rows="3" spellcheck="false" value=${form[key]}
        aria-invalid=${errors[key] ? 'true' : undefined} aria-describedby=${describedBy(key)}
        onInput=${set(key)}></textarea>
    <//>`;
  const select = (key, options, label) => html`<${Field} id=${fieldId(key)} label=${t(`form.${key}`)} error=${errors[key]}>
      <select id=${fieldId(key)} name=${key} value=${form[key]} onChange=${set(key)}
        aria-invalid=${errors[key] ? 'true' : undefined}>
        ${options.map((o) => html`<option value=${o}>${label(o)}</option>`)}
      </select>
    <//>`;

  return html`<main id="main" tabindex="-1" class="page narrow">
    <form class="card program-form" onSubmit=${submit} novalidate>
      <h1>${editing ? t('form.editTitle', { name }) : t('form.createTitle')}</h1>
      ${summary && html`<p class="error" role="alert" data-form-summary>${summary}</p>`}
      <fieldset>
        <legend>${t('form.basics')}</legend>
        ${text('name', { help: t('form.name.help'), disabled: editing })}
        ${text('display_name')}
        ${text('command', { help: t('form.command.help') })}
        ${area('args', t('form.args.help'))}
        ${text('cwd')}
        ${area('env', t('form.env.help'))}
        <label class="check"><input type="checkbox" name="autostart" checked=${form.autostart}
          onChange=${set('autostart')} /> ${t('form.autostart')}</label>
        ${text('start_seconds', { help: t('form.start_seconds.help') })}
      </fieldset>
      <fieldset>
        <legend>${t('form.restart')}</legend>
        ${select('restart.policy', POLICIES, (o) => t(`form.policy.${o}`))}
        <div class="grid2">
          ${text('restart.backoff_initial_ms')}
          ${text('restart.backoff_max_ms')}
          ${text('restart.max_failed_starts')}
          ${text('restart.window_seconds')}
        </div>
      </fieldset>
      <fieldset>
        <legend>${t('form.stop')}</legend>
        ${select('stop.signal', SIGNALS, (o) => o)}
        ${text('stop.stdin', { help: t('form.stop.stdin.help') })}
        ${text('stop.timeout_seconds')}
      </fieldset>
      ${editing && html`<p class="muted small">${t('form.nextStart')}</p>`}
      <div class="row end">
        <a class="btn" href=${editing ? href.program(name) : href.overview()}>${t('common.cancel')}</a>
        <button type="submit" class="btn primary" disabled=${busy}>
          ${busy ? t('form.saving') : editing ? t('form.save') : t('form.create')}
        </button>
      </div>
    </form>
  </main>`;
}
