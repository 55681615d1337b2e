// Export and Import of definitions (program, schedule, job, channel) as the TOML the CLI
// applies. Export shows the server's TOML (`GET /api/definitions/KIND/NAME/toml`) with
// copy and download; Import takes TOML, asks the server to check it (problems come back
// with stable codes, lines and columns, said here in the user's language) and saves it
// through `POST /api/definitions/KIND/import`, the same path as `warden apply`.

import { useState } from 'preact/hooks';
import { html } from './html.js';
import { addStrings, t } from './i18n.js';
import { fieldText } from './errors.js';
import { api, seg } from './api.js';
import { copyText, toast, toastError } from './ui.js';

addStrings({
  en: {
    'toml.exportButton': 'Export TOML',
    'toml.importButton': 'Import TOML',
    'toml.export.title': '{name} as TOML',
    'toml.export.help': 'The format the command line applies (warden apply; warden ctl schedule apply; warden ctl job apply). Secrets are masked.',
    'toml.export.help.channel': 'The channel with the field names of the API; import it here. URLs and tokens are masked: write them again before importing.',
    'toml.import.title.program': 'Import programs from TOML',
    'toml.import.title.schedule': 'Import a schedule from TOML',
    'toml.import.title.job': 'Import a job from TOML',
    'toml.import.title.channel': 'Import an alert channel from TOML',
    'toml.import.help': 'Paste a file in the format the CLI applies. An existing definition of the same name is replaced.',
    'toml.text': 'TOML',
    'toml.check': 'Check',
    'toml.save': 'Import',
    'toml.download': 'Download',
    'toml.ok': 'Ready to import: {names}',
    'toml.imported': 'Imported. Created: {created}. Updated: {updated}. Unchanged: {unchanged}.',
    'toml.where': 'Line {line}, column {column}: ',
    'toml.problem.toml_syntax': 'the text is not valid TOML.',
    'toml.problem.unknown_field': 'unknown field {field}.',
    'toml.problem.missing_field': 'the required field {field} is missing.',
    'toml.problem.invalid_value': 'a value has the wrong type or is not allowed.',
    'toml.problem.masked_secret': '{field} is masked; write the real value.',
    'toml.problem.empty': 'the file holds no definition.',
    'toml.problem.invalid': '{field} is not valid:',
  },
  ko: {
    'toml.exportButton': 'TOML 내보내기',
    'toml.importButton': 'TOML 가져오기',
    'toml.export.title': '{name}의 TOML',
    'toml.export.help': '명령줄 도구가 적용하는 형식입니다. 비밀 값은 가려져 있습니다.',
    'toml.export.help.channel': '채널의 항목 이름은 API와 같습니다. 여기에서 가져올 수 있습니다. 주소와 토큰은 가려져 있으니 가져오기 전에 다시 입력하세요.',
    'toml.import.title.program': 'TOML에서 프로그램 가져오기',
    'toml.import.title.schedule': 'TOML에서 일정 가져오기',
    'toml.import.title.job': 'TOML에서 작업 가져오기',
    'toml.import.title.channel': 'TOML에서 알림 채널 가져오기',
    'toml.import.help': '명령줄 도구가 적용하는 형식의 파일을 붙여 넣으세요. 같은 이름의 정의는 바뀝니다.',
    'toml.text': 'TOML',
    'toml.check': '검사',
    'toml.save': '가져오기',
    'toml.download': '내려받기',
    'toml.ok': '가져올 수 있습니다: {names}',
    'toml.imported': '가져왔습니다. 새로 만듦: {created}. 바뀜: {updated}. 그대로: {unchanged}.',
    'toml.where': '{line}번째 줄 {column}번째 칸: ',
    'toml.problem.toml_syntax': '올바른 TOML이 아닙니다.',
    'toml.problem.unknown_field': '알 수 없는 항목 {field}.',
    'toml.problem.missing_field': '필수 항목 {field}이(가) 없습니다.',
    'toml.problem.invalid_value': '값의 형식이 틀렸거나 허용되지 않는 값입니다.',
    'toml.problem.masked_secret': '{field} 항목은 가려져 있습니다. 실제 값을 입력하세요.',
    'toml.problem.empty': '파일에 정의가 없습니다.',
    'toml.problem.invalid': '{field} 항목이 올바르지 않습니다:',
  },
});

/** Codes of problems in reading the text; any other code is a validation problem's. */
const PARSE_CODES = ['toml_syntax', 'unknown_field', 'missing_field', 'invalid_value', 'masked_secret', 'empty'];

/**
 * A problem as a sentence in the user's language: a parse problem with the parser's own
 * words quoted, a validation problem phrased from its code and params.
 */
function Problem({ p }) {
  const where = p.line != null ? t('toml.where', { line: p.line, column: p.column }) : '';
  if (!PARSE_CODES.includes(p.code)) {
    return html`<li data-problem-code=${p.code} data-problem-field=${p.field} data-problem-line=${p.line ?? ''}>
      <span data-problem-text>${where}<code>${p.field}</code>: ${fieldText(p)}</span>
    </li>`;
  }
  const code = p.code;
  return html`<li data-problem-code=${p.code} data-problem-field=${p.field} data-problem-line=${p.line ?? ''}>
    <span data-problem-text>${where}${withField(t(`toml.problem.${code}`), p.field)}</span>
    ${' '}<code class="small">${p.message}</code>
  </li>`;
}

/** A sentence with its `{field}` shown as code (a key of the file, not a word). */
function withField(sentence, field) {
  const [before, after = ''] = sentence.split('{field}');
  return sentence.includes('{field}') ? html`${before}<code>${field}</code>${after}` : sentence;
}

/** The 422 details of a failed import as problems. */
const problemsOf = (err) =>
  (err.details || []).map((d) => ({ code: d.code, params: d.params, field: d.field, message: d.message, line: null, column: null }));

function Overlay({ label, onClose, children }) {
  return html`<div class="overlay" role="dialog" aria-modal="true" aria-label=${label}
    onKeyDown=${(e) => e.key === 'Escape' && onClose()}>
    <div class="card overlay-card">${children}</div>
  </div>`;
}

/** "Export TOML" for one definition: shows the text with copy and download. */
export function ExportButton({ kind, name }) {
  const [shown, setShown] = useState(null);
  const open = () =>
    api
      .get(`/api/definitions/${kind}/${seg(name)}/toml`)
      .then(setShown)
      .catch(toastError);
  const download = () => {
    const url = URL.createObjectURL(new Blob([shown.toml], { type: 'application/toml' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = shown.file_name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return html`<button type="button" class="btn" data-export-toml=${`${kind}:${name}`} onClick=${open}>${t('toml.exportButton')}</button>
    ${shown &&
    html`<${Overlay} label=${t('toml.export.title', { name })} onClose=${() => setShown(null)}>
      <h2>${t('toml.export.title', { name })}</h2>
      <p class="muted small">${t(kind === 'channel' ? 'toml.export.help.channel' : 'toml.export.help')}</p>
      <pre class="toml" data-toml-export=${`${kind}:${name}`}>${shown.toml}</pre>
      <div class="row end">
        <button type="button" class="btn" onClick=${() => copyText(shown.toml).then(() => toast(t('common.copied'))).catch(toastError)}>${t('common.copy')}</button>
        <button type="button" class="btn" data-toml-download onClick=${download}>${t('toml.download')}</button>
        <button type="button" class="btn primary" data-toml-close onClick=${() => setShown(null)}>${t('common.close')}</button>
      </div>
    <//>`}`;
}

/** "Import TOML" for a kind: paste, check (problems in the user's language), import. */
export function ImportButton({ kind, onDone }) {
  const [open, setOpen] = useState(false);
  const [text, setText] = useState('');
  const [problems, setProblems] = useState(null);
  const [names, setNames] = useState(null);
  const [busy, setBusy] = useState(false);
  const close = () => {
    setOpen(false);
    setProblems(null);
    setNames(null);
  };
  const check = async () => {
    setBusy(true);
    try {
      const r = await api.post(`/api/definitions/${kind}/check`, { toml: text });
      setProblems(r.problems);
      setNames(r.problems.length ? null : r.names);
    } catch (e) {
      toastError(e);
    } finally {
      setBusy(false);
    }
  };
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      const c = await api.post(`/api/definitions/${kind}/check`, { toml: text });
      if (c.problems.length) {
        setProblems(c.problems);
        setNames(null);
        return;
      }
      const r = await api.post(`/api/definitions/${kind}/import`, { toml: text });
      const list = (xs) => (xs.length ? xs.join(', ') : t('common.none'));
      toast(t('toml.imported', { created: list(r.created), updated: list(r.updated), unchanged: list(r.unchanged) }));
      close();
      setText('');
      if (onDone) onDone(r);
    } catch (err) {
      if (err.status === 422) {
        setProblems(problemsOf(err));
        setNames(null);
      } else toastError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<button type="button" class="btn" data-import-toml=${kind} onClick=${() => setOpen(true)}>${t('toml.importButton')}</button>
    ${open &&
    html`<${Overlay} label=${t(`toml.import.title.${kind}`)} onClose=${close}>
      <form onSubmit=${save} data-toml-import=${kind} novalidate>
        <h2>${t(`toml.import.title.${kind}`)}</h2>
        <p class="muted small">${t('toml.import.help')}</p>
        <label for="toml-text" class="sr-only">${t('toml.text')}</label>
        <textarea id="toml-text" rows="14" spellcheck="false" class="toml" value=${text}
          onInput=${(e) => {
            setText(e.currentTarget.value);
            setNames(null);
          }}></textarea>
        ${problems && problems.length > 0 &&
        html`<ul class="error small" role="alert" data-toml-problems>${problems.map((p, i) => html`<${Problem} key=${i} p=${p} />`)}</ul>`}
        ${names && html`<p class="small" data-toml-ok>${t('toml.ok', { names: names.join(', ') })}</p>`}
        <div class="row end">
          <button type="button" class="btn" data-toml-check disabled=${busy || !text.trim()} onClick=${check}>${t('toml.check')}</button>
          <button type="submit" class="btn primary" data-toml-save disabled=${busy || !text.trim()}>${t('toml.save')}</button>
          <button type="button" class="btn" onClick=${close}>${t('common.cancel')}</button>
        </div>
      </form>
    <//>`}`;
}
