// A program's files: browse folders (paged), open a text file, edit and save it (a file
// changed on disk since it was opened is a conflict the user resolves: reload or
// overwrite), upload into the current folder (button or drag and drop), download files
// and folders, create files and folders, rename or move, delete (confirmed; several at
// once by selecting them) and extract an uploaded archive into a new folder.

import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt, plural, addStrings } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { allowed } from '../lib/session.js';
import { confirmAction, errorText, fieldText, href, toast, toastError } from '../lib/ui.js';

const PAGE = 100;

addStrings({
  en: {
    'files.newFolder': 'New folder',
    'files.newFile': 'New file',
    'files.folderName': 'Name of the new folder',
    'files.fileName': 'Name of the new file',
    'files.create': 'Create',
    'files.created': '{path} created.',
    'files.rename': 'Rename or move',
    'files.renameTo': 'New name or path of {name} (from the file root)',
    'files.renamed': '{from} is now {to}.',
    'files.extract': 'Extract',
    'files.extractTo': 'Folder to extract {name} into (from the file root; must not exist)',
    'files.extracted.one': 'Extracted {n} file into {to}.',
    'files.extracted.other': 'Extracted {n} files into {to}.',
    'files.select': 'Select {name}',
    'files.selectAll': 'Select all',
    'files.deleteSelected.one': 'Delete {n} selected entry',
    'files.deleteSelected.other': 'Delete {n} selected entries',
    'files.delete.title': 'Delete {name}?',
    'files.delete.file': 'The file is deleted from the disk. This cannot be undone.',
    'files.delete.dir': 'The folder and everything in it are deleted from the disk. This cannot be undone.',
    'files.deleteMany.title.one': 'Delete {n} entry?',
    'files.deleteMany.title.other': 'Delete {n} entries?',
    'files.deleteMany.body': 'The selected files and folders (with everything in them) are deleted from the disk. This cannot be undone.',
    'files.deleted.one': 'Deleted {n} entry.',
    'files.deleted.other': 'Deleted {n} entries.',
    'files.dropHint': 'Drop files here to upload them into this folder.',
    'files.dropping': 'Release to upload into this folder.',
  },
  ko: {
    'files.newFolder': '새 폴더',
    'files.newFile': '새 파일',
    'files.folderName': '새 폴더 이름',
    'files.fileName': '새 파일 이름',
    'files.create': '만들기',
    'files.created': '{path}을(를) 만들었습니다.',
    'files.rename': '이름 바꾸기/이동',
    'files.renameTo': '{name}의 새 이름 또는 경로 (최상위 기준)',
    'files.renamed': '{from}을(를) {to}(으)로 옮겼습니다.',
    'files.extract': '압축 풀기',
    'files.extractTo': '{name}의 압축을 풀 폴더 (최상위 기준, 없는 폴더여야 함)',
    'files.extracted.other': '파일 {n}개의 압축을 {to}에 풀었습니다.',
    'files.select': '{name} 선택',
    'files.selectAll': '모두 선택',
    'files.deleteSelected.other': '선택한 항목 {n}개 삭제',
    'files.delete.title': '{name}을(를) 삭제할까요?',
    'files.delete.file': '파일이 디스크에서 삭제되며 되돌릴 수 없습니다.',
    'files.delete.dir': '폴더와 그 안의 모든 것이 디스크에서 삭제되며 되돌릴 수 없습니다.',
    'files.deleteMany.title.other': '항목 {n}개를 삭제할까요?',
    'files.deleteMany.body': '선택한 파일과 폴더(안의 모든 것 포함)가 디스크에서 삭제되며 되돌릴 수 없습니다.',
    'files.deleted.other': '항목 {n}개를 삭제했습니다.',
    'files.dropHint': '파일을 여기에 끌어다 놓으면 이 폴더에 올립니다.',
    'files.dropping': '놓으면 이 폴더에 올립니다.',
  },
});

const ARCHIVE = /^(.+?)(\.tar\.zst|\.tzst|\.tar\.gz|\.tgz|\.zip|\.tar)$/i;

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

/** Uploads `files` into `dir`; resolves to true when they were stored. */
async function uploadFiles(name, dir, files, overwrite) {
  if (!files.length) return false;
  const form = new FormData();
  for (const f of files) form.append('files', f, f.name);
  try {
    const r = await api.upload(`/api/programs/${seg(name)}/files/upload?${q({ path: dir, overwrite })}`, form);
    toast(plural('files.uploaded', r.files.length));
    return true;
  } catch (err) {
    toastError(err);
    return false;
  }
}

function Upload({ name, dir, overwrite, setOverwrite, onDone }) {
  const [busy, setBusy] = useState(false);
  const upload = async (e) => {
    const input = e.currentTarget;
    const files = [...input.files];
    if (!files.length) return;
    setBusy(true);
    try {
      if (await uploadFiles(name, dir, files, overwrite)) onDone();
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

/** A one-line form for a name or path: new file or folder, rename, extract target. */
function NameForm({ id, label, initial = '', action, onSubmit, onCancel }) {
  const [value, setValue] = useState(initial);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const ref = useRef(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    if (!value.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await onSubmit(value.trim());
    } catch (err) {
      setError(err.details && err.details.length ? err.details.map((d) => fieldText(d)).join(' ') : errorText(err));
      setBusy(false);
    }
  };
  return html`<form class="name-form" data-name-form=${id} onSubmit=${submit}>
    <label for=${id} class="sr-only">${label}</label>
    <input id=${id} ref=${ref} value=${value} autocomplete="off" placeholder=${label} aria-label=${label}
      aria-invalid=${error ? 'true' : undefined} onInput=${(e) => setValue(e.currentTarget.value)}
      onKeyDown=${(e) => e.key === 'Escape' && onCancel()} />
    <button type="submit" class="btn primary" disabled=${busy}>${action}</button>
    <button type="button" class="btn" onClick=${onCancel}>${t('common.cancel')}</button>
    ${error && html`<small class="error wide" role="alert">${error}</small>`}
  </form>`;
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
      .catch((e) => setError(errorText(e)));
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
  const [overwrite, setOverwrite] = useState(false);
  // What is being typed: {kind: 'dir' | 'file'} at the top, {kind: 'rename' | 'extract', entry} in a row.
  const [form, setForm] = useState(null);
  const [selected, setSelected] = useState(() => new Set());
  const [dragging, setDragging] = useState(false);
  const writable = allowed('files.write', name);
  const base = `/api/programs/${seg(name)}/files`;

  const page = (after) => api.get(`${base}?${q({ path: dir, limit: PAGE, ...(after ? { after } : {}) })}`);
  useEffect(() => {
    setError(null);
    page()
      .then((r) => {
        setEntries(r.entries);
        setTotal(r.total);
        setNext(r.next_after ?? null);
        setSelected((old) => new Set([...old].filter((n) => r.entries.some((e) => e.name === n))));
      })
      .catch((e) => setError(errorText(e)));
  }, [name, dir, version]);
  const reload = () => setVersion((v) => v + 1);
  const more = () =>
    page(next)
      .then((r) => {
        setEntries((old) => [...(old || []), ...r.entries]);
        setNext(r.next_after ?? null);
      })
      .catch(toastError);

  const go = (path) => {
    setEntries(null);
    setDir(path);
    setOpen(null);
    setForm(null);
    setSelected(new Set());
  };

  const create = async (kind, entryName) => {
    const path = join(dir, entryName);
    if (kind === 'dir') await api.post(`${base}/mkdir`, { path });
    else await api.put(`${base}/text`, { path, text: '' });
    toast(t('files.created', { path }));
    setForm(null);
    reload();
    if (kind === 'file') setOpen(path);
  };
  const rename = async (entry, to) => {
    const from = join(dir, entry.name);
    const r = await api.post(`${base}/move`, { from, to });
    toast(t('files.renamed', { from: r.from, to: r.to }));
    setForm(null);
    if (open === from) setOpen(null);
    reload();
  };
  const extract = async (entry, to) => {
    const r = await api.post(`${base}/extract`, { path: join(dir, entry.name), to });
    toast(plural('files.extracted', r.files, { to: r.to }));
    setForm(null);
    reload();
  };
  const remove = async (entry) => {
    const ok = await confirmAction({
      title: t('files.delete.title', { name: entry.name }),
      body: t(entry.type === 'dir' ? 'files.delete.dir' : 'files.delete.file'),
      action: t('common.delete'),
    });
    if (!ok) return;
    const path = join(dir, entry.name);
    try {
      await api.del(`${base}?${q({ path, recursive: entry.type === 'dir' })}`);
      toast(plural('files.deleted', 1));
      if (open && (open === path || open.startsWith(`${path}/`))) setOpen(null);
    } catch (e) {
      toastError(e);
    }
    reload();
  };
  const removeSelected = async () => {
    const chosen = (entries || []).filter((e) => selected.has(e.name));
    if (!chosen.length) return;
    const ok = await confirmAction({
      title: plural('files.deleteMany.title', chosen.length),
      body: t('files.deleteMany.body'),
      action: t('common.delete'),
    });
    if (!ok) return;
    let done = 0;
    for (const entry of chosen) {
      try {
        await api.del(`${base}?${q({ path: join(dir, entry.name), recursive: entry.type === 'dir' })}`);
        done += 1;
      } catch (e) {
        toastError(e);
        break;
      }
    }
    if (done) toast(plural('files.deleted', done));
    setSelected(new Set());
    setOpen(null);
    reload();
  };
  const toggle = (entryName, on) =>
    setSelected((old) => {
      const s = new Set(old);
      if (on) s.add(entryName);
      else s.delete(entryName);
      return s;
    });
  const allSelected = entries && entries.length > 0 && entries.every((e) => selected.has(e.name));

  // Drag and drop: files dropped anywhere on the folder's card are uploaded into it.
  const dragProps = writable
    ? {
        onDragOver: (e) => {
          if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
          e.preventDefault();
          e.dataTransfer.dropEffect = 'copy';
          setDragging(true);
        },
        onDragLeave: (e) => {
          if (!e.currentTarget.contains(e.relatedTarget)) setDragging(false);
        },
        onDrop: async (e) => {
          e.preventDefault();
          setDragging(false);
          const files = [...(e.dataTransfer?.files || [])];
          if (await uploadFiles(name, dir, files, overwrite)) reload();
        },
      }
    : {};

  const entryRow = (e) => {
    const path = join(dir, e.name);
    const archive = e.type === 'file' && ARCHIVE.exec(e.name);
    const editing = form && form.entry === e.name ? form.kind : null;
    return html`<li key=${e.name} class="item" data-entry=${e.name} data-kind=${e.type}>
      ${writable &&
      html`<input type="checkbox" data-select=${e.name} checked=${selected.has(e.name)}
        aria-label=${t('files.select', { name: e.name })} onChange=${(ev) => toggle(e.name, ev.currentTarget.checked)} />`}
      ${e.type === 'dir'
        ? html`<button type="button" class="link entry-name" onClick=${() => go(path)} data-user-data>${e.name}/</button>`
        : e.type === 'file'
          ? html`<button type="button" class="link entry-name" aria-pressed=${open === path}
              onClick=${() => setOpen(path)} data-user-data>${e.name}</button>`
          : html`<span class="entry-name" data-user-data>${e.name}</span>`}
      <span class="muted small num">${e.type === 'file' ? fmt.bytes(e.size) : ''}</span>
      <time class="muted small num">${fmt.time(e.modified_ms)}</time>
      <div class="actions">
        ${e.type === 'file' &&
        html`<a class="btn" href=${`${base}/download?${q({ path })}`} download
          aria-label=${`${t('files.download')} ${e.name}`}>${t('files.download')}</a>`}
        ${writable && archive &&
        html`<button type="button" class="btn" data-extract=${e.name} aria-label=${`${t('files.extract')} ${e.name}`}
          onClick=${() => setForm({ kind: 'extract', entry: e.name })}>${t('files.extract')}</button>`}
        ${writable &&
        html`<button type="button" class="btn" data-rename=${e.name} aria-label=${`${t('files.rename')} ${e.name}`}
          onClick=${() => setForm({ kind: 'rename', entry: e.name })}>${t('files.rename')}</button>
          <button type="button" class="btn danger" data-delete=${e.name} aria-label=${`${t('common.delete')} ${e.name}`}
          onClick=${() => remove(e)}>${t('common.delete')}</button>`}
      </div>
      ${editing === 'rename' &&
      html`<${NameForm} id=${`rename-${e.name}`} label=${t('files.renameTo', { name: e.name })} initial=${path}
        action=${t('files.rename')} onSubmit=${(to) => rename(e, to)} onCancel=${() => setForm(null)} />`}
      ${editing === 'extract' &&
      html`<${NameForm} id=${`extract-${e.name}`} label=${t('files.extractTo', { name: e.name })} initial=${join(dir, archive[1])}
        action=${t('files.extract')} onSubmit=${(to) => extract(e, to)} onCancel=${() => setForm(null)} />`}
    </li>`;
  };

  return html`<main id="main" tabindex="-1" class="page" data-files-page=${name}>
    <div class="toolbar">
      <h1>${t('files.title', { name })}</h1>
      <span class="grow"></span>
      <a class="btn" href=${href.program(name)}>${t('common.back')}</a>
    </div>
    <section class=${`card dropzone${dragging ? ' dragging' : ''}`} aria-labelledby="browser-h" data-dropzone ...${dragProps}>
      <h2 id="browser-h" class="sr-only">${t('files.browser')}</h2>
      <div class="toolbar">
        <${Crumbs} path=${dir} onGo=${go} />
        <span class="grow"></span>
        <span class="muted small num" data-total=${total}>${plural('files.total', total)}</span>
        <a class="btn" href=${`${base}/download?${q({ path: dir })}`} download>${t('files.downloadFolder')}</a>
      </div>
      ${writable &&
      html`<div class="row">
          <button type="button" class="btn" data-new-folder onClick=${() => setForm({ kind: 'dir' })}>${t('files.newFolder')}</button>
          <button type="button" class="btn" data-new-file onClick=${() => setForm({ kind: 'file' })}>${t('files.newFile')}</button>
          ${selected.size > 0 &&
          html`<button type="button" class="btn danger" data-delete-selected=${selected.size} onClick=${removeSelected}>
            ${plural('files.deleteSelected', selected.size)}</button>`}
        </div>
        <${Upload} name=${name} dir=${dir} overwrite=${overwrite} setOverwrite=${setOverwrite} onDone=${reload} />
        <p class="muted small" data-drop-hint>${dragging ? t('files.dropping') : t('files.dropHint')}</p>`}
      ${form && (form.kind === 'dir' || form.kind === 'file') &&
      html`<${NameForm} key=${form.kind} id=${`new-${form.kind}`} label=${t(form.kind === 'dir' ? 'files.folderName' : 'files.fileName')}
        action=${t('files.create')} onSubmit=${(n) => create(form.kind, n)} onCancel=${() => setForm(null)} />`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${entries == null
        ? !error && html`<p class="muted">${t('common.loading')}</p>`
        : html`<ul class="items files">
            ${writable && entries.length > 1 &&
            html`<li class="item"><label class="check"><input type="checkbox" data-select-all checked=${allSelected}
              onChange=${(ev) => setSelected(ev.currentTarget.checked ? new Set(entries.map((e) => e.name)) : new Set())} />
              ${t('files.selectAll')}</label></li>`}
            ${dir && html`<li class="item"><button type="button" class="link" onClick=${() => go(parent(dir))}>..</button></li>`}
            ${entries.length === 0 && html`<li class="item muted">${t('files.empty')}</li>`}
            ${entries.map(entryRow)}
          </ul>`}
      ${next != null && html`<button type="button" class="btn" onClick=${more}>${t('common.more')}</button>`}
    </section>
    ${open && html`<${Editor} key=${open} name=${name} path=${open} onClose=${() => setOpen(null)} />`}
  </main>`;
}
