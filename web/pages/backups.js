// A program's backups, shown on its page: status, size, verification, a live progress bar
// while a backup, verification or restore runs (from the `backup` events of the live
// connection), create / verify / restore / download / delete, and the sizes over time
// with the space left at the destination.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt } from '../lib/i18n.js';
import { backupReason } from '../lib/events.js';
import { api, seg } from '../lib/api.js';
import { allowed } from '../lib/session.js';
import { live } from '../lib/live.js';
import { BackupSettings } from './backupsettings.js';
import { BackupSizes } from '../lib/pictures.js';
import { ACTIVE, confirmAction, OutcomeBadge, toast, toastError } from '../lib/ui.js';

/** Progress kinds that only move a bar; every other backup event changes a row. */
const PROGRESS = new Set(['progress', 'step']);

function Bar({ done, total, label }) {
  const pct = total > 0 ? Math.min(100, (done / total) * 100) : 0;
  return html`<div class="progress wide" data-progress>
    <progress max="100" value=${pct} aria-label=${label}></progress>
    <span class="small muted num">${label} · ${fmt.bytes(done)} / ${fmt.bytes(total)} (${fmt.int(pct)} %)</span>
  </div>`;
}

function verifyText(b) {
  if (b.verify_ok == null) return t('backups.notVerified');
  return b.verify_ok ? t('backups.verifiedOk', { at: fmt.time(b.verified_at) }) : t('backups.verifiedBad', { n: b.verify_problems.length });
}

function BackupRow({ b, live: progress, program, reload }) {
  const operator = allowed('backups', program.name);
  const restorer = allowed('backups.restore', program.name);
  const busy = b.status === 'running' || b.verifying != null;
  const verify = () =>
    api
      .post(`/api/backups/${b.id}/verify`)
      .then(() => {
        toast(t('backups.verifying'));
        reload();
      })
      .catch(toastError);
  const restore = async () => {
    const running = ACTIVE.has(program.state);
    const option = { label: t('backups.restore.stop'), checked: running };
    const ok = await confirmAction({
      title: t('backups.restore.title', { id: b.id }),
      body: t('backups.restore.body', { name: program.name }),
      action: t('backups.restore'),
      option: running ? option : null,
    });
    if (!ok) return;
    try {
      await api.post(`/api/backups/${b.id}/restore${option.checked && running ? '?stop=true' : ''}`);
      toast(t('backups.restoring'));
      reload();
    } catch (e) {
      toastError(e);
    }
  };
  const remove = async () => {
    const ok = await confirmAction({
      title: t('backups.delete.title', { id: b.id }),
      body: t('backups.delete.body'),
      action: t('common.delete'),
    });
    if (!ok) return;
    api.del(`/api/backups/${b.id}`).then(reload).catch(toastError);
  };
  const cancel = () => api.post(`/api/backups/${b.id}/cancel`).then(reload).catch(toastError);
  // The live event is fresher than the fetched row; the row covers a page opened mid-way.
  const p = progress || b.progress || b.verifying;
  return html`<li class="item" data-backup=${b.id} data-backup-status=${b.status}>
    <strong class="num">#${b.id}</strong>
    <${OutcomeBadge} status=${b.status} />
    <time class="small num">${fmt.time(b.started_at)}</time>
    <span class="small num">${b.archive_bytes != null ? fmt.bytes(b.archive_bytes) : t('common.none')}</span>
    <span class="small muted num">${b.files != null ? t('backups.files', { n: fmt.int(b.files) }) : ''}</span>
    <span class=${`small grow ${b.verify_ok === false ? 'error' : ''}`} data-verified=${b.verify_ok == null ? 'no' : String(b.verify_ok)}>${verifyText(b)}</span>
    <span class="small muted" data-reason=${b.reason}>${backupReason(b.reason)}</span>
    <div class="row end">
      ${b.status === 'ok' &&
      html`${allowed('files.read', program.name) && html`<a class="btn" href=${`/api/backups/${b.id}/download`} download>${t('backups.download')}</a>`}
        ${operator && html`<button type="button" class="btn" data-verify disabled=${busy} onClick=${verify}>${t('backups.verify')}</button>`}
        ${restorer && html`<button type="button" class="btn" data-restore disabled=${busy} onClick=${restore}>${t('backups.restore')}</button>`}`}
      ${operator && b.status === 'running' && html`<button type="button" class="btn" onClick=${cancel}>${t('sched.cancel')}</button>`}
      ${restorer && b.status !== 'running' && html`<button type="button" class="btn danger" onClick=${remove}>${t('common.delete')}</button>`}
    </div>
    ${p && (b.status === 'running' || b.verifying) &&
    html`<${Bar} done=${p.bytes_done} total=${p.bytes_total}
      label=${b.verifying ? t('backups.phase.verifying') : p.phase ? t(`backups.phase.${p.phase}`) : t('backups.phase.reading')} />`}
    ${b.error && html`<p class="wide small error">${b.error}</p>`}
    ${b.warnings.map((w) => html`<p class="wide small muted">${w}</p>`)}
  </li>`;
}

function Restores({ name, version }) {
  const [list, setList] = useState([]);
  useEffect(() => {
    api
      .get(`/api/programs/${seg(name)}/restores`)
      .then((r) => setList(r.restores.slice(0, 3)))
      .catch(toastError);
  }, [name, version]);
  if (!list.length) return null;
  return html`<div class="sub">
    <h3>${t('backups.restores')}</h3>
    <ul class="items">
      ${list.map(
        (r) => html`<li key=${r.id} class="item" data-restore-row=${r.id}>
          <${OutcomeBadge} status=${r.status} />
          <span class="small">${t('backups.restoreOf', { id: r.backup_id })}</span>
          <time class="small muted num">${fmt.time(r.started_at)}</time>
          ${r.progress && html`<${Bar} done=${r.progress.bytes_done} total=${r.progress.bytes_total} label=${t(`backups.phase.${r.progress.phase}`)} />`}
          ${r.error && html`<span class="small error">${r.error}</span>`}
        </li>`,
      )}
    </ul>
  </div>`;
}

export function Backups({ program }) {
  const name = program.name;
  const [list, setList] = useState(null);
  const [progress, setProgress] = useState({});
  const [version, setVersion] = useState(0);
  const [busy, setBusy] = useState(false);
  const reload = () => setVersion((v) => v + 1);

  useEffect(() => {
    let alive = true;
    api
      .get(`/api/programs/${seg(name)}/backups`)
      .then((r) => {
        if (alive) setList(r.backups);
      })
      .catch(toastError);
    return () => {
      alive = false;
    };
  }, [name, version]);

  useEffect(() => {
    let timer = 0;
    const unsubscribe = live.subscribe('events', (ev) => {
      if (ev.type !== 'backup' || ev.program !== name) return;
      if (PROGRESS.has(ev.kind)) {
        if (ev.kind === 'progress') {
          setProgress((p) => ({ ...p, [ev.backup_id]: { bytes_done: ev.bytes_done, bytes_total: ev.bytes_total } }));
        }
        return;
      }
      setProgress((p) => {
        const rest = { ...p };
        delete rest[ev.backup_id];
        return rest;
      });
      clearTimeout(timer);
      timer = setTimeout(reload, 100);
    });
    const unresync = live.onResync(reload);
    return () => {
      clearTimeout(timer);
      unsubscribe();
      unresync();
    };
  }, [name]);

  const create = async () => {
    setBusy(true);
    try {
      await api.post(`/api/programs/${seg(name)}/backups`);
      toast(t('backups.started'));
      reload();
    } catch (e) {
      toastError(e);
    } finally {
      setBusy(false);
    }
  };

  return html`<section class="card" aria-labelledby="backups-h" data-backups>
    <div class="toolbar">
      <h2 id="backups-h">${t('backups.title')}</h2>
      <span class="grow"></span>
      ${allowed('backups', name) && html`<button type="button" class="btn primary" data-create-backup disabled=${busy} onClick=${create}>${t('backups.create')}</button>`}
    </div>
    ${list == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : list.length === 0
        ? html`<p class="muted">${t('backups.empty')}</p>`
        : html`<ul class="items">
            ${list.map((b) => html`<${BackupRow} key=${b.id} b=${b} live=${progress[b.id]} program=${program} reload=${reload} />`)}
          </ul>`}
    <${BackupSizes} name=${name} version=${version} />
    <${Restores} name=${name} version=${version} />
    ${allowed('define', name) &&
    html`<details class="bs" data-bs-open>
      <summary>${t('bs.title')}</summary>
      <${BackupSettings} program=${program} />
    </details>`}
  </section>`;
}
