// The audit log (admin): every state-changing call with who, what, target, result and
// address, newest first; filters by user, program, action and time; paged with the
// API's `next_before` cursor (a table on wide screens, cards on a phone).

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt, addStrings } from '../lib/i18n.js';
import { api } from '../lib/api.js';
import { can } from '../lib/session.js';
import { errorText, Field } from '../lib/ui.js';

addStrings({
  en: {
    'audit.title': 'Audit log',
    'audit.filters': 'Filters',
    'audit.user': 'User',
    'audit.userHelp': 'A user name; for a token:',
    'audit.userHelpCode': 'token:NAME',
    'audit.program': 'Program',
    'audit.action': 'Action',
    'audit.actionHelp': 'An action or its first part, e.g.',
    'audit.since': 'From',
    'audit.until': 'Until',
    'audit.apply': 'Apply filters',
    'audit.reset': 'Clear filters',
    'audit.col.time': 'Time',
    'audit.col.who': 'Who',
    'audit.col.what': 'What',
    'audit.col.target': 'Target',
    'audit.col.result': 'Result',
    'audit.col.address': 'Address',
    'audit.col.detail': 'Details',
    'audit.ok': 'Succeeded',
    'audit.failed': 'Failed ({status})',
    'audit.empty': 'No records match these filters.',
    'audit.newer': 'Newer',
    'audit.older': 'Older',
    'audit.page': 'Page {n}',
  },
  ko: {
    'audit.title': '감사 기록',
    'audit.filters': '필터',
    'audit.user': '사용자',
    'audit.userHelp': '사용자 이름. 토큰이면:',
    'audit.userHelpCode': 'token:이름',
    'audit.program': '프로그램',
    'audit.action': '작업',
    'audit.actionHelp': '작업 이름 또는 그 앞부분. 예:',
    'audit.since': '시작',
    'audit.until': '끝',
    'audit.apply': '필터 적용',
    'audit.reset': '필터 지우기',
    'audit.col.time': '시각',
    'audit.col.who': '누가',
    'audit.col.what': '무엇을',
    'audit.col.target': '대상',
    'audit.col.result': '결과',
    'audit.col.address': '주소',
    'audit.col.detail': '세부 정보',
    'audit.ok': '성공',
    'audit.failed': '실패 ({status})',
    'audit.empty': '조건에 맞는 기록이 없습니다.',
    'audit.newer': '최신',
    'audit.older': '이전',
    'audit.page': '{n}쪽',
  },
});

const PAGE = 50;
const EMPTY = { user: '', program: '', action: '', since: '', until: '' };

/** A `datetime-local` value as unix ms (local time), or null. */
const toMs = (v) => {
  if (!v) return null;
  const ms = new Date(v).getTime();
  return Number.isNaN(ms) ? null : ms;
};

function query(filters, before) {
  const p = new URLSearchParams({ limit: String(PAGE) });
  for (const k of ['user', 'program', 'action']) if (filters[k].trim()) p.set(k, filters[k].trim());
  const since = toMs(filters.since);
  const until = toMs(filters.until);
  if (since != null) p.set('since', String(since));
  if (until != null) p.set('until', String(until));
  if (before != null) p.set('before', String(before));
  return p.toString();
}

function Result({ result }) {
  if (result === 'ok') return html`<span class="badge state-running" data-result="ok"><span class="dot" aria-hidden="true"></span>${t('audit.ok')}</span>`;
  const status = (result.match(/^\d+/) || [result])[0];
  return html`<span class="badge state-crashed" data-result=${status} title=${result}>
    <span class="dot" aria-hidden="true"></span>${t('audit.failed', { status })}</span>`;
}

export function AuditPage() {
  const [draft, setDraft] = useState(EMPTY);
  const [filters, setFilters] = useState(EMPTY);
  // Cursors of the pages seen so far: [null (newest), before of page 2, …].
  const [cursors, setCursors] = useState([null]);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);

  const at = cursors.length - 1;
  useEffect(() => {
    if (!can('admin')) return;
    setError(null);
    api
      .get(`/api/audit?${query(filters, cursors[at])}`)
      .then(setPage)
      .catch((e) => setError(errorText(e)));
  }, [filters, cursors]);

  if (!can('admin')) return html`<main id="main" tabindex="-1" class="page"><p>${t('common.forbidden')}</p></main>`;

  const set = (k) => (e) => setDraft({ ...draft, [k]: e.currentTarget.value });
  const apply = (e) => {
    e.preventDefault();
    setFilters({ ...draft });
    setCursors([null]);
  };
  const reset = () => {
    setDraft(EMPTY);
    setFilters(EMPTY);
    setCursors([null]);
  };
  const input = (k, type = 'text') => html`<input id=${`au-${k}`} type=${type} value=${draft[k]} onInput=${set(k)}
    autocomplete="off" aria-describedby=${k === 'user' || k === 'action' ? `au-${k}-help` : undefined} />`;

  return html`<main id="main" tabindex="-1" class="page" data-audit-page>
    <section class="card" aria-labelledby="audit-h">
      <div class="toolbar"><h1 id="audit-h">${t('audit.title')}</h1></div>
      <form class="builder" onSubmit=${apply} aria-label=${t('audit.filters')} data-audit-filters>
        <div class="grid3">
          <${Field} id="au-user" label=${t('audit.user')} help=${html`${t('audit.userHelp')} <code>${t('audit.userHelpCode')}</code>`}>${input('user')}<//>
          <${Field} id="au-program" label=${t('audit.program')}>${input('program')}<//>
          <${Field} id="au-action" label=${t('audit.action')} help=${html`${t('audit.actionHelp')} <code>program</code>, <code>files.delete</code>`}>${input('action')}<//>
          <${Field} id="au-since" label=${t('audit.since')}>${input('since', 'datetime-local')}<//>
          <${Field} id="au-until" label=${t('audit.until')}>${input('until', 'datetime-local')}<//>
        </div>
        <div class="row">
          <button type="submit" class="btn primary">${t('audit.apply')}</button>
          <button type="button" class="btn" onClick=${reset}>${t('audit.reset')}</button>
        </div>
      </form>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${page == null
        ? !error && html`<p class="muted">${t('common.loading')}</p>`
        : page.entries.length === 0
          ? html`<p class="muted" data-audit-empty>${t('audit.empty')}</p>`
          : html`<div class="table-wrap">
              <table>
                <thead><tr>
                  <th>${t('audit.col.time')}</th><th>${t('audit.col.who')}</th><th>${t('audit.col.what')}</th>
                  <th>${t('audit.col.target')}</th><th>${t('audit.col.result')}</th>
                  <th>${t('audit.col.address')}</th><th>${t('audit.col.detail')}</th>
                </tr></thead>
                <tbody>
                  ${page.entries.map(
                    (r) => html`<tr key=${r.id} data-audit-row=${r.id} data-actor=${r.actor} data-action=${r.action}>
                      <td><time class="num" datetime=${new Date(r.ts).toISOString()}>${fmt.time(r.ts)}</time></td>
                      <td data-user-data>${r.actor}</td>
                      <td><code>${r.action}</code></td>
                      <td data-user-data>${r.target}</td>
                      <td><${Result} result=${r.result} /></td>
                      <td><code>${r.address || t('common.none')}</code></td>
                      <td>${r.detail ? html`<code>${r.detail}</code>` : t('common.none')}</td>
                    </tr>`,
                  )}
                </tbody>
              </table>
            </div>`}
      <div class="row">
        <button type="button" class="btn" data-audit-newer disabled=${at === 0}
          onClick=${() => setCursors(cursors.slice(0, -1))}>${t('audit.newer')}</button>
        <span class="muted small num" data-audit-page-no=${at + 1}>${t('audit.page', { n: at + 1 })}</span>
        <button type="button" class="btn" data-audit-older disabled=${!page || page.next_before == null}
          onClick=${() => setCursors([...cursors, page.next_before])}>${t('audit.older')}</button>
      </div>
    </section>
  </main>`;
}
