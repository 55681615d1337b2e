// The alert rule's condition built from pickers instead of typed text: either a measurement
// crossing a threshold (metric, comparison, value with its unit, how long it must hold) or
// an event happening N times within a window (event, count, window). The text the server
// parses (`cpu_percent > 90 for 5m`, `crashed >= 3 in 10m`) is shown as it is built; a
// condition the pickers cannot show (written by hand or the CLI) stays editable as text.
// Also the event picker of alert channels.

import { html } from '../lib/html.js';
import { addStrings, t } from '../lib/i18n.js';
import { Field } from '../lib/ui.js';

addStrings({
  en: {
    'rb.kind': 'Fires when',
    'rb.kind.threshold': 'a measurement crosses a line',
    'rb.kind.count': 'an event happens several times',
    'rb.kind.text': 'I write the condition myself',
    'rb.metric': 'Measurement',
    'rb.op': 'Comparison',
    'rb.value': 'Value',
    'rb.unit': 'Unit',
    'rb.hold': 'For at least',
    'rb.hold.help': 'Empty or 0: at once.',
    'rb.event': 'Event',
    'rb.count': 'At least (times)',
    'rb.window': 'Within',
    'rb.preview': 'Condition',
    'rb.incomplete': 'Choose every part of the condition.',
    'rb.op.>': 'above',
    'rb.op.>=': 'at or above',
    'rb.op.<': 'below',
    'rb.op.<=': 'at or below',
    'rb.unit.s': 'seconds',
    'rb.unit.m': 'minutes',
    'rb.unit.h': 'hours',
    'rb.metric.cpu_percent': 'CPU (% of one core)',
    'rb.metric.memory_bytes': 'Memory in use',
    'rb.metric.virtual_bytes': 'Virtual memory',
    'rb.metric.threads': 'Threads',
    'rb.metric.open_files': 'Open files',
    'rb.metric.disk_read_bps': 'Disk reads per second',
    'rb.metric.disk_write_bps': 'Disk writes per second',
    'rb.metric.players': 'Players online',
    'rb.events.pick': 'Events to receive',
    'rb.events.all': 'Every event (none ticked)',
    'rb.group.program': 'Programs',
    'rb.group.job': 'Jobs and schedules',
    'rb.group.backup': 'Backups',
    'rb.group.warden': 'warden and alerts',
    'rb.ev.started': 'Started',
    'rb.ev.stopped': 'Stopped',
    'rb.ev.crashed': 'Crashed',
    'rb.ev.restarting': 'Restarting after a crash',
    'rb.ev.fatal': 'Gave up restarting',
    'rb.ev.adopted': 'Found running after a warden restart',
    'rb.ev.oom_killed': 'Killed for using too much memory',
    'rb.ev.health_unhealthy': 'Health check failing',
    'rb.ev.health_recovered': 'Health check passing again',
    'rb.ev.job_failed': 'Job failed',
    'rb.ev.job_overrun': 'Job ran longer than usual',
    'rb.ev.job_skipped': 'Job run skipped',
    'rb.ev.job_finished': 'Job finished',
    'rb.ev.schedule_failed': 'Schedule failed',
    'rb.ev.schedule_missed': 'Schedule missed while warden was down',
    'rb.ev.backup_failed': 'Backup failed',
    'rb.ev.backup_finished': 'Backup finished',
    'rb.ev.restore_failed': 'Restore failed',
    'rb.ev.hook_failed': 'Hook failed',
    'rb.ev.rule_fired': 'Alert rule fired',
    'rb.ev.rule_recovered': 'Alert rule recovered',
    'rb.ev.warden_started': 'warden started',
    'rb.ev.warden_stopping': 'warden stopping',
  },
  ko: {
    'rb.kind': '알림 조건',
    'rb.kind.threshold': '측정값이 기준을 넘을 때',
    'rb.kind.count': '이벤트가 여러 번 일어날 때',
    'rb.kind.text': '조건을 직접 입력',
    'rb.metric': '측정값',
    'rb.op': '비교',
    'rb.value': '값',
    'rb.unit': '단위',
    'rb.hold': '최소 지속 시간',
    'rb.hold.help': '비우거나 0이면 즉시.',
    'rb.event': '이벤트',
    'rb.count': '최소 횟수',
    'rb.window': '기간',
    'rb.preview': '조건',
    'rb.incomplete': '조건의 모든 부분을 선택하세요.',
    'rb.op.>': '초과',
    'rb.op.>=': '이상',
    'rb.op.<': '미만',
    'rb.op.<=': '이하',
    'rb.unit.s': '초',
    'rb.unit.m': '분',
    'rb.unit.h': '시간',
    'rb.metric.cpu_percent': 'CPU (코어 하나 기준 %)',
    'rb.metric.memory_bytes': '사용 중인 메모리',
    'rb.metric.virtual_bytes': '가상 메모리',
    'rb.metric.threads': '스레드 수',
    'rb.metric.open_files': '열린 파일 수',
    'rb.metric.disk_read_bps': '초당 디스크 읽기',
    'rb.metric.disk_write_bps': '초당 디스크 쓰기',
    'rb.metric.players': '접속 중인 플레이어',
    'rb.events.pick': '받을 이벤트',
    'rb.events.all': '모든 이벤트 (아무것도 선택하지 않음)',
    'rb.group.program': '프로그램',
    'rb.group.job': '작업과 일정',
    'rb.group.backup': '백업',
    'rb.group.warden': 'warden과 알림',
    'rb.ev.started': '시작됨',
    'rb.ev.stopped': '중지됨',
    'rb.ev.crashed': '비정상 종료',
    'rb.ev.restarting': '비정상 종료 후 재시작 중',
    'rb.ev.fatal': '재시작 포기',
    'rb.ev.adopted': 'warden 재시작 후 실행 중으로 확인됨',
    'rb.ev.oom_killed': '메모리 초과로 강제 종료됨',
    'rb.ev.health_unhealthy': '상태 확인 실패',
    'rb.ev.health_recovered': '상태 확인 회복',
    'rb.ev.job_failed': '작업 실패',
    'rb.ev.job_overrun': '작업이 평소보다 오래 걸림',
    'rb.ev.job_skipped': '작업 실행 건너뜀',
    'rb.ev.job_finished': '작업 완료',
    'rb.ev.schedule_failed': '일정 실패',
    'rb.ev.schedule_missed': 'warden이 꺼져 있어 놓친 일정',
    'rb.ev.backup_failed': '백업 실패',
    'rb.ev.backup_finished': '백업 완료',
    'rb.ev.restore_failed': '복원 실패',
    'rb.ev.hook_failed': '훅 실패',
    'rb.ev.rule_fired': '알림 규칙 발생',
    'rb.ev.rule_recovered': '알림 규칙 회복',
    'rb.ev.warden_started': 'warden 시작됨',
    'rb.ev.warden_stopping': 'warden 중지 중',
  },
});

/** Metrics of the condition grammar (src/alerts/rules.rs) and the units each takes. */
export const METRICS = {
  cpu_percent: ['%'],
  memory_bytes: ['MiB', 'GiB'],
  virtual_bytes: ['MiB', 'GiB'],
  threads: [''],
  open_files: [''],
  disk_read_bps: ['KiB', 'MiB'],
  disk_write_bps: ['KiB', 'MiB'],
  players: [''],
};
const OPS = ['>', '>=', '<', '<='];
const TIME_UNITS = ['s', 'm', 'h'];

/** Event kinds people alert on, grouped; the server accepts any kind, these are offered. */
export const EVENT_GROUPS = [
  ['program', ['crashed', 'fatal', 'restarting', 'started', 'stopped', 'adopted', 'oom_killed', 'health_unhealthy', 'health_recovered']],
  ['job', ['job_failed', 'job_overrun', 'job_skipped', 'job_finished', 'schedule_failed', 'schedule_missed']],
  ['backup', ['backup_failed', 'backup_finished', 'restore_failed']],
  ['warden', ['rule_fired', 'rule_recovered', 'hook_failed', 'warden_started', 'warden_stopping']],
];
const KNOWN_EVENTS = new Set(EVENT_GROUPS.flatMap(([, kinds]) => kinds));

export const EMPTY_CONDITION = {
  mode: 'count',
  metric: 'cpu_percent',
  op: '>',
  value: '',
  unit: '%',
  hold: '',
  holdUnit: 'm',
  event: 'crashed',
  count: '3',
  window: '10',
  windowUnit: 'm',
  text: '',
};

/** The pickers' state of a condition text; text mode when the pickers cannot show it. */
export function parseCondition(text) {
  const c = { ...EMPTY_CONDITION, text };
  const words = text.trim().split(/\s+/);
  const m = /^(\d+(?:\.\d+)?)(%|KiB|MiB|GiB)?$/;
  const d = /^(\d+)(s|m|h)$/;
  if (METRICS[words[0]] && (words.length === 3 || (words.length === 5 && words[3] === 'for'))) {
    const v = m.exec(words[2]);
    const unit = v && (v[2] || METRICS[words[0]][0]);
    const hold = words.length === 5 ? d.exec(words[4]) : null;
    if (OPS.includes(words[1]) && v && METRICS[words[0]].includes(unit) && (words.length === 3 || hold)) {
      return {
        ...c,
        mode: 'threshold',
        metric: words[0],
        op: words[1],
        value: v[1],
        unit,
        hold: hold ? hold[1] : '',
        holdUnit: hold ? hold[2] : 'm',
      };
    }
  }
  if (words.length === 5 && words[1] === '>=' && words[3] === 'in' && KNOWN_EVENTS.has(words[0])) {
    const w = d.exec(words[4]);
    if (/^\d+$/.test(words[2]) && w) {
      return { ...c, mode: 'count', event: words[0], count: words[2], window: w[1], windowUnit: w[2] };
    }
  }
  return { ...c, mode: text.trim() ? 'text' : 'count' };
}

/** The condition text of the pickers' state, or null while a part is missing. */
export function conditionText(c) {
  if (c.mode === 'text') return c.text.trim() || null;
  if (c.mode === 'threshold') {
    if (!/^\d+(\.\d+)?$/.test(c.value.trim())) return null;
    const hold = c.hold.trim();
    if (hold && !/^\d+$/.test(hold)) return null;
    const base = `${c.metric} ${c.op} ${c.value.trim()}${c.unit}`;
    return hold && Number(hold) > 0 ? `${base} for ${hold}${c.holdUnit}` : base;
  }
  if (!/^\d+$/.test(c.count.trim()) || !/^\d+$/.test(c.window.trim())) return null;
  return `${c.event} >= ${c.count.trim()} in ${c.window.trim()}${c.windowUnit}`;
}

/** An event kind as words; a kind this list does not offer as itself. */
export const eventLabel = (k) => (KNOWN_EVENTS.has(k) ? t(`rb.ev.${k}`) : k);

/** An event `<select>` grouped by family. */
function EventSelect({ id, value, onChange }) {
  return html`<select id=${id} value=${value} onChange=${onChange}>
    ${EVENT_GROUPS.map(
      ([group, kinds]) => html`<optgroup label=${t(`rb.group.${group}`)}>
        ${kinds.map((k) => html`<option value=${k}>${eventLabel(k)}</option>`)}
      </optgroup>`,
    )}
  </select>`;
}

/** The condition pickers; `c` is the state from `parseCondition`, `onChange` gets the next. */
export function ConditionBuilder({ c, onChange, error }) {
  const set = (key) => (e) => {
    const next = { ...c, [key]: e.currentTarget.value };
    // A metric keeps its unit only when it takes it.
    if (key === 'metric' && !METRICS[next.metric].includes(next.unit)) next.unit = METRICS[next.metric][0];
    if (key === 'mode' && next.mode === 'text' && !next.text) next.text = conditionText(c) || '';
    onChange(next);
  };
  const num = (key, label, help) => html`<${Field} id=${`rb-${key}`} label=${label} help=${help}>
      <input id=${`rb-${key}`} inputmode="decimal" autocomplete="off" value=${c[key]} onInput=${set(key)} />
    <//>`;
  const timeUnit = (key) => html`<${Field} id=${`rb-${key}`} label=${t('rb.unit')}>
      <select id=${`rb-${key}`} value=${c[key]} onChange=${set(key)}>
        ${TIME_UNITS.map((u) => html`<option value=${u}>${t(`rb.unit.${u}`)}</option>`)}
      </select>
    <//>`;
  const text = conditionText(c);
  return html`<fieldset class="rule-builder" data-condition-builder>
    <legend>${t('rb.kind')}</legend>
    <div class="row">
      ${['count', 'threshold', 'text'].map(
        (m) => html`<label class="check"><input type="radio" name="rb-mode" value=${m} checked=${c.mode === m}
          data-mode=${m} onChange=${set('mode')} /> ${t(`rb.kind.${m}`)}</label>`,
      )}
    </div>
    ${c.mode === 'threshold' &&
    html`<div class="row">
      <${Field} id="rb-metric" label=${t('rb.metric')}>
        <select id="rb-metric" value=${c.metric} onChange=${set('metric')}>
          ${Object.keys(METRICS).map((k) => html`<option value=${k}>${t(`rb.metric.${k}`)}</option>`)}
        </select>
      <//>
      <${Field} id="rb-op" label=${t('rb.op')}>
        <select id="rb-op" value=${c.op} onChange=${set('op')}>
          ${OPS.map((o) => html`<option value=${o}>${t(`rb.op.${o}`)}</option>`)}
        </select>
      <//>
      ${num('value', t('rb.value'))}
      ${METRICS[c.metric][0] !== '' &&
      html`<${Field} id="rb-unit" label=${t('rb.unit')}>
        <select id="rb-unit" value=${c.unit} onChange=${set('unit')}>
          ${METRICS[c.metric].map((u) => html`<option value=${u}>${u}</option>`)}
        </select>
      <//>`}
      ${num('hold', t('rb.hold'), t('rb.hold.help'))}
      ${timeUnit('holdUnit')}
    </div>`}
    ${c.mode === 'count' &&
    html`<div class="row">
      <${Field} id="rb-event" label=${t('rb.event')}>
        <${EventSelect} id="rb-event" value=${c.event} onChange=${set('event')} />
      <//>
      ${num('count', t('rb.count'))}
      ${num('window', t('rb.window'))}
      ${timeUnit('windowUnit')}
    </div>`}
    ${c.mode === 'text'
      ? html`<${Field} id="ru-condition" label=${t('alerts.rule.condition')} help=${t('alerts.rule.condition.help')} error=${error}>
          <input id="ru-condition" autocomplete="off" value=${c.text} onInput=${set('text')}
            aria-invalid=${error ? 'true' : undefined} />
        <//>`
      : html`<p class="small">${t('rb.preview')}: ${text
            ? html`<code data-condition-preview>${text}</code>`
            : html`<span class="muted" data-condition-preview="">${t('rb.incomplete')}</span>`}</p>
          ${error && html`<small class="error" role="alert">${error}</small>`}`}
  </fieldset>`;
}

/** Event checkboxes of an alert channel, grouped; kinds not offered stay as they were. */
export function EventPicker({ value, onChange }) {
  const chosen = new Set(value);
  const toggle = (k) => (e) => {
    const next = new Set(chosen);
    if (e.currentTarget.checked) next.add(k);
    else next.delete(k);
    onChange([...next]);
  };
  const others = value.filter((k) => !KNOWN_EVENTS.has(k));
  return html`<fieldset data-event-picker>
    <legend>${t('rb.events.pick')}</legend>
    ${EVENT_GROUPS.map(
      ([group, kinds]) => html`<div class="sub">
        <strong class="small">${t(`rb.group.${group}`)}</strong>
        <div class="row">
          ${kinds.map(
            (k) => html`<label class="check"><input type="checkbox" data-event=${k} checked=${chosen.has(k)}
              onChange=${toggle(k)} /> ${eventLabel(k)}</label>`,
          )}
        </div>
      </div>`,
    )}
    ${others.length > 0 && html`<p class="small"><code data-user-data>${others.join(', ')}</code></p>`}
    <small class="help">${t('rb.events.all')}</small>
  </fieldset>`;
}
