// Create or edit a program. The API validates; its 422 `details` are shown beside the
// fields they name. Only what the browser can know for sure (numbers, KEY=value lines) is
// checked here first.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { can } from '../lib/session.js';
import { refreshProgram } from '../lib/stores.js';
import { describeStep, gameProfiles } from '../lib/games.js';
import { Field, href, navigate, toast, toastError } from '../lib/ui.js';

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'];
const POLICIES = ['never', 'on-failure', 'always'];
const NUMBERS = [
  'start_seconds',
  'restart.backoff_initial_ms',
  'restart.backoff_max_ms',
  'restart.max_failed_starts',
  'restart.window_seconds',
  'stop.timeout_seconds',
  'game.rcon.port',
  'game.query.port',
  'game.rest.port',
];
const QUERY_KINDS = ['slp', 'a2s', 'tcp'];

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
  'game.profile': '',
  'game.rcon.port': '',
  'game.rcon.password': '',
  'game.query.kind': '',
  'game.query.port': '',
  'game.rest.port': '',
  'game.rest.password': '',
  'game.readiness': '',
};

/** The form's game fields from a game section (absent: no game). */
function gameFields(g) {
  if (!g) return {};
  const port = (x) => (x && x.port != null ? String(x.port) : '');
  const q = g.query && QUERY_KINDS.includes(g.query.kind) ? g.query : null;
  return {
    'game.profile': g.profile,
    'game.rcon.port': port(g.rcon),
    'game.rcon.password': g.rcon ? g.rcon.password : '',
    'game.query.kind': q ? q.kind : '',
    'game.query.port': port(q),
    'game.rest.port': port(g.rest),
    'game.rest.password': g.rest ? g.rest.password : '',
    'game.readiness': g.readiness && g.readiness.log_line ? g.readiness.log_line : '',
  };
}

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
    ...gameFields(p.game),
  };
}

/**
 * The game section from the form, on top of `base` (the stored section when editing), so
 * settings this form does not show (liveness, stop steps, hosts…) are kept.
 */
function toGame(f, base, num) {
  if (!f['game.profile']) return undefined;
  const g = { ...(base || {}), profile: f['game.profile'] };
  const section = (key, extra) => {
    if (!f[`game.${key}.port`].trim()) {
      delete g[key];
      return;
    }
    g[key] = { ...((base && base[key]) || {}), port: num(`game.${key}.port`), ...extra };
  };
  section('rcon', { password: f['game.rcon.password'] });
  section('rest', { password: f['game.rest.password'] });
  if (f['game.query.kind']) {
    g.query = { ...((base && base.query) || {}), kind: f['game.query.kind'] };
    if (f['game.query.port'].trim()) g.query.port = num('game.query.port');
  } else if (!(base && base.query && !QUERY_KINDS.includes(base.query.kind))) {
    delete g.query;
  }
  if (f['game.readiness'].trim()) g.readiness = { log_line: f['game.readiness'] };
  else if (g.readiness && g.readiness.log_line) delete g.readiness;
  return g;
}

/** `[spec, errors]`: the JSON the API takes, and problems found before sending it. */
function toSpec(f, baseGame) {
  const errors = {};
  const num = (key) => {
    const v = String(f[key]).trim();
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
  const game = toGame(f, baseGame, num);
  if (game) spec.game = game;
  return [spec, errors];
}

const fieldId = (key) => `f-${key.replace(/\./g, '-')}`;

/** The form key an API error field belongs to, or null. */
function formKey(field) {
  if (field in DEFAULTS) return field;
  if (field.startsWith('game.readiness')) return 'game.readiness';
  const m = /^game\.(rcon|rest|query)\.(port|password|kind)/.exec(field);
  return m && `game.${m[1]}.${m[2]}` in DEFAULTS ? `game.${m[1]}.${m[2]}` : null;
}

/** What a profile fills in by itself, in words, for the help under the profile choice. */
function profileSummary(info, hasRcon) {
  if (!info) return '';
  const steps = hasRcon ? info.stop_steps : info.stop_steps_without_rcon;
  const readiness = info.readiness
    ? info.readiness.log_line != null
      ? `log /${info.readiness.log_line}/`
      : describeStep(info.readiness)
    : t('common.none');
  return t('form.game.defaults', {
    readiness,
    stop: steps.length ? steps.map(describeStep).join(', ') : t('common.none'),
    broadcast: info.broadcast ? describeStep(info.broadcast) : t('common.none'),
  });
}

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
  const [baseGame, setBaseGame] = useState(null);
  const [profiles, setProfiles] = useState({});

  useEffect(() => {
    gameProfiles().then(setProfiles).catch(toastError);
    if (!editing) return;
    api
      .get(`/api/programs/${seg(name)}`)
      .then((p) => {
        setBaseGame(p.game || null);
        setForm(fromSpec(p));
      })
      .catch((e) => setSummary(e.message));
  }, [name]);

  if (!can('admin')) return html`<main id="main" tabindex="-1" class="page"><p>${t('common.forbidden')}</p></main>`;
  if (!form) return html`<main id="main" tabindex="-1" class="page"><p class="muted">${summary || t('common.loading')}</p></main>`;

  const set = (key) => (e) => {
    const v = e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value;
    setForm({ ...form, [key]: v });
    if (errors[key]) setErrors({ ...errors, [key]: undefined });
  };

  // Choosing a profile fills in its usual connections and stop signal; passwords and
  // anything typed already stay.
  const chooseProfile = (e) => {
    const profile = e.currentTarget.value;
    const info = profiles[profile];
    const next = { ...form, 'game.profile': profile };
    if (info) {
      const tpl = gameFields(info.template);
      for (const key of ['game.rcon.port', 'game.query.kind', 'game.query.port', 'game.rest.port']) {
        if (!form[key]) next[key] = tpl[key];
      }
      if (form['stop.signal'] === DEFAULTS['stop.signal']) next['stop.signal'] = info.stop_signal;
    }
    setForm(next);
  };

  const submit = async (e) => {
    e.preventDefault();
    const [spec, local] = toSpec(form, baseGame);
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
        const key = formKey(d.field);
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
      <fieldset data-game-fields>
        <legend>${t('form.game')}</legend>
        <${Field} id="f-game-profile" label=${t('form.game.profile')}
          help=${form['game.profile'] ? profileSummary(profiles[form['game.profile']], !!form['game.rcon.port']) : t('form.game.none.help')}>
          <select id="f-game-profile" name="game.profile" value=${form['game.profile']} onChange=${chooseProfile}
            aria-describedby="f-game-profile-help">
            <option value="">${t('form.game.none')}</option>
            ${Object.keys(profiles).map((pr) => html`<option value=${pr}>${t(`profile.${pr}`)}</option>`)}
          </select>
        <//>
        ${form['game.profile'] &&
        html`<div class="grid2">
            ${text('game.rcon.port', { help: t('form.game.rcon.help') })}
            ${text('game.rcon.password', { type: 'password' })}
            ${select('game.query.kind', ['', ...QUERY_KINDS], (o) => (o ? o.toUpperCase() : t('common.none')))}
            ${text('game.query.port')}
            ${text('game.rest.port', { help: t('form.game.rest.help') })}
            ${text('game.rest.password', { type: 'password' })}
          </div>
          ${text('game.readiness', { help: t('form.game.readiness.help') })}`}
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
