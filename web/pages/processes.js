// The host's process list (admin): the top processes by CPU or memory from
// `GET /api/system/processes`, refreshed every few seconds while the page is open, with
// supervised programs linked to their pages (a table on wide screens, cards on a phone).

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt, addStrings } from '../lib/i18n.js';
import { api } from '../lib/api.js';
import { can } from '../lib/session.js';
import { errorText, Field, href } from '../lib/ui.js';

addStrings({
  en: {
    'nav.processes': 'Processes',
    'procs.title': 'Processes of the host',
    'procs.sort': 'Sort by',
    'procs.sort.cpu': 'CPU use',
    'procs.sort.memory': 'Memory',
    'procs.limit': 'Show',
    'procs.limitN': 'Top {n}',
    'procs.live': 'Refresh every {n} s',
    'procs.col.pid': 'PID',
    'procs.col.name': 'Executable',
    'procs.col.cpu': 'CPU',
    'procs.col.memory': 'Memory',
    'procs.col.program': 'Program',
    'procs.note': 'CPU is a percentage of one core. Command lines are never shown: they may hold passwords.',
    'procs.updated': 'Updated {time}',
  },
  ko: {
    'nav.processes': '프로세스',
    'procs.title': '호스트의 프로세스',
    'procs.sort': '정렬 기준',
    'procs.sort.cpu': 'CPU 사용량',
    'procs.sort.memory': '메모리',
    'procs.limit': '표시 개수',
    'procs.limitN': '상위 {n}개',
    'procs.live': '{n}초마다 새로 고침',
    'procs.col.pid': 'PID',
    'procs.col.name': '실행 파일',
    'procs.col.cpu': 'CPU',
    'procs.col.memory': '메모리',
    'procs.col.program': '프로그램',
    'procs.note': 'CPU는 코어 하나 기준의 백분율입니다. 비밀번호가 들어 있을 수 있어 명령줄은 보여 주지 않습니다.',
    'procs.updated': '{time}에 갱신',
  },
});

const REFRESH_S = 5;
const LIMITS = [20, 50, 100, 500];

export function ProcessesPage() {
  const [sort, setSort] = useState('cpu');
  const [limit, setLimit] = useState(20);
  const [live, setLive] = useState(true);
  const [list, setList] = useState(null);
  const [at, setAt] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    if (!can('admin')) return undefined;
    let stop = false;
    let timer = null;
    const load = () =>
      api
        .get(`/api/system/processes?sort=${sort}&limit=${limit}`)
        .then((r) => {
          if (stop) return;
          // Kept with the query it answers, so what is shown says how it is sorted.
          setList({ rows: r.processes, sort, limit });
          setAt(Date.now());
          setError(null);
        })
        .catch((e) => !stop && setError(errorText(e)))
        .finally(() => {
          if (!stop && live) timer = setTimeout(load, REFRESH_S * 1000);
        });
    load();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [sort, limit, live]);

  if (!can('admin')) return html`<main id="main" tabindex="-1" class="page"><p>${t('common.forbidden')}</p></main>`;
  return html`<main id="main" tabindex="-1" class="page" data-processes-page>
    <section class="card" aria-labelledby="procs-h">
      <div class="toolbar">
        <h1 id="procs-h">${t('procs.title')}</h1>
        <span class="grow"></span>
        ${at && html`<span class="muted small num">${t('procs.updated', { time: fmt.clock(at) })}</span>`}
      </div>
      <div class="grid3">
        <${Field} id="pr-sort" label=${t('procs.sort')}>
          <select id="pr-sort" value=${sort} onChange=${(e) => setSort(e.currentTarget.value)}>
            <option value="cpu">${t('procs.sort.cpu')}</option>
            <option value="memory">${t('procs.sort.memory')}</option>
          </select>
        <//>
        <${Field} id="pr-limit" label=${t('procs.limit')}>
          <select id="pr-limit" value=${String(limit)} onChange=${(e) => setLimit(Number(e.currentTarget.value))}>
            ${LIMITS.map((n) => html`<option value=${String(n)}>${t('procs.limitN', { n })}</option>`)}
          </select>
        <//>
        <div class="field"><label class="check"><input type="checkbox" id="pr-live" checked=${live}
          onChange=${(e) => setLive(e.currentTarget.checked)} /> ${t('procs.live', { n: REFRESH_S })}</label></div>
      </div>
      <p class="muted small">${t('procs.note')}</p>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${list == null
        ? !error && html`<p class="muted">${t('common.loading')}</p>`
        : html`<div class="table-wrap" data-shown-sort=${list.sort} data-shown-limit=${list.limit}>
            <table>
              <thead><tr>
                <th>${t('procs.col.pid')}</th><th>${t('procs.col.name')}</th><th>${t('procs.col.cpu')}</th>
                <th>${t('procs.col.memory')}</th><th>${t('procs.col.program')}</th>
              </tr></thead>
              <tbody>
                ${list.rows.map(
                  (p) => html`<tr key=${p.pid} data-pid=${p.pid} data-memory=${p.memory_bytes} data-process-program=${p.program || undefined}>
                    <td class="num">${p.pid}</td>
                    <td><code>${p.name}</code></td>
                    <td class="num">${fmt.percent(p.cpu_percent)}</td>
                    <td class="num">${fmt.bytes(p.memory_bytes)}</td>
                    <td>${p.program ? html`<a href=${href.program(p.program)} data-user-data>${p.program}</a>` : t('common.none')}</td>
                  </tr>`,
                )}
              </tbody>
            </table>
          </div>`}
    </section>
  </main>`;
}
