// A program's backup settings, on its page under the backups: include/exclude globs with
// a live preview of the files they cover (POST …/backup-settings/preview), retention, the
// console steps before and after, and a shortcut that schedules a nightly backup at 04:00.
// Settings this form does not show (destination, compression, throttle…) are kept.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { addStrings, fmt, plural, t } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { allowed, can } from '../lib/session.js';
import { errorText, errorsByField, Field, toast, toastError, unplacedErrors } from '../lib/ui.js';

addStrings({
  en: {
    'bs.title': 'Backup settings',
    'bs.include': 'Include (one glob a line)',
    'bs.include.help': 'Relative to the working directory; a folder includes all it holds. ** is everything.',
    'bs.exclude': 'Exclude (one glob a line)',
    'bs.exclude.help': 'e.g. logs or **/*.tmp',
    'bs.preview': 'Would back up',
    'bs.preview.files.one': '{n} file, {size}',
    'bs.preview.files.other': '{n} files, {size}',
    'bs.preview.more': '… and more',
    'bs.preview.busy': 'Checking…',
    'bs.retention': 'Keep',
    'bs.retention.help': 'Empty everywhere: keep every backup.',
    'bs.keep_last': 'The newest',
    'bs.keep_daily': 'One a day, days',
    'bs.keep_weekly': 'One a week, weeks',
    'bs.keep_monthly': 'One a month, months',
    'bs.pre': 'Before reading the files',
    'bs.post': 'Afterwards (always)',
    'bs.steps.help': 'Console lines, e.g. save-off then save-all waiting for “Saved the game”.',
    'bs.step.stdin': 'Console line',
    'bs.step.wait_for': 'Wait for a line containing',
    'bs.step.timeout': 'Give up after (seconds)',
    'bs.step.add': 'Add a step',
    'bs.step.remove': 'Remove step {n}',
    'bs.stop': 'Stop the program during the backup instead (for servers without a save command)',
    'bs.save': 'Save backup settings',
    'bs.saved': 'Backup settings saved.',
    'bs.number': 'Enter a whole number, or leave it empty.',
    'bs.nightly': 'Back up nightly at 04:00',
    'bs.nightly.done': 'Schedule {name} created: a backup every night at 04:00 ({zone}).',
  },
  ko: {
    'bs.title': '백업 설정',
    'bs.include': '포함(한 줄에 패턴 하나)',
    'bs.include.help': '작업 디렉터리 기준. 폴더를 고르면 그 안의 모든 것이 포함됩니다. **는 전체입니다.',
    'bs.exclude': '제외(한 줄에 패턴 하나)',
    'bs.exclude.help': '예: logs 또는 **/*.tmp',
    'bs.preview': '백업 대상',
    'bs.preview.files.other': '파일 {n}개, {size}',
    'bs.preview.more': '… 외 더 있음',
    'bs.preview.busy': '확인 중…',
    'bs.retention': '보관',
    'bs.retention.help': '모두 비우면 모든 백업을 보관합니다.',
    'bs.keep_last': '최근 개수',
    'bs.keep_daily': '하루 하나씩, 일 수',
    'bs.keep_weekly': '한 주 하나씩, 주 수',
    'bs.keep_monthly': '한 달 하나씩, 개월 수',
    'bs.pre': '파일을 읽기 전',
    'bs.post': '읽은 후(항상)',
    'bs.steps.help': '콘솔 입력. 예: save-off 다음 save-all, “Saved the game”이 나올 때까지 대기.',
    'bs.step.stdin': '콘솔 입력',
    'bs.step.wait_for': '이 내용이 든 줄까지 대기',
    'bs.step.timeout': '제한 시간(초)',
    'bs.step.add': '단계 추가',
    'bs.step.remove': '{n}단계 삭제',
    'bs.stop': '대신 백업하는 동안 프로그램 중지(저장 명령이 없는 서버용)',
    'bs.save': '백업 설정 저장',
    'bs.saved': '백업 설정을 저장했습니다.',
    'bs.number': '정수를 입력하거나 비워 두세요.',
    'bs.nightly': '매일 밤 04:00에 백업',
    'bs.nightly.done': '예약 {name}을(를) 만들었습니다: 매일 밤 04:00({zone})에 백업합니다.',
  },
});

const KEEP = ['keep_last', 'keep_daily', 'keep_weekly', 'keep_monthly'];
const lines = (s) => s.split('\n').map((l) => l.trim()).filter(Boolean);
const stepFrom = (s) => ({ stdin: s.stdin || '', wait_for: s.wait_for || '', timeout: String(s.timeout_seconds ?? 30) });

function fromSettings(s) {
  const f = {
    include: (s.include || []).join('\n'),
    exclude: (s.exclude || []).join('\n'),
    pre: (s.pre || []).map(stepFrom),
    post: (s.post || []).map(stepFrom),
    stop: !!s.stop_during_backup,
  };
  for (const k of KEEP) f[k] = s.retention && s.retention[k] != null ? String(s.retention[k]) : '';
  return f;
}

/** `[settings, errors]` from the form on top of the stored settings. */
function toSettings(f, base) {
  const errors = {};
  const whole = (key, v) => {
    const x = String(v).trim();
    if (!/^\d+$/.test(x)) errors[key] = t('bs.number');
    return Number(x);
  };
  const retention = {};
  for (const k of KEEP) if (f[k].trim()) retention[k] = whole(k, f[k]);
  const steps = (list, which) =>
    list.map((s, i) => {
      const out = { stdin: s.stdin, timeout_seconds: whole(`${which}.${i}`, s.timeout) };
      if (s.wait_for.trim()) out.wait_for = s.wait_for;
      return out;
    });
  const settings = {
    ...base,
    include: lines(f.include),
    exclude: lines(f.exclude),
    retention,
    pre: steps(f.pre, 'pre'),
    post: steps(f.post, 'post'),
    stop_during_backup: f.stop,
  };
  return [settings, errors];
}

/** The form key an API error field belongs to. */
function known(field) {
  const m = /^(include|exclude|pre|post|retention\.(keep_\w+))/.exec(field);
  if (!m) return null;
  return m[2] || (m[1] === 'pre' || m[1] === 'post' ? `${m[1]}.steps` : m[1]);
}

function StepList({ which, steps, onChange, error }) {
  const edit = (i, key) => (e) => onChange(steps.map((s, j) => (j === i ? { ...s, [key]: e.currentTarget.value } : s)));
  return html`<fieldset data-bs-steps=${which}>
    <legend>${t(`bs.${which}`)}</legend>
    ${error && html`<p class="error small" role="alert">${error}</p>`}
    <ol class="builder-list">
      ${steps.map(
        (s, i) => html`<li key=${i} class="sub" data-bs-step=${i}>
          <div class="grid2">
            <${Field} id=${`bs-${which}-${i}-stdin`} label=${t('bs.step.stdin')}>
              <input id=${`bs-${which}-${i}-stdin`} value=${s.stdin} spellcheck="false" onInput=${edit(i, 'stdin')} />
            <//>
            <${Field} id=${`bs-${which}-${i}-wait_for`} label=${t('bs.step.wait_for')}>
              <input id=${`bs-${which}-${i}-wait_for`} value=${s.wait_for} spellcheck="false" onInput=${edit(i, 'wait_for')} />
            <//>
            <${Field} id=${`bs-${which}-${i}-timeout`} label=${t('bs.step.timeout')}>
              <input id=${`bs-${which}-${i}-timeout`} value=${s.timeout} inputmode="numeric" onInput=${edit(i, 'timeout')} />
            <//>
          </div>
          <div class="row end">
            <button type="button" class="btn" data-bs-remove=${i} aria-label=${t('bs.step.remove', { n: i + 1 })}
              onClick=${() => onChange(steps.filter((_, j) => j !== i))}>✕</button>
          </div>
        </li>`,
      )}
    </ol>
    <button type="button" class="btn" data-bs-add=${which}
      onClick=${() => onChange([...steps, stepFrom({})])}>${t('bs.step.add')}</button>
  </fieldset>`;
}

export function BackupSettings({ program }) {
  const name = program.name;
  const [base, setBase] = useState(null);
  const [f, setF] = useState(null);
  const [errors, setErrors] = useState({});
  const [summary, setSummary] = useState(null);
  const [busy, setBusy] = useState(false);
  const [preview, setPreview] = useState(null);
  const [previewBusy, setPreviewBusy] = useState(false);
  const canPreview = allowed('files.read', name) && !!program.cwd;

  useEffect(() => {
    api
      .get(`/api/programs/${seg(name)}/backup-settings`)
      .then((s) => {
        setBase(s);
        setF(fromSettings(s));
      })
      .catch(toastError);
  }, [name]);

  // The preview follows the globs as they are typed (a moment after the last key).
  const include = f ? f.include : null;
  const exclude = f ? f.exclude : null;
  useEffect(() => {
    if (include == null || !canPreview) return undefined;
    let alive = true;
    setPreviewBusy(true);
    const timer = setTimeout(() => {
      api
        .post(`/api/programs/${seg(name)}/backup-settings/preview`, { include: lines(include), exclude: lines(exclude) })
        .then((p) => alive && setPreview({ ok: p }))
        .catch((e) => alive && setPreview({ error: errorText(e) }))
        .finally(() => alive && setPreviewBusy(false));
    }, 300);
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [name, include, exclude, canPreview]);

  if (!f) return html`<p class="muted">${t('common.loading')}</p>`;
  const set = (key) => (e) => {
    const v = e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value;
    setF((old) => ({ ...old, [key]: v }));
    if (errors[key]) setErrors({ ...errors, [key]: undefined });
  };
  const setList = (key) => (v) => setF((old) => ({ ...old, [key]: v }));

  const save = async (e) => {
    e.preventDefault();
    const [settings, local] = toSettings(f, base);
    if (Object.keys(local).length) {
      setErrors(local);
      setSummary(t('form.invalid'));
      return;
    }
    setBusy(true);
    setSummary(null);
    try {
      const saved = await api.put(`/api/programs/${seg(name)}/backup-settings`, settings);
      setBase(saved);
      setF(fromSettings(saved));
      setErrors({});
      toast(t('bs.saved'));
    } catch (err) {
      setErrors(errorsByField(err, known));
      setSummary(unplacedErrors(err, known) || t('form.invalid'));
    } finally {
      setBusy(false);
    }
  };

  const nightly = async () => {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    const schedule = `${name}-nightly-backup`;
    try {
      await api.post('/api/schedules', {
        name: schedule,
        trigger: '0 4 * * *',
        timezone: zone,
        tasks: [{ action: { kind: 'backup', program: name } }],
      });
      toast(t('bs.nightly.done', { name: schedule, zone }));
    } catch (err) {
      toastError(err);
    }
  };

  const area = (key) => html`<${Field} id=${`bs-${key}`} label=${t(`bs.${key}`)} help=${t(`bs.${key}.help`)} error=${errors[key]}>
    <textarea id=${`bs-${key}`} rows="3" spellcheck="false" value=${f[key]} onInput=${set(key)}
      aria-invalid=${errors[key] ? 'true' : undefined}></textarea>
  <//>`;
  const stepErr = (which) =>
    errors[`${which}.steps`] || Object.entries(errors).find(([k, v]) => v && k.startsWith(`${which}.`))?.[1];

  return html`<form class="sub builder" onSubmit=${save} novalidate data-backup-settings>
    ${summary && html`<p class="error" role="alert" data-form-summary>${summary}</p>`}
    <div class="grid2">${area('include')} ${area('exclude')}</div>
    ${canPreview &&
    html`<div class="small" data-bs-preview data-busy=${previewBusy ? 'true' : 'false'} aria-live="polite">
      <span class="muted">${t('bs.preview')}: </span>
      ${preview && preview.error && html`<span class="error">${preview.error}</span>`}
      ${preview && preview.ok &&
      html`<span data-bs-count=${preview.ok.files}>${plural('bs.preview.files', preview.ok.files, { size: fmt.bytes(preview.ok.bytes) })}</span>
        <ul class="mono bs-files" data-bs-files>
          ${preview.ok.sample.map((p) => html`<li key=${p}>${p}</li>`)}
        </ul>
        ${preview.ok.truncated && html`<span class="muted">${t('bs.preview.more')}</span>`}`}
      ${previewBusy && !preview && html`<span class="muted">${t('bs.preview.busy')}</span>`}
    </div>`}
    <fieldset>
      <legend>${t('bs.retention')}</legend>
      <p class="muted small">${t('bs.retention.help')}</p>
      <div class="grid2">
        ${KEEP.map(
          (k) => html`<${Field} id=${`bs-${k}`} label=${t(`bs.${k}`)} error=${errors[k]}>
            <input id=${`bs-${k}`} value=${f[k]} inputmode="numeric" onInput=${set(k)}
              aria-invalid=${errors[k] ? 'true' : undefined} />
          <//>`,
        )}
      </div>
    </fieldset>
    <p class="muted small">${t('bs.steps.help')}</p>
    <${StepList} which="pre" steps=${f.pre} onChange=${setList('pre')} error=${stepErr('pre')} />
    <${StepList} which="post" steps=${f.post} onChange=${setList('post')} error=${stepErr('post')} />
    <label class="check"><input type="checkbox" id="bs-stop" checked=${f.stop} onChange=${set('stop')} /> ${t('bs.stop')}</label>
    <div class="row end">
      ${can('admin') &&
      html`<button type="button" class="btn" data-bs-nightly onClick=${nightly}>${t('bs.nightly')}</button>`}
      <button type="submit" class="btn primary" disabled=${busy} data-bs-save>${t('bs.save')}</button>
    </div>
  </form>`;
}
