// Create or edit a program. The API validates; its 422 `details` are shown beside the
// fields they name. Only what the browser can know for sure (numbers, KEY=value lines) is
// checked here first.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { addStrings, t } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { can } from '../lib/session.js';
import { refreshProgram } from '../lib/stores.js';
import { describeStep, gameProfiles } from '../lib/games.js';
import { errorText, Field, fieldText, href, navigate, toast, toastError } from '../lib/ui.js';

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
  'game.liveness.interval_seconds',
  'game.liveness.failures',
];
const QUERY_KINDS = ['slp', 'a2s', 'tcp'];
const READINESS = ['', 'log_line', 'query', 'none'];
const LIVENESS = ['', 'query', 'rcon', 'rest'];
const STEP_KINDS = ['stdin', 'rcon', 'rest_save', 'rest_shutdown'];

addStrings({
  en: {
    'form.tags': 'Tags',
    'form.tags.help': 'Words separated by commas; a grant on a tag covers every program that has it.',
    'form.runAs': 'Run as',
    'form.runAs.help': 'On Linux and other Unix systems only. Running a game server under its own account lets the operating system keep it to its own files.',
    'form.user': 'User',
    'form.user.help': "Empty: warden's own account.",
    'form.group': 'Group',
    'form.group.help': "Empty: the user's own group.",
    'form.allow_root': 'May run as root',
    'form.allow_root.help': 'When warden itself runs as root, it refuses to start a program as root unless this is ticked.',
    'form.files_root': 'Files folder',
    'form.files_root.help': 'What the file manager and backups see, relative to the working directory; empty: all of it.',
    'form.game.readiness.mode': 'Ready when',
    'form.game.readiness.mode.': 'The profile default',
    'form.game.readiness.mode.log_line': 'The console prints a line',
    'form.game.readiness.mode.query': 'The status query answers',
    'form.game.readiness.mode.none': 'The start time has passed',
    'form.game.liveness': 'Liveness check',
    'form.game.liveness.check': 'Check',
    'form.game.liveness.check.': 'None',
    'form.game.liveness.check.query': 'Status query',
    'form.game.liveness.check.rcon': 'RCON login',
    'form.game.liveness.check.rest': 'REST API',
    'form.game.liveness.help': 'Without a check the game health stays “Unknown”.',
    'form.game.liveness.interval_seconds': 'Every (seconds)',
    'form.game.liveness.failures': 'Unhealthy after failures in a row',
    'form.game.liveness.restart': 'Restart when unhealthy',
    'form.game.stop_steps': 'Graceful stop steps',
    'form.game.stop_steps.help': 'Run in order before the stop command or signal above, which follows only if a step fails.',
    'form.game.stop_steps.default': 'Use the profile default',
    'form.game.stop_steps.custom': 'My own steps',
    'form.game.stop_steps.empty': 'No steps: stop with the command or signal only.',
    'form.game.stop_steps.add': 'Add a step',
    'form.game.stop_steps.remove': 'Remove step {n}',
    'form.game.stop_steps.up': 'Move step {n} up',
    'form.game.step.kind': 'Step {n}',
    'form.game.step.stdin': 'Send a console line',
    'form.game.step.rcon': 'Send an RCON command',
    'form.game.step.rest_save': 'Save through the REST API',
    'form.game.step.rest_shutdown': 'Shut down through the REST API',
    'form.game.step.text': 'Line or command',
    'form.game.step.message': 'Message to players',
    'form.game.step.wait': 'Shut down after (seconds)',
    'form.game.step.needsText': 'Type the line or command to send.',
    'form.game.readiness.needed': 'Type the line (a regular expression) to wait for.',
  },
  ko: {
    'form.tags': '태그',
    'form.tags.help': '쉼표로 구분한 단어. 태그에 준 권한은 그 태그가 있는 모든 프로그램에 적용됩니다.',
    'form.runAs': '실행 계정',
    'form.runAs.help': '리눅스 등 유닉스 계열에서만 적용됩니다. 게임 서버를 전용 계정으로 실행하면 운영체제가 서버를 자기 파일 안에만 머물게 합니다.',
    'form.user': '사용자',
    'form.user.help': '비우면 warden과 같은 계정입니다.',
    'form.group': '그룹',
    'form.group.help': '비우면 사용자의 기본 그룹입니다.',
    'form.allow_root': '루트 권한으로 실행 허용',
    'form.allow_root.help': 'warden이 루트 권한으로 실행 중일 때, 이 항목을 선택하지 않은 프로그램은 루트 권한으로 시작하지 않습니다.',
    'form.files_root': '파일 폴더',
    'form.files_root.help': '파일 관리자와 백업이 다루는 폴더. 작업 디렉터리 기준이며 비우면 전체입니다.',
    'form.game.readiness.mode': '준비 완료 기준',
    'form.game.readiness.mode.': '프로필 기본값',
    'form.game.readiness.mode.log_line': '콘솔에 특정 줄이 나올 때',
    'form.game.readiness.mode.query': '상태 조회가 응답할 때',
    'form.game.readiness.mode.none': '시작 대기 시간이 지났을 때',
    'form.game.liveness': '상태 점검',
    'form.game.liveness.check': '점검 방식',
    'form.game.liveness.check.': '사용 안 함',
    'form.game.liveness.check.query': '상태 조회',
    'form.game.liveness.check.rcon': 'RCON 로그인',
    'form.game.liveness.check.rest': 'REST API',
    'form.game.liveness.help': '점검이 없으면 게임 상태는 계속 “알 수 없음”입니다.',
    'form.game.liveness.interval_seconds': '점검 간격(초)',
    'form.game.liveness.failures': '연속 실패 횟수(비정상 판정)',
    'form.game.liveness.restart': '비정상이면 다시 시작',
    'form.game.stop_steps': '안전한 중지 단계',
    'form.game.stop_steps.help': '위의 중지 명령이나 시그널보다 먼저 차례로 실행합니다. 단계가 실패할 때만 중지 명령이나 시그널을 씁니다.',
    'form.game.stop_steps.default': '프로필 기본값 사용',
    'form.game.stop_steps.custom': '직접 지정',
    'form.game.stop_steps.empty': '단계 없음: 중지 명령이나 시그널만 씁니다.',
    'form.game.stop_steps.add': '단계 추가',
    'form.game.stop_steps.remove': '{n}단계 삭제',
    'form.game.stop_steps.up': '{n}단계를 위로',
    'form.game.step.kind': '{n}단계',
    'form.game.step.stdin': '콘솔에 한 줄 보내기',
    'form.game.step.rcon': 'RCON 명령 보내기',
    'form.game.step.rest_save': 'REST API로 저장',
    'form.game.step.rest_shutdown': 'REST API로 종료',
    'form.game.step.text': '보낼 줄 또는 명령',
    'form.game.step.message': '접속자에게 보낼 메시지',
    'form.game.step.wait': '종료까지 대기(초)',
    'form.game.step.needsText': '보낼 줄이나 명령을 입력하세요.',
    'form.game.readiness.needed': '기다릴 줄(정규식)을 입력하세요.',
  },
});

/**
 * Settings this form does not show (dependencies, limits, hooks, update settings…): kept
 * as stored when a program is edited, so saving the form never drops them.
 */
const KEPT = ['after', 'requires', 'deps_timeout_seconds', 'limits', 'restart_when', 'idle', 'hooks', 'actions', 'update'];

/** The API's defaults (what an empty definition gets). */
const DEFAULTS = {
  name: '',
  display_name: '',
  command: '',
  args: '',
  cwd: '',
  files_root: '',
  env: '',
  tags: '',
  user: '',
  group: '',
  allow_root: false,
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
  'game.readiness.mode': '',
  'game.readiness': '',
  'game.liveness.check': '',
  'game.liveness.interval_seconds': '30',
  'game.liveness.failures': '3',
  'game.liveness.restart': false,
  'game.stop_steps': null,
};

/** One stop step as the list editor holds it. */
function stepFromSpec(s) {
  const blank = { kind: 'stdin', text: '', message: 'Server is shutting down', wait: '1' };
  if (typeof s === 'string') return { ...blank, kind: s };
  const [kind, v] = Object.entries(s)[0];
  if (typeof v === 'string') return { ...blank, kind, text: v };
  return { ...blank, kind, message: v.message ?? blank.message, wait: String(v.wait_seconds ?? 1) };
}

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
    'game.readiness.mode': !g.readiness ? '' : typeof g.readiness === 'string' ? g.readiness : 'log_line',
    'game.readiness': g.readiness && g.readiness.log_line ? g.readiness.log_line : '',
    'game.liveness.check': g.liveness ? g.liveness.check : '',
    'game.liveness.interval_seconds': String(g.liveness ? g.liveness.interval_seconds : 30),
    'game.liveness.failures': String(g.liveness ? g.liveness.failures : 3),
    'game.liveness.restart': !!(g.liveness && g.liveness.restart),
    'game.stop_steps': g.stop_steps ? g.stop_steps.map(stepFromSpec) : null,
  };
}

function fromSpec(p) {
  return {
    name: p.name,
    display_name: p.display_name || '',
    command: p.command,
    args: (p.args || []).join('\n'),
    cwd: p.cwd || '',
    files_root: p.files_root || '',
    env: Object.entries(p.env || {})
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    tags: (p.tags || []).join(', '),
    user: p.user || '',
    group: p.group || '',
    allow_root: !!p.allow_root,
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
function toGame(f, base, num, errors) {
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
  const ready = f['game.readiness.mode'];
  if (ready === 'log_line') {
    if (!f['game.readiness'].trim()) errors['game.readiness'] = t('form.game.readiness.needed');
    g.readiness = { log_line: f['game.readiness'] };
  } else if (ready) g.readiness = ready;
  else delete g.readiness;
  if (f['game.liveness.check']) {
    g.liveness = {
      check: f['game.liveness.check'],
      interval_seconds: num('game.liveness.interval_seconds'),
      failures: num('game.liveness.failures'),
      restart: f['game.liveness.restart'],
    };
  } else delete g.liveness;
  if (f['game.stop_steps']) {
    g.stop_steps = f['game.stop_steps'].map((s) => {
      if (s.kind === 'rest_save') return 'rest_save';
      if (s.kind === 'rest_shutdown') {
        const wait = String(s.wait).trim();
        if (!/^\d+$/.test(wait)) errors['game.stop_steps'] = t('form.number');
        return { rest_shutdown: { message: s.message, wait_seconds: Number(wait) } };
      }
      if (!s.text.trim()) errors['game.stop_steps'] = t('form.game.step.needsText');
      return { [s.kind]: s.text };
    });
  } else delete g.stop_steps;
  return g;
}

/**
 * `[spec, errors]`: the JSON the API takes, and problems found before sending it. `base`
 * is the stored definition when editing (its game section and the [KEPT] settings stay).
 */
function toSpec(f, base) {
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
  if (f.files_root.trim()) spec.files_root = f.files_root.trim();
  const tags = f.tags.split(',').map((x) => x.trim()).filter(Boolean);
  if (tags.length) spec.tags = tags;
  if (f.user.trim()) spec.user = f.user.trim();
  if (f.group.trim()) spec.group = f.group.trim();
  if (f.allow_root) spec.allow_root = true;
  if (f['stop.stdin'].trim()) spec.stop.stdin = f['stop.stdin'];
  for (const key of KEPT) if (base && base[key] !== undefined) spec[key] = base[key];
  const game = toGame(f, base && base.game, num, errors);
  if (game) spec.game = game;
  return [spec, errors];
}

const fieldId = (key) => `f-${key.replace(/\./g, '-')}`;

/** The form key an API error field belongs to, or null. */
function formKey(field) {
  if (field in DEFAULTS) return field;
  if (field.startsWith('game.readiness')) return 'game.readiness.mode';
  if (field.startsWith('game.stop_steps')) return 'game.stop_steps';
  if (field.startsWith('game.liveness')) return `game.liveness.${field.split('.')[2]}` in DEFAULTS ? `game.liveness.${field.split('.')[2]}` : 'game.liveness.check';
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
  const [base, setBase] = useState(null);
  const [profiles, setProfiles] = useState({});

  useEffect(() => {
    gameProfiles().then(setProfiles).catch(toastError);
    if (!editing) return;
    api
      .get(`/api/programs/${seg(name)}`)
      .then((p) => {
        setBase(p);
        setForm(fromSpec(p));
      })
      .catch((e) => setSummary(errorText(e)));
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
    const [spec, local] = toSpec(form, base);
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
        if (key) byField[key] = byField[key] ? `${byField[key]} ${fieldText(d)}` : fieldText(d);
      }
      setErrors(byField);
      setSummary(Object.keys(byField).length ? t('form.invalid') : errorText(err));
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

  // The graceful stop steps: the profile's (absent), or a list edited here (possibly empty).
  const steps = form['game.stop_steps'];
  const setSteps = (v) => {
    setForm({ ...form, 'game.stop_steps': v });
    if (errors['game.stop_steps']) setErrors({ ...errors, 'game.stop_steps': undefined });
  };
  const useOwnSteps = (own) => {
    if (!own) return setSteps(null);
    const info = profiles[form['game.profile']];
    const start = info ? (form['game.rcon.port'] ? info.stop_steps : info.stop_steps_without_rcon) : [];
    setSteps(start.map(stepFromSpec));
  };
  const editStep = (i, key) => (e) => setSteps(steps.map((s, j) => (j === i ? { ...s, [key]: e.currentTarget.value } : s)));
  const stopStepsEditor = () => html`<fieldset data-stop-steps>
    <legend>${t('form.game.stop_steps')}</legend>
    <p class="muted small" id="f-game-stop_steps-help">${t('form.game.stop_steps.help')}</p>
    <label class="check"><input type="radio" name="stop-steps-mode" data-stop-steps-mode="default" checked=${!steps}
      onChange=${() => useOwnSteps(false)} /> ${t('form.game.stop_steps.default')}</label>
    <label class="check"><input type="radio" name="stop-steps-mode" data-stop-steps-mode="custom" checked=${!!steps}
      onChange=${() => useOwnSteps(true)} /> ${t('form.game.stop_steps.custom')}</label>
    ${errors['game.stop_steps'] && html`<p class="error small" role="alert" id="f-game-stop_steps-error">${errors['game.stop_steps']}</p>`}
    ${steps &&
    html`${steps.length === 0 && html`<p class="muted small">${t('form.game.stop_steps.empty')}</p>`}
      <ol class="builder-list" data-step-list>
        ${steps.map(
          (s, i) => html`<li key=${i} class="sub" data-stop-step=${i}>
            <div class="grid2">
              <${Field} id=${`f-step-${i}-kind`} label=${t('form.game.step.kind', { n: i + 1 })}>
                <select id=${`f-step-${i}-kind`} value=${s.kind} onChange=${editStep(i, 'kind')}>
                  ${STEP_KINDS.map((k) => html`<option value=${k}>${t(`form.game.step.${k}`)}</option>`)}
                </select>
              <//>
              ${(s.kind === 'stdin' || s.kind === 'rcon') &&
              html`<${Field} id=${`f-step-${i}-text`} label=${t('form.game.step.text')}>
                <input id=${`f-step-${i}-text`} value=${s.text} spellcheck="false" onInput=${editStep(i, 'text')} />
              <//>`}
              ${s.kind === 'rest_shutdown' &&
              html`<${Field} id=${`f-step-${i}-message`} label=${t('form.game.step.message')}>
                  <input id=${`f-step-${i}-message`} value=${s.message} onInput=${editStep(i, 'message')} />
                <//>
                <${Field} id=${`f-step-${i}-wait`} label=${t('form.game.step.wait')}>
                  <input id=${`f-step-${i}-wait`} value=${s.wait} inputmode="numeric" onInput=${editStep(i, 'wait')} />
                <//>`}
            </div>
            <div class="row end">
              ${i > 0 &&
              html`<button type="button" class="btn" data-step-up=${i} aria-label=${t('form.game.stop_steps.up', { n: i + 1 })}
                onClick=${() => setSteps([...steps.slice(0, i - 1), s, steps[i - 1], ...steps.slice(i + 1)])}>↑</button>`}
              <button type="button" class="btn" data-remove-step=${i} aria-label=${t('form.game.stop_steps.remove', { n: i + 1 })}
                onClick=${() => setSteps(steps.filter((_, j) => j !== i))}>✕</button>
            </div>
          </li>`,
        )}
      </ol>
      <button type="button" class="btn" data-add-stop-step
        onClick=${() => setSteps([...steps, stepFromSpec({ stdin: '' })])}>${t('form.game.stop_steps.add')}</button>`}
  </fieldset>`;

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
        ${text('files_root', { help: t('form.files_root.help') })}
        ${area('env', t('form.env.help'))}
        ${text('tags', { help: t('form.tags.help') })}
        <label class="check"><input type="checkbox" name="autostart" checked=${form.autostart}
          onChange=${set('autostart')} /> ${t('form.autostart')}</label>
        ${text('start_seconds', { help: t('form.start_seconds.help') })}
      </fieldset>
      <fieldset data-run-as>
        <legend>${t('form.runAs')}</legend>
        <p class="muted small">${t('form.runAs.help')}</p>
        <div class="grid2">
          ${text('user', { help: t('form.user.help') })}
          ${text('group', { help: t('form.group.help') })}
        </div>
        <label class="check"><input type="checkbox" id="f-allow_root" name="allow_root" checked=${form.allow_root}
          aria-describedby="f-allow_root-help" onChange=${set('allow_root')} /> ${t('form.allow_root')}</label>
        <p class="muted small" id="f-allow_root-help">${t('form.allow_root.help')}</p>
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
          ${select('game.readiness.mode', READINESS, (o) => t(`form.game.readiness.mode.${o}`))}
          ${form['game.readiness.mode'] === 'log_line' && text('game.readiness', { help: t('form.game.readiness.help') })}
          <fieldset data-liveness>
            <legend>${t('form.game.liveness')}</legend>
            <p class="muted small">${t('form.game.liveness.help')}</p>
            ${select('game.liveness.check', LIVENESS, (o) => t(`form.game.liveness.check.${o}`))}
            ${form['game.liveness.check'] &&
            html`<div class="grid2">
                ${text('game.liveness.interval_seconds')}
                ${text('game.liveness.failures')}
              </div>
              <label class="check"><input type="checkbox" id="f-game-liveness-restart" name="game.liveness.restart"
                checked=${form['game.liveness.restart']} onChange=${set('game.liveness.restart')} />
                ${t('form.game.liveness.restart')}</label>`}
          </fieldset>
          ${stopStepsEditor()}`}
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
