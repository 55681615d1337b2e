// A program's files: browse folders (paged), open a text file, edit and save it (a file
// changed on disk since it was opened is a conflict the user resolves: reload or
// overwrite), upload into the current folder, download files and folders.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { allowed } from '../lib/session.js';
import { href, toast, toastError } from '../lib/ui.js';

const PAGE = 100;

const join = (dir, name) => (dir ? `${dir}/${name}` : name);
const parent = (dir) => dir.split('/').slice(0, -1).join('/');
const q = (params) => new URLSearchParams(params).toString();

function Crumbs({ path, onGo }) {
  const parts = path ? path.split('/') : [];
  return html`<nav class="crumbs" aria-label=${t('files.path')}>
    <button type="button" class="link" onClick=${() => onGo('')}>${t('files.root')}</button>
    ${parts.map(
      (part, i) => html`<span aria-hidden="true">/</span>
        <button type="button" class="link" onClick=${() => onGo(parts.slice(0, i + 1).join('/'))}>${part}</button>`,
    )}
  </nav>`;
}

function Upload({ name, dir, onDone }) {
  const [busy, setBusy] = useState(false);
  const [overwrite, setOverwrite] = useState(false);
  const upload = async (e) => {
    const files = [...e.currentTarget.files];
    const input = e.currentTarget;
    if (!files.length) return;
    const form = new FormData();
    for (const f of files) form.append('files', f, f.name);
    setBusy(true);
    try {
      const r = await api.upload(`/api/programs/${seg(name)}/files/upload?${q({ path: dir, overwrite })}`, form);
      toast(t('files.uploaded', { n: r.files.length }));
      onDone();
    } catch (err) {
      toastError(err);
    } finally {
      input.value = '';
      setBusy(false);
    }
  };
  return html`<div class="row">
    <label class="btn" for="file-upload" aria-disabled=${busy}>${busy ? t('files.uploading') : t('files.upload')}</label>
    <input id="file-upload" class="sr-only" type="file" multiple disabled=${busy} onChange=${upload} />
    <label class="check"><input type="checkbox" checked=${overwrite} onChange=${(e) => setOverwrite(e.currentTarget.checked)} /> ${t('files.overwrite')}</label>
  </div>`;
}

function Editor({ name, path, onClose }) {
  const [file, setFile] = useState(null);
  const [text, setText] = useState('');
  const [conflict, setConflict] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const editable = allowed('files.write', name);

  const load = () =>
    api
      .get(`/api/programs/${seg(name)}/files/text?${q({ path })}`)
      .then((f) => {
        setFile(f);
        setText(f.text ?? '');
        setConflict(false);
        setError(null);
      })
      .catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, [name, path]);

  const save = async (baseVersion) => {
    setBusy(true);
    try {
      const r = await api.put(`/api/programs/${seg(name)}/files/text`, { path, text, base_version: baseVersion });
      setFile({ ...file, version: r.version, size: r.size });
      setConflict(false);
      toast(t('files.saved', { path }));
    } catch (e) {
      if (e.status === 409) setConflict(true);
      else toastError(e);
    } finally {
      setBusy(false);
    }
  };
  // Overwrite: take the version now on disk as the base, keeping the text typed here.
  const overwrite = async () => {
    try {
      const now = await api.get(`/api/programs/${seg(name)}/files/text?${q({ path })}`);
      await save(now.version);
    } catch (e) {
      toastError(e);
    }
  };
  const onKey = (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 's') {
      e.preventDefault();
      if (editable && file && file.is_text) save(file.version);
    }
  };

  return html`<section class="card" aria-labelledby="editor-h" data-editor=${path}>
    <div class="toolbar">
      <h2 id="editor-h"><code>${path}</code></h2>
      ${file && html`<span class="muted small num">${fmt.bytes(file.size)}${file.encoding ? ` · ${file.encoding}` : ''}</span>`}
      <span class="grow"></span>
      <a class="btn" href=${`/api/programs/${seg(name)}/files/download?${q({ path })}`} download>${t('files.download')}</a>
      ${editable && file && file.is_text &&
      html`<button type="button" class="btn primary" data-save-file disabled=${busy} onClick=${() => save(file.version)}>${t('common.save')}</button>`}
      <button type="button" class="btn" onClick=${onClose}>${t('common.close')}</button>
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${conflict &&
    html`<div class="note" role="alert" data-conflict>
      <p>${t('files.conflict')}</p>
      <div class="row">
        <button type="button" class="btn" onClick=${load}>${t('files.conflict.reload')}</button>
        <button type="button" class="btn danger" onClick=${overwrite}>${t('files.conflict.overwrite')}</button>
      </div>
    </div>`}
    ${file == null && !error
      ? html`<p class="muted">${t('common.loading')}</p>`
      : file && !file.is_text
        ? html`<p class="muted">${t('files.binary')}</p>`
        : file &&
          html`<label for="file-text" class="sr-only">${path}</label>
            <textarea id="file-text" class="editor" spellcheck="false" readonly=${!editable} value=${text}
              onInput=${(e) => setText(e.currentTarget.value)} onKeyDown=${onKey}></textarea>`}
  </section>`;
}

export function FilesPage({ name }) {
  const [dir, setDir] = useState('');
  const [entries, setEntries] = useState(null);
  const [total, setTotal] = useState(0);
  const [next, setNext] = useState(null);
  const [open, setOpen] = useState(null);
  const [error, setError] = useState(null);
  const [version, setVersion] = useState(0);

  const page = (after) =>
    api.get(`/api/programs/${seg(name)}/files?${q({ path: dir, limit: PAGE, ...(after ? { after } : {}) })}`);
  useEffect(() => {
    setEntries(null);
    setError(null);
    page()
      .then((r) => {
        setEntries(r.entries);
        setTotal(r.total);
        setNext(r.next_after ?? null);
      })
      .catch((e) => setError(e.message));
  }, [name, dir, version]);
  const more = () =>
    page(next)
      .then((r) => {
        setEntries((old) => [...(old || []), ...r.entries]);
        setNext(r.next_after ?? null);
      })
      .catch(toastError);

  const go = (path) => {
    setDir(path);
    setOpen(null);
  };

  return html`<main id="main" tabindex="-1" class="page" data-files-page=${name}>
    <div class="toolbar">
      <h1>${t('files.title', { name })}</h1>
      <span class="grow"></span>
      <a class="btn" href=${href.program(name)}>${t('common.back')}</a>
    </div>
    <section class="card" aria-labelledby="browser-h">
      <h2 id="browser-h" class="sr-only">${t('files.browser')}</h2>
      <div class="toolbar">
        <${Crumbs} path=${dir} onGo=${go} />
        <span class="grow"></span>
        <span class="muted small num">${t('files.total', { n: fmt.int(total) })}</span>
        <a class="btn" href=${`/api/programs/${seg(name)}/files/download?${q({ path: dir })}`} download>${t('files.downloadFolder')}</a>
      </div>
      ${allowed('files.write', name) && html`<${Upload} name=${name} dir=${dir} onDone=${() => setVersion((v) => v + 1)} />`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${entries == null
        ? !error && html`<p class="muted">${t('common.loading')}</p>`
        : html`<ul class="items files">
            ${dir && html`<li class="item"><button type="button" class="link" onClick=${() => go(parent(dir))}>..</button></li>`}
            ${entries.length === 0 && html`<li class="item muted">${t('files.empty')}</li>`}
            ${entries.map(
              (e) => html`<li key=${e.name} class="item" data-entry=${e.name} data-kind=${e.type}>
                ${e.type === 'dir'
                  ? html`<button type="button" class="link grow" onClick=${() => go(join(dir, e.name))} data-user-data>${e.name}/</button>`
                  : e.type === 'file'
                    ? html`<button type="button" class="link grow" aria-pressed=${open === join(dir, e.name)}
                        onClick=${() => setOpen(join(dir, e.name))} data-user-data>${e.name}</button>`
                    : html`<span class="grow" data-user-data>${e.name}</span>`}
                <span class="muted small num">${e.type === 'file' ? fmt.bytes(e.size) : ''}</span>
                <time class="muted small num">${fmt.time(e.modified_ms)}</time>
                ${e.type === 'file' &&
                html`<a class="btn" href=${`/api/programs/${seg(name)}/files/download?${q({ path: join(dir, e.name) })}`} download
                  aria-label=${`${t('files.download')} ${e.name}`}>${t('files.download')}</a>`}
              </li>`,
            )}
          </ul>`}
      ${next != null && html`<button type="button" class="btn" onClick=${more}>${t('common.more')}</button>`}
    </section>
    ${open && html`<${Editor} key=${open} name=${name} path=${open} onClose=${() => setOpen(null)} />`}
  </main>`;
}
