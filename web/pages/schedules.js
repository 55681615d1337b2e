// Schedules and jobs: triggers with their time zone and next fire times, last runs, run
// now and cancel (operators), run histories with paging and per-task states, job duration
// predictions, run durations over time with p50/p90, and run details (steps, exit, output
// tail), TOML export and import. Job and schedule events on the live connection refetch what they touch.

import { describeTrigger } from '../lib/cron.js';
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { can } from '../lib/session.js';
import { live } from '../lib/live.js';
import { confirmAction, OutcomeBadge, toast, toastError } from '../lib/ui.js';
import { JobDurations } from '../lib/pictures.js';
import { ExportButton, ImportButton } from '../lib/tomlio.js';

const RUN_PAGE = 10;

const ms = (v) => (v == null ? t('common.none') : fmt.duration(v / 1000));

/** Calls `fn` (debounced) on job or schedule events named `name`, and on resync. */
function useActivity(type, fn) {
  useEffect(() => {
    let timer = 0;
    const unsubscribe = live.subscribe('events', (ev) => {
      if (ev.type !== type) return;
      clearTimeout(timer);
      // Stored before published: a refetch finds the change.
      timer = setTimeout(() => fn(ev), 150);
    });
    const unresync = live.onResync(() => fn(null));
    return () => {
      clearTimeout(timer);
      unsubscribe();
      unresync();
    };
  }, []);
}

/** Paged run history of a schedule or job, newest first, refetched when `version` moves. */
function usePagedRuns(base, version) {
  const [runs, setRuns] = useState(null);
  const [next, setNext] = useState(null);
  const page = (before) => api.get(`${base}/runs?limit=${RUN_PAGE}${before ? `&before=${before}` : ''}`);
  useEffect(() => {
    page()
      .then((r) => {
        // The newest page replaces what it covers; older pages the user loaded stay.
        setRuns((old) => {
          const oldest = r.runs.length ? r.runs[r.runs.length - 1].id : Infinity;
          return [...r.runs, ...(old || []).filter((x) => x.id < oldest)];
        });
        setNext((n) => (n == null ? r.next_before ?? null : n));
      })
      .catch(toastError);
  }, [base, version]);
  const more = () =>
    page(next)
      .then((r) => {
        setRuns((old) => [...(old || []), ...r.runs]);
        setNext(r.next_before ?? null);
      })
      .catch(toastError);
  return [runs, next, more];
}

function RunTimes({ run }) {
  return html`<time class="muted small num">${fmt.time(run.started_at)}</time>
    ${run.ended_at != null && html`<span class="muted small num">${ms(run.ended_at - run.started_at)}</span>`}`;
}

// ---- definitions (administrators) ---------------------------------------------------------

/** What the API adds to a schedule's or job's definition when showing it. */
const COMPUTED = {
  schedule: ['trigger_description', 'effective_timezone', 'next_runs', 'running_run_id', 'last_run', 'warnings'],
  job: ['effective_concurrency', 'last_run', 'prediction', 'running', 'waiting', 'warnings'],
};

function definitionOf(kind, info) {
  const spec = { ...info };
  for (const k of COMPUTED[kind]) delete spec[k];
  return spec;
}

/** The schedule or job builder, loaded the first time an administrator opens one. */
function Builder({ kind, ...props }) {
  const [mod, setMod] = useState(null);
  useEffect(() => {
    import('./builders.js').then(setMod).catch(toastError);
  }, []);
  if (!mod) return html`<p class="muted">${t('common.loading')}</p>`;
  const Form = kind === 'schedule' ? mod.ScheduleBuilder : mod.JobBuilder;
  return html`<${Form} ...${props} />`;
}

/** The "new" button and the editor of a list; `editing` is null, 'new' or an item. */
function useDefinitions(kind, reload) {
  const [editing, setEditing] = useState(null);
  const button =
    can('admin') &&
    !editing &&
    html`<button type="button" class="btn primary" data-new=${kind} onClick=${() => setEditing('new')}>${t(`def.${kind}.new`)}</button>`;
  const editor =
    editing &&
    html`<${Builder} key=${editing === 'new' ? 'new' : editing.name} kind=${kind} editing=${editing !== 'new'}
      initial=${editing === 'new' ? {} : definitionOf(kind, editing)}
      onDone=${(saved) => {
        setEditing(null);
        if (saved) reload();
      }} />`;
  return [button, editor, setEditing];
}

// ---- schedules ----------------------------------------------------------------------------

function describeTask(task) {
  const a = task.action;
  const what = a.program || a.job || a.url || '';
  return `${t(`task.${a.kind}`)}${what ? ` ${what}` : ''}`;
}

function ScheduleRuns({ s, version }) {
  const [runs, next, more] = usePagedRuns(`/api/schedules/${seg(s.name)}`, version);
  return html`<div class="sub" data-schedule-runs=${s.name}>
    <h4>${t('sched.history')}</h4>
    ${runs == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : runs.length === 0
        ? html`<p class="muted">${t('sched.noRuns')}</p>`
        : html`<ul class="items">
            ${runs.map(
              (r) => html`<li key=${r.id} class="item" data-run=${r.id}>
                <${OutcomeBadge} status=${r.state} />
                <${RunTimes} run=${r} />
                <span class="muted small">${r.source}</span>
                ${r.error && html`<span class="error small">${r.error}</span>`}
                <ol class="tasks wide">
                  ${(r.tasks || []).map(
                    (task, i) => html`<li key=${i} data-task-state=${task.state}>
                      <span class="muted small">${t(`task.${task.kind}`)}</span>
                      <span class=${`small tstate-${task.state}`}>${t(`taskState.${task.state}`)}</span>
                      ${task.message && html`<span class="small">${task.message}</span>`}
                    </li>`,
                  )}
                </ol>
              </li>`,
            )}
          </ul>`}
    ${next != null && html`<button type="button" class="btn" onClick=${more}>${t('common.more')}</button>`}
  </div>`;
}

function ScheduleItem({ s, version, reload, onEdit }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const operator = can('operator');
  const act = async (what) => {
    setBusy(true);
    try {
      await api.post(`/api/schedules/${seg(s.name)}/${what}`);
      if (what === 'run') {
        toast(t('sched.started', { name: s.name }));
        setOpen(true);
      }
      reload();
    } catch (e) {
      toastError(e);
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    const ok = await confirmAction({
      title: t('sched.delete.title', { name: s.name }),
      body: t('sched.delete.body'),
      action: t('common.delete'),
    });
    if (!ok) return;
    api.del(`/api/schedules/${seg(s.name)}`).then(reload).catch(toastError);
  };
  const running = s.running_run_id != null;
  return html`<li class="item" data-schedule=${s.name}>
    <strong>${s.name}</strong>
    ${!s.enabled && html`<span class="muted small">${t('alerts.disabled')}</span>`}
    <span class="small grow" data-trigger-text>${describeTrigger(s.trigger) || ''} <code class="muted">${s.trigger}</code></span>
    <span class="muted small">${s.effective_timezone}</span>
    ${s.last_run ? html`<${OutcomeBadge} status=${s.last_run.state} />` : html`<span class="muted small">${t('sched.never')}</span>`}
    <div class="row end">
      <button type="button" class="btn" aria-expanded=${open} onClick=${() => setOpen(!open)}>${t('sched.history')}</button>
      ${operator &&
      (running
        ? html`<button type="button" class="btn" data-cancel disabled=${busy} onClick=${() => act('cancel')}>${t('sched.cancel')}</button>`
        : html`<button type="button" class="btn primary" data-run-now disabled=${busy} onClick=${() => act('run')}>${t('sched.runNow')}</button>`)}
      ${can('admin') &&
      html`<button type="button" class="btn" data-edit onClick=${() => onEdit(s)}>${t('action.edit')}</button>
        <button type="button" class="btn danger" onClick=${remove}>${t('common.delete')}</button>`}
      <${ExportButton} kind="schedule" name=${s.name} />
    </div>
    ${s.description && html`<p class="wide small muted">${s.description}</p>`}
    <div class="wide small">
      <span class="muted">${t('sched.tasks')}:</span>${' '}${s.tasks.map(describeTask).join(' → ')}
    </div>
    <div class="wide small" data-next-runs>
      <span class="muted">${t('sched.next')}:</span>${' '}
      ${s.next_runs.length
        ? html`<ul class="inline-list">${s.next_runs.map(
            (n) => html`<li key=${n}><time datetime=${n} class="num">${fmt.timeIn(Date.parse(n), s.effective_timezone)}</time></li>`,
          )}</ul>`
        : html` ${t('common.none')}`}
    </div>
    ${(s.warnings || []).map((w) => html`<p class="wide small note">${w}</p>`)}
    ${open && html`<div class="wide"><${ScheduleRuns} s=${s} version=${version} /></div>`}
  </li>`;
}

function Schedules() {
  const [list, setList] = useState(null);
  const [version, setVersion] = useState(0);
  const reload = () => {
    setVersion((v) => v + 1);
  };
  useEffect(() => {
    api
      .get('/api/schedules')
      .then((r) => setList(r.schedules))
      .catch(toastError);
  }, [version]);
  useActivity('schedule', reload);
  const [button, editor, edit] = useDefinitions('schedule', reload);
  return html`<section class="card" aria-labelledby="schedules-h">
    <div class="toolbar"><h2 id="schedules-h">${t('sched.title')}</h2><span class="grow"></span>${can('admin') && html`<${ImportButton} kind="schedule" onDone=${reload} />`}${button}</div>
    ${list == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : list.length === 0
        ? html`<p class="muted">${t('sched.empty')}</p>`
        : html`<ul class="items">
            ${list.map((s) => html`<${ScheduleItem} key=${s.name} s=${s} version=${version} reload=${reload} onEdit=${edit} />`)}
          </ul>`}
    ${editor}
  </section>`;
}

// ---- jobs ---------------------------------------------------------------------------------

function RunDetail({ job, id, version }) {
  const [d, setD] = useState(null);
  useEffect(() => {
    api.get(`/api/jobs/${seg(job)}/runs/${id}`).then(setD).catch(toastError);
  }, [job, id, version]);
  if (!d) return html`<p class="muted">${t('common.loading')}</p>`;
  return html`<div class="sub" data-run-detail=${id}>
    ${d.steps.length === 0
      ? html`<p class="muted">${t('jobs.noSteps')}</p>`
      : html`<ul class="items">
          ${d.steps.map(
            (st) => html`<li key=${st.id} class="item" data-step=${st.step}>
              <strong>${st.step}</strong>
              ${st.attempt > 0 && html`<span class="muted small">${t('jobs.attempt', { n: st.attempt + 1 })}</span>`}
              <${OutcomeBadge} status=${st.state} />
              <span class="small">${st.message || (st.exit_code != null ? t('jobs.exit', { code: st.exit_code }) : '')}</span>
              <span class="muted small num">${ms(st.duration_ms)}</span>
              ${st.output_tail && html`<pre class="tail wide">${st.output_tail}</pre>`}
            </li>`,
          )}
        </ul>`}
  </div>`;
}

function JobRuns({ job, version }) {
  const [runs, next, more] = usePagedRuns(`/api/jobs/${seg(job)}`, version);
  const [shown, setShown] = useState(null);
  return html`<div class="sub" data-job-runs=${job}>
    <h4>${t('sched.history')}</h4>
    <${JobDurations} job=${job} version=${version} />
    ${runs == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : runs.length === 0
        ? html`<p class="muted">${t('sched.noRuns')}</p>`
        : html`<ul class="items">
            ${runs.map(
              (r) => html`<li key=${r.id} class="item" data-run=${r.id}>
                <${OutcomeBadge} status=${r.state} />
                <${RunTimes} run=${r} />
                <span class="muted small">${r.source}</span>
                ${r.retries > 0 && html`<span class="muted small">${t('jobs.retries', { n: r.retries })}</span>`}
                ${r.error && html`<span class="error small">${r.error}</span>`}
                ${r.state !== 'skipped' &&
                html`<button type="button" class="btn" aria-expanded=${shown === r.id}
                  onClick=${() => setShown(shown === r.id ? null : r.id)}>${t('jobs.detail')}</button>`}
                ${shown === r.id && html`<div class="wide"><${RunDetail} job=${job} id=${r.id} version=${version} /></div>`}
              </li>`,
            )}
          </ul>`}
    ${next != null && html`<button type="button" class="btn" onClick=${more}>${t('common.more')}</button>`}
  </div>`;
}

function JobItem({ j, version, reload, onEdit }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const act = async (what) => {
    setBusy(true);
    try {
      const r = await api.post(`/api/jobs/${seg(j.name)}/${what}`);
      if (what === 'run') {
        toast(t(`jobs.outcome.${r.outcome}`, { name: j.name }));
        setOpen(true);
      }
      reload();
    } catch (e) {
      toastError(e);
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    const ok = await confirmAction({
      title: t('jobs.delete.title', { name: j.name }),
      body: t('jobs.delete.body'),
      action: t('common.delete'),
    });
    if (!ok) return;
    api.del(`/api/jobs/${seg(j.name)}?force=true`).then(reload).catch(toastError);
  };
  const p = j.prediction;
  return html`<li class="item" data-job=${j.name}>
    <strong>${j.name}</strong>
    <span class="small grow">${j.description || t('jobs.steps', { n: j.steps.length })}</span>
    <span class="muted small num" data-prediction>${p
      ? t('jobs.prediction', { p50: ms(p.p50_ms), p90: ms(p.p90_ms), n: p.samples })
      : t('jobs.noPrediction')}</span>
    ${j.running
      ? html`<${OutcomeBadge} status="running" />`
      : j.last_run
        ? html`<${OutcomeBadge} status=${j.last_run.state} />`
        : html`<span class="muted small">${t('sched.never')}</span>`}
    <div class="row end">
      <button type="button" class="btn" aria-expanded=${open} onClick=${() => setOpen(!open)}>${t('sched.history')}</button>
      ${can('operator') &&
      (j.running
        ? html`<button type="button" class="btn" data-cancel disabled=${busy || j.running.cancelling} onClick=${() => act('cancel')}>${t('sched.cancel')}</button>`
        : html`<button type="button" class="btn primary" data-run-now disabled=${busy} onClick=${() => act('run')}>${t('sched.runNow')}</button>`)}
      ${can('admin') &&
      html`<button type="button" class="btn" data-edit onClick=${() => onEdit(j)}>${t('action.edit')}</button>
        <button type="button" class="btn danger" onClick=${remove}>${t('common.delete')}</button>`}
      <${ExportButton} kind="job" name=${j.name} />
    </div>
    ${j.waiting && html`<p class="wide small muted">${j.waiting}</p>`}
    ${(j.warnings || []).map((w) => html`<p class="wide small note">${w}</p>`)}
    ${open && html`<div class="wide"><${JobRuns} job=${j.name} version=${version} /></div>`}
  </li>`;
}

function Jobs() {
  const [list, setList] = useState(null);
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  useEffect(() => {
    api
      .get('/api/jobs')
      .then((r) => setList(r.jobs))
      .catch(toastError);
  }, [version]);
  useActivity('job', reload);
  const [button, editor, edit] = useDefinitions('job', reload);
  return html`<section class="card" aria-labelledby="jobs-h">
    <div class="toolbar"><h2 id="jobs-h">${t('jobs.title')}</h2><span class="grow"></span>${can('admin') && html`<${ImportButton} kind="job" onDone=${reload} />`}${button}</div>
    ${list == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : list.length === 0
        ? html`<p class="muted">${t('jobs.empty')}</p>`
        : html`<ul class="items">
            ${list.map((j) => html`<${JobItem} key=${j.name} j=${j} version=${version} reload=${reload} onEdit=${edit} />`)}
          </ul>`}
    ${editor}
  </section>`;
}

export function SchedulesPage() {
  return html`<main id="main" tabindex="-1" class="page" data-schedules-page>
    <h1>${t('nav.schedules')}</h1>
    <${Schedules} />
    <${Jobs} />
  </main>`;
}
