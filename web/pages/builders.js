// Forms that build schedules and jobs without JSON (loaded when an administrator opens
// one): trigger presets with a cron field that explains itself and the next fire times the
// server computes in the schedule's zone, a task list with program and job pickers, and a
// job's steps with dependencies chosen from the other steps, shown in the order they run.
// The API validates; its 422 details are shown beside the field they name.

import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { addStrings, t, fmt } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { describeTrigger } from '../lib/cron.js';
import { errorText, Field, fieldText, toast } from '../lib/ui.js';

addStrings({
  en: {
    'sb.name': 'Name',
    'sb.name.help': 'Lowercase letters, digits, - and _.',
    'sb.description': 'Description',
    'sb.when': 'When',
    'sb.preset': 'Runs',
    'sb.preset.daily': 'Every day at…',
    'sb.preset.weekly': 'Weekly on…',
    'sb.preset.minutes': 'Every N minutes',
    'sb.preset.hours': 'Every N hours',
    'sb.preset.cron': 'Cron expression',
    'sb.time': 'Time',
    'sb.days': 'Days',
    'sb.everyMinutes': 'Every how many minutes',
    'sb.everyHours': 'Every how many hours',
    'sb.atMinute': 'At minute',
    'sb.cron': 'Cron expression or interval',
    'sb.cron.help': 'minute hour day-of-month month day-of-week, e.g. 30 5 * * 1-5; or an interval such as every 6h.',
    'sb.explain.none': 'No plain description for this expression; the next runs below show what it does.',
    'sb.timezone': 'Time zone',
    'sb.timezone.help': 'An IANA name such as Asia/Seoul; empty: the host’s.',
    'sb.nextRuns': 'Next runs ({zone})',
    'sb.nextRuns.none': 'It would never run.',
    'sb.checking': 'Checking…',
    'sb.enabled': 'Enabled (fires by itself)',
    'sb.missed': 'Runs missed while warden was down',
    'sb.missed.skip': 'Skip them',
    'sb.missed.run_once': 'Run once after start-up',
    'sb.conditions': 'Conditions',
    'sb.onlyEmpty': 'Only if no players are on',
    'sb.ifRunning': 'Only if this program is running',
    'sb.noCondition': 'No condition',
    'sb.tasks': 'Tasks, in order',
    'sb.task': 'Task {n}',
    'sb.kind': 'What',
    'sb.program': 'Program',
    'sb.job': 'Job',
    'sb.wait': 'Wait for the job to finish',
    'sb.line': 'Console line',
    'sb.command': 'RCON command',
    'sb.message': 'Message',
    'sb.method': 'Method',
    'sb.url': 'URL',
    'sb.offset.first': 'Wait after the schedule fires',
    'sb.offset': 'Wait after the previous task',
    'sb.unit': 'Unit',
    'sb.unit.s': 'seconds',
    'sb.unit.m': 'minutes',
    'sb.unit.h': 'hours',
    'sb.onFailure': 'If it fails',
    'sb.onFailure.abort': 'Stop the chain',
    'sb.onFailure.continue': 'Go on with the next task',
    'sb.addTask': 'Add task',
    'sb.up': 'Move up',
    'sb.down': 'Move down',
    'sb.remove': 'Remove',
    'sb.choose': 'Choose…',
    'sb.err.number': 'Enter a whole number of 0 or more.',
    'sb.err.positive': 'Enter a whole number of 1 or more.',
    'sb.err.days': 'Choose at least one day.',
    'sb.err.required': 'Required.',
    'jb.steps': 'Steps',
    'jb.step': 'Step {n}',
    'jb.stepName': 'Step name',
    'jb.command': 'Command',
    'jb.command.help': 'A path, or a name looked up in PATH.',
    'jb.args': 'Arguments, one per line',
    'jb.cwd': 'Working folder',
    'jb.timeout': 'Time limit (seconds)',
    'jb.timeout.help': 'Empty: no limit.',
    'jb.after': 'Runs after',
    'jb.after.none': 'No other steps yet.',
    'jb.addStep': 'Add step',
    'jb.order': 'Run order',
    'jb.order.cycle': 'These steps wait for each other and could never run: {names}',
    'jb.concurrency': 'Steps at once',
    'jb.concurrency.help': 'Empty: chosen from the host’s cores and memory.',
    'jb.overlap': 'When triggered while running',
    'jb.overlap.skip': 'Skip the new run',
    'jb.overlap.queue': 'Queue it after the current run',
    'jb.overlap.replace': 'Cancel the current run and start anew',
  },
  ko: {
    'sb.name': '이름',
    'sb.name.help': '영문 소문자, 숫자, - 와 _ 만 쓸 수 있습니다.',
    'sb.description': '설명',
    'sb.when': '실행 시점',
    'sb.preset': '반복',
    'sb.preset.daily': '매일 정해진 시각',
    'sb.preset.weekly': '매주 정해진 요일',
    'sb.preset.minutes': 'N분마다',
    'sb.preset.hours': 'N시간마다',
    'sb.preset.cron': 'cron 식',
    'sb.time': '시각',
    'sb.days': '요일',
    'sb.everyMinutes': '몇 분마다',
    'sb.everyHours': '몇 시간마다',
    'sb.atMinute': '분',
    'sb.cron': 'cron 식 또는 간격',
    'sb.cron.help': '분 시 일 월 요일 순서입니다. 예: 30 5 * * 1-5, 또는 간격 every 6h.',
    'sb.explain.none': '이 식은 문장으로 풀어 쓸 수 없습니다. 아래 다음 실행 시각을 확인하세요.',
    'sb.timezone': '시간대',
    'sb.timezone.help': 'Asia/Seoul 같은 IANA 이름입니다. 비워 두면 서버의 시간대를 씁니다.',
    'sb.nextRuns': '다음 실행 ({zone})',
    'sb.nextRuns.none': '실행될 때가 없습니다.',
    'sb.checking': '확인 중…',
    'sb.enabled': '사용 (정해진 때에 스스로 실행)',
    'sb.missed': 'warden이 꺼져 있는 동안 놓친 실행',
    'sb.missed.skip': '건너뛰기',
    'sb.missed.run_once': '시작 후 한 번 실행',
    'sb.conditions': '조건',
    'sb.onlyEmpty': '접속한 플레이어가 없을 때만',
    'sb.ifRunning': '이 프로그램이 실행 중일 때만',
    'sb.noCondition': '조건 없음',
    'sb.tasks': '작업 순서',
    'sb.task': '{n}번째 작업',
    'sb.kind': '할 일',
    'sb.program': '프로그램',
    'sb.job': '작업',
    'sb.wait': '작업이 끝날 때까지 기다리기',
    'sb.line': '콘솔 입력',
    'sb.command': 'RCON 명령',
    'sb.message': '메시지',
    'sb.method': '메서드',
    'sb.url': 'URL',
    'sb.offset.first': '일정 시작 후 대기',
    'sb.offset': '앞 작업 후 대기',
    'sb.unit': '단위',
    'sb.unit.s': '초',
    'sb.unit.m': '분',
    'sb.unit.h': '시간',
    'sb.onFailure': '실패하면',
    'sb.onFailure.abort': '나머지 작업 중단',
    'sb.onFailure.continue': '다음 작업 계속',
    'sb.addTask': '작업 추가',
    'sb.up': '위로',
    'sb.down': '아래로',
    'sb.remove': '빼기',
    'sb.choose': '선택…',
    'sb.err.number': '0 이상의 정수를 입력하세요.',
    'sb.err.positive': '1 이상의 정수를 입력하세요.',
    'sb.err.days': '요일을 하나 이상 고르세요.',
    'sb.err.required': '꼭 입력해야 합니다.',
    'jb.steps': '단계',
    'jb.step': '{n}단계',
    'jb.stepName': '단계 이름',
    'jb.command': '명령',
    'jb.command.help': '경로, 또는 PATH에서 찾을 이름입니다.',
    'jb.args': '인수 (한 줄에 하나)',
    'jb.cwd': '작업 폴더',
    'jb.timeout': '제한 시간 (초)',
    'jb.timeout.help': '비워 두면 제한이 없습니다.',
    'jb.after': '먼저 끝나야 할 단계',
    'jb.after.none': '다른 단계가 아직 없습니다.',
    'jb.addStep': '단계 추가',
    'jb.order': '실행 순서',
    'jb.order.cycle': '서로를 기다려 영원히 실행되지 않는 단계: {names}',
    'jb.concurrency': '동시에 실행할 단계 수',
    'jb.concurrency.help': '비워 두면 서버의 코어 수와 메모리로 정합니다.',
    'jb.overlap': '실행 중에 다시 시작되면',
    'jb.overlap.skip': '새 실행 건너뛰기',
    'jb.overlap.queue': '지금 실행 뒤에 대기',
    'jb.overlap.replace': '지금 실행을 취소하고 새로 시작',
  },
});

const TASK_KINDS = ['start', 'stop', 'restart', 'kill', 'console', 'rcon', 'broadcast', 'backup', 'update', 'job', 'http'];
const PROGRAM_KINDS = new Set(['start', 'stop', 'restart', 'kill', 'console', 'rcon', 'broadcast', 'backup', 'update']);
/** The text field of a kind and its API name. */
const TEXT_OF = { console: 'line', rcon: 'command', broadcast: 'message' };
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'];
const UNITS = { s: 1, m: 60, h: 3600 };
const PRESETS = ['daily', 'weekly', 'minutes', 'hours', 'cron'];
const WEEK = [1, 2, 3, 4, 5, 6, 0];

const pad = (n) => String(n).padStart(2, '0');
const whole = (s) => /^\s*\d+\s*$/.test(String(s));

/** The browser's own zone, the default of a new schedule. */
function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  } catch {
    return '';
  }
}

let zonesCache = null;
function zones() {
  if (!zonesCache) {
    try {
      zonesCache = Intl.supportedValuesOf('timeZone');
    } catch {
      zonesCache = [];
    }
  }
  return zonesCache;
}

/** The preset fields that write `expr`, or the cron preset when it has another shape. */
export function presetOf(expr) {
  const text = (expr || '').trim();
  const f = text.split(/\s+/);
  const num = (s) => (/^\d+$/.test(s) ? Number(s) : null);
  const base = { preset: 'cron', cron: text, time: '04:00', days: [1], n: '15', hours: '6', minute: '0' };
  if (f.length !== 5) return base;
  const [mi, h, dom, mon, dow] = f;
  if (dom !== '*' || mon !== '*') return base;
  const stepM = /^\*\/(\d+)$/.exec(mi);
  if (stepM && h === '*' && dow === '*') return { ...base, preset: 'minutes', n: stepM[1] };
  const stepH = /^\*\/(\d+)$/.exec(h);
  if (stepH && num(mi) != null && dow === '*') return { ...base, preset: 'hours', hours: stepH[1], minute: mi };
  if (num(mi) == null || num(h) == null || num(mi) > 59 || num(h) > 23) return base;
  const time = `${pad(num(h))}:${pad(num(mi))}`;
  if (dow === '*') return { ...base, preset: 'daily', time };
  if (/^[0-6](,[0-6])*$/.test(dow)) return { ...base, preset: 'weekly', time, days: dow.split(',').map(Number) };
  return base;
}

/** The trigger the preset fields write. */
export function exprOf(s) {
  const [hh, mm] = (s.time || '').split(':').map((x) => Number(x));
  const time = Number.isInteger(hh) && Number.isInteger(mm) ? `${mm} ${hh}` : null;
  switch (s.preset) {
    case 'daily':
      return time ? `${time} * * *` : '';
    case 'weekly': {
      const days = WEEK.filter((d) => s.days.includes(d));
      return time && days.length ? `${time} * * ${days.join(',')}` : '';
    }
    case 'minutes':
      return `*/${String(s.n).trim()} * * * *`;
    case 'hours':
      return `${String(s.minute).trim()} */${String(s.hours).trim()} * * *`;
    default:
      return s.cron.trim();
  }
}

function taskFromSpec(task) {
  const a = task.action || {};
  const secs = task.offset_seconds || 0;
  const unit = secs && secs % 3600 === 0 ? 'h' : secs && secs % 60 === 0 ? 'm' : 's';
  return {
    kind: a.kind || 'restart',
    program: a.program || '',
    job: a.job || '',
    wait: a.wait !== false,
    text: a.line ?? a.command ?? a.message ?? '',
    method: a.method || 'GET',
    url: a.url || '',
    // What the form does not show is kept as it was (masked header values stay masked,
    // and the server keeps their stored values).
    keep: a.kind === 'http' ? { headers: a.headers, body: a.body, timeout_seconds: a.timeout_seconds, expect_status: a.expect_status } : {},
    offset: String(secs / UNITS[unit]),
    unit,
    on_failure: task.on_failure || 'abort',
  };
}

const newTask = (kind = 'restart') => taskFromSpec({ action: { kind } });

function scheduleFromSpec(spec) {
  const c = spec.conditions || {};
  return {
    name: spec.name || '',
    description: spec.description || '',
    ...presetOf(spec.trigger || '0 4 * * *'),
    timezone: spec.timezone ?? (spec.name ? '' : browserZone()),
    enabled: spec.enabled !== false,
    missed: spec.missed || 'skip',
    only_when_empty: c.only_when_empty || '',
    skip_if_not_running: c.skip_if_not_running || '',
    tasks: (spec.tasks && spec.tasks.length ? spec.tasks : [{ action: { kind: 'restart' } }]).map(taskFromSpec),
  };
}

/** The schedule the form describes, and the problems the browser can see for sure. */
function scheduleSpec(f) {
  const errs = {};
  if (!f.name.trim()) errs.name = t('sb.err.required');
  if (f.preset === 'weekly' && !f.days.length) errs.trigger = t('sb.err.days');
  if (f.preset === 'minutes' && !(whole(f.n) && Number(f.n) > 0)) errs.trigger = t('sb.err.positive');
  if (f.preset === 'hours' && !(whole(f.hours) && Number(f.hours) > 0 && whole(f.minute))) errs.trigger = t('sb.err.positive');
  const tasks = f.tasks.map((tk, i) => {
    if (!whole(tk.offset)) errs[`tasks[${i}].offset_seconds`] = t('sb.err.number');
    let action;
    if (PROGRAM_KINDS.has(tk.kind)) {
      if (!tk.program) errs[`tasks[${i}].action.program`] = t('sb.err.required');
      action = { kind: tk.kind, program: tk.program };
      if (TEXT_OF[tk.kind]) action[TEXT_OF[tk.kind]] = tk.text;
    } else if (tk.kind === 'job') {
      if (!tk.job) errs[`tasks[${i}].action.job`] = t('sb.err.required');
      action = { kind: 'job', job: tk.job, wait: tk.wait };
    } else {
      action = { kind: 'http', method: tk.method, url: tk.url.trim() };
      for (const [k, v] of Object.entries(tk.keep)) if (v != null) action[k] = v;
    }
    return { offset_seconds: Number(tk.offset) * UNITS[tk.unit], on_failure: tk.on_failure, action };
  });
  const conditions = {};
  if (f.only_when_empty) conditions.only_when_empty = f.only_when_empty;
  if (f.skip_if_not_running) conditions.skip_if_not_running = f.skip_if_not_running;
  const spec = {
    name: f.name.trim(),
    trigger: exprOf(f),
    enabled: f.enabled,
    missed: f.missed,
    conditions,
    tasks,
  };
  if (f.description.trim()) spec.description = f.description.trim();
  if (f.timezone.trim()) spec.timezone = f.timezone.trim();
  return [spec, errs];
}

const SCHEDULE_FIELDS =
  /^(name|description|trigger|timezone|missed|tasks|conditions\.(only_when_empty|skip_if_not_running)|tasks\[\d+\]\.(offset_seconds|action\.(program|job|line|command|message|url|method)))$/;
const JOB_FIELDS = /^(name|description|steps|concurrency|overlap|steps\[\d+\]\.(name|command|args|cwd|timeout_seconds|depends_on))$/;

/** The API's 422 details: by field where the form shows it, the rest as one line. */
function serverErrors(err, known) {
  const by = {};
  const rest = [];
  for (const d of err.details || []) {
    if (known.test(d.field)) by[d.field] = by[d.field] ? `${by[d.field]} ${fieldText(d)}` : fieldText(d);
    else rest.push(`${d.field}: ${fieldText(d)}`);
  }
  const summary = rest.length ? rest.join(' · ') : (err.details || []).length ? t('form.invalid') : errorText(err);
  return [by, summary];
}

/** Focuses the first invalid control once the errors are drawn. */
function focusInvalid() {
  requestAnimationFrame(() => document.querySelector('form.builder [aria-invalid="true"]')?.focus());
}

/** Program and job names for the pickers. */
function useNames() {
  const [names, setNames] = useState({ programs: [], jobs: [] });
  useEffect(() => {
    Promise.all([api.get('/api/programs'), api.get('/api/jobs').catch(() => ({ jobs: [] }))])
      .then(([p, j]) => setNames({ programs: p.programs.map((x) => x.name), jobs: j.jobs.map((x) => x.name) }))
      .catch(() => {});
  }, []);
  return names;
}

/** The next fire times of a trigger, asked of the server while the user edits it. */
function usePreview(trigger, timezone) {
  const [state, setState] = useState({ busy: true, result: null });
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, busy: true }));
    if (!trigger) {
      setState({ busy: false, result: null });
      return undefined;
    }
    const timer = setTimeout(() => {
      const body = { trigger, count: 5 };
      if (timezone.trim()) body.timezone = timezone.trim();
      api
        .post('/api/triggers/preview', body)
        .then((r) => mine === seq.current && setState({ busy: false, result: r }))
        .catch(() => mine === seq.current && setState({ busy: false, result: null }));
    }, 250);
    return () => clearTimeout(timer);
  }, [trigger, timezone]);
  return state;
}

function input(id, value, onInput, error, extra = {}) {
  return html`<input id=${id} value=${value} aria-invalid=${error ? 'true' : undefined}
    aria-describedby=${error ? `${id}-error` : `${id}-help`} onInput=${(e) => onInput(e.currentTarget.value)} ...${extra} />`;
}

function select(id, value, options, onChange, error) {
  return html`<select id=${id} value=${value} aria-invalid=${error ? 'true' : undefined}
    aria-describedby=${error ? `${id}-error` : undefined} onChange=${(e) => onChange(e.currentTarget.value)}>
    ${options.map(([v, label]) => html`<option value=${v} selected=${v === value}>${label}</option>`)}
  </select>`;
}

function TaskRow({ task, i, count, names, errors, onChange, onMove, onRemove }) {
  const id = (k) => `sb-task-${i}-${k}`;
  const err = (k) => errors[`tasks[${i}].${k}`];
  const set = (k) => (v) => onChange({ ...task, [k]: v });
  const textKey = TEXT_OF[task.kind];
  const programOptions = [['', t('sb.choose')], ...names.programs.map((p) => [p, p])];
  if (task.program && !names.programs.includes(task.program)) programOptions.push([task.program, task.program]);
  const jobOptions = [['', t('sb.choose')], ...names.jobs.map((j) => [j, j])];
  if (task.job && !names.jobs.includes(task.job)) jobOptions.push([task.job, task.job]);
  return html`<li class="builder-item" data-task=${i}>
    <div class="toolbar">
      <h4>${t('sb.task', { n: i + 1 })}</h4>
      <span class="grow"></span>
      <button type="button" class="btn" disabled=${i === 0} onClick=${() => onMove(-1)} aria-label=${t('sb.up')}>↑</button>
      <button type="button" class="btn" disabled=${i === count - 1} onClick=${() => onMove(1)} aria-label=${t('sb.down')}>↓</button>
      <button type="button" class="btn danger" disabled=${count === 1} data-remove-task onClick=${onRemove}>${t('sb.remove')}</button>
    </div>
    <div class="grid2">
      <${Field} id=${id('kind')} label=${t('sb.kind')}>
        ${select(id('kind'), task.kind, TASK_KINDS.map((k) => [k, t(`task.${k}`)]), set('kind'))}
      <//>
      ${PROGRAM_KINDS.has(task.kind) &&
      html`<${Field} id=${id('program')} label=${t('sb.program')} error=${err('action.program')}>
        ${select(id('program'), task.program, programOptions, set('program'), err('action.program'))}
      <//>`}
      ${task.kind === 'job' &&
      html`<${Field} id=${id('job')} label=${t('sb.job')} error=${err('action.job')}>
        ${select(id('job'), task.job, jobOptions, set('job'), err('action.job'))}
      <//>`}
      ${task.kind === 'http' &&
      html`<${Field} id=${id('method')} label=${t('sb.method')} error=${err('action.method')}>
        ${select(id('method'), task.method, METHODS.map((m) => [m, m]), set('method'), err('action.method'))}
      <//>`}
    </div>
    ${textKey &&
    html`<${Field} id=${id('text')} label=${t(`sb.${textKey}`)} error=${err(`action.${textKey}`)}>
      ${input(id('text'), task.text, set('text'), err(`action.${textKey}`))}
    <//>`}
    ${task.kind === 'http' &&
    html`<${Field} id=${id('url')} label=${t('sb.url')} error=${err('action.url')}>
      ${input(id('url'), task.url, set('url'), err('action.url'), { type: 'url', spellcheck: false })}
    <//>`}
    ${task.kind === 'job' &&
    html`<label class="check"><input type="checkbox" id=${id('wait')} checked=${task.wait}
      onChange=${(e) => set('wait')(e.currentTarget.checked)} /> ${t('sb.wait')}</label>`}
    <div class="grid3">
      <${Field} id=${id('offset')} label=${t(i === 0 ? 'sb.offset.first' : 'sb.offset')} error=${err('offset_seconds')}>
        ${input(id('offset'), task.offset, set('offset'), err('offset_seconds'), { inputmode: 'numeric' })}
      <//>
      <${Field} id=${id('unit')} label=${t('sb.unit')}>
        ${select(id('unit'), task.unit, Object.keys(UNITS).map((u) => [u, t(`sb.unit.${u}`)]), set('unit'))}
      <//>
      <${Field} id=${id('onfail')} label=${t('sb.onFailure')}>
        ${select(id('onfail'), task.on_failure, ['abort', 'continue'].map((o) => [o, t(`sb.onFailure.${o}`)]), set('on_failure'))}
      <//>
    </div>
  </li>`;
}

function Buttons({ busy, onCancel }) {
  return html`<div class="row">
    <button type="submit" class="btn primary" disabled=${busy}>${t('common.save')}</button>
    <button type="button" class="btn" onClick=${onCancel}>${t('common.cancel')}</button>
  </div>`;
}

/** The schedule builder; `initial` is a definition (empty for a new schedule). */
export function ScheduleBuilder({ initial, editing, onDone }) {
  const [f, setF] = useState(() => scheduleFromSpec(initial || {}));
  const [errors, setErrors] = useState({});
  const [summary, setSummary] = useState(null);
  const [busy, setBusy] = useState(false);
  const names = useNames();
  const expr = exprOf(f);
  const preview = usePreview(expr, f.timezone);
  const set = (k) => (v) => {
    setF((old) => ({ ...old, [k]: v }));
    if (errors[k]) setErrors((e) => ({ ...e, [k]: undefined }));
  };
  const setTasks = (fn) => setF((old) => ({ ...old, tasks: fn(old.tasks) }));
  const choosePreset = (preset) =>
    setF((old) => ({ ...old, preset, cron: preset === 'cron' ? exprOf(old) || old.cron : old.cron }));
  const toggleDay = (d) => setF((old) => ({ ...old, days: old.days.includes(d) ? old.days.filter((x) => x !== d) : [...old.days, d] }));

  const submit = async (e) => {
    e.preventDefault();
    const [spec, local] = scheduleSpec(f);
    if (Object.keys(local).length) {
      setErrors(local);
      setSummary(t('form.invalid'));
      focusInvalid();
      return;
    }
    setBusy(true);
    setSummary(null);
    try {
      if (editing) await api.put(`/api/schedules/${seg(initial.name)}`, spec);
      else await api.post('/api/schedules', spec);
      toast(t('def.saved', { name: spec.name }));
      onDone(true);
    } catch (err) {
      const [by, line] = serverErrors(err, SCHEDULE_FIELDS);
      setErrors(by);
      setSummary(line);
      setBusy(false);
      focusInvalid();
    }
  };

  const r = preview.result;
  const triggerError = errors.trigger || (r && !r.valid ? r.errors.filter((x) => x.field === 'trigger').map(fieldText).join(' ') : null);
  const zoneError = errors.timezone || (r && !r.valid ? r.errors.filter((x) => x.field === 'timezone').map(fieldText).join(' ') : null);
  const explained = expr && describeTrigger(expr);
  const conditionOptions = [['', t('sb.noCondition')], ...names.programs.map((p) => [p, p])];

  return html`<form class="sub builder" onSubmit=${submit} novalidate data-builder="schedule">
    <h3>${editing ? t('def.schedule.edit', { name: initial.name }) : t('def.schedule.new')}</h3>
    ${summary && html`<p class="error" role="alert" data-form-summary>${summary}</p>`}
    <div class="grid2">
      <${Field} id="sb-name" label=${t('sb.name')} help=${t('sb.name.help')} error=${errors.name}>
        ${input('sb-name', f.name, set('name'), errors.name, { disabled: editing, autocomplete: 'off', spellcheck: false })}
      <//>
      <${Field} id="sb-description" label=${t('sb.description')} error=${errors.description}>
        ${input('sb-description', f.description, set('description'), errors.description)}
      <//>
    </div>
    <fieldset>
      <legend>${t('sb.when')}</legend>
      <div class="grid2">
        <${Field} id="sb-preset" label=${t('sb.preset')}>
          ${select('sb-preset', f.preset, PRESETS.map((p) => [p, t(`sb.preset.${p}`)]), choosePreset)}
        <//>
        ${(f.preset === 'daily' || f.preset === 'weekly') &&
        html`<${Field} id="sb-time" label=${t('sb.time')}>${input('sb-time', f.time, set('time'), null, { type: 'time' })}<//>`}
        ${f.preset === 'minutes' &&
        html`<${Field} id="sb-n" label=${t('sb.everyMinutes')}>${input('sb-n', f.n, set('n'), null, { inputmode: 'numeric' })}<//>`}
        ${f.preset === 'hours' &&
        html`<${Field} id="sb-hours" label=${t('sb.everyHours')}>${input('sb-hours', f.hours, set('hours'), null, { inputmode: 'numeric' })}<//>
          <${Field} id="sb-minute" label=${t('sb.atMinute')}>${input('sb-minute', f.minute, set('minute'), null, { inputmode: 'numeric' })}<//>`}
      </div>
      ${f.preset === 'weekly' &&
      html`<fieldset class="days" data-days>
        <legend>${t('sb.days')}</legend>
        ${WEEK.map(
          (d) => html`<label class="check"><input type="checkbox" data-day=${d} checked=${f.days.includes(d)}
            onChange=${() => toggleDay(d)} /> ${t(`cron.day.${d}`)}</label>`,
        )}
      </fieldset>`}
      ${f.preset === 'cron'
        ? html`<${Field} id="sb-cron" label=${t('sb.cron')} help=${t('sb.cron.help')} error=${triggerError}>
            ${input('sb-cron', f.cron, set('cron'), triggerError, { spellcheck: false, autocomplete: 'off', class: 'mono' })}
          <//>`
        : triggerError && html`<p class="error small" role="alert" id="sb-trigger-error">${triggerError}</p>`}
      <p class="small" data-trigger-explained>
        ${expr && !triggerError ? explained || t('sb.explain.none') : ''} ${expr && html`<code class="muted" data-trigger-expr>${expr}</code>`}
      </p>
      <${Field} id="sb-tz" label=${t('sb.timezone')} help=${t('sb.timezone.help')} error=${zoneError}>
        ${input('sb-tz', f.timezone, set('timezone'), zoneError, { list: 'sb-zones', autocomplete: 'off', spellcheck: false })}
        <datalist id="sb-zones">${zones().map((z) => html`<option value=${z}></option>`)}</datalist>
      <//>
      <div class="small" data-preview aria-live="polite" data-busy=${preview.busy ? 'true' : 'false'}>
        ${r && r.valid
          ? html`<span class="muted">${t('sb.nextRuns', { zone: r.effective_timezone })}</span>
              ${r.next_runs.length
                ? html`<ol class="inline-list" data-preview-runs>
                    ${r.next_runs.map(
                      (n) => html`<li key=${n}><time datetime=${n} class="num">${fmt.timeIn(Date.parse(n), r.effective_timezone)}</time></li>`,
                    )}
                  </ol>`
                : html` ${t('sb.nextRuns.none')}`}`
          : preview.busy && expr
            ? html`<span class="muted">${t('sb.checking')}</span>`
            : null}
      </div>
      <div class="grid2">
        <${Field} id="sb-missed" label=${t('sb.missed')}>
          ${select('sb-missed', f.missed, ['skip', 'run_once'].map((m) => [m, t(`sb.missed.${m}`)]), set('missed'))}
        <//>
        <label class="check"><input type="checkbox" id="sb-enabled" checked=${f.enabled}
          onChange=${(e) => set('enabled')(e.currentTarget.checked)} /> ${t('sb.enabled')}</label>
      </div>
    </fieldset>
    <fieldset>
      <legend>${t('sb.conditions')}</legend>
      <div class="grid2">
        <${Field} id="sb-only-empty" label=${t('sb.onlyEmpty')} error=${errors['conditions.only_when_empty']}>
          ${select('sb-only-empty', f.only_when_empty, conditionOptions, set('only_when_empty'), errors['conditions.only_when_empty'])}
        <//>
        <${Field} id="sb-if-running" label=${t('sb.ifRunning')} error=${errors['conditions.skip_if_not_running']}>
          ${select('sb-if-running', f.skip_if_not_running, conditionOptions, set('skip_if_not_running'), errors['conditions.skip_if_not_running'])}
        <//>
      </div>
    </fieldset>
    <fieldset>
      <legend>${t('sb.tasks')}</legend>
      ${errors.tasks && html`<p class="error small" role="alert">${errors.tasks}</p>`}
      <ol class="builder-list" data-tasks>
        ${f.tasks.map(
          (task, i) => html`<${TaskRow} key=${i} task=${task} i=${i} count=${f.tasks.length} names=${names} errors=${errors}
            onChange=${(v) => setTasks((ts) => ts.map((x, j) => (j === i ? v : x)))}
            onMove=${(d) =>
              setTasks((ts) => {
                const out = [...ts];
                [out[i], out[i + d]] = [out[i + d], out[i]];
                return out;
              })}
            onRemove=${() => setTasks((ts) => ts.filter((_, j) => j !== i))} />`,
        )}
      </ol>
      <button type="button" class="btn" data-add-task onClick=${() => setTasks((ts) => [...ts, newTask()])}>${t('sb.addTask')}</button>
    </fieldset>
    <${Buttons} busy=${busy} onCancel=${() => onDone(false)} />
  </form>`;
}

// ---- jobs ---------------------------------------------------------------------------------

function stepFromSpec(s) {
  return {
    name: s.name || '',
    command: s.command || '',
    args: (s.args || []).join('\n'),
    cwd: s.cwd || '',
    timeout: s.timeout_seconds != null ? String(s.timeout_seconds) : '',
    depends_on: s.depends_on || [],
    keep: { env: s.env, retry: s.retry },
  };
}

/** Steps grouped by when they can start: each level needs only earlier ones. */
export function levels(steps) {
  const names = new Set(steps.map((s) => s.name));
  const done = new Set();
  const out = [];
  let left = steps.filter((s) => s.name);
  while (left.length) {
    const ready = left.filter((s) => s.depends_on.every((d) => done.has(d) || !names.has(d)));
    if (!ready.length) return [out, left.map((s) => s.name)];
    out.push(ready.map((s) => s.name));
    for (const s of ready) done.add(s.name);
    left = left.filter((s) => !ready.includes(s));
  }
  return [out, []];
}

function jobSpec(f) {
  const errs = {};
  if (!f.name.trim()) errs.name = t('sb.err.required');
  if (f.concurrency.trim() && !(whole(f.concurrency) && Number(f.concurrency) > 0)) errs.concurrency = t('sb.err.positive');
  const steps = f.steps.map((s, i) => {
    if (!s.name.trim()) errs[`steps[${i}].name`] = t('sb.err.required');
    if (!s.command.trim()) errs[`steps[${i}].command`] = t('sb.err.required');
    if (s.timeout.trim() && !(whole(s.timeout) && Number(s.timeout) > 0)) errs[`steps[${i}].timeout_seconds`] = t('sb.err.positive');
    const out = {
      name: s.name.trim(),
      command: s.command.trim(),
      args: s.args.split('\n').filter((a) => a !== ''),
    };
    if (s.cwd.trim()) out.cwd = s.cwd.trim();
    if (s.timeout.trim()) out.timeout_seconds = Number(s.timeout);
    if (s.depends_on.length) out.depends_on = s.depends_on;
    for (const [k, v] of Object.entries(s.keep)) if (v != null) out[k] = v;
    return out;
  });
  const spec = { ...f.keep, name: f.name.trim(), steps, overlap: f.overlap };
  if (f.description.trim()) spec.description = f.description.trim();
  if (f.concurrency.trim()) spec.concurrency = Number(f.concurrency);
  return [spec, errs];
}

function StepRow({ step, i, all, errors, onChange, onRemove }) {
  const id = (k) => `jb-step-${i}-${k}`;
  const err = (k) => errors[`steps[${i}].${k}`];
  const set = (k) => (v) => onChange({ ...step, [k]: v });
  const others = all.map((s) => s.name).filter((n, j) => n && j !== i);
  const toggle = (n) =>
    set('depends_on')(step.depends_on.includes(n) ? step.depends_on.filter((x) => x !== n) : [...step.depends_on, n]);
  return html`<li class="builder-item" data-step=${i}>
    <div class="toolbar">
      <h4>${t('jb.step', { n: i + 1 })}</h4>
      <span class="grow"></span>
      <button type="button" class="btn danger" disabled=${all.length === 1} data-remove-step onClick=${onRemove}>${t('sb.remove')}</button>
    </div>
    <div class="grid2">
      <${Field} id=${id('name')} label=${t('jb.stepName')} error=${err('name')}>
        ${input(id('name'), step.name, set('name'), err('name'), { autocomplete: 'off', spellcheck: false })}
      <//>
      <${Field} id=${id('command')} label=${t('jb.command')} help=${t('jb.command.help')} error=${err('command')}>
        ${input(id('command'), step.command, set('command'), err('command'), { autocomplete: 'off', spellcheck: false })}
      <//>
    </div>
    <${Field} id=${id('args')} label=${t('jb.args')} error=${err('args')}>
      <textarea id=${id('args')} rows="2" spellcheck="false" value=${step.args}
        aria-invalid=${err('args') ? 'true' : undefined} onInput=${(e) => set('args')(e.currentTarget.value)}></textarea>
    <//>
    <div class="grid2">
      <${Field} id=${id('cwd')} label=${t('jb.cwd')} error=${err('cwd')}>
        ${input(id('cwd'), step.cwd, set('cwd'), err('cwd'), { spellcheck: false })}
      <//>
      <${Field} id=${id('timeout')} label=${t('jb.timeout')} help=${t('jb.timeout.help')} error=${err('timeout_seconds')}>
        ${input(id('timeout'), step.timeout, set('timeout'), err('timeout_seconds'), { inputmode: 'numeric' })}
      <//>
    </div>
    <fieldset class="deps" data-deps=${i}>
      <legend>${t('jb.after')}</legend>
      ${others.length
        ? others.map(
            (n) => html`<label class="check"><input type="checkbox" data-dep=${n} checked=${step.depends_on.includes(n)}
              onChange=${() => toggle(n)} /> <span class="mono">${n}</span></label>`,
          )
        : html`<p class="muted small">${t('jb.after.none')}</p>`}
      ${err('depends_on') && html`<small class="error" role="alert">${err('depends_on')}</small>`}
    </fieldset>
  </li>`;
}

/** The job builder; `initial` is a definition (empty for a new job). */
export function JobBuilder({ initial, editing, onDone }) {
  const [f, setF] = useState(() => {
    const j = initial || {};
    const { name, description, steps, concurrency, overlap, ...keep } = j;
    return {
      name: name || '',
      description: description || '',
      concurrency: concurrency != null ? String(concurrency) : '',
      overlap: overlap || 'skip',
      steps: (steps && steps.length ? steps : [{}]).map(stepFromSpec),
      keep,
    };
  });
  const [errors, setErrors] = useState({});
  const [summary, setSummary] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (v) => setF((old) => ({ ...old, [k]: v }));
  const setStep = (i, v) =>
    setF((old) => {
      const before = old.steps[i].name;
      // A renamed step stays what the others depend on.
      const steps = old.steps.map((s, j) =>
        j === i ? v : before && v.name !== before ? { ...s, depends_on: s.depends_on.map((d) => (d === before ? v.name : d)) } : s,
      );
      return { ...old, steps };
    });
  const removeStep = (i) =>
    setF((old) => {
      const gone = old.steps[i].name;
      const steps = old.steps.filter((_, j) => j !== i).map((s) => ({ ...s, depends_on: s.depends_on.filter((d) => d !== gone) }));
      return { ...old, steps };
    });
  const [order, cycle] = levels(f.steps);

  const submit = async (e) => {
    e.preventDefault();
    const [spec, local] = jobSpec(f);
    if (Object.keys(local).length) {
      setErrors(local);
      setSummary(t('form.invalid'));
      focusInvalid();
      return;
    }
    setBusy(true);
    setSummary(null);
    try {
      if (editing) await api.put(`/api/jobs/${seg(initial.name)}`, spec);
      else await api.post('/api/jobs', spec);
      toast(t('def.saved', { name: spec.name }));
      onDone(true);
    } catch (err) {
      const [by, line] = serverErrors(err, JOB_FIELDS);
      setErrors(by);
      setSummary(line);
      setBusy(false);
      focusInvalid();
    }
  };

  return html`<form class="sub builder" onSubmit=${submit} novalidate data-builder="job">
    <h3>${editing ? t('def.job.edit', { name: initial.name }) : t('def.job.new')}</h3>
    ${summary && html`<p class="error" role="alert" data-form-summary>${summary}</p>`}
    <div class="grid2">
      <${Field} id="jb-name" label=${t('sb.name')} help=${t('sb.name.help')} error=${errors.name}>
        ${input('jb-name', f.name, set('name'), errors.name, { disabled: editing, autocomplete: 'off', spellcheck: false })}
      <//>
      <${Field} id="jb-description" label=${t('sb.description')} error=${errors.description}>
        ${input('jb-description', f.description, set('description'), errors.description)}
      <//>
      <${Field} id="jb-overlap" label=${t('jb.overlap')} error=${errors.overlap}>
        ${select('jb-overlap', f.overlap, ['skip', 'queue', 'replace'].map((o) => [o, t(`jb.overlap.${o}`)]), set('overlap'), errors.overlap)}
      <//>
      <${Field} id="jb-concurrency" label=${t('jb.concurrency')} help=${t('jb.concurrency.help')} error=${errors.concurrency}>
        ${input('jb-concurrency', f.concurrency, set('concurrency'), errors.concurrency, { inputmode: 'numeric' })}
      <//>
    </div>
    <fieldset>
      <legend>${t('jb.steps')}</legend>
      ${errors.steps && html`<p class="error small" role="alert">${errors.steps}</p>`}
      <ol class="builder-list" data-steps>
        ${f.steps.map(
          (s, i) => html`<${StepRow} key=${i} step=${s} i=${i} all=${f.steps} errors=${errors}
            onChange=${(v) => setStep(i, v)} onRemove=${() => removeStep(i)} />`,
        )}
      </ol>
      <button type="button" class="btn" data-add-step
        onClick=${() => setF((old) => ({ ...old, steps: [...old.steps, stepFromSpec({})] }))}>${t('jb.addStep')}</button>
    </fieldset>
    <div class="small" data-job-order>
      <span class="muted">${t('jb.order')}</span>
      <ol class="order">
        ${order.map((names, n) => html`<li key=${n} data-level=${n}>${names.map((x) => html`<span class="chip mono">${x}</span>`)}</li>`)}
      </ol>
      ${cycle.length > 0 && html`<p class="error small" role="alert" data-cycle>${t('jb.order.cycle', { names: cycle.join(', ') })}</p>`}
    </div>
    <${Buttons} busy=${busy} onCancel=${() => onDone(false)} />
  </form>`;
}
